package identity

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"spine/shared/sqlstore"
	"spine/shared/tenancy"
	"spine/shared/testenv"
)

// Tenant A's token on every identity route with tenant B's ids: 404 (B's rows do not exist for A),
// and naming B with ?tenantId=: 403 tenant-mismatch. B's data is unchanged afterwards.
func TestIsolation_TenantTokenOnEveryRouteWithAnotherTenantsIDs(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	a, b := h.provisioned(), h.provisioned()
	bUser := h.activeUser(b, "b-user@example.com", b.memberRole)
	bRole := h.createRole(b, "b-role", "user.read")
	bInv := h.invite(b, "b-invited@example.com")

	routes := []struct {
		method, path string
		body         any
		notFound     string
	}{
		{"GET", "/api/users/" + string(bUser), nil, "user-not-found"},
		{"PATCH", "/api/users/" + string(bUser), map[string]any{"displayName": "x"}, "user-not-found"},
		{"POST", "/api/users/" + string(bUser) + "/disable", nil, "user-not-found"},
		{"POST", "/api/users/" + string(bUser) + "/enable", nil, "user-not-found"},
		{"GET", "/api/users/" + string(bUser) + "/permissions", nil, "user-not-found"},
		{"DELETE", "/api/users/invitations/" + bInv.ID, nil, "invitation-not-found"},
		{"GET", "/api/roles/" + string(bRole), nil, "role-not-found"},
		{"PATCH", "/api/roles/" + string(bRole), map[string]any{"name": "x"}, "role-not-found"},
		{"DELETE", "/api/roles/" + string(bRole), nil, "role-not-found"},
		{"PUT", "/api/roles/" + string(bRole) + "/permissions", map[string]any{"permissions": []string{}}, "role-not-found"},
		{"POST", "/api/roles/" + string(bRole) + "/assignments", map[string]any{"userId": string(bUser)}, "role-not-found"},
		{"DELETE", "/api/roles/" + string(bRole) + "/assignments/" + string(bUser), nil, "role-not-found"},
		// A's role, B's user: the user is not A's.
		{"POST", "/api/roles/" + string(a.memberRole) + "/assignments", map[string]any{"userId": string(bUser)}, "user-not-found"},
	}
	for _, rt := range routes {
		r := h.do(rt.method, rt.path, a.admin, rt.body)
		if r.Code != http.StatusNotFound || r.ProblemCode(t) != rt.notFound {
			t.Errorf("A's token, %s %s: %d %s, want 404 %s", rt.method, rt.path, r.Code, r.Body, rt.notFound)
		}
	}
	// Every route, naming B explicitly.
	all := append(routes, []struct {
		method, path string
		body         any
		notFound     string
	}{
		{"GET", "/api/users", nil, ""}, {"GET", "/api/roles", nil, ""},
		{"POST", "/api/users/invitations", map[string]any{"email": "x@example.com"}, ""},
		{"POST", "/api/roles", map[string]any{"code": "xx", "name": "x"}, ""},
		{"POST", "/api/authz/check", map[string]any{"userId": string(bUser), "permission": "user.read"}, ""},
	}...)
	for _, rt := range all {
		sep := "?"
		if strings.Contains(rt.path, "?") {
			sep = "&"
		}
		r := h.do(rt.method, rt.path+sep+"tenantId="+b.id.String(), a.admin, rt.body)
		if r.Code != http.StatusForbidden || r.ProblemCode(t) != "tenant-mismatch" {
			t.Errorf("A's token naming B, %s %s: %d %s", rt.method, rt.path, r.Code, r.Body)
		}
	}
	// Lists and the check, in A's tenant, never show B.
	if r := h.must(http.StatusOK, "GET", "/api/users?email=b-user@example.com", a.admin, nil); len(r.JSON(t)["value"].([]any)) != 0 {
		t.Errorf("A lists B's user: %s", r.Body)
	}
	if h.check(a, bUser, "user.read") {
		t.Error("A's check answers for B's user")
	}
	// B is untouched.
	if r := h.must(http.StatusOK, "GET", "/api/users/"+string(bUser), b.admin, nil); r.JSON(t)["status"] != "Active" || r.Header.Get("ETag") != `"2"` {
		t.Errorf("B's user changed: %s", r.Body)
	}
	if !h.check(b, bUser, "user.read") {
		t.Error("B's user lost its permission")
	}
	h.must(http.StatusOK, "GET", "/api/roles/"+string(bRole), b.admin, nil)
	// A's invitation token works for A's tenant only: the tenant is in the token, and B's
	// invitation id inside an A token does not match.
	tok, _ := parseInvitationToken(bInv.Token)
	spliced, _ := newInvitationToken(a.id, tok.invitation)
	if r := h.do("POST", "/api/users/invitations/accept", "", acceptBody(spliced, nil)); r.Code != http.StatusNotFound {
		t.Errorf("B's invitation through A's tenant: %d %s", r.Code, r.Body)
	}
}

// Row-level security: the runtime role, in one tenant's scope, sees only that tenant's rows even
// with no tenant filter at all, and cannot write another tenant's.
func TestRLS_HidesOtherTenantsRowsFromUnfilteredQueries(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	a, b := h.provisioned(), h.provisioned()
	// Both users accept with a password, so both tenants have user_credentials rows to hide.
	h.activeUserWithPassword(a, "rls-a@example.com", "a long enough passphrase", a.memberRole)
	h.activeUserWithPassword(b, "rls-b@example.com", "a long enough passphrase", b.memberRole)
	ctx := context.Background()
	for _, table := range []string{"users", "user_credentials", "invitations", "roles", "role_permissions", "role_assignments"} {
		var ids []string
		if err := h.rt.InReadTx(ctx, sqlstore.TenantScope(a.id), func(tx *sqlstore.Tx) error {
			var err error
			ids, err = testenv.QueryStrings(ctx, tx, `SELECT DISTINCT tenant_id::text FROM `+table) // no WHERE on purpose
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if len(ids) != 1 || ids[0] != a.id.String() {
			t.Errorf("%s unfiltered in A's scope: %v", table, ids)
		}
	}
	err := h.rt.InTx(ctx, sqlstore.TenantScope(a.id), func(tx *sqlstore.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO roles (tenant_id, role_id, code, name, is_system, version, created_at, updated_at)
			VALUES ($1, gen_random_uuid(), 'sneaky', 'x', false, 1, now(), now())`, b.id.String())
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "row-level security") {
		t.Errorf("inserting a role for B in A's scope: %v", err)
	}
	var n int64
	if err := h.rt.InTx(ctx, sqlstore.TenantScope(a.id), func(tx *sqlstore.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE users SET display_name = 'pwned'`) // every row it can see
		if err == nil {
			n, _ = res.RowsAffected()
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if got := h.must(http.StatusOK, "GET", "/api/users?email=rls-b@example.com", b.admin, nil).JSON(t)["value"].([]any); got[0].(map[string]any)["displayName"] == "pwned" || n != 2 {
		t.Errorf("an unfiltered UPDATE in A's scope reached B (%d rows, B's %v)", n, got)
	}
	// The credentials table is no different: B's row exists (B's scope sees it) and A's scope
	// does not, even naming B.
	for _, tc := range []struct {
		scope tenancy.TenantID
		want  int
	}{{b.id, 1}, {a.id, 0}} {
		var creds int
		if err := h.rt.InReadTx(ctx, sqlstore.TenantScope(tc.scope), func(tx *sqlstore.Tx) error {
			return tx.QueryRowContext(ctx, `SELECT count(*) FROM user_credentials WHERE tenant_id = $1`, b.id.String()).Scan(&creds)
		}); err != nil || creds != tc.want {
			t.Errorf("B's credentials seen from %s: %d %v, want %d", tc.scope, creds, err, tc.want)
		}
	}
}

// The permission catalog is platform-level: every tenant reads it, and the runtime role can change
// none of it, in any scope (grants: SELECT only; row-level security: a SELECT policy only).
func TestCatalog_ReadOnlyForTheRuntimeRole(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	a := h.provisioned()
	ctx := context.Background()
	for _, sc := range []sqlstore.Scope{sqlstore.TenantScope(a.id), sqlstore.PlatformScope(), {}} {
		var n int
		if err := h.rt.InReadTx(ctx, sc, func(tx *sqlstore.Tx) error {
			return tx.QueryRowContext(ctx, `SELECT count(*) FROM permissions`).Scan(&n)
		}); err != nil || n != 17 {
			t.Errorf("scope %+v: reads %d permissions, %v", sc, n, err)
		}
		for _, q := range []string{
			`INSERT INTO permissions (code, name, category) VALUES ('evil.do', 'Evil', 'evil')`,
			`UPDATE permissions SET name = 'changed' WHERE code = 'user.read'`,
			`DELETE FROM permissions WHERE code = 'user.read'`,
			`TRUNCATE permissions`,
		} {
			err := h.rt.InTx(ctx, sc, func(tx *sqlstore.Tx) error { _, err := tx.ExecContext(ctx, q); return err })
			if err == nil || !strings.Contains(err.Error(), "permission denied") {
				t.Errorf("scope %+v, %q: %v, want permission denied", sc, q, err)
			}
		}
	}
	// Even a stray grant would not open it: row-level security has a SELECT policy and no other.
	owner := testDB.OpenOwner(t, sqlstore.PoolConfig{MaxOpen: 1})
	var policies []string
	var err error
	if policies, err = testenv.QueryStrings(ctx, owner, `SELECT cmd FROM pg_policies WHERE tablename = 'permissions'`); err != nil {
		t.Fatal(err)
	}
	var rls bool
	if err := owner.QueryRow(`SELECT relrowsecurity FROM pg_class WHERE relname = 'permissions'`).Scan(&rls); err != nil {
		t.Fatal(err)
	}
	if !rls || len(policies) != 1 || policies[0] != "SELECT" {
		t.Errorf("permissions: row security %v, policies %v", rls, policies)
	}
}
