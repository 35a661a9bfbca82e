package identity

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"spine/shared/cache"
	"spine/shared/testenv"
)

// The check is right on the very next request after every change that can alter it: each change
// invalidates the cached sets it affects after its commit, and the cache never stores a set read
// before such an invalidation.
func TestCheck_EveryChangeIsSeenByTheNextCheck(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	f := h.provisioned()
	role := h.createRole(f, "inviter", "user.invite")
	u := h.activeUser(f, "lee@example.com")
	key := permsKey(f.id, u)

	if h.check(f, u, "user.invite") {
		t.Fatal("allowed before any assignment")
	}
	if h.rdb.Exists(t.Context(), key).Val() != 1 {
		t.Fatal("the check's set is not cached")
	}
	assignments := "/api/roles/" + string(role) + "/assignments"
	h.must(http.StatusCreated, "POST", assignments, f.admin, map[string]string{"userId": string(u)})
	if !h.check(f, u, "user.invite") {
		t.Fatal("assign: not allowed on the next check")
	}
	h.must(http.StatusOK, "PUT", "/api/roles/"+string(role)+"/permissions", f.admin, map[string]any{"permissions": []string{"user.read"}})
	if h.check(f, u, "user.invite") || !h.check(f, u, "user.read") {
		t.Fatal("role permissions changed: the next check still answers the old set")
	}
	h.must(http.StatusOK, "POST", "/api/users/"+string(u)+"/disable", f.admin, nil)
	if h.check(f, u, "user.read") {
		t.Fatal("disabled user still allowed")
	}
	h.must(http.StatusOK, "POST", "/api/users/"+string(u)+"/enable", f.admin, nil)
	if !h.check(f, u, "user.read") {
		t.Fatal("enabled user not allowed")
	}
	h.must(http.StatusNoContent, "DELETE", assignments+"/"+string(u), f.admin, nil)
	if h.check(f, u, "user.read") {
		t.Fatal("revoke: still allowed on the next check")
	}
	h.must(http.StatusCreated, "POST", assignments, f.admin, map[string]string{"userId": string(u)})
	if !h.check(f, u, "user.read") {
		t.Fatal("re-assigned: not allowed")
	}
	h.must(http.StatusNoContent, "DELETE", "/api/roles/"+string(role), f.admin, nil)
	if h.check(f, u, "user.read") {
		t.Fatal("role deleted: still allowed")
	}
	// The effective set through the route and the in-process interface agree.
	h.must(http.StatusCreated, "POST", "/api/roles/"+string(f.memberRole)+"/assignments", f.admin, map[string]string{"userId": string(u)})
	set, err := h.api.Permissions().Effective(t.Context(), f.id, string(u))
	if err != nil || len(set) != 3 || set[0] != "role.read" || set[1] != "tenant.read" || set[2] != "user.read" {
		t.Fatalf("effective %v %v", set, err)
	}
	got := anyStrings(h.must(http.StatusOK, "GET", "/api/users/"+string(u)+"/permissions", f.admin, nil).JSON(t)["permissions"])
	if len(got) != 3 {
		t.Fatalf("route %v", got)
	}
	// An invited user (not yet Active) holds nothing, though it has roles.
	inv := h.invite(f, "mo@example.com", f.adminRole)
	if h.check(f, UserID(inv.UserID), "user.read") {
		t.Fatal("an Invited user is allowed")
	}
	h.accept(inv.Token, nil)
	if !h.check(f, UserID(inv.UserID), "user.read") {
		t.Fatal("accepted: not allowed on the next check")
	}
	// Unknown users and permissions are false, not errors; a malformed user id is a 400.
	if h.check(f, "0190c5d6-7a44-7b36-9c1e-1c0c3e2d4a5b", "user.read") || h.check(f, u, "no.such") {
		t.Fatal("unknown user or permission allowed")
	}
	if r := h.do("POST", "/api/authz/check", f.admin, map[string]string{"userId": "x", "permission": "user.read"}); r.Code != http.StatusBadRequest {
		t.Fatalf("malformed user id: %d %s", r.Code, r.Body)
	}
}

// Several server instances share Redis and the database: a change on one is seen by the next
// check on another, whose cache it invalidated.
func TestCheck_SeveralInstancesSharingRedis(t *testing.T) {
	a := newHarness(t, harnessOpts{})
	b := newHarness(t, harnessOpts{tokens: a.tokens, dir: a.dir})
	f := a.provisioned()
	role := a.createRole(f, "reader", "user.read")
	u := a.activeUser(f, "ned@example.com")
	assignments := "/api/roles/" + string(role) + "/assignments"
	for i := 0; i < 3; i++ {
		if b.check(f, u, "user.read") {
			t.Fatal("allowed on b before the assignment")
		}
		a.must(http.StatusCreated, "POST", assignments, f.admin, map[string]string{"userId": string(u)})
		if !b.check(f, u, "user.read") || !a.check(f, u, "user.read") {
			t.Fatal("assigned on a: not allowed on the next check")
		}
		// b warmed the cache; a revokes: b's very next check is denied.
		a.must(http.StatusNoContent, "DELETE", assignments+"/"+string(u), f.admin, nil)
		if b.check(f, u, "user.read") {
			t.Fatal("revoked on a: still allowed on b")
		}
		// And the other way round.
		b.must(http.StatusCreated, "POST", assignments, f.admin, map[string]string{"userId": string(u)})
		if !a.check(f, u, "user.read") {
			t.Fatal("assigned on b: not allowed on a")
		}
		b.must(http.StatusNoContent, "DELETE", assignments+"/"+string(u), f.admin, nil)
	}
}

// With Redis stopped every check reads the database: slower, never wrong, never failing. When it
// comes back the cache fills again, and no value cached before the outage is served.
func TestCheck_RedisStopped_ChecksStayRight(t *testing.T) {
	r := testenv.StartRedis(t)
	h := newHarness(t, harnessOpts{redisURL: r.URL()})
	f := h.provisioned()
	role := h.createRole(f, "reader", "user.read")
	u := h.activeUser(f, "oli@example.com", role)
	if !h.check(f, u, "user.read") {
		t.Fatal("not allowed with Redis up")
	}
	r.Stop()
	if !h.check(f, u, "user.read") {
		t.Fatal("not allowed with Redis down")
	}
	h.must(http.StatusNoContent, "DELETE", "/api/roles/"+string(role)+"/assignments/"+string(u), f.admin, nil)
	for i := 0; i < 3; i++ {
		if h.check(f, u, "user.read") {
			t.Fatal("revoked while Redis is down: still allowed")
		}
	}
	// Redis comes back with nothing (no persistence), and the pending invalidation is retried.
	r.Start()
	h.must(http.StatusCreated, "POST", "/api/roles/"+string(role)+"/assignments", f.admin, map[string]string{"userId": string(u)})
	for i := 0; i < 5; i++ {
		if !h.check(f, u, "user.read") {
			t.Fatal("assigned after Redis came back: not allowed")
		}
	}
}

// Allowed does not depend on the order a database returns the set in: a set ordered by a
// collation that ignores '.' and '-' (PostgreSQL's en_US.utf8, as Azure's servers default to),
// or cached before the set was sorted in Go, finds every member.
func TestAllowed_FindsEveryPermissionOfASetInAnotherCollationsOrder(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	f := h.provisioned()
	u := h.activeUser(f, "collation@example.com")
	// en_US.utf8 order (punctuation ignored: "usersread" < "userwrite"); byte order has
	// "user.write" < "users.read".
	enUS := []string{"audit.read", "user.invite", "user.read", "users.read", "user.write"}
	if _, err := cache.GetOrLoadConsistent(t.Context(), h.cache, permsKey(f.id, u), time.Minute,
		func(context.Context) ([]string, error) { return slices.Clone(enUS), nil }); err != nil {
		t.Fatal(err)
	}
	for _, p := range enUS {
		if ok, err := h.svc.Allowed(t.Context(), f.id, string(u), p); err != nil || !ok {
			t.Errorf("Allowed(%s) = %v, %v on the set %v", p, ok, err, enUS)
		}
	}
	if ok, _ := h.svc.Allowed(t.Context(), f.id, string(u), "user.manage"); ok {
		t.Error("a permission outside the set is allowed")
	}
	set, err := h.svc.Effective(t.Context(), f.id, string(u))
	if err != nil || !slices.IsSorted(set) || len(set) != len(enUS) {
		t.Errorf("Effective %v %v, want the set in byte order", set, err)
	}
}
