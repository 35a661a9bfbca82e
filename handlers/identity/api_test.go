package identity

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"spine/shared/events"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
	"spine/shared/testenv/apitest"
)

func TestInvite_201_TokenShownOnceUserInvitedWithRoles(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	f := h.provisioned()
	r := h.must(http.StatusCreated, "POST", "/api/users/invitations", f.admin,
		map[string]any{"email": "Ana.Silva@Example.com", "displayName": "Ana", "roleIds": []string{string(f.memberRole)}},
		"Idempotency-Key", "invite-ana")
	var inv invitationJSON
	if err := json.Unmarshal(r.Body, &inv); err != nil {
		t.Fatal(err)
	}
	if inv.Token == "" || len(inv.Token) != 86 || inv.Email != "Ana.Silva@Example.com" || r.Header.Get("Location") != "/api/users/"+inv.UserID ||
		len(inv.RoleIDs) != 1 || inv.RoleIDs[0] != string(f.memberRole) || !inv.ExpiresAt.After(time.Now().Add(6*24*time.Hour)) {
		t.Fatalf("invitation %s %v", r.Body, r.Header)
	}
	u := h.must(http.StatusOK, "GET", "/api/users/"+inv.UserID, f.admin, nil)
	m := u.JSON(t)
	if m["status"] != "Invited" || m["email"] != "Ana.Silva@Example.com" || m["displayName"] != "Ana" || u.Header.Get("ETag") != `"1"` {
		t.Fatalf("user %s", u.Body)
	}
	// The replay of the same request answers the same, without the token: it is shown once.
	again := h.must(http.StatusCreated, "POST", "/api/users/invitations", f.admin,
		map[string]any{"email": "Ana.Silva@Example.com", "displayName": "Ana", "roleIds": []string{string(f.memberRole)}},
		"Idempotency-Key", "invite-ana")
	if again.Header.Get("Idempotent-Replayed") != "true" || strings.Contains(string(again.Body), inv.Token) || again.JSON(t)["id"] != inv.ID {
		t.Fatalf("replay %s %v", again.Body, again.Header)
	}
	// The token is nowhere in the database, nor its secret: only the secret's SHA-256.
	owner := testDB.OpenOwner(t, sqlstore.PoolConfig{MaxOpen: 1})
	var hits int
	tok, _ := parseInvitationToken(inv.Token)
	if err := owner.QueryRow(`SELECT count(*) FROM idempotency_keys WHERE position($1::bytea IN response_body) > 0 OR position($2::bytea IN response_body) > 0`,
		[]byte(inv.Token), tok.secret).Scan(&hits); err != nil || hits != 0 {
		t.Fatalf("the token is stored in an idempotency record (%d, %v)", hits, err)
	}
}

func TestInvite_SameAddressAnyCase_ReinvitesWhileInvited_409OnceAUser(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	f := h.provisioned()
	first := h.invite(f, "bob@example.com")
	second := h.invite(f, "BOB@example.com", f.memberRole)
	if second.UserID != first.UserID || second.ID == first.ID || second.Email != "bob@example.com" {
		t.Fatalf("re-invitation %+v after %+v", second, first)
	}
	// The first token was revoked by the re-invitation.
	r := h.do("POST", "/api/users/invitations/accept", "", acceptBody(first.Token, nil))
	if r.Code != http.StatusGone || r.ProblemCode(t) != "invitation-revoked" {
		t.Fatalf("old token: %d %s", r.Code, r.Body)
	}
	h.accept(second.Token, nil)
	r = h.do("POST", "/api/users/invitations", f.admin, map[string]any{"email": "Bob@Example.com"})
	if r.Code != http.StatusConflict || r.ProblemCode(t) != "user-exists" {
		t.Fatalf("invite an active user: %d %s", r.Code, r.Body)
	}
	for _, bad := range []map[string]any{
		{"email": "not an address"},
		{"email": "Carl <carl@example.com>"},
		{"email": "carl@example.com", "roleIds": []string{"nope"}},
		{"email": "carl@example.com", "roleIds": []string{"0190c5d6-7a44-7b36-9c1e-1c0c3e2d4a5b"}},
	} {
		if r := h.do("POST", "/api/users/invitations", f.admin, bad); r.Code != http.StatusBadRequest || r.ProblemCode(t) != "invalid-input" {
			t.Errorf("%v: %d %s", bad, r.Code, r.Body)
		}
	}
	if r := h.do("POST", "/api/users/invitations", f.admin, map[string]any{"email": "c@example.com", "extra": 1}); r.Code != http.StatusBadRequest || r.ProblemCode(t) != "unknown-field" {
		t.Errorf("unknown member: %d %s", r.Code, r.Body)
	}
}

func TestAccept_SingleUse_SetsPasswordForSignIn(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	f := h.provisioned()
	inv := h.invite(f, "dana@example.com", f.memberRole)
	if r := h.do("POST", "/api/users/invitations/accept", "", acceptBody(inv.Token, map[string]any{"password": "short"})); r.Code != http.StatusBadRequest || r.ProblemCode(t) != "invalid-password" {
		t.Fatalf("short password: %d %s", r.Code, r.Body)
	}
	r := h.accept(inv.Token, map[string]any{"password": "correct horse battery staple", "displayName": "Dana"})
	m := r.JSON(t)
	if m["status"] != "Active" || m["displayName"] != "Dana" || m["activatedAt"] == nil || strings.Contains(string(r.Body), "argon2") {
		t.Fatalf("accepted: %s", r.Body)
	}
	// Single use.
	again := h.do("POST", "/api/users/invitations/accept", "", acceptBody(inv.Token, nil))
	if again.Code != http.StatusGone || again.ProblemCode(t) != "invitation-accepted" {
		t.Fatalf("second accept: %d %s", again.Code, again.Body)
	}
	// The password is stored as an argon2id PHC string and signs the user in.
	ctx := t.Context()
	u, err := h.svc.Authenticate(ctx, f.id, "DANA@example.com", "correct horse battery staple")
	if err != nil || string(u.ID) != inv.UserID || u.LastLoginAt == nil {
		t.Fatalf("sign-in: %+v %v", u, err)
	}
	if _, err := h.svc.Authenticate(ctx, f.id, "dana@example.com", "wrong horse battery staple"); err != ErrInvalidCredentials {
		t.Fatalf("wrong password: %v", err)
	}
	if _, err := h.svc.Authenticate(ctx, f.id, "nobody@example.com", "correct horse battery staple"); err != ErrInvalidCredentials {
		t.Fatalf("unknown user: %v", err)
	}
	got := h.must(http.StatusOK, "GET", "/api/users/"+inv.UserID, f.admin, nil).JSON(t)
	if got["lastLoginAt"] == nil {
		t.Fatalf("lastLoginAt not recorded: %v", got)
	}
}

func TestAccept_ExpiredAndRevokedAndForgedTokens(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	f := h.provisioned()
	inv := h.invite(f, "erin@example.com")
	h.clock.move(7*24*time.Hour + time.Second)
	r := h.do("POST", "/api/users/invitations/accept", "", acceptBody(inv.Token, nil))
	if r.Code != http.StatusGone || r.ProblemCode(t) != "invitation-expired" {
		t.Fatalf("expired: %d %s", r.Code, r.Body)
	}
	h.clock.move(-(7*24*time.Hour + time.Second))

	inv2 := h.invite(f, "erin@example.com")
	h.must(http.StatusNoContent, "DELETE", "/api/users/invitations/"+inv2.ID, f.admin, nil)
	h.must(http.StatusNoContent, "DELETE", "/api/users/invitations/"+inv2.ID, f.admin, nil) // again: no error
	if r := h.do("POST", "/api/users/invitations/accept", "", acceptBody(inv2.Token, nil)); r.Code != http.StatusGone || r.ProblemCode(t) != "invitation-revoked" {
		t.Fatalf("revoked: %d %s", r.Code, r.Body)
	}

	inv3 := h.invite(f, "erin@example.com")
	// Forged: the right ids with another secret; garbage; another tenant's id.
	tok, _ := parseInvitationToken(inv3.Token)
	forged, _ := newInvitationToken(tok.tenant, tok.invitation)
	otherTenant, _ := newInvitationToken(tenancy.NewTenantID(), tok.invitation)
	for name, token := range map[string]string{"wrong secret": forged, "garbage": "abc", "other tenant": otherTenant,
		"one char off": oneCharOff(inv3.Token, 60)} {
		r := h.do("POST", "/api/users/invitations/accept", "", acceptBody(token, nil))
		if r.Code != http.StatusNotFound || r.ProblemCode(t) != "invitation-not-found" {
			t.Errorf("%s: %d %s", name, r.Code, r.Body)
		}
	}
	h.accept(inv3.Token, nil)
	// An accepted invitation cannot be revoked any more.
	if r := h.do("DELETE", "/api/users/invitations/"+inv3.ID, f.admin, nil); r.Code != http.StatusGone {
		t.Fatalf("revoke accepted: %d %s", r.Code, r.Body)
	}
}

func TestUsers_PatchDisableEnable_IfMatchAndTransitions(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	f := h.provisioned()
	id := h.activeUser(f, "fay@example.com", f.memberRole)
	path := "/api/users/" + string(id)
	v := h.must(http.StatusOK, "GET", path, f.admin, nil)
	etag := v.Header.Get("ETag")
	if r := h.do("PATCH", path, f.admin, map[string]string{"displayName": "Fay"}, "If-Match", `"99"`); r.Code != http.StatusPreconditionFailed {
		t.Fatalf("stale If-Match: %d %s", r.Code, r.Body)
	}
	r := h.must(http.StatusOK, "PATCH", path, f.admin, map[string]string{"displayName": "Fay"}, "If-Match", etag)
	if r.JSON(t)["displayName"] != "Fay" || r.Header.Get("ETag") == etag {
		t.Fatalf("patched: %s %v", r.Body, r.Header)
	}
	if r := h.do("PATCH", path, f.admin, map[string]string{"email": "x@example.com"}); r.Code != http.StatusBadRequest || r.ProblemCode(t) != "unknown-field" {
		t.Fatalf("email is not patchable: %d %s", r.Code, r.Body)
	}
	if r := h.must(http.StatusOK, "POST", path+"/disable", f.admin, map[string]string{"reason": "left"}); r.JSON(t)["status"] != "Disabled" {
		t.Fatalf("disable: %s", r.Body)
	}
	if r := h.do("POST", path+"/disable", f.admin, nil); r.Code != http.StatusConflict || r.ProblemCode(t) != "illegal-transition" {
		t.Fatalf("disable twice: %d %s", r.Code, r.Body)
	}
	if r := h.must(http.StatusOK, "POST", path+"/enable", f.admin, nil); r.JSON(t)["status"] != "Active" {
		t.Fatalf("enable: %s", r.Body)
	}
	invited := h.invite(f, "gus@example.com")
	if r := h.do("POST", "/api/users/"+invited.UserID+"/disable", f.admin, nil); r.Code != http.StatusConflict {
		t.Fatalf("disable an Invited user: %d %s", r.Code, r.Body)
	}
	if r := h.do("GET", "/api/users/not-an-id", f.admin, nil); r.Code != http.StatusNotFound || r.ProblemCode(t) != "user-not-found" {
		t.Fatalf("bad id: %d %s", r.Code, r.Body)
	}
}

func TestUsers_ListFiltersAndPages(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	f := h.provisioned() // the owner, Invited
	for _, e := range []string{"h1@example.com", "h2@example.com", "h3@example.com"} {
		h.activeUser(f, e)
	}
	var seen []string
	next := "/api/users?limit=2"
	for next != "" {
		r := h.must(http.StatusOK, "GET", next, f.admin, nil)
		var page struct {
			Value    []userJSON
			NextLink string
		}
		_ = json.Unmarshal(r.Body, &page)
		for _, u := range page.Value {
			seen = append(seen, u.Email)
			if u.RoleIDs != nil {
				t.Fatalf("list items carry roleIds: %s", r.Body)
			}
		}
		next = page.NextLink
	}
	if len(seen) != 4 {
		t.Fatalf("paged through %v", seen)
	}
	r := h.must(http.StatusOK, "GET", "/api/users?status=Invited", f.admin, nil)
	if v := r.JSON(t)["value"].([]any); len(v) != 1 || v[0].(map[string]any)["email"] != f.ownerEmail {
		t.Fatalf("status filter: %s", r.Body)
	}
	r = h.must(http.StatusOK, "GET", "/api/users?email=H2@EXAMPLE.COM", f.admin, nil)
	if v := r.JSON(t)["value"].([]any); len(v) != 1 || v[0].(map[string]any)["email"] != "h2@example.com" {
		t.Fatalf("email filter: %s", r.Body)
	}
	for _, q := range []string{"status=Nope", "cursor=zzz", "limit=0", "email=nope"} {
		if r := h.do("GET", "/api/users?"+q, f.admin, nil); r.Code != http.StatusBadRequest {
			t.Errorf("%s: %d %s", q, r.Code, r.Body)
		}
	}
}

func TestRoles_CreateGetPatchPermissionsDelete(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	f := h.provisioned()
	r := h.must(http.StatusCreated, "POST", "/api/roles", f.admin,
		map[string]any{"code": "auditor", "name": "Auditor", "permissions": []string{"audit.read", "user.read", "audit.read"}},
		"Idempotency-Key", "role-auditor")
	role := r.JSON(t)
	id := role["id"].(string)
	if r.Header.Get("Location") != "/api/roles/"+id || r.Header.Get("ETag") != `"1"` || role["isSystem"] != false ||
		strings.Join(anyStrings(role["permissions"]), ",") != "audit.read,user.read" {
		t.Fatalf("created %s %v", r.Body, r.Header)
	}
	if again := h.must(http.StatusCreated, "POST", "/api/roles", f.admin,
		map[string]any{"code": "auditor", "name": "Auditor", "permissions": []string{"audit.read", "user.read", "audit.read"}},
		"Idempotency-Key", "role-auditor"); again.Header.Get("Idempotent-Replayed") != "true" || again.JSON(t)["id"] != id {
		t.Fatalf("replay: %s", again.Body)
	}
	if r := h.do("POST", "/api/roles", f.admin, map[string]any{"code": "auditor", "name": "Other"}, "Idempotency-Key", "role-auditor"); r.Code != http.StatusUnprocessableEntity {
		t.Fatalf("key reused with another body: %d %s", r.Code, r.Body)
	}
	for _, tc := range []struct {
		body map[string]any
		code string
	}{
		{map[string]any{"code": "auditor", "name": "Again"}, "role-code-taken"},
		{map[string]any{"code": "tenant-admin", "name": "Mine"}, "role-code-taken"},
		{map[string]any{"code": "x", "name": "Short"}, "invalid-input"},
		{map[string]any{"code": "ok-code", "name": ""}, "invalid-input"},
		{map[string]any{"code": "ok-code", "name": "N", "permissions": []string{"billing.pay"}}, "unknown-permission"},
		{map[string]any{"code": "ok-code", "name": "N", "permissions": []string{"NOT A CODE"}}, "unknown-permission"},
	} {
		r := h.do("POST", "/api/roles", f.admin, tc.body)
		if r.Code/100 != 4 || r.ProblemCode(t) != tc.code {
			t.Errorf("%v: %d %s, want %s", tc.body, r.Code, r.Body, tc.code)
		}
	}
	path := "/api/roles/" + id
	if r := h.do("PATCH", path, f.admin, map[string]string{"name": "x"}, "If-Match", `"7"`); r.Code != http.StatusPreconditionFailed {
		t.Fatalf("stale If-Match: %d", r.Code)
	}
	if r := h.must(http.StatusOK, "PATCH", path, f.admin, map[string]string{"name": "Auditors"}, "If-Match", `"1"`); r.JSON(t)["name"] != "Auditors" || r.Header.Get("ETag") != `"2"` {
		t.Fatalf("patched %s", r.Body)
	}
	r = h.must(http.StatusOK, "PUT", path+"/permissions", f.admin, map[string]any{"permissions": []string{"role.read"}})
	if strings.Join(anyStrings(r.JSON(t)["permissions"]), ",") != "role.read" || r.Header.Get("ETag") != `"3"` {
		t.Fatalf("permissions %s", r.Body)
	}
	if r := h.must(http.StatusOK, "GET", path, f.admin, nil); strings.Join(anyStrings(r.JSON(t)["permissions"]), ",") != "role.read" {
		t.Fatalf("get %s", r.Body)
	}
	// System roles cannot change.
	for _, req := range []struct {
		method, path string
		body         any
	}{
		{"PATCH", "/api/roles/" + string(f.adminRole), map[string]any{"name": "x"}},
		{"DELETE", "/api/roles/" + string(f.memberRole), nil},
		{"PUT", "/api/roles/" + string(f.memberRole) + "/permissions", map[string]any{"permissions": []string{}}},
	} {
		r := h.do(req.method, req.path, f.admin, req.body)
		if r.Code != http.StatusConflict || r.ProblemCode(t) != "role-immutable" {
			t.Errorf("%s %s: %d %s", req.method, req.path, r.Code, r.Body)
		}
	}
	h.must(http.StatusNoContent, "DELETE", path, f.admin, nil)
	if r := h.do("GET", path, f.admin, nil); r.Code != http.StatusNotFound || r.ProblemCode(t) != "role-not-found" {
		t.Fatalf("deleted: %d %s", r.Code, r.Body)
	}
	// The catalog: every scope of the platform's services, read-only.
	cat := h.must(http.StatusOK, "GET", "/api/permissions", f.admin, nil)
	var page struct{ Value []Permission }
	_ = json.Unmarshal(cat.Body, &page)
	var codes []string
	for _, p := range page.Value {
		codes = append(codes, string(p.Code))
	}
	if strings.Join(codes, ",") != "audit.read,audit.write,config.manage,config.read,notification.manage,notification.read,notification.send,report.manage,report.read,role.assign,role.manage,role.read,tenant.manage,tenant.read,user.invite,user.manage,user.read" {
		t.Fatalf("catalog %v", codes)
	}
	// tenant-admin holds all of it, member what it should.
	if r := h.must(http.StatusOK, "GET", "/api/roles/"+string(f.adminRole), f.admin, nil); len(anyStrings(r.JSON(t)["permissions"])) != len(codes) || r.JSON(t)["isSystem"] != true {
		t.Fatalf("tenant-admin %s", r.Body)
	}
}

func TestAssignments_201Then200ThenRevoke404(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	f := h.provisioned()
	u := h.activeUser(f, "ivy@example.com")
	path := "/api/roles/" + string(f.memberRole) + "/assignments"
	h.must(http.StatusCreated, "POST", path, f.admin, map[string]string{"userId": string(u)})
	h.must(http.StatusOK, "POST", path, f.admin, map[string]string{"userId": string(u)})
	if r := h.must(http.StatusOK, "GET", "/api/users/"+string(u), f.admin, nil); strings.Join(anyStrings(r.JSON(t)["roleIds"]), ",") != string(f.memberRole) {
		t.Fatalf("user roles %s", r.Body)
	}
	if r := h.do("POST", path, f.admin, map[string]string{"userId": "0190c5d6-7a44-7b36-9c1e-1c0c3e2d4a5b"}); r.Code != http.StatusNotFound || r.ProblemCode(t) != "user-not-found" {
		t.Fatalf("unknown user: %d %s", r.Code, r.Body)
	}
	h.must(http.StatusNoContent, "DELETE", path+"/"+string(u), f.admin, nil)
	if r := h.do("DELETE", path+"/"+string(u), f.admin, nil); r.Code != http.StatusNotFound || r.ProblemCode(t) != "assignment-not-found" {
		t.Fatalf("revoke twice: %d %s", r.Code, r.Body)
	}
	perms := h.must(http.StatusOK, "GET", "/api/users/"+string(u)+"/permissions", f.admin, nil).JSON(t)
	if perms["userId"] != string(u) || len(anyStrings(perms["permissions"])) != 0 {
		t.Fatalf("permissions %v", perms)
	}
}

func TestScopes_EachRouteNeedsItsScope(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	f := h.provisioned()
	readOnly := h.tokens.MintAs(t, "reader", f.id.String(), false, ScopeUserRead, ScopeRoleRead)
	for _, req := range []struct{ method, path string }{
		{"POST", "/api/users/invitations"}, {"PATCH", "/api/users/" + string(f.ownerUserID)},
		{"POST", "/api/users/" + string(f.ownerUserID) + "/disable"}, {"POST", "/api/roles"},
		{"PUT", "/api/roles/" + string(f.memberRole) + "/permissions"},
		{"POST", "/api/roles/" + string(f.memberRole) + "/assignments"},
	} {
		if r := h.do(req.method, req.path, readOnly, map[string]any{}); r.Code != http.StatusForbidden || r.ProblemCode(t) != "insufficient-scope" {
			t.Errorf("%s %s: %d %s", req.method, req.path, r.Code, r.Body)
		}
	}
	if r := h.do("GET", "/api/users", "", nil); r.Code != http.StatusUnauthorized {
		t.Errorf("no token: %d", r.Code)
	}
	// A platform admin names the tenant.
	admin := h.tokens.MintAs(t, "ops", "", true, allScopes...)
	if r := h.do("GET", "/api/users", admin, nil); r.Code != http.StatusBadRequest || r.ProblemCode(t) != "tenant-required" {
		t.Errorf("admin without tenantId: %d %s", r.Code, r.Body)
	}
	h.must(http.StatusOK, "GET", "/api/users?tenantId="+f.id.String(), admin, nil)
	// What a platform admin creates, it can follow: its Location names the tenant too.
	r := h.must(http.StatusCreated, "POST", "/api/users/invitations?tenantId="+f.id.String(), admin,
		map[string]any{"email": "loc@example.com"})
	loc := r.Header.Get("Location")
	if !strings.HasSuffix(loc, "?tenantId="+f.id.String()) {
		t.Fatalf("admin's Location %q lacks the tenant", loc)
	}
	h.must(http.StatusOK, "GET", loc, admin, nil)
}

func TestSuspendedTenant_WritesRefused_ChecksKeepAnswering(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	f := h.provisioned()
	u := h.activeUser(f, "jo@example.com", f.memberRole)
	inv := h.invite(f, "kai@example.com")
	h.dir.set(f.id, tenancy.StatusSuspended)
	for _, req := range []struct {
		method, path string
		body         any
	}{
		{"POST", "/api/users/invitations", map[string]any{"email": "new@example.com"}},
		{"PATCH", "/api/users/" + string(u), map[string]any{"displayName": "x"}},
		{"POST", "/api/users/" + string(u) + "/disable", nil},
		{"POST", "/api/roles", map[string]any{"code": "new-role", "name": "n"}},
		{"POST", "/api/roles/" + string(f.adminRole) + "/assignments", map[string]any{"userId": string(u)}},
		{"DELETE", "/api/roles/" + string(f.memberRole) + "/assignments/" + string(u), nil},
		{"DELETE", "/api/users/invitations/" + inv.ID, nil},
		{"POST", "/api/users/invitations/accept", acceptBody(inv.Token, nil)},
	} {
		r := h.do(req.method, req.path, f.admin, req.body)
		if r.Code != http.StatusForbidden || r.ProblemCode(t) != "tenant-suspended" {
			t.Errorf("%s %s: %d %s", req.method, req.path, r.Code, r.Body)
		}
	}
	if !h.check(f, u, "user.read") || h.check(f, u, "user.invite") {
		t.Fatal("the check stopped answering for a suspended tenant")
	}
	h.must(http.StatusOK, "GET", "/api/users/"+string(u), f.admin, nil)
}

func anyStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

// oneCharOff changes the token's i-th character (within the secret) to another base64url one.
func oneCharOff(token string, i int) string {
	c := byte('A')
	if token[i] == 'A' {
		c = 'B'
	}
	return token[:i] + string(c) + token[i+1:]
}

// Concurrent acceptances of one token: exactly one succeeds, the rest are told it was used.
func TestAccept_ConcurrentAcceptancesOneWins(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	f := h.provisioned()
	inv := h.invite(f, "race@example.com")
	const n = 6
	codes := make(chan int, n)
	for i := 0; i < n; i++ {
		go func() { codes <- h.do("POST", "/api/users/invitations/accept", "", acceptBody(inv.Token, nil)).Code }()
	}
	won, gone := 0, 0
	for i := 0; i < n; i++ {
		switch <-codes {
		case http.StatusOK:
			won++
		case http.StatusGone:
			gone++
		}
	}
	if won != 1 || gone != n-1 {
		t.Fatalf("%d accepted, %d gone; want 1 and %d", won, gone, n-1)
	}
}

// An invitation that assigns roles is a role assignment: it needs role.assign as well as
// user.invite, or a caller with user.invite alone could make an account it controls tenant-admin.
func TestInvite_403_RoleIDsWithoutRoleAssignScope(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	f := h.provisioned()
	inviter := h.tokens.MintAs(t, "inviter", f.id.String(), false, ScopeUserInvite)
	for _, body := range []map[string]any{
		{"email": "eve@example.com", "roleIds": []string{string(f.adminRole)}},
		{"email": "eve@example.com", "roleIds": []string{string(f.memberRole)}},
	} {
		r := h.do("POST", "/api/users/invitations", inviter, body)
		if r.Code != http.StatusForbidden || r.ProblemCode(t) != "insufficient-scope" ||
			!strings.Contains(r.Header.Get("WWW-Authenticate"), `scope="role.assign"`) {
			t.Fatalf("roleIds with user.invite only: %d %s %v", r.Code, r.Body, r.Header)
		}
	}
	if v := h.must(http.StatusOK, "GET", "/api/users?email=eve@example.com", f.admin, nil).JSON(t)["value"].([]any); len(v) != 0 {
		t.Fatalf("the refused invitation created a user: %v", v)
	}
	// Without roles, user.invite is enough; re-inviting that address with roles is refused too.
	h.must(http.StatusCreated, "POST", "/api/users/invitations", inviter, map[string]any{"email": "eve@example.com"})
	h.must(http.StatusCreated, "POST", "/api/users/invitations", inviter, map[string]any{"email": "fred@example.com", "roleIds": []string{}})
	if r := h.do("POST", "/api/users/invitations", inviter, map[string]any{"email": "eve@example.com", "roleIds": []string{string(f.adminRole)}}); r.Code != http.StatusForbidden {
		t.Fatalf("re-invitation adding tenant-admin with user.invite only: %d %s", r.Code, r.Body)
	}
	// An inviter holding both scopes invites with roles.
	both := h.tokens.MintAs(t, "inviter-assigner", f.id.String(), false, ScopeUserInvite, ScopeRoleAssign)
	r := h.must(http.StatusCreated, "POST", "/api/users/invitations", both, map[string]any{"email": "eve@example.com", "roleIds": []string{string(f.memberRole)}})
	var inv invitationJSON
	if err := json.Unmarshal(r.Body, &inv); err != nil || len(inv.RoleIDs) != 1 || inv.RoleIDs[0] != string(f.memberRole) {
		t.Fatalf("invitation with both scopes: %s %v", r.Body, err)
	}
}

// Two invitations of one new address at once: the second waits for the first and becomes a
// re-invitation (as on SQL Server), never 409 user-exists for a user that is only Invited.
func TestInvite_ConcurrentInvitationsOfOneNewAddress_SecondBecomesAReinvitation(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	f := h.provisioned()
	ctx := t.Context()
	var (
		first, second Invited
		inserted      = make(chan struct{})
		once          sync.Once
		release       = make(chan struct{})
		errs          = make(chan error, 2)
	)
	go func() {
		errs <- h.svc.store.Write(ctx, sqlstore.TenantScope(f.id), f.id, func(tx *Tx) error {
			var err error
			if first, err = h.svc.invite(ctx, tx, f.id, InviteInput{Email: "twice@example.com"}, "user:a", events.Meta{}); err != nil {
				return err
			}
			once.Do(func() { close(inserted) })
			<-release // hold the new user's row uncommitted
			return nil
		})
	}()
	<-inserted
	go func() {
		errs <- h.svc.store.Write(ctx, sqlstore.TenantScope(f.id), f.id, func(tx *Tx) error {
			var err error
			second, err = h.svc.invite(ctx, tx, f.id, InviteInput{Email: "TWICE@example.com", Roles: []RoleID{f.memberRole}}, "user:b", events.Meta{})
			return err
		})
	}()
	time.Sleep(300 * time.Millisecond) // the second now waits on the first's uncommitted row
	close(release)
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("concurrent invitation: %v", err)
		}
	}
	if second.User.ID != first.User.ID || second.Invitation.ID == first.Invitation.ID || second.Token == "" {
		t.Fatalf("second %+v, first %+v", second, first)
	}
	got := h.must(http.StatusOK, "GET", "/api/users/"+string(first.User.ID), f.admin, nil).JSON(t)
	if got["status"] != "Invited" || !slices.Equal(anyStrings(got["roleIds"]), []string{string(f.memberRole)}) {
		t.Fatalf("user %v", got)
	}
	if r := h.do("POST", "/api/users/invitations/accept", "", acceptBody(first.Token, nil)); r.Code != http.StatusGone || r.ProblemCode(t) != "invitation-revoked" {
		t.Fatalf("the first token after the re-invitation: %d %s", r.Code, r.Body)
	}
	h.accept(second.Token, nil)
}

// The same through the API: concurrent invitations of one new address all answer 201 for one
// user, of whose invitations exactly one is left pending.
func TestInvite_ConcurrentRequestsForOneNewAddress_All201OneUserOnePending(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	f := h.provisioned()
	const n = 8
	type answer struct {
		code int
		body []byte
	}
	answers := make(chan answer, n)
	start := make(chan struct{})
	for range n {
		go func() {
			<-start
			r := h.do("POST", "/api/users/invitations", f.admin, map[string]any{"email": "crowd@example.com"})
			answers <- answer{r.Code, r.Body}
		}()
	}
	close(start)
	users := map[string]bool{}
	for range n {
		a := <-answers
		if a.code != http.StatusCreated {
			t.Fatalf("concurrent invitation: %d %s", a.code, a.body)
		}
		var inv invitationJSON
		_ = json.Unmarshal(a.body, &inv)
		users[inv.UserID] = true
	}
	if len(users) != 1 {
		t.Fatalf("%d users for one address", len(users))
	}
	var pending int
	if err := h.rt.InReadTx(t.Context(), sqlstore.TenantScope(f.id), func(tx *sqlstore.Tx) error {
		return tx.QueryRowContext(t.Context(), `SELECT count(*) FROM invitations i JOIN users u USING (tenant_id, user_id)
			WHERE u.email_key = 'crowd@example.com' AND i.accepted_at IS NULL AND i.revoked_at IS NULL`).Scan(&pending)
	}); err != nil || pending != 1 {
		t.Fatalf("pending invitations %d %v", pending, err)
	}
}

// GET /roles reads the page's permissions in the list's one statement, not one per role.
func TestListRoles_OneStatementForThePageWhateverItsSize(t *testing.T) {
	db, log := openTraced(t)
	h := newHarness(t, harnessOpts{db: db})
	f := h.provisioned()
	for i := range 6 {
		h.createRole(f, fmt.Sprintf("page-role-%d", i), "user.read", "audit.read")
	}
	log.reset()
	r := h.must(http.StatusOK, "GET", "/api/roles?limit=200", f.admin, nil)
	if n := log.count("role_permissions"); n != 1 {
		t.Fatalf("%d statements read role_permissions for one page of 8 roles, want 1", n)
	}
	var page struct{ Value []roleJSON }
	_ = json.Unmarshal(r.Body, &page)
	if len(page.Value) != 8 {
		t.Fatalf("page %s", r.Body)
	}
	for _, ro := range page.Value {
		want := "audit.read,user.read"
		switch ro.Code {
		case string(RoleMember):
			want = "role.read,tenant.read,user.read"
		case string(RoleTenantAdmin):
			want = "audit.read,audit.write,config.manage,config.read,notification.manage,notification.read,notification.send,report.manage,report.read,role.assign,role.manage,role.read,tenant.manage,tenant.read,user.invite,user.manage,user.read"
		}
		if got := strings.Join(ro.Permissions, ","); got != want {
			t.Errorf("role %s: permissions %s, want %s", ro.Code, got, want)
		}
	}
	// A role without permissions lists an empty set, not null.
	h.createRole(f, "bare-role")
	r = h.must(http.StatusOK, "GET", "/api/roles?limit=200", f.admin, nil)
	if !strings.Contains(string(r.Body), `"code":"bare-role","name":"Role bare-role","isSystem":false,"permissions":[]`) {
		t.Fatalf("a role without permissions: %s", r.Body)
	}
}

// The invitation token travels in the body of POST /api/users/invitations/accept; the path form
// still works (deprecated). No 4xx answer of either form holds the token.
func TestAccept_TokenInTheBody_ActivatesAndNo4xxEchoesTheToken(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	f := h.provisioned()
	inv := h.invite(f, "body@example.com", f.memberRole)
	noToken := func(name string, r apitest.Response, token string) {
		t.Helper()
		if r.Code/100 != 4 {
			t.Errorf("%s: %d %s, want a 4xx", name, r.Code, r.Body)
		}
		if strings.Contains(string(r.Body), token) || strings.Contains(fmt.Sprint(r.Header), token) {
			t.Errorf("%s: the answer echoes the token: %d %s %v", name, r.Code, r.Body, r.Header)
		}
	}
	path := "/api/users/invitations/" + inv.Token + "/accept"
	for name, req := range map[string]struct {
		path string
		body any
	}{
		"body, short password":   {"/api/users/invitations/accept", map[string]any{"token": inv.Token, "password": "short"}},
		"body, unknown member":   {"/api/users/invitations/accept", map[string]any{"token": inv.Token, "extra": 1}},
		"body, control char":     {"/api/users/invitations/accept", map[string]any{"token": inv.Token + "\u0001"}},
		"body, wrong type":       {"/api/users/invitations/accept", map[string]any{"token": inv.Token, "password": 12}},
		"body, no token":         {"/api/users/invitations/accept", map[string]any{"password": "a long enough passphrase"}},
		"body, bad display name": {"/api/users/invitations/accept", map[string]any{"token": inv.Token, "displayName": " x "}},
		"path, short password":   {path, map[string]any{"password": "short"}},
		"path, unknown member":   {path, map[string]any{"extra": 1}},
		"path, not JSON":         {path, "{"},
	} {
		noToken(name, h.do("POST", req.path, "", req.body), inv.Token)
	}
	r := h.accept(inv.Token, map[string]any{"password": "a long enough passphrase", "displayName": "Body"})
	if m := r.JSON(t); m["status"] != "Active" || m["displayName"] != "Body" || m["id"] != inv.UserID {
		t.Fatalf("accepted: %s", r.Body)
	}
	// Used: 410 on both forms, without the token.
	for _, req := range []struct {
		path string
		body any
	}{{"/api/users/invitations/accept", acceptBody(inv.Token, nil)}, {path, nil}} {
		r := h.do("POST", req.path, "", req.body)
		if r.Code != http.StatusGone || r.ProblemCode(t) != "invitation-accepted" {
			t.Errorf("%s again: %d %s", req.path, r.Code, r.Body)
		}
		noToken(req.path+" again", r, inv.Token)
	}
	// A token that matches nothing: 404, without it, on both forms.
	forged := oneCharOff(inv.Token, 60)
	for _, req := range []struct {
		path string
		body any
	}{{"/api/users/invitations/accept", acceptBody(forged, nil)}, {"/api/users/invitations/" + forged + "/accept", nil}} {
		r := h.do("POST", req.path, "", req.body)
		if r.Code != http.StatusNotFound || r.ProblemCode(t) != "invitation-not-found" {
			t.Errorf("forged: %d %s", r.Code, r.Body)
		}
		noToken("forged "+req.path, r, forged)
	}
	// The deprecated path form still accepts.
	old := h.invite(f, "path@example.com")
	if r := h.must(http.StatusOK, "POST", "/api/users/invitations/"+old.Token+"/accept", "", map[string]any{"password": "a long enough passphrase"}); r.JSON(t)["status"] != "Active" {
		t.Fatalf("path form: %s", r.Body)
	}
	// The route is public: a bearer token is not needed, and the body route is not the
	// authenticated DELETE /users/invitations/{id}.
	if r := h.do("DELETE", "/api/users/invitations/accept", f.admin, nil); r.Code != http.StatusNotFound || r.ProblemCode(t) != "invitation-not-found" {
		t.Fatalf("DELETE /users/invitations/accept: %d %s", r.Code, r.Body)
	}
}
