package identity

import (
	"net/http"
	"strings"
	"sync"
	"testing"
)

// Concurrent first invitations of one new address: the user is created once and every request is
// an invitation of it (201), as if they had come one after the other. None is 409 user-exists,
// which is only for a user that is Active or Disabled.
func TestInvite_ConcurrentFirstInvitationsOfOneAddress_All201OneUser(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	f := h.provisioned()
	for round := range 3 {
		email := "same" + string(rune('a'+round)) + "@example.com"
		const n = 6
		var wg sync.WaitGroup
		codes := make([]int, n)
		users := make([]string, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := h.do("POST", "/api/users/invitations", f.admin, map[string]any{"email": email})
				codes[i] = r.Code
				if r.Code == http.StatusCreated {
					users[i], _ = r.JSON(t)["userId"].(string)
				} else {
					t.Errorf("invitation %d of %s: %d %s", i, email, r.Code, r.Body)
				}
			}()
		}
		wg.Wait()
		ids := map[string]bool{}
		for i := range n {
			if codes[i] == http.StatusCreated {
				ids[users[i]] = true
			}
		}
		if len(ids) > 1 {
			t.Fatalf("two users for %s: %v", email, users)
		}
		list := h.must(http.StatusOK, "GET", "/api/users?email="+email, f.admin, nil).JSON(t)
		if v, _ := list["value"].([]any); len(v) != 1 {
			t.Fatalf("users of %s: %v", email, list)
		}
	}
}

// PATCH is a JSON merge patch: displayName null removes the display name (a user may have
// none); a role's name null is 400 (every role has one); neither is read as "leave it".
func TestPatch_NullMembers_DisplayNameRemoved_RoleName400(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	f := h.provisioned()
	inv := h.invite(f, "named@example.com")
	h.must(http.StatusOK, "PATCH", "/api/users/"+inv.UserID, f.admin, map[string]any{"displayName": "Named"})
	r := h.must(http.StatusOK, "PATCH", "/api/users/"+inv.UserID, f.admin, map[string]any{"displayName": nil})
	if m := r.JSON(t); m["displayName"] != "" || r.Header.Get("ETag") != `"3"` {
		t.Fatalf("displayName null: %s %v", r.Body, r.Header)
	}
	if r := h.do("PATCH", "/api/users/"+inv.UserID, f.admin, map[string]any{"displayName": 5}); r.Code != http.StatusBadRequest ||
		r.ProblemCode(t) != "invalid-json" || !strings.Contains(string(r.Body), "must be a string") {
		t.Fatalf("displayName 5: %d %s", r.Code, r.Body)
	}
	role := h.createRole(f, "named-role")
	r = h.do("PATCH", "/api/roles/"+string(role), f.admin, map[string]any{"name": nil})
	if r.Code != http.StatusBadRequest || r.ProblemCode(t) != "invalid-input" || !strings.Contains(string(r.Body), `"field":"name"`) {
		t.Fatalf("name null: %d %s", r.Code, r.Body)
	}
	if got := h.must(http.StatusOK, "GET", "/api/roles/"+string(role), f.admin, nil).JSON(t); got["name"] == "" || got["name"] == nil {
		t.Fatalf("the role lost its name: %v", got)
	}
}

// Concurrent acceptances of one token with a password: one wins, the rest are 410, and the
// process never runs more argon2id computations (64 MiB each) at once than it has slots for,
// however many acceptances arrive together.
func TestAccept_ConcurrentAcceptancesWithPassword_ArgonBoundedOneWins(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	f := h.provisioned()
	inv := h.invite(f, "burst@example.com")
	const n = 12
	codes := make(chan int, n)
	for range n {
		go func() {
			codes <- h.do("POST", "/api/users/invitations/"+inv.Token+"/accept", "",
				map[string]string{"password": "correct horse battery staple"}).Code
		}()
	}
	won, gone := 0, 0
	for range n {
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
	if peak, limit := argonPeak.Load(), int64(cap(argonSlots)); peak < 1 || peak > limit {
		t.Fatalf("%d argon2id computations ran at once; the bound is %d", peak, limit)
	}
}

// Allowed binary-searches the effective set, so the set must be in Go's (bytewise) order whatever
// order the database returns: a database whose collation is not bytewise (en_US on Azure
// Database for PostgreSQL, SQL Server's Latin1_General, which skip '-' and '.') sorts codes
// differently. Here the store's statement returns the set in reverse.
func TestAllowed_FindsEveryHeldPermissionWhateverOrderTheDatabaseReturns(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	f := h.provisioned()
	user := h.activeUser(f, "ordered@example.com", f.adminRole)
	st := NewStore(h.rt)
	q := *st.q
	if !strings.Contains(q.effective, "ORDER BY rp.permission_code") {
		t.Fatalf("the effective statement changed: %s", q.effective)
	}
	q.effective = strings.Replace(q.effective, "ORDER BY rp.permission_code", "ORDER BY rp.permission_code DESC", 1)
	st.q = &q
	svc, err := NewService(st, nil, h.dir, ServiceConfig{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	catalog, err := svc.Catalog(t.Context())
	if err != nil || len(catalog) == 0 {
		t.Fatalf("catalog: %v %v", catalog, err)
	}
	for _, p := range catalog {
		if ok, err := svc.Allowed(t.Context(), f.id, string(user), string(p.Code)); err != nil || !ok {
			t.Errorf("tenant-admin does not hold %s (%v)", p.Code, err)
		}
	}
}
