package identity

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"spine/shared/contracts"
	"spine/shared/events"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
	"spine/shared/testenv"
)

// outboxTypes returns the types of the tenant's events in identity's outbox, in order.
func outboxTypes(t *testing.T, h *harness, tenant tenancy.TenantID) []string {
	t.Helper()
	var out []string
	if err := h.rt.InReadTx(context.Background(), sqlstore.TenantScope(tenant), func(tx *sqlstore.Tx) error {
		var err error
		out, err = testenv.QueryStrings(context.Background(), tx, `SELECT event_type FROM outbox WHERE tenant_id = $1 ORDER BY seq`, tenant.String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestConsumer_TenantProvisioned_SeedsRolesAndInvitesTheOwnerOnce(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	f := h.provisioned()
	r := h.must(http.StatusOK, "GET", "/api/users/"+string(f.ownerUserID), f.admin, nil).JSON(t)
	if r["status"] != "Invited" || r["email"] != f.ownerEmail || !slices.Equal(anyStrings(r["roleIds"]), []string{string(f.adminRole)}) {
		t.Fatalf("owner %v", r)
	}
	if got := outboxTypes(t, h, f.id); !slices.Equal(got, []string{contracts.UserInvited, contracts.RoleAssigned}) {
		t.Fatalf("outbox %v", got)
	}
	// Another delivery of another TenantProvisioned (say, a replay) seeds nothing twice.
	if d := h.deliver(f.id, contracts.TenantProvisioned, contracts.TenantProvisionedData{TenantID: f.id.String(), OwnerEmail: f.ownerEmail}); d.err != nil {
		t.Fatal(d.err)
	}
	roles := h.must(http.StatusOK, "GET", "/api/roles", f.admin, nil).JSON(t)["value"].([]any)
	users := h.must(http.StatusOK, "GET", "/api/users", f.admin, nil).JSON(t)["value"].([]any)
	if len(roles) != 2 || len(users) != 1 || len(outboxTypes(t, h, f.id)) != 2 {
		t.Fatalf("seeded twice: %d roles, %d users", len(roles), len(users))
	}
	// The same event delivered again is a duplicate for the inbox: no effect at all.
	ev, _ := events.New("tenants", contracts.TenantProvisioned, f.id.String(), f.id.String(),
		contracts.TenantProvisionedData{TenantID: f.id.String(), OwnerEmail: "someone-else@example.com"}, events.Meta{})
	for i := 0; i < 2; i++ {
		if d := h.deliverEvent(ev); d.err != nil {
			t.Fatal(d.err)
		}
	}
	if users := h.must(http.StatusOK, "GET", "/api/users", f.admin, nil).JSON(t)["value"].([]any); len(users) != 2 {
		t.Fatalf("one new owner expected from the new event, got %d users", len(users))
	}
	// The operator's path to the owner's token: re-invite the address as platform admin.
	ops := h.tokens.MintAs(t, "ops", "", true, ScopeUserInvite)
	rr := h.must(http.StatusCreated, "POST", "/api/users/invitations?tenantId="+f.id.String(), ops, map[string]any{"email": f.ownerEmail})
	var inv invitationJSON
	_ = json.Unmarshal(rr.Body, &inv)
	if inv.UserID != string(f.ownerUserID) || !slices.Equal(inv.RoleIDs, []string{string(f.adminRole)}) {
		t.Fatalf("re-invitation %s", rr.Body)
	}
	h.accept(inv.Token, nil)
	if !h.check(f, f.ownerUserID, "role.manage") || !h.check(f, f.ownerUserID, "audit.read") {
		t.Fatal("the owner, as tenant-admin, lacks a catalog permission")
	}
}

func TestConsumer_TenantProvisioned_FenceRule(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	// Suspended by the time the event arrives: seeded all the same (provisioning's consequence).
	sus := tenancy.NewTenantID()
	h.dir.set(sus, tenancy.StatusSuspended)
	if d := h.deliver(sus, contracts.TenantProvisioned, contracts.TenantProvisionedData{TenantID: sus.String(), OwnerEmail: "o@sus.example"}); d.err != nil {
		t.Fatal(d.err)
	}
	if got := outboxTypes(t, h, sus); !slices.Equal(got, []string{contracts.UserInvited, contracts.RoleAssigned}) {
		t.Fatalf("suspended tenant: %v", got)
	}
	// Decommissioned by then: acknowledged, nothing created.
	dec := tenancy.NewTenantID()
	h.dir.set(dec, tenancy.StatusDecommissioned)
	d := h.deliver(dec, contracts.TenantProvisioned, contracts.TenantProvisionedData{TenantID: dec.String(), OwnerEmail: "o@dec.example"})
	if d.err != nil || len(outboxTypes(t, h, dec)) != 0 {
		t.Fatalf("decommissioned tenant: %v, %v", d.err, outboxTypes(t, h, dec))
	}
	// Unknown to the directory: the delivery fails (and is retried, then dead-lettered).
	if d := h.deliver(tenancy.NewTenantID(), contracts.TenantProvisioned, contracts.TenantProvisionedData{}); d.err == nil {
		t.Fatal("an unknown tenant's event was applied")
	}
	// Another type on the subscription is acknowledged without effect.
	other := tenancy.NewTenantID()
	if d := h.deliver(other, contracts.TenantSuspended, contracts.TenantStatusChangedData{TenantID: other.String()}); d.err != nil || len(d.res.Logs) == 0 {
		t.Fatalf("TenantSuspended: %v", d.err)
	}
}

// TenantDecommissioned disables every user and revokes pending invitations, although the fence
// refuses the tenant's writes from then on (this write is the decommissioning's own consequence);
// the checks answer false at once.
func TestConsumer_TenantDecommissioned_DisablesEveryUser(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	f := h.provisioned()
	u := h.activeUser(f, "pat@example.com", f.memberRole)
	pending := h.invite(f, "quinn@example.com")
	if !h.check(f, u, "user.read") {
		t.Fatal("not allowed before")
	}
	h.dir.set(f.id, tenancy.StatusDecommissioned)
	if d := h.deliver(f.id, contracts.TenantDecommissioned, contracts.TenantStatusChangedData{TenantID: f.id.String(), Status: "Decommissioned"}); d.err != nil {
		t.Fatal(d.err)
	}
	if h.check(f, u, "user.read") {
		t.Fatal("a decommissioned tenant's user is still allowed on the next check")
	}
	users := h.must(http.StatusOK, "GET", "/api/users", f.admin, nil).JSON(t)["value"].([]any)
	for _, x := range users {
		if st := x.(map[string]any)["status"]; st != "Disabled" {
			t.Errorf("user %v is %v", x.(map[string]any)["email"], st)
		}
	}
	if r := h.do("POST", "/api/users/invitations/accept", "", acceptBody(pending.Token, nil)); r.Code != http.StatusGone {
		t.Fatalf("pending invitation after decommissioning: %d %s", r.Code, r.Body)
	}
	types := outboxTypes(t, h, f.id)
	if n := len(slices.DeleteFunc(slices.Clone(types), func(s string) bool { return s != contracts.UserDisabled })); n != 3 {
		t.Fatalf("UserDisabled events %d (%v), want 3 (owner, pat, quinn)", n, types)
	}
	if r := h.do("POST", "/api/users/invitations", f.admin, map[string]any{"email": "late@example.com"}); r.Code != http.StatusForbidden {
		t.Fatalf("a decommissioned tenant's write: %d", r.Code)
	}
}

// The consumer's effect runs inside the transaction that claims the event, so it must not call
// out: the tenant directory is asked before that transaction opens, and the catalog is read
// through the consumer's own transaction. On a one-connection pool a second transaction (or a
// directory that needed the pool) would wait for ever; here the event is applied.
func TestConsumer_TenantProvisioned_AppliesOnAOneConnectionPool_DirectoryAskedOutsideTheTransaction(t *testing.T) {
	h := newHarness(t, harnessOpts{pool: sqlstore.PoolConfig{MaxOpen: 1}})
	var inUse []int
	h.dir.asked = func() { inUse = append(inUse, h.rt.Stats().InUse) }
	id := tenancy.NewTenantID()
	h.dir.set(id, tenancy.StatusActive)
	ev, err := events.New("tenants", contracts.TenantProvisioned, id.String(), id.String(),
		contracts.TenantProvisionedData{TenantID: id.String(), OwnerEmail: "owner@one-conn.example"}, events.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if d := h.deliverEventCtx(ctx, ev); d.err != nil {
		t.Fatalf("TenantProvisioned on a one-connection pool: %v", d.err)
	}
	if len(inUse) == 0 || slices.Max(inUse) != 0 {
		t.Fatalf("the directory was asked with %v connections in use, want none (no transaction open)", inUse)
	}
	h.dir.asked = nil
	admin := h.tokens.MintAs(t, "admin", id.String(), false, allScopes...)
	roles := h.must(http.StatusOK, "GET", "/api/roles", admin, nil).JSON(t)["value"].([]any)
	for _, x := range roles {
		r := x.(map[string]any)
		if r["code"] == string(RoleTenantAdmin) && len(anyStrings(r["permissions"])) != 17 {
			t.Fatalf("tenant-admin holds %v, want the whole catalog", r["permissions"])
		}
	}
	if len(roles) != 2 {
		t.Fatalf("roles %v", roles)
	}
}

// Decommissioning disables the tenant's users with one statement, whatever their number.
func TestConsumer_TenantDecommissioned_OneUpdateOfUsersWhateverTheirNumber(t *testing.T) {
	db, log := openTraced(t)
	h := newHarness(t, harnessOpts{db: db})
	f := h.provisioned()
	var ids []UserID
	for i := range 5 {
		ids = append(ids, h.activeUser(f, fmt.Sprintf("dec-%d@example.com", i), f.memberRole))
	}
	for _, u := range ids {
		if !h.check(f, u, "user.read") {
			t.Fatal("not allowed before")
		}
	}
	h.dir.set(f.id, tenancy.StatusDecommissioned)
	log.reset()
	if d := h.deliver(f.id, contracts.TenantDecommissioned, contracts.TenantStatusChangedData{TenantID: f.id.String(), Status: "Decommissioned"}); d.err != nil {
		t.Fatal(d.err)
	}
	if n := log.count("UPDATE users"); n != 1 {
		t.Fatalf("%d UPDATE statements of users for 6 users, want 1", n)
	}
	for _, u := range append(ids, f.ownerUserID) {
		if got := h.must(http.StatusOK, "GET", "/api/users/"+string(u), f.admin, nil); got.JSON(t)["status"] != "Disabled" || got.Header.Get("ETag") == `"1"` && u != f.ownerUserID {
			t.Errorf("user %s after decommissioning: %s %v", u, got.Body, got.Header)
		}
		if h.check(f, u, "user.read") {
			t.Errorf("user %s still allowed", u)
		}
	}
	types := outboxTypes(t, h, f.id)
	if n := len(slices.DeleteFunc(slices.Clone(types), func(s string) bool { return s != contracts.UserDisabled })); n != 6 {
		t.Fatalf("UserDisabled events %d (%v), want 6", n, types)
	}
}

// An invitation with roles assigns them: each new assignment emits RoleAssigned in the
// invitation's transaction, after UserInvited, so a projection of assignments sees every one it
// will later see revoked.
func TestInvite_WithRoles_EmitsRoleAssignedForEachNewAssignment(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	f := h.provisioned()
	// The owner's invitation by the consumer assigned tenant-admin.
	want := []string{contracts.UserInvited, contracts.RoleAssigned}
	if got := outboxTypes(t, h, f.id); !slices.Equal(got, want) {
		t.Fatalf("after provisioning: %v, want %v", got, want)
	}
	role := h.createRole(f, "helper", "user.read")
	inv := h.invite(f, "roles@example.com", f.memberRole, role, f.memberRole)
	// Re-invited with a role it holds and a new one: RoleAssigned for the new one only.
	h.invite(f, "roles@example.com", f.memberRole, f.adminRole)
	want = append(want, contracts.UserInvited, contracts.RoleAssigned, contracts.RoleAssigned,
		contracts.UserInvited, contracts.RoleAssigned)
	if got := outboxTypes(t, h, f.id); !slices.Equal(got, want) {
		t.Fatalf("outbox %v, want %v", got, want)
	}
	var datas []string
	if err := h.rt.InReadTx(t.Context(), sqlstore.TenantScope(f.id), func(tx *sqlstore.Tx) error {
		var err error
		datas, err = testenv.QueryStrings(t.Context(), tx, `SELECT envelope::text FROM outbox
			WHERE tenant_id = $1 AND event_type = 'RoleAssigned' AND subject = $2 ORDER BY seq`, f.id.String(), inv.UserID)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, raw := range datas {
		var ev struct {
			Subject string                       `json:"subject"`
			Data    contracts.RoleAssignmentData `json:"data"`
		}
		if err := json.Unmarshal([]byte(raw), &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Subject != inv.UserID || ev.Data.UserID != inv.UserID || ev.Data.TenantID != f.id.String() {
			t.Errorf("RoleAssigned %s", raw)
		}
		got = append(got, ev.Data.RoleID+"/"+ev.Data.RoleCode)
	}
	wantRoles := []string{string(f.memberRole) + "/member", string(role) + "/helper", string(f.adminRole) + "/tenant-admin"}
	if !slices.Equal(got, wantRoles) {
		t.Fatalf("RoleAssigned for %v, want %v", got, wantRoles)
	}
}

// A platform-level event (no tenantid) on identity's subscription is acknowledged without effect:
// identity takes no platform events, so the directory is not asked, nothing is claimed or emitted.
func TestConsumer_PlatformEvent_AcknowledgedWithoutEffect(t *testing.T) {
	asked := 0
	h := newHarness(t, harnessOpts{dir: &fakeDir{m: map[tenancy.TenantID]tenancy.Status{}, asked: func() { asked++ }}})
	for _, typ := range []string{contracts.TenantProvisioned, contracts.TenantDecommissioned} {
		ev, err := events.New("tenants", typ, tenancy.NewTenantID().String(), "", contracts.TenantProvisionedData{OwnerEmail: "o@platform.example"}, events.Meta{})
		if err != nil {
			t.Fatal(err)
		}
		d := h.deliverEvent(ev)
		if d.err != nil || d.res == nil || len(d.res.Logs) != 1 || !strings.HasSuffix(d.res.Logs[0], "skipped") {
			t.Fatalf("%s without a tenant: %+v %v, want acknowledged as skipped", typ, d.res, d.err)
		}
	}
	if asked != 0 {
		t.Fatalf("the directory was asked %d times about no tenant", asked)
	}
	var n int
	if err := h.rt.InReadTx(context.Background(), sqlstore.PlatformScope(), func(tx *sqlstore.Tx) error {
		return tx.QueryRowContext(context.Background(), `SELECT (SELECT count(*) FROM inbox WHERE tenant_id = $1) + (SELECT count(*) FROM outbox WHERE tenant_id = $1)`,
			"00000000-0000-0000-0000-000000000000").Scan(&n)
	}); err != nil || n != 0 {
		t.Fatalf("platform rows in identity's inbox and outbox: %d, %v", n, err)
	}
}
