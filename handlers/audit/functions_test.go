package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"spine/shared/events"
	"spine/shared/functions"
	"spine/shared/httpx"
	"spine/shared/ids"
	"spine/shared/problem"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
	"spine/shared/text"
)

// host is the audit functions mounted on echo exactly as app.go mounts them, invoked the way the
// Functions host invokes them (functions.Invoke).
type host struct {
	e   *echo.Echo
	svc *Service
}

func newHost(t *testing.T, svc *Service) *host {
	t.Helper()
	reg := &functions.Registry{}
	if err := reg.Add(NewAPI(svc).functions([]string{"tenants", "audit", "identity"})...); err != nil {
		t.Fatal(err)
	}
	e := echo.New()
	e.HTTPErrorHandler = (&problem.Handler{Mappers: []problem.Mapper{MapError, httpx.MapError}}).ServeError
	functions.Mount(e, reg, nil)
	return &host{e: e, svc: svc}
}

// deliver invokes name with body as a Service Bus message in encoding enc.
func (h *host) deliver(t *testing.T, name string, body []byte, enc functions.Encoding, delivery int, props map[string]any) (int, *functions.Result, []byte) {
	t.Helper()
	var ev struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(body, &ev)
	data, md := functions.ServiceBusMessage(body, enc, functions.ServiceBusMetadata{MessageID: ev.ID, DeliveryCount: delivery,
		EnqueuedTimeUTC: time.Now(), ContentType: events.ContentType, ApplicationProperties: props})
	md["sys"] = functions.SysMetadata(name, time.Now())["sys"]
	status, res, raw, err := functions.Invoke(context.Background(), h.e, name, map[string]any{functions.ServiceBusBinding: data}, md)
	if err != nil {
		t.Fatal(err)
	}
	return status, res, raw
}

// tenantRegistered is the event the tenants service publishes when a tenant registers.
func tenantRegistered(t *testing.T, tenant tenancy.TenantID, m events.Meta) (events.Event, []byte) {
	t.Helper()
	ev, err := events.New("tenants", "TenantRegistered", tenant.String(), tenant.String(),
		map[string]any{"tenantId": tenant, "name": "Contoso", "slug": "contoso", "editionCode": "standard"}, m)
	if err != nil {
		t.Fatal(err)
	}
	body, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return ev, body
}

func TestFunctions_OneCatchAllOneConsumerPerTopicButAuditAndTheSweepTimers(t *testing.T) {
	fns := NewAPI(nil).functions([]string{"tenants", "audit", "identity", "tenants", "feature_flags"})
	var names []string
	for _, fn := range fns {
		names = append(names, fn.Name)
		if sb := fn.ServiceBus; sb != nil {
			if sb.Subscription != "audit" || sb.Connection != ServiceBusConnection || sb.EventTypes != nil || fn.Handler == nil {
				t.Errorf("%s: %+v", fn.Name, sb)
			}
			if ConsumerName(sb.Topic) != fn.Name {
				t.Errorf("%s listens on %s", fn.Name, sb.Topic)
			}
		}
	}
	if got := strings.Join(names, ","); got != "Audit,AuditExport,AuditOnFeatureFlagsEvent,AuditOnIdentityEvent,AuditOnTenantsEvent,AuditPurge" {
		t.Fatalf("functions = %s", got)
	}
	for _, fn := range fns {
		if want := map[string]string{SweepExport: "0 5 * * * *", SweepPurge: "0 30 3 * * *"}[fn.Name]; want != "" &&
			(fn.Timer == nil || fn.Timer.Schedule != want || fn.Handler == nil) {
			t.Errorf("%s: timer %+v, want schedule %q with a handler", fn.Name, fn.Timer, want)
		}
	}
	if h := fns[0].HTTP; h == nil || h.Route != "audit-entries/{*rest}" || h.AuthLevel != functions.AuthAnonymous ||
		strings.Join(h.Methods, ",") != "get,post" {
		t.Fatalf("Audit: %+v", fns[0])
	}
	reg := &functions.Registry{}
	if err := reg.Add(fns...); err != nil {
		t.Fatalf("the registry refuses the declarations: %v", err)
	}
}

// The same TenantRegistered, delivered four times in each encoding the host uses, becomes exactly
// one entry carrying the registration request's trace id; the other deliveries are duplicates.
func TestAuditOnTenantsEvent_EveryEncodingSameEventOneEntry(t *testing.T) {
	tenant := tenancy.NewTenantID()
	// The tenant is suspended: events are recorded anyway (the consumer is not fenced).
	svc := newTestService(t, fakeDir{tenant: tenancy.StatusSuspended})
	h := newHost(t, svc)
	const trace = "4bf92f3577b34da6a3ce929d0e0e4736"
	ev, body := tenantRegistered(t, tenant, events.Meta{TraceParent: "00-" + trace + "-00f067aa0ba902b7-01",
		CorrelationID: "corr-9", Actor: "admin:alice"})
	props := map[string]any{"tenantId": tenant.String()}
	for i, enc := range []functions.Encoding{functions.EncodingString, functions.EncodingDoubleQuoted, functions.EncodingBase64, functions.EncodingObject} {
		status, res, raw := h.deliver(t, "AuditOnTenantsEvent", body, enc, i+1, props)
		if status != 200 || res == nil || len(res.Logs) != 1 {
			t.Fatalf("%s delivery: %d %s", enc, status, raw)
		}
		dupLog := Consumer + ": TenantRegistered event " + ev.ID + " duplicate" // bus.GroupConsumer's line
		if i == 0 && (res.Logs[0] == dupLog || !strings.Contains(res.Logs[0], "TenantRegistered")) {
			t.Fatalf("first delivery (%s) logs %q", enc, res.Logs)
		}
		if i > 0 && res.Logs[0] != dupLog {
			t.Fatalf("%s redelivery logs %q, want %q", enc, res.Logs, dupLog)
		}
	}
	es, err := svc.store.Query(context.Background(), sqlstore.TenantScope(tenant), Filter{Limit: 10})
	if err != nil || len(es) != 1 {
		t.Fatalf("%d entries, %v; want exactly 1", len(es), err)
	}
	e := es[0]
	want := NewEntry{ID: e.ID, OccurredAt: utcMicro(ev.Time), Actor: Actor{Type: "admin", ID: "alice"}, Action: "TenantRegistered",
		Resource: Resource{Type: "tenants", ID: tenant.String()}, TraceID: trace, CorrelationID: "corr-9", SourceEventID: ev.ID,
		Payload: json.RawMessage(ev.Data)}
	if fmt.Sprintf("%+v", e.NewEntry) != fmt.Sprintf("%+v", want) || e.Seq != 1 {
		t.Fatalf("entry\n got %+v\nwant %+v", e.NewEntry, want)
	}
	// Nothing is emitted for entries that come from events (audit's own topic would feed them back).
	var n int
	_ = openRuntime(t).InReadTx(context.Background(), sqlstore.TenantScope(tenant), func(tx *sqlstore.Tx) error {
		return tx.QueryRowContext(context.Background(), `SELECT count(*) FROM outbox`).Scan(&n)
	})
	if n != 0 {
		t.Fatalf("%d outbox rows for an event-sourced entry, want 0", n)
	}
}

// Concurrent deliveries of one event (the host's retries racing a slow first attempt) still record
// it once.
func TestAuditOnTenantsEvent_ConcurrentRedeliveriesRecordOnce(t *testing.T) {
	tenant := tenancy.NewTenantID()
	svc := newTestService(t, fakeDir{})
	h := newHost(t, svc)
	ev, body := tenantRegistered(t, tenant, events.Meta{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	dups := 0
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			status, res, raw := h.deliver(t, "AuditOnTenantsEvent", body, functions.EncodingObject, i+1, nil)
			if status != 200 {
				t.Errorf("delivery %d: %d %s", i, status, raw)
				return
			}
			if res.Logs[0] == Consumer+": TenantRegistered event "+ev.ID+" duplicate" {
				mu.Lock()
				dups++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	es, _ := svc.store.Query(context.Background(), sqlstore.TenantScope(tenant), Filter{Limit: 10})
	if len(es) != 1 || dups != 5 {
		t.Fatalf("%d entries and %d duplicates, want 1 and 5", len(es), dups)
	}
}

// Without an actor extension or a traceparent, the publishing service is the actor and the trace
// id is empty; without data the payload is {}.
func TestAuditOnEvent_DefaultsForSparseEvents(t *testing.T) {
	tenant := tenancy.NewTenantID()
	svc := newTestService(t, fakeDir{})
	h := newHost(t, svc)
	ev := events.Event{SpecVersion: "1.0", ID: ids.New(), Source: "/services/identity", Type: "UserInvited",
		Subject: "user-7", TenantID: tenant.String(), Time: time.Date(2026, 7, 1, 8, 0, 0, 0, time.UTC)}
	body, _ := json.Marshal(ev)
	if status, _, raw := h.deliver(t, "AuditOnIdentityEvent", body, functions.EncodingString, 1, nil); status != 200 {
		t.Fatalf("%d %s", status, raw)
	}
	es, _ := svc.store.Query(context.Background(), sqlstore.TenantScope(tenant), Filter{Limit: 10})
	if len(es) != 1 {
		t.Fatalf("%d entries", len(es))
	}
	e := es[0]
	if e.Actor != (Actor{Type: "service", ID: "identity"}) || e.Resource != (Resource{Type: "identity", ID: "user-7"}) ||
		e.TraceID != "" || string(e.Payload) != "{}" || !e.OccurredAt.Equal(ev.Time) {
		t.Fatalf("entry %+v", e)
	}
}

// A message that is not a Spine CloudEvent fails its invocation (non-2xx: the host retries, then
// dead-letters) and records nothing; so does a store failure.
func TestAuditOnEvent_Non2xx_BadMessageOrStoreFailure(t *testing.T) {
	svc := newTestService(t, fakeDir{})
	h := newHost(t, svc)
	for _, body := range []string{`hello`, `{"specversion":"1.0","id":"x","source":"/services/tenants","type":"T"}`,
		`{"specversion":"1.0","id":"not-a-uuid","source":"/services/tenants","type":"T","tenantid":"` + tenancy.NewTenantID().String() + `"}`} {
		if status, _, raw := h.deliver(t, "AuditOnTenantsEvent", []byte(body), functions.EncodingString, 1, nil); status != 400 {
			t.Errorf("%s: %d %s, want 400", body, status, raw)
		}
	}

	closed := openRuntime(t)
	_ = closed.Close()
	broken, err := NewService(NewPostgresStore(closed), fakeDir{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, body := tenantRegistered(t, tenancy.NewTenantID(), events.Meta{})
	if status, _, raw := newHost(t, broken).deliver(t, "AuditOnTenantsEvent", body, functions.EncodingObject, 1, nil); status < 500 {
		t.Fatalf("store failure: %d %s, want 5xx", status, raw)
	}
}

// An event whose time lies past year 9999 once in UTC (9999-12-31T23:59:59-23:59 is year 10000
// there) is recorded at its enqueue time instead: stored as it was, it would fail every listing page
// holding it for good, since the trail is append-only.
func TestAuditOnEvent_TimeBeyond9999InUTCIsReplaced(t *testing.T) {
	tenant := tenancy.NewTenantID()
	svc := newTestService(t, fakeDir{})
	h := newHost(t, svc)
	for _, raw := range []string{"9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59"} {
		when, err := time.Parse(time.RFC3339, raw)
		if err != nil {
			t.Fatal(err)
		}
		ev := events.Event{SpecVersion: "1.0", ID: ids.New(), Source: "/services/identity", Type: "UserInvited",
			Subject: "user-7", TenantID: tenant.String(), Time: when}
		body, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		if status, _, out := h.deliver(t, "AuditOnIdentityEvent", body, functions.EncodingString, 1, nil); status != 200 {
			t.Fatalf("%s: %d %s", raw, status, out)
		}
	}
	es, err := svc.store.Query(context.Background(), sqlstore.TenantScope(tenant), Filter{Limit: 10})
	if err != nil || len(es) != 2 {
		t.Fatalf("%d entries, %v", len(es), err)
	}
	for _, e := range es {
		if y := e.OccurredAt.UTC().Year(); y < 1970 || y > 9999 {
			t.Fatalf("occurredAt %v was stored", e.OccurredAt)
		}
		if _, err := json.Marshal(toJSON(e)); err != nil {
			t.Fatalf("the entry cannot be rendered: %v", err)
		}
	}
}

// An event whose data holds an escaped NUL (which jsonb cannot store) is recorded with U+FFFD in
// its place rather than failing every delivery until it is dead-lettered; an escaped backslash
// followed by "u0000" is text and stays as sent.
func TestAuditOnEvent_NULInDataIsRecordedScrubbed(t *testing.T) {
	tenant := tenancy.NewTenantID()
	svc := newTestService(t, fakeDir{})
	h := newHost(t, svc)
	ev := events.Event{SpecVersion: "1.0", ID: ids.New(), Source: "/services/identity", Type: "UserInvited",
		Subject: "user\x00-7", TenantID: tenant.String(), Time: time.Now().UTC(),
		Data: json.RawMessage(`{"note":"a\u0000b","literal":"\\u0000"}`)}
	body, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	if status, _, out := h.deliver(t, "AuditOnIdentityEvent", body, functions.EncodingString, 1, nil); status != 200 {
		t.Fatalf("%d %s", status, out)
	}
	es, err := svc.store.Query(context.Background(), sqlstore.TenantScope(tenant), Filter{Limit: 10})
	if err != nil || len(es) != 1 {
		t.Fatalf("%d entries, %v", len(es), err)
	}
	if got, want := string(es[0].Payload), `{"note":"a\ufffdb","literal":"\\u0000"}`; got != want {
		t.Fatalf("payload %s, want %s", got, want)
	}
	if strings.ContainsRune(es[0].Resource.ID, 0) {
		t.Fatalf("resource id kept a NUL: %q", es[0].Resource.ID)
	}
}

// An event whose data nests deeper than MaxPayloadDepth fails its invocation (400: the host
// retries, then dead-letters it) instead of being recorded as an entry no listing could render.
func TestAuditOnEvent_400_DataNestedTooDeep(t *testing.T) {
	tenant := tenancy.NewTenantID()
	svc := newTestService(t, fakeDir{})
	h := newHost(t, svc)
	ev := events.Event{SpecVersion: "1.0", ID: ids.New(), Source: "/services/identity", Type: "UserInvited",
		Subject: "user-7", TenantID: tenant.String(), Time: time.Now().UTC(),
		Data: json.RawMessage(strings.Repeat("[", 9990) + strings.Repeat("]", 9990))}
	body, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	if status, _, out := h.deliver(t, "AuditOnIdentityEvent", body, functions.EncodingString, 1, nil); status != 400 || !strings.Contains(string(out), "invalid-event") {
		t.Fatalf("%d %s, want 400 invalid-event", status, out)
	}
	if es, err := svc.store.Query(context.Background(), sqlstore.TenantScope(tenant), Filter{Limit: 10}); err != nil || len(es) != 0 {
		t.Fatalf("%d entries recorded, %v", len(es), err)
	}
}

// An event's text members (type, actor, subject, correlation id) become entry members the API
// itself would accept: control characters other than NUL (ESC, DEL, C1, line breaks) are replaced
// with U+FFFD too, and the event is still recorded.
func TestAuditOnEvent_ControlCharactersInEventTextAreReplaced(t *testing.T) {
	tenant := tenancy.NewTenantID()
	svc := newTestService(t, fakeDir{})
	h := newHost(t, svc)
	ev := events.Event{SpecVersion: "1.0", ID: ids.New(), Source: "/services/identity", Type: "User\x1b[31mInv\x00ited",
		Subject: "user\n-7\u0085", TenantID: tenant.String(), Time: time.Now().UTC(), Actor: "user:ali\x7fce",
		CorrelationID: "corr\tid"}
	body, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	if status, _, out := h.deliver(t, "AuditOnIdentityEvent", body, functions.EncodingString, 1, nil); status != 200 {
		t.Fatalf("%d %s", status, out)
	}
	es, err := svc.store.Query(context.Background(), sqlstore.TenantScope(tenant), Filter{Limit: 10})
	if err != nil || len(es) != 1 {
		t.Fatalf("%d entries, %v", len(es), err)
	}
	e := es[0]
	for name, v := range map[string]string{"action": e.Action, "actor.id": e.Actor.ID, "resource.id": e.Resource.ID, "correlationId": e.CorrelationID} {
		if text.CheckLine(v) != nil || !strings.ContainsRune(v, utf8.RuneError) {
			t.Errorf("%s = %q, want its control character replaced with U+FFFD", name, v)
		}
	}
}

// An event whose data escapes an unpaired UTF-16 surrogate is recorded with U+FFFD in its place:
// kept as sent, it made every listing page holding the entry unreadable to strict JSON readers
// (jq: "Invalid \uXXXX\uXXXX surrogate pair escape"). A proper pair and an escaped backslash stay.
func TestAuditOnEvent_UnpairedSurrogateInDataIsRecordedReplaced(t *testing.T) {
	tenant := tenancy.NewTenantID()
	svc := newTestService(t, fakeDir{})
	h := newHost(t, svc)
	ev := events.Event{SpecVersion: "1.0", ID: ids.New(), Source: "/services/identity", Type: "UserInvited",
		Subject: "user-7", TenantID: tenant.String(), Time: time.Now().UTC(),
		Data: json.RawMessage(`{"hi":"\ud800x","lo":["\uDC00"],"k\udbff":"\ud83d\ude80","end":"\ud83d","text":"\\ud800"}`)}
	body, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	if status, _, out := h.deliver(t, "AuditOnIdentityEvent", body, functions.EncodingString, 1, nil); status != 200 {
		t.Fatalf("%d %s", status, out)
	}
	es, err := svc.store.Query(context.Background(), sqlstore.TenantScope(tenant), Filter{Limit: 10})
	if err != nil || len(es) != 1 {
		t.Fatalf("%d entries, %v", len(es), err)
	}
	want := `{"hi":"\ufffdx","lo":["\ufffd"],"k\ufffd":"\ud83d\ude80","end":"\ufffd","text":"\\ud800"}`
	if got := string(es[0].Payload); got != want {
		t.Fatalf("payload %s, want %s", got, want)
	}
}
