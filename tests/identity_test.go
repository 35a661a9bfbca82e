package tests

import (
	"net/http"
	"slices"
	"sort"
	"testing"
	"time"

	"spine/shared/auth"
)

// mint signs a token with the server's dev key: sub, tenant ("" for a platform admin) and scopes.
func (s *server) mint(sub, tenant string, admin bool, scopes ...string) string {
	s.t.Helper()
	tok, err := s.signer.Mint(auth.TokenClaims{Issuer: s.issuer, Audience: audience, Subject: sub, TenantID: tenant,
		Scopes: scopes, PlatformAdmin: admin}, time.Hour)
	if err != nil {
		s.t.Fatal(err)
	}
	return tok
}

// eventually polls f until it reports true (bounded), failing the test with what otherwise.
func eventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// Identity through the binary as the host drives it: registering and provisioning a tenant
// reaches IdentityOnTenantsEvent (outbox → drainer → transport → the Service Bus function), which
// seeds the system roles and invites the owner; an operator re-invites the owner to get a token
// (the consumer's invitation has none anyone holds), the owner accepts on the public route (token in the body) and
// is allowed; decommissioning disables the owner. Every identity event reaches the audit trail
// exactly once, through AuditOnIdentityEvent, which exists only because identity is in the module
// list.
func TestIdentity_ProvisionedTenantGetsRolesAndOwner_AcceptThenAllowed(t *testing.T) {
	s := startServer(t, nil)
	sl := slug("idn")
	tenant := s.register(sl, "standard")
	owner := "owner@" + sl + ".example"
	if r := s.call("POST", "/api/tenants/"+tenant+"/provision", s.admin, nil, nil); r.Code != http.StatusOK {
		t.Fatalf("provision: %d %s", r.Code, r.Body)
	}
	ops := s.mint("ops", "", true, "user.read", "user.invite", "role.read")
	q := "?tenantId=" + tenant

	// The consumer seeds the roles and invites the owner.
	var ownerID string
	eventually(t, "the owner's invitation", func() bool {
		r := s.call("GET", "/api/users"+q+"&email="+owner, ops, nil, nil)
		if r.Code != http.StatusOK {
			t.Fatalf("users: %d %s", r.Code, r.Body)
		}
		v := r.JSON(t)["value"].([]any)
		if len(v) == 1 {
			ownerID = v[0].(map[string]any)["id"].(string)
			return v[0].(map[string]any)["status"] == "Invited"
		}
		return false
	})
	r := s.call("GET", "/api/roles"+q, ops, nil, nil)
	var codes []string
	for _, v := range r.JSON(t)["value"].([]any) {
		codes = append(codes, v.(map[string]any)["code"].(string))
	}
	sort.Strings(codes)
	if !slices.Equal(codes, []string{"member", "tenant-admin"}) {
		t.Fatalf("roles %v", codes)
	}

	// The operator re-invites the owner and hands over the token; the owner accepts.
	r = s.call("POST", "/api/users/invitations"+q, ops, map[string]any{"email": owner}, map[string]string{"Idempotency-Key": "owner-" + sl})
	if r.Code != http.StatusCreated || r.JSON(t)["userId"] != ownerID {
		t.Fatalf("re-invite: %d %s", r.Code, r.Body)
	}
	token := r.JSON(t)["token"].(string)
	r = s.call("POST", "/api/users/invitations/accept", "", map[string]string{"token": token, "password": "a long enough passphrase"}, nil)
	if r.Code != http.StatusOK || r.JSON(t)["status"] != "Active" {
		t.Fatalf("accept: %d %s", r.Code, r.Body)
	}
	// The deprecated form, token in the path, still answers (here: used already).
	if r := s.call("POST", "/api/users/invitations/"+token+"/accept", "", nil, nil); r.Code != http.StatusGone {
		t.Fatalf("second accept: %d %s", r.Code, r.Body)
	}

	// Another service asks whether the owner may manage roles: yes, as tenant-admin.
	svc := s.mint("client:reporting", tenant, false, "user.read")
	check := func(perm string) bool {
		r := s.call("POST", "/api/authz/check", svc, map[string]string{"userId": ownerID, "permission": perm}, nil)
		if r.Code != http.StatusOK {
			t.Fatalf("check: %d %s", r.Code, r.Body)
		}
		return r.JSON(t)["allowed"] == true
	}
	if !check("role.manage") || !check("audit.read") || check("no.such") {
		t.Fatal("the accepted owner's check is wrong")
	}
	// The owner's own token (sub = the identity user id) works on the API its scopes allow.
	mine := s.mint(ownerID, tenant, false, "user.read")
	if r := s.call("GET", "/api/users/"+ownerID+"/permissions", mine, nil, nil); r.Code != http.StatusOK || len(r.JSON(t)["permissions"].([]any)) != 17 {
		t.Fatalf("own permissions: %d %s", r.Code, r.Body)
	}

	// Decommissioning (after a suspension, which the check survives) disables every user: the
	// check says no once the event is consumed.
	for _, action := range []string{"suspend", "decommission"} {
		if r := s.call("POST", "/api/tenants/"+tenant+"/"+action, s.admin, nil, nil); r.Code != http.StatusOK {
			t.Fatalf("%s: %d %s", action, r.Code, r.Body)
		}
	}
	eventually(t, "the owner disabled", func() bool { return !check("role.manage") })

	// The audit trail: tenants', identity's and billing's events, each exactly once (billing: the
	// registration's trial subscription emits nothing; the decommissioning cancels it).
	want := map[string]int{"TenantRegistered": 1, "TenantProvisioned": 1, "TenantSuspended": 1, "TenantDecommissioned": 1,
		"UserInvited": 2, "RoleAssigned": 1, "UserActivated": 1, "UserDisabled": 1, "SubscriptionCancelled": 1}
	total := 0
	for _, n := range want {
		total += n
	}
	s.waitEntries(tenant, total)
	time.Sleep(300 * time.Millisecond) // a duplicate delivery would land by now
	got := map[string]int{}
	seen := map[string]bool{}
	for _, e := range s.auditEntries(tenant) {
		got[e["action"].(string)]++
		src, _ := e["sourceEventId"].(string)
		if seen[src] {
			t.Errorf("event %s recorded twice", src)
		}
		seen[src] = true
	}
	for action, n := range want {
		if got[action] != n {
			t.Errorf("audit: %s recorded %d times, want %d (all: %v)", action, got[action], n, got)
		}
	}
	if len(got) != len(want) {
		t.Errorf("audit actions %v, want %v", got, want)
	}
}
