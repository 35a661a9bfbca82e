package audit

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"spine/shared/contracts"
	"spine/shared/events"
	"spine/shared/functions"
	"spine/shared/httpx"
	"spine/shared/outbox"
	"spine/shared/problem"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
)

// authzHost is the audit functions for the authz topic (AuditOnAuthzEvent), mounted and invoked as
// the host does.
func authzHost(t *testing.T, svc *Service) *host {
	t.Helper()
	reg := &functions.Registry{}
	if err := reg.Add(NewAPI(svc).functions([]string{"authz", "tenants"})...); err != nil {
		t.Fatal(err)
	}
	e := echo.New()
	e.HTTPErrorHandler = (&problem.Handler{Mappers: []problem.Mapper{MapError, httpx.MapError}}).ServeError
	functions.Mount(e, reg, nil)
	return &host{e: e, svc: svc}
}

// platformClientEvents are what authz emits for a platform client: ClientCreated, then TokenIssued
// for its client_credentials token, without a tenant.
func platformClientEvents(t *testing.T) []events.Event {
	t.Helper()
	client := tenancy.NewTenantID().String() // any UUID: a client id
	created, err := events.New("authz", contracts.ClientCreated, client, "", contracts.ClientData{ClientID: client,
		Name: "platform-svc", ClientType: "confidential", GrantTypes: []string{"client_credentials"}, Scopes: []string{"tenant.read"},
		PlatformAdmin: true, Version: 1}, events.Meta{Actor: "admin:ops"})
	if err != nil {
		t.Fatal(err)
	}
	jti := tenancy.NewTenantID().String()
	issued, err := events.New("authz", contracts.TokenIssued, jti, "", contracts.TokenIssuedData{ClientID: client, Subject: client,
		GrantType: "client_credentials", Scopes: []string{"tenant.read"}, TokenID: jti, ExpiresAt: time.Now().Add(10 * time.Minute).UTC(),
		PlatformAdmin: true}, events.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	return []events.Event{created, issued}
}

// deliverEvents delivers each event to AuditOnAuthzEvent as the outbox publishes it (a platform
// event's tenantId property is empty), twice, in two encodings, and fails unless every delivery
// answers 200.
func (h *host) deliverEvents(t *testing.T, evs []events.Event) {
	t.Helper()
	for _, enc := range []functions.Encoding{functions.EncodingDoubleQuoted, functions.EncodingBase64} {
		for _, ev := range evs {
			body, err := json.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			if status, _, raw := h.deliver(t, "AuditOnAuthzEvent", body, enc, 1, map[string]any{"eventType": ev.Type, "tenantId": ev.TenantID}); status != http.StatusOK {
				t.Fatalf("%s (%s): %d %s", ev.Type, enc, status, raw)
			}
		}
	}
}

// A platform client's ClientCreated and TokenIssued (no tenant) are recorded once each, redelivered
// or not, as the next two links of the platform chain (tenant id the nil UUID; seq 1 on an empty
// chain), and the chain verifies. The rows are visible in platform scope only.
func TestAuditOnAuthzEvent_PlatformEventsRecordedOnceInThePlatformChain(t *testing.T) {
	svc := newTestService(t, fakeDir{})
	h := authzHost(t, svc)
	// The package's tests share one database: the chain may hold other tests' platform entries.
	before, err := svc.Query(context.Background(), admin, tenancy.TenantID{}, Filter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	prevSeq, prevHash := int64(0), zeroHash
	if len(before) > 0 {
		prevSeq, prevHash = before[len(before)-1].Seq, before[len(before)-1].Hash
	}
	evs := platformClientEvents(t)
	h.deliverEvents(t, evs)

	es, err := svc.Query(context.Background(), admin, tenancy.TenantID{}, Filter{Limit: 10, AfterSeq: prevSeq})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range es {
		got = append(got, e.Action+"/"+e.SourceEventID)
		if !e.TenantID.IsZero() || e.Resource.Type != "authz" {
			t.Fatalf("entry %+v: want the platform chain's, from authz", e)
		}
	}
	if want := []string{contracts.ClientCreated + "/" + evs[0].ID, contracts.TokenIssued + "/" + evs[1].ID}; !slices.Equal(got, want) {
		t.Fatalf("the platform chain holds %v, want exactly %v", got, want)
	}
	if es[0].Seq != prevSeq+1 || es[1].Seq != prevSeq+2 || string(es[0].PrevHash) != string(prevHash) || string(es[1].PrevHash) != string(es[0].Hash) {
		t.Fatalf("the entries do not extend the platform chain after seq %d: %+v", prevSeq, es)
	}
	rep, err := svc.Verify(context.Background(), admin, tenancy.TenantID{}, time.Time{}, time.Time{})
	if err != nil || !rep.OK() || rep.EntriesChecked != prevSeq+2 || rep.FirstSeq != 1 {
		t.Fatalf("verify the platform chain: %+v %v", rep, err)
	}

	count := func(sc sqlstore.Scope) (n int) {
		t.Helper()
		if err := openRuntime(t).InReadTx(context.Background(), sc, func(tx *sqlstore.Tx) error {
			return tx.QueryRowContext(context.Background(), `SELECT count(*) FROM audit_entries WHERE tenant_id = $1 AND source_event_id = ANY($2::uuid[])`,
				outbox.PlatformTenant, "{"+evs[0].ID+","+evs[1].ID+"}").Scan(&n)
		}); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(sqlstore.PlatformScope()); n != 2 {
		t.Fatalf("platform scope sees %d rows under the nil UUID, want 2", n)
	}
	if n := count(sqlstore.TenantScope(tenancy.NewTenantID())); n != 0 {
		t.Fatalf("a tenant's scope sees %d platform-chain rows", n)
	}
}

// A batch mixing a tenant's event and platform events records each in its own chain: the tenant's
// entry in the tenant's chain, the platform events in the platform chain, after the entries
// already there; both chains verify.
func TestAuditOnAuthzEvent_MixedBatchRecordsEachChain(t *testing.T) {
	svc := newTestService(t, fakeDir{})
	h := authzHost(t, svc)
	before, err := svc.Query(context.Background(), admin, tenancy.TenantID{}, Filter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	tenant := tenancy.NewTenantID()
	tev, _ := tenantRegistered(t, tenant, events.Meta{})
	evs := append(platformClientEvents(t), tev)
	bodies := make([][]byte, len(evs))
	metas := make([]functions.ServiceBusMetadata, len(evs))
	for i, ev := range evs {
		bodies[i], _ = json.Marshal(ev)
		metas[i] = functions.ServiceBusMetadata{MessageID: ev.ID, DeliveryCount: 1, EnqueuedTimeUTC: time.Now(),
			ApplicationProperties: map[string]any{"tenantId": ev.TenantID}}
	}
	data, md := functions.ServiceBusBatch(bodies, metas)
	md["sys"] = functions.SysMetadata("AuditOnAuthzEvent", time.Now())["sys"]
	status, _, raw, err := functions.Invoke(context.Background(), h.e, "AuditOnAuthzEvent", map[string]any{functions.ServiceBusBinding: data}, md)
	if err != nil || status != http.StatusOK {
		t.Fatalf("batch: %d %s %v", status, raw, err)
	}
	platform, err := svc.Query(context.Background(), admin, tenancy.TenantID{}, Filter{Limit: 1000})
	if err != nil || len(platform) != len(before)+2 {
		t.Fatalf("platform chain: %d entries (%v), want %d", len(platform), err, len(before)+2)
	}
	if last := platform[len(platform)-1]; last.SourceEventID != evs[1].ID || last.Seq != int64(len(before)+2) {
		t.Fatalf("the platform chain's last entry %+v, want TokenIssued at seq %d", last, len(before)+2)
	}
	own, err := svc.Query(context.Background(), admin, tenant, Filter{Limit: 10})
	if err != nil || len(own) != 1 || own[0].SourceEventID != tev.ID || own[0].Seq != 1 {
		t.Fatalf("the tenant's chain: %+v %v", own, err)
	}
	for _, chain := range []tenancy.TenantID{{}, tenant} {
		if rep, err := svc.Verify(context.Background(), admin, chain, time.Time{}, time.Time{}); err != nil || !rep.OK() {
			t.Fatalf("verify %q: %+v %v", chain, rep, err)
		}
	}
}

// The platform chain through the API: a platform admin with audit.read lists it, reads an entry
// and verifies it with ?platform=true (tenantId is the nil UUID); a tenant's token can never see
// it (403 with platform=true, 400 naming the nil UUID, its own list without it); platform=true
// cannot be combined with tenantId, takes only true or false, and is refused when recording.
func TestAuditAPI_PlatformChain_PlatformAdminOnly(t *testing.T) {
	h := newHarness(t)
	authzHost(t, h.svc).deliverEvents(t, platformClientEvents(t))
	p := h.list("/api/audit-entries?platform=true&limit=200", h.admin)
	if len(p.Value) < 2 {
		t.Fatalf("platform chain listing: %+v", p)
	}
	first := p.Value[0]
	if first["tenantId"] != outbox.PlatformTenant || first["seq"] != 1.0 || first["prevHash"] != strings.Repeat("0", 64) {
		t.Fatalf("first platform entry: %v", first)
	}
	id := first["id"].(string)
	if r := h.do("GET", "/api/audit-entries/"+id+"?platform=true", h.admin, nil); r.Code != http.StatusOK || !strings.Contains(string(r.Body), id) {
		t.Fatalf("GET platform entry: %d %s", r.Code, r.Body)
	}
	r := h.do("GET", "/api/audit-entries/verify?platform=true", h.admin, nil)
	if r.Code != http.StatusOK {
		t.Fatalf("verify: %d %s", r.Code, r.Body)
	}
	if v := r.JSON(t); v["ok"] != true || v["tenantId"] != outbox.PlatformTenant || v["entriesChecked"].(float64) < 2 {
		t.Fatalf("verify: %s", r.Body)
	}
	// A tenant's own entry id read as a platform-chain entry is not found, and vice versa.
	tenant, tok := h.tenant()
	own := h.record(tok, "", nil)
	if r := h.do("GET", "/api/audit-entries/"+own["id"].(string)+"?platform=true", h.admin, nil); r.Code != http.StatusNotFound {
		t.Fatalf("a tenant's entry through platform=true: %d %s", r.Code, r.Body)
	}
	if r := h.do("GET", "/api/audit-entries/"+id+"?tenantId="+tenant.String(), h.admin, nil); r.Code != http.StatusNotFound {
		t.Fatalf("a platform entry through tenantId: %d %s", r.Code, r.Body)
	}

	for name, tc := range map[string]struct {
		method, path, token string
		status              int
	}{
		"tenant token lists":              {"GET", "/api/audit-entries?platform=true", tok, http.StatusForbidden},
		"tenant token reads":              {"GET", "/api/audit-entries/" + id + "?platform=true", tok, http.StatusForbidden},
		"tenant token verifies":           {"GET", "/api/audit-entries/verify?platform=true", tok, http.StatusForbidden},
		"tenant token names the nil UUID": {"GET", "/api/audit-entries?tenantId=" + outbox.PlatformTenant, tok, http.StatusBadRequest},
		"admin names the nil UUID":        {"GET", "/api/audit-entries?tenantId=" + outbox.PlatformTenant, h.admin, http.StatusBadRequest},
		"admin without audit.read":        {"GET", "/api/audit-entries?platform=true", h.token("", true, ScopeWrite), http.StatusForbidden},
		"platform and tenantId":           {"GET", "/api/audit-entries?platform=true&tenantId=" + tenant.String(), h.admin, http.StatusBadRequest},
		"platform not a boolean":          {"GET", "/api/audit-entries?platform=yes", h.admin, http.StatusBadRequest},
		"recording in the platform chain": {"POST", "/api/audit-entries?platform=true", h.admin, http.StatusBadRequest},
	} {
		t.Run(name, func(t *testing.T) {
			var body any
			if tc.method == "POST" {
				body = entryBody(nil)
			}
			if r := h.do(tc.method, tc.path, tc.token, body); r.Code != tc.status {
				t.Fatalf("%s %s: %d %s, want %d", tc.method, tc.path, r.Code, r.Body, tc.status)
			}
		})
	}
	for _, e := range h.list("/api/audit-entries?limit=200", tok).Value {
		if e["tenantId"] != tenant.String() {
			t.Fatalf("a tenant's listing holds %v", e)
		}
	}
}
