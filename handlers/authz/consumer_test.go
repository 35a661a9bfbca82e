package authz

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"strconv"
	"testing"
	"time"

	"spine/shared/contracts"
	"spine/shared/events"
	"spine/shared/functions"
	"spine/shared/ids"
	"spine/shared/retention"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
)

// event is an event of source's topic about tenant.
func (h *harness) event(source, typ string, tenant tenancy.TenantID, data any) events.Event {
	h.t.Helper()
	ev, err := events.New(source, typ, "subject", tenant.String(), data, events.Meta{Actor: "admin:test"})
	if err != nil {
		h.t.Fatal(err)
	}
	return ev
}

// deliver hands the authz consumer one new event of source's topic.
func (h *harness) deliver(source, typ string, tenant tenancy.TenantID, data any) (*functions.Result, error) {
	h.t.Helper()
	return h.deliverEvent(h.event(source, typ, tenant, data))
}

// deliverEvent hands the authz consumer ev, in the host's encoding, and returns the function's
// result.
func (h *harness) deliverEvent(ev events.Event) (*functions.Result, error) {
	h.t.Helper()
	body, _ := json.Marshal(ev)
	d, meta := functions.ServiceBusMessage(body, functions.EncodingString, functions.ServiceBusMetadata{MessageID: ev.ID,
		DeliveryCount: 1, EnqueuedTimeUTC: time.Now(), ApplicationProperties: map[string]any{"tenantId": ev.TenantID}})
	raw, _ := json.Marshal(map[string]any{"Data": map[string]any{functions.ServiceBusBinding: d}, "Metadata": meta})
	var inv functions.Invocation
	if err := json.Unmarshal(raw, &inv); err != nil {
		h.t.Fatal(err)
	}
	inv.FunctionName = "AuthzOnIdentityEvent"
	return h.api.onEvent(context.Background(), &inv)
}

// issue creates a public client of f and a refresh token of subject for it.
func (h *harness) issue(f tenantFixture, subject string) string {
	h.t.Helper()
	c := h.create(f.admin, "", publicBody())
	rt := refreshFixture(Client{ID: ClientID(c.ID), Tenant: f.id.String()}, "", h.clock.now())
	rt.Subject = subject
	v, err := h.store.CreateRefreshToken(context.Background(), rt)
	if err != nil {
		h.t.Fatal(err)
	}
	return v
}

func (h *harness) live(v string) bool {
	h.t.Helper()
	_, err := h.store.RefreshTokenByValue(context.Background(), v)
	if err != nil && !errors.Is(err, ErrRefreshTokenNotFound) {
		h.t.Fatal(err)
	}
	return err == nil
}

func TestOnIdentityEvent_UserDisabledAndRoleRevokedRevokeTheUsersRefreshTokens(t *testing.T) {
	h := newHarness(t)
	f, other := h.tenant(), h.tenant()
	ana, bo := ids.New(), ids.New()
	anaTokens := []string{h.issue(f, ana), h.issue(f, ana)}
	boToken, anaElsewhere := h.issue(f, bo), h.issue(other, ana)
	if _, err := h.deliver("identity", contracts.UserDisabled, f.id, contracts.UserStatusChangedData{TenantID: f.id.String(),
		UserID: ana, Status: "Disabled"}); err != nil {
		t.Fatal(err)
	}
	for _, v := range anaTokens {
		if h.live(v) {
			t.Error("a disabled user's refresh token is still live")
		}
	}
	if !h.live(boToken) || !h.live(anaElsewhere) {
		t.Error("another user's token, or the same id's in another tenant, was revoked")
	}
	if _, err := h.deliver("identity", contracts.RoleRevoked, f.id, contracts.RoleAssignmentData{TenantID: f.id.String(),
		UserID: bo, RoleID: ids.New(), RoleCode: "member"}); err != nil {
		t.Fatal(err)
	}
	if h.live(boToken) {
		t.Error("RoleRevoked left the user's refresh token live")
	}
	// An event that names no user breaks its contract: refused, never a tenant-wide revocation.
	keep := h.issue(f, ids.New())
	if _, err := h.deliver("identity", contracts.UserDisabled, f.id, contracts.UserStatusChangedData{TenantID: f.id.String()}); err == nil {
		t.Error("UserDisabled without a user was accepted")
	}
	if !h.live(keep) {
		t.Error("an event without a user revoked someone's token")
	}
}

func TestOnTenantsEvent_SuspendedOrDecommissionedRevokesEveryRefreshToken(t *testing.T) {
	h := newHarness(t)
	for _, typ := range []string{contracts.TenantSuspended, contracts.TenantDecommissioned} {
		f, other := h.tenant(), h.tenant()
		mine := []string{h.issue(f, ids.New()), h.issue(f, ids.New())}
		theirs := h.issue(other, ids.New())
		ev := h.event("tenants", typ, f.id, contracts.TenantStatusChangedData{TenantID: f.id.String(), Status: "Suspended"})
		if _, err := h.deliverEvent(ev); err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		for _, v := range mine {
			if h.live(v) {
				t.Errorf("%s left a refresh token of the tenant live", typ)
			}
		}
		if !h.live(theirs) {
			t.Errorf("%s revoked another tenant's token", typ)
		}
		// A redelivery is a duplicate: answered, without a second effect (a token issued since
		// stays live).
		later := h.issue(f, ids.New())
		if _, err := h.deliverEvent(ev); err != nil {
			t.Errorf("%s redelivered: %v", typ, err)
		}
		if !h.live(later) {
			t.Errorf("%s redelivered revoked again", typ)
		}
	}
	// Other event types are acknowledged without an effect.
	f := h.tenant()
	v := h.issue(f, ids.New())
	if _, err := h.deliver("tenants", contracts.TenantReactivated, f.id, contracts.TenantStatusChangedData{TenantID: f.id.String()}); err != nil {
		t.Fatal(err)
	}
	if !h.live(v) {
		t.Error("TenantReactivated revoked a token")
	}
}

func TestFunctions_DeclareTheAdminAPITimerAndConsumers(t *testing.T) {
	fns := (&API{}).Functions(nil)
	byName := map[string]functions.Function{}
	for _, fn := range fns {
		byName[fn.Name] = fn
	}
	if fn := byName["AuthzClients"]; fn.HTTP == nil || fn.HTTP.Route != "clients/{*rest}" {
		t.Errorf("AuthzClients %+v", fn.HTTP)
	}
	if fn := byName["AuthzTokenPrune"]; fn.Timer == nil || fn.Timer.Schedule != "0 */5 * * * *" || fn.Handler == nil {
		t.Errorf("AuthzTokenPrune %+v", fn.Timer)
	}
	for name, topic := range map[string]string{"AuthzOnIdentityEvent": "identity", "AuthzOnTenantsEvent": "tenants"} {
		if fn := byName[name]; fn.ServiceBus == nil || fn.ServiceBus.Topic != topic || fn.ServiceBus.Subscription != Consumer {
			t.Errorf("%s %+v", name, fn.ServiceBus)
		}
	}
}

func TestPruneTimer_QuietWhenNothingExpiredThenReportsCounts(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	p := newPruner(t, h.svc, retention.Config{Now: h.clock.now, MaxRows: 1_000_000})
	timer := func() (*functions.Result, error) { return p.engine(nil).Timer(p.name)(ctx, &functions.Invocation{}) }
	// Whatever earlier tests left expired goes first.
	p.run()
	res, err := timer()
	if err != nil || !res.Quiet || len(res.Logs) != 0 {
		t.Fatalf("idle run: %+v %v", res, err)
	}
	f := h.tenant()
	for range 3 {
		h.issue(f, ids.New())
	}
	h.clock.move(2 * time.Hour) // the fixtures' refresh tokens live an hour
	res, err = timer()
	if err != nil || res.Quiet || len(res.Logs) != 1 {
		t.Fatalf("run: %+v %v", res, err)
	}
	t.Log(res.Logs[0])
	// Earlier tests' tokens expire under the moved clock too: at least the three went.
	m := regexp.MustCompile(`^sweep AuthzTokenPruneT\w+ run \S+: completed; 3 units, \d+ batches, \d+ selected, 0 exported, (\d+) affected`).FindStringSubmatch(res.Logs[0])
	if m == nil {
		t.Fatalf("log %q", res.Logs[0])
	}
	if n, _ := strconv.Atoi(m[1]); n < 3 {
		t.Errorf("pruned %d rows, want at least 3", n)
	}
	refresh := 0
	evs, _ := p.evidence(h.rt)
	for _, ev := range evs {
		if ev.Unit == string(PruneRefreshTokens) {
			refresh += ev.Affected
		}
	}
	if refresh < 3 {
		t.Errorf("the ledger's evidence counts %d refresh tokens, want at least 3", refresh)
	}
	p.checkEvidence(h.rt)
}

// A disabled user's families are revoked with its refresh tokens, and their cached
// FamilyRevoked answers are dropped after the consumer's commit: introspection says inactive for
// the user's access tokens at once, not when the cached "not revoked" would expire. Another
// user's family stays live.
func TestOnIdentityEvent_UserDisabled_FamiliesRevokedAtOnce(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	f := h.tenant()
	ana, bo := ids.New(), ids.New()
	family := func(v string) string {
		t.Helper()
		rt, err := h.store.RefreshTokenByValue(ctx, v)
		if err != nil {
			t.Fatal(err)
		}
		return rt.FamilyID
	}
	anaFamily, boFamily := family(h.issue(f, ana)), family(h.issue(f, bo))
	exp := h.clock.now().Add(10 * time.Minute)
	for range 2 { // the second answer is the cached one
		for _, fam := range []string{anaFamily, boFamily} {
			if got, err := h.store.FamilyRevoked(ctx, f.id.String(), fam, exp); err != nil || got {
				t.Fatalf("before: %v %v", got, err)
			}
		}
	}
	if _, err := h.deliver("identity", contracts.UserDisabled, f.id, contracts.UserStatusChangedData{TenantID: f.id.String(),
		UserID: ana, Status: "Disabled"}); err != nil {
		t.Fatal(err)
	}
	if got, err := h.store.FamilyRevoked(ctx, f.id.String(), anaFamily, exp); err != nil || !got {
		t.Fatalf("the disabled user's family: %v %v", got, err)
	}
	if got, err := h.store.FamilyRevoked(ctx, f.id.String(), boFamily, exp); err != nil || got {
		t.Fatalf("another user's family: %v %v", got, err)
	}
}

// A refresh token's row outlives its expiry by MaxAccessTokenTTL: it is the evidence that its
// family was revoked for the access tokens issued from it, which may live that much longer. The
// pruning timer deletes it only after that grace.
func TestPrune_RefreshTokenKeptForTheAccessTokensLifeAfterItsExpiry(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	f := h.tenant()
	v := h.issue(f, ids.New())
	_, hash, err := parseRefreshToken(v)
	if err != nil {
		t.Fatal(err)
	}
	rows := func() int {
		t.Helper()
		n := 0
		if err := h.rt.InReadTx(ctx, sqlstore.TenantScope(f.id), func(tx *sqlstore.Tx) error {
			return tx.QueryRowContext(ctx, `SELECT count(*) FROM refresh_tokens WHERE tenant_id = $1 AND token_hash = $2`,
				f.id.String(), hash).Scan(&n)
		}); err != nil {
			t.Fatal(err)
		}
		return n
	}
	p := newPruner(t, h.svc, retention.Config{Now: h.clock.now, MaxRows: 1_000_000})
	h.clock.move(time.Hour + MaxAccessTokenTTL/2) // expired (the fixtures live an hour), within the grace
	p.run()
	if rows() != 1 {
		t.Fatal("pruned within the grace after its expiry")
	}
	h.clock.move(MaxAccessTokenTTL)
	p.run()
	if rows() != 0 {
		t.Fatal("kept after the grace")
	}
}
