package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"spine/shared/events"
	"spine/shared/httpx"
	"spine/shared/ids"
	"spine/shared/problem"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
	"spine/shared/testenv/apitest"
)

// harness is the audit API wired as app.go wires a service, over the package database.
type harness struct {
	t      *testing.T
	e      *echo.Echo
	db     *sqlstore.DB
	svc    *Service
	dir    fakeDir
	tokens *apitest.Tokens
	admin  string // platform-admin token with both scopes
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	tokens := apitest.NewTokens(t)
	v := tokens.Verifier(t)
	h := &harness{t: t, db: openRuntime(t), dir: fakeDir{}, tokens: tokens}
	svc, err := NewService(NewPostgresStore(h.db), h.dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := echo.New()
	_, api := httpx.NewAPI(e, httpx.APIConfig{Verifier: v, MaxBodyBytes: 256 << 10, Mappers: []problem.Mapper{MapError}})
	NewAPI(svc).Routes(api)
	h.e, h.svc = e, svc
	h.admin = h.token("", true, ScopeRead, ScopeWrite)
	return h
}

// tenant registers a fresh tenant as Active in the directory and returns it with a token that
// holds both scopes.
func (h *harness) tenant() (tenancy.TenantID, string) {
	id := tenancy.NewTenantID()
	h.dir[id] = tenancy.StatusActive
	return id, h.token(id.String(), false, ScopeRead, ScopeWrite)
}

func (h *harness) token(tenant string, admin bool, scopes ...string) string {
	h.t.Helper()
	return h.tokens.Mint(h.t, tenant, admin, scopes...)
}

func (h *harness) do(method, path, token string, body any, hdr ...string) apitest.Response {
	h.t.Helper()
	return apitest.Do(h.t, h.e, method, path, token, body, hdr...)
}

// entryBody is a valid POST body; over replaces members.
func entryBody(over map[string]any) map[string]any {
	b := map[string]any{
		"actor":    map[string]string{"type": "user", "id": "alice"},
		"action":   "document.shared",
		"resource": map[string]string{"type": "document", "id": "doc-1"},
		"payload":  map[string]any{"with": "bob"},
	}
	for k, v := range over {
		if v == nil {
			delete(b, k)
		} else {
			b[k] = v
		}
	}
	return b
}

// record POSTs an entry and returns its JSON, failing unless 201.
func (h *harness) record(token, query string, over map[string]any) map[string]any {
	h.t.Helper()
	r := h.do("POST", "/api/audit-entries"+query, token, entryBody(over))
	if r.Code != http.StatusCreated {
		h.t.Fatalf("record: %d %s", r.Code, r.Body)
	}
	return r.JSON(h.t)
}

// page is one GET /audit-entries answer.
type page struct {
	Value    []map[string]any `json:"value"`
	NextLink string           `json:"nextLink"`
}

func (h *harness) list(path, token string) page {
	h.t.Helper()
	r := h.do("GET", path, token, nil)
	if r.Code != http.StatusOK {
		h.t.Fatalf("GET %s: %d %s", path, r.Code, r.Body)
	}
	var p page
	if err := json.Unmarshal(r.Body, &p); err != nil {
		h.t.Fatal(err)
	}
	return p
}

func seqs(p page) []int {
	out := []int{}
	for _, v := range p.Value {
		out = append(out, int(v["seq"].(float64)))
	}
	return out
}

func TestRecordAuditEntry_201_ChainedWithHashesTraceAndLocation(t *testing.T) {
	h := newHarness(t)
	tenant, tok := h.tenant()
	const trace = "4bf92f3577b34da6a3ce929d0e0e4736"
	r := h.do("POST", "/api/audit-entries", tok,
		`{"actor":{"type":"user","id":"alice"},"action":"document.shared","resource":{"type":"document","id":"doc-1"},
		  "payload": { "with" : "bob", "n": 1.50 }}`,
		"traceparent", "00-"+trace+"-00f067aa0ba902b7-01", "X-Correlation-Id", "corr-7")
	if r.Code != http.StatusCreated {
		t.Fatalf("%d %s", r.Code, r.Body)
	}
	first := r.JSON(t)
	id := first["id"].(string)
	if first["seq"] != 1.0 || first["tenantId"] != tenant.String() || first["traceId"] != trace || first["correlationId"] != "corr-7" ||
		first["prevHash"] != strings.Repeat("0", 64) || len(first["hash"].(string)) != 64 {
		t.Fatalf("first entry: %s", r.Body)
	}
	if raw, _ := json.Marshal(first["payload"]); string(raw) != `{"n":1.5,"with":"bob"}` {
		t.Fatalf("payload %s", raw)
	}
	if !strings.Contains(string(r.Body), `"payload":{"with":"bob","n":1.50}`) {
		t.Fatalf("payload must be stored compacted, member order and number text kept: %s", r.Body)
	}
	if r.Header.Get("Location") != "/api/audit-entries/"+id || r.Header.Get("ETag") != `"`+first["hash"].(string)+`"` {
		t.Fatalf("headers %v", r.Header)
	}
	second := h.record(tok, "", nil)
	if second["seq"] != 2.0 || second["prevHash"] != first["hash"] {
		t.Fatalf("second entry does not link to the first: %v", second)
	}
	got := h.do("GET", "/api/audit-entries/"+id, tok, nil)
	if got.Code != 200 || got.JSON(t)["hash"] != first["hash"] || got.Header.Get("ETag") != r.Header.Get("ETag") {
		t.Fatalf("GET: %d %s", got.Code, got.Body)
	}

	// AuditEntryRecorded went to the outbox with the entry's chain position and the request's
	// trace and actor.
	var envelope []byte
	err := h.db.InReadTx(context.Background(), sqlstore.TenantScope(tenant), func(tx *sqlstore.Tx) error {
		return tx.QueryRowContext(context.Background(), `SELECT envelope::text FROM outbox WHERE subject = $1`, id).Scan(&envelope)
	})
	if err != nil {
		t.Fatal(err)
	}
	var ev events.Event
	_ = json.Unmarshal(envelope, &ev)
	var data map[string]any
	_ = json.Unmarshal(ev.Data, &data)
	if ev.Type != EventEntryRecorded || ev.Source != "/services/audit" || ev.TenantID != tenant.String() ||
		!strings.Contains(ev.TraceParent, trace) || ev.Actor != "user:user-"+tenant.String() ||
		data["seq"] != 1.0 || data["hash"] != first["hash"] || data["entryId"] != id {
		t.Fatalf("outbox event: %s", envelope)
	}
}

func TestRecordAuditEntry_201_PlatformAdminNamesTheTenant(t *testing.T) {
	h := newHarness(t)
	tenant, _ := h.tenant()
	r := h.do("POST", "/api/audit-entries?tenantId="+tenant.String(), h.admin, entryBody(map[string]any{
		"occurredAt": "2026-01-31T23:00:00.123456789+01:00", "traceId": "0af7651916cd43dd8448eb211c80319c"}))
	if r.Code != http.StatusCreated {
		t.Fatalf("%d %s", r.Code, r.Body)
	}
	m := r.JSON(t)
	if m["tenantId"] != tenant.String() || m["occurredAt"] != "2026-01-31T22:00:00.123456Z" || m["traceId"] != "0af7651916cd43dd8448eb211c80319c" {
		t.Fatalf("entry: %s", r.Body)
	}
	if loc := r.Header.Get("Location"); loc != "/api/audit-entries/"+m["id"].(string)+"?tenantId="+tenant.String() {
		t.Fatalf("Location %q", loc)
	}
	if got := h.do("GET", r.Header.Get("Location"), h.admin, nil); got.Code != 200 {
		t.Fatalf("GET Location: %d %s", got.Code, got.Body)
	}
	if r := h.do("POST", "/api/audit-entries", h.admin, entryBody(nil)); r.Code != 400 || r.ProblemCode(t) != "tenant-required" {
		t.Fatalf("admin without tenantId: %d %s", r.Code, r.Body)
	}
}

func TestRecordAuditEntry_400_UnknownField(t *testing.T) {
	h := newHarness(t)
	_, tok := h.tenant()
	for _, body := range []map[string]any{
		entryBody(map[string]any{"severity": "high"}),
		entryBody(map[string]any{"actor": map[string]string{"type": "user", "id": "a", "name": "Alice"}}),
	} {
		r := h.do("POST", "/api/audit-entries", tok, body)
		if r.Code != 400 || r.ProblemCode(t) != "unknown-field" {
			t.Fatalf("%d %s", r.Code, r.Body)
		}
	}
}

func TestRecordAuditEntry_400_InvalidInput(t *testing.T) {
	h := newHarness(t)
	tenant, tok := h.tenant()
	for _, tc := range []struct {
		name string
		body any
		code string
	}{
		{"no action", entryBody(map[string]any{"action": nil}), "invalid-input"},
		{"action with spaces", entryBody(map[string]any{"action": "drop table"}), "invalid-input"},
		{"no actor", entryBody(map[string]any{"actor": nil}), "invalid-input"},
		{"actor id with a newline", entryBody(map[string]any{"actor": map[string]string{"type": "user", "id": "a\nb"}}), "invalid-input"},
		{"no resource", entryBody(map[string]any{"resource": nil}), "invalid-input"},
		{"resource id too long", entryBody(map[string]any{"resource": map[string]string{"type": "doc", "id": strings.Repeat("x", 201)}}), "invalid-input"},
		{"trace id not hex", entryBody(map[string]any{"traceId": "not-a-trace"}), "invalid-input"},
		{"trace id all zero", entryBody(map[string]any{"traceId": strings.Repeat("0", 32)}), "invalid-input"},
		{"occurredAt in the future", entryBody(map[string]any{"occurredAt": time.Now().Add(10 * time.Minute).Format(time.RFC3339)}), "invalid-input"},
		{"occurredAt not RFC 3339", entryBody(map[string]any{"occurredAt": "yesterday"}), "invalid-input"},
		{"occurredAt before 1970", entryBody(map[string]any{"occurredAt": "1969-12-31T23:59:59Z"}), "invalid-input"},
		{"payload too large", entryBody(map[string]any{"payload": strings.Repeat("x", MaxPayloadBytes)}), "invalid-input"},
		{"correlation id too long", entryBody(map[string]any{"correlationId": strings.Repeat("c", 129)}), "invalid-input"},
		{"malformed json", `{"action":`, "invalid-json"},
		{"wrong type", entryBody(map[string]any{"action": 7}), "invalid-json"},
	} {
		r := h.do("POST", "/api/audit-entries", tok, tc.body)
		if r.Code != 400 || r.ProblemCode(t) != tc.code {
			t.Errorf("%s: %d %s, want 400 %s", tc.name, r.Code, r.Body, tc.code)
		}
	}
	if p := h.list("/api/audit-entries", tok); len(p.Value) != 0 {
		t.Fatalf("refused requests recorded %d entries for %s", len(p.Value), tenant)
	}
	// Within the allowed skew is fine.
	h.record(tok, "", map[string]any{"occurredAt": time.Now().Add(4 * time.Minute).Format(time.RFC3339)})
}

func TestRecordAuditEntry_403_TenantSuspended(t *testing.T) {
	h := newHarness(t)
	tenant, tok := h.tenant()
	h.record(tok, "", nil)
	h.dir[tenant] = tenancy.StatusSuspended
	r := h.do("POST", "/api/audit-entries", tok, entryBody(nil))
	if r.Code != http.StatusForbidden || r.ProblemCode(t) != "tenant-suspended" {
		t.Fatalf("%d %s", r.Code, r.Body)
	}
	if r := h.do("POST", "/api/audit-entries?tenantId="+tenant.String(), h.admin, entryBody(nil)); r.Code != 403 || r.ProblemCode(t) != "tenant-suspended" {
		t.Fatalf("platform admin writing for a suspended tenant: %d %s", r.Code, r.Body)
	}
	// Reads stay open, and nothing was written.
	if p := h.list("/api/audit-entries", tok); len(p.Value) != 1 {
		t.Fatalf("%d entries, want 1", len(p.Value))
	}
	h.dir[tenant] = tenancy.StatusDecommissioned
	if r := h.do("POST", "/api/audit-entries", tok, entryBody(nil)); r.Code != 403 || r.ProblemCode(t) != "tenant-suspended" {
		t.Fatalf("decommissioned: %d %s", r.Code, r.Body)
	}
	unknown := tenancy.NewTenantID()
	if r := h.do("POST", "/api/audit-entries", h.token(unknown.String(), false, ScopeWrite), entryBody(nil)); r.Code != 404 || r.ProblemCode(t) != "tenant-not-found" {
		t.Fatalf("tenant unknown to the directory: %d %s", r.Code, r.Body)
	}
}

func TestRecordAuditEntry_403_MissingScope(t *testing.T) {
	h := newHarness(t)
	tenant, _ := h.tenant()
	readOnly := h.token(tenant.String(), false, ScopeRead)
	if r := h.do("POST", "/api/audit-entries", readOnly, entryBody(nil)); r.Code != 403 || r.ProblemCode(t) != "insufficient-scope" {
		t.Fatalf("POST with audit.read only: %d %s", r.Code, r.Body)
	}
	writeOnly := h.token(tenant.String(), false, ScopeWrite)
	for _, path := range []string{"/api/audit-entries", "/api/audit-entries/verify", "/api/audit-entries/" + ids.New()} {
		if r := h.do("GET", path, writeOnly, nil); r.Code != 403 || r.ProblemCode(t) != "insufficient-scope" {
			t.Fatalf("GET %s with audit.write only: %d %s", path, r.Code, r.Body)
		}
	}
	if r := h.do("GET", "/api/audit-entries", "", nil); r.Code != 401 || r.ProblemCode(t) != "unauthorized" {
		t.Fatalf("no token: %d %s", r.Code, r.Body)
	}
}

func TestQueryAuditEntries_FiltersAndPages(t *testing.T) {
	h := newHarness(t)
	_, tok := h.tenant()
	const trace = "0af7651916cd43dd8448eb211c80319c"
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	at := func(h int) string { return t0.Add(time.Duration(h) * time.Hour).Format(time.RFC3339) }
	for _, over := range []map[string]any{
		{"occurredAt": at(0), "traceId": trace},                                                 // 1
		{"occurredAt": at(1), "actor": map[string]string{"type": "user", "id": "bob"}},          // 2
		{"occurredAt": at(2), "action": "document.deleted", "traceId": trace},                   // 3
		{"occurredAt": at(3), "resource": map[string]string{"type": "folder", "id": "f-1"}},     // 4
		{"occurredAt": at(4), "resource": map[string]string{"type": "document", "id": "doc-2"}}, // 5
		{"occurredAt": at(5), "actor": map[string]string{"type": "service", "id": "reporting"}}, // 6
		{"occurredAt": at(6)}, // 7
	} {
		h.record(tok, "", over)
	}
	for _, tc := range []struct {
		query string
		want  []int
	}{
		{"", []int{1, 2, 3, 4, 5, 6, 7}},
		{"actorId=alice", []int{1, 3, 4, 5, 7}},
		{"actorId=bob", []int{2}},
		{"action=document.deleted", []int{3}},
		{"resourceType=folder", []int{4}},
		{"resourceType=document&resourceId=doc-2", []int{5}},
		{"traceId=" + trace, []int{1, 3}},
		{"from=" + url.QueryEscape(at(2)) + "&to=" + url.QueryEscape(at(5)), []int{3, 4, 5}},
		{"from=" + at(2) + "&actorId=alice", []int{3, 4, 5, 7}},
		{"to=2026-03-01T12:30:00%2B02:00", []int{1}}, // offsets are honoured
		{"to=2026-03-01T12:30:00+02:00", []int{1}},   // an unencoded '+' arrives as a space
		{"action=nothing-like-this", []int{}},
	} {
		if got := seqs(h.list("/api/audit-entries?"+tc.query, tok)); fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("?%s: seqs %v, want %v", tc.query, got, tc.want)
		}
	}

	// Paging: limit=3 walks every matching entry once, in seq order, following nextLink.
	var walked []int
	path := "/api/audit-entries?actorId=alice&limit=3"
	for pages := 0; path != "" && pages < 10; pages++ {
		p := h.list(path, tok)
		walked = append(walked, seqs(p)...)
		if p.NextLink != "" && !strings.Contains(p.NextLink, "actorId=alice") {
			t.Fatalf("nextLink drops the filter: %s", p.NextLink)
		}
		path = p.NextLink
	}
	if fmt.Sprint(walked) != "[1 3 4 5 7]" {
		t.Fatalf("paged seqs %v", walked)
	}

	for _, tc := range []struct{ query, code string }{
		{"from=yesterday", "invalid-time"},
		{"to=2026-13-01T00:00:00Z", "invalid-time"},
		{"from=" + at(3) + "&to=" + at(3), "invalid-time-range"},
		{"traceId=XYZ", "invalid-filter"},
		{"resourceId=doc-1", "invalid-filter"},
		{"actorId=" + strings.Repeat("a", 201), "invalid-filter"},
		{"cursor=not-ours", "invalid-cursor"},
		{"cursor=" + httpx.EncodeCursor("-5"), "invalid-cursor"},
		{"limit=0", "invalid-limit"},
		{"limit=201", "invalid-limit"},
		{"tenantId=not-a-uuid", "invalid-tenant-id"},
	} {
		r := h.do("GET", "/api/audit-entries?"+tc.query, tok, nil)
		if r.Code != 400 || r.ProblemCode(t) != tc.code {
			t.Errorf("?%s: %d %s, want 400 %s", tc.query, r.Code, r.Body, tc.code)
		}
	}
}

func TestGetAuditEntry_404_UnknownOrMalformedID(t *testing.T) {
	h := newHarness(t)
	_, tok := h.tenant()
	for _, id := range []string{ids.New(), "not-a-uuid", strings.ToUpper(ids.New())} {
		if r := h.do("GET", "/api/audit-entries/"+id, tok, nil); r.Code != 404 || r.ProblemCode(t) != "audit-entry-not-found" {
			t.Errorf("GET %s: %d %s", id, r.Code, r.Body)
		}
	}
}

func TestVerify_ReportsTheTamperedEntryAndOnlyWithinTheWindow(t *testing.T) {
	h := newHarness(t)
	tenant, tok := h.tenant()
	t0 := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	var ids []string
	for i := range 4 {
		ids = append(ids, h.record(tok, "", map[string]any{"occurredAt": t0.Add(time.Duration(i) * time.Hour).Format(time.RFC3339)})["id"].(string))
	}
	ok := h.do("GET", "/api/audit-entries/verify", tok, nil)
	if ok.Code != 200 {
		t.Fatalf("%d %s", ok.Code, ok.Body)
	}
	if m := ok.JSON(t); m["ok"] != true || m["entriesChecked"] != 4.0 || m["firstBroken"] != nil || m["tenantId"] != tenant.String() ||
		!strings.Contains(string(ok.Body), `"firstBroken":null`) || !strings.Contains(string(ok.Body), `"from":null`) {
		t.Fatalf("intact: %s", ok.Body)
	}

	tamper(t, `UPDATE audit_entries SET payload = '{"with":"mallory"}' WHERE tenant_id = $1 AND entry_id = $2`, tenant.String(), ids[1])
	r := h.do("GET", "/api/audit-entries/verify?from="+t0.Format(time.RFC3339)+"&to="+t0.Add(4*time.Hour).Format(time.RFC3339), tok, nil)
	m := r.JSON(t)
	broken, _ := m["firstBroken"].(map[string]any)
	if r.Code != 200 || m["ok"] != false || broken == nil || broken["id"] != ids[1] || broken["seq"] != 2.0 ||
		broken["reason"] != ReasonHashMismatch || m["entriesChecked"] != 2.0 || m["from"] != t0.Format(time.RFC3339) {
		t.Fatalf("tampered: %d %s", r.Code, r.Body)
	}
	// A window after the tampered entry is anchored on its unchanged stored hash: intact.
	later := h.do("GET", "/api/audit-entries/verify?from="+t0.Add(2*time.Hour).Format(time.RFC3339), tok, nil).JSON(t)
	if later["ok"] != true || later["entriesChecked"] != 2.0 {
		t.Fatalf("window after the tampered entry: %v", later)
	}
	if r := h.do("GET", "/api/audit-entries/verify?from="+t0.Add(time.Hour).Format(time.RFC3339)+"&to="+t0.Format(time.RFC3339), tok, nil); r.Code != 400 || r.ProblemCode(t) != "invalid-time-range" {
		t.Fatalf("inverted window: %d %s", r.Code, r.Body)
	}
	if r := h.do("GET", "/api/audit-entries/verify", h.admin, nil); r.Code != 400 || r.ProblemCode(t) != "tenant-required" {
		t.Fatalf("admin without tenantId: %d %s", r.Code, r.Body)
	}
	adm := h.do("GET", "/api/audit-entries/verify?tenantId="+tenant.String(), h.admin, nil).JSON(t)
	if adm["ok"] != false || adm["firstBroken"].(map[string]any)["id"] != ids[1] {
		t.Fatalf("admin verify: %v", adm)
	}
}

// Tenant A's token reaches none of B's entries by any route, and A's verify covers A's chain only.
func TestIsolation_TenantAReadsNeitherBNorBsVerify(t *testing.T) {
	h := newHarness(t)
	a, tokA := h.tenant()
	b, tokB := h.tenant()
	const traceB = "b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0"
	h.record(tokA, "", nil)
	eb := h.record(tokB, "", map[string]any{"traceId": traceB, "action": "b.secret"})
	h.record(tokB, "", nil)
	bID := eb["id"].(string)

	for _, tc := range []struct {
		method, path string
		want         int
		code         string
	}{
		{"GET", "/api/audit-entries/" + bID, 404, "audit-entry-not-found"},
		{"GET", "/api/audit-entries/" + bID + "?tenantId=" + b.String(), 403, "tenant-mismatch"},
		{"GET", "/api/audit-entries?tenantId=" + b.String(), 403, "tenant-mismatch"},
		{"GET", "/api/audit-entries/verify?tenantId=" + b.String(), 403, "tenant-mismatch"},
		{"POST", "/api/audit-entries?tenantId=" + b.String(), 403, "tenant-mismatch"},
	} {
		var body any
		if tc.method == "POST" {
			body = entryBody(nil)
		}
		r := h.do(tc.method, tc.path, tokA, body)
		if r.Code != tc.want || r.ProblemCode(t) != tc.code {
			t.Errorf("%s %s as A: %d %s, want %d %s", tc.method, tc.path, r.Code, r.Body, tc.want, tc.code)
		}
	}
	for _, q := range []string{"", "?traceId=" + traceB, "?action=b.secret", "?tenantId=" + a.String()} {
		for _, e := range h.list("/api/audit-entries"+q, tokA).Value {
			if e["tenantId"] != a.String() {
				t.Fatalf("A's list%s holds %v", q, e)
			}
		}
	}
	if got := seqs(h.list("/api/audit-entries", tokA)); fmt.Sprint(got) != "[1]" {
		t.Fatalf("A's entries: %v", got)
	}
	v := h.do("GET", "/api/audit-entries/verify", tokA, nil).JSON(t)
	if v["tenantId"] != a.String() || v["entriesChecked"] != 1.0 || v["ok"] != true {
		t.Fatalf("A's verify: %v", v)
	}
	// B's chain stays B's: tampering with B does not show in A's verify, and B's shows it.
	tamper(t, `UPDATE audit_entries SET action = 'b.public' WHERE tenant_id = $1 AND entry_id = $2`, b.String(), bID)
	if v := h.do("GET", "/api/audit-entries/verify", tokA, nil).JSON(t); v["ok"] != true {
		t.Fatalf("A's verify after B was tampered with: %v", v)
	}
	if v := h.do("GET", "/api/audit-entries/verify", tokB, nil).JSON(t); v["ok"] != false {
		t.Fatalf("B's verify: %v", v)
	}
}

// Times are bounded in UTC: an offset that carries 9999-12-31 into year 10000 is a 400, not a 500
// from rendering the answer.
func TestVerify_400_TimeBeyond9999InUTC(t *testing.T) {
	h := newHarness(t)
	_, tok := h.tenant()
	for _, q := range []string{"to=9999-12-31T23:59:59-23:59", "from=9999-12-31T23:59:59-23:59",
		"from=0001-01-01T00:00:00%2B00:01", "to=10000-01-01T00:00:00Z"} {
		for _, path := range []string{"/api/audit-entries/verify?", "/api/audit-entries?"} {
			r := h.do("GET", path+q, tok, nil)
			if r.Code != http.StatusBadRequest || r.ProblemCode(t) != "invalid-time" {
				t.Fatalf("GET %s%s: %d %s, want 400 invalid-time", path, q, r.Code, r.Body)
			}
		}
	}
	if r := h.do("GET", "/api/audit-entries/verify?to=9999-12-31T23:59:59Z", tok, nil); r.Code != http.StatusOK {
		t.Fatalf("the last second of 9999 in UTC: %d %s", r.Code, r.Body)
	}
	r := h.do("POST", "/api/audit-entries", tok, entryBody(map[string]any{"occurredAt": "0001-01-01T00:00:00+00:01"}))
	if r.Code != http.StatusBadRequest || r.ProblemCode(t) != "invalid-input" {
		t.Fatalf("occurredAt before year 1 in UTC: %d %s", r.Code, r.Body)
	}
}

// A control character anywhere in the body (payload included) or in a filter is a 400 naming it.
func TestRecordAuditEntry_400_ControlCharacters(t *testing.T) {
	h := newHarness(t)
	_, tok := h.tenant()
	for _, tc := range []struct {
		name  string
		over  map[string]any
		field string
	}{
		{"NUL in actor.id", map[string]any{"actor": map[string]string{"type": "user", "id": "al\x00ice"}}, "actor.id"},
		{"NUL in payload", map[string]any{"payload": map[string]any{"note": "a\x00b"}}, "payload"},
		{"NUL in a payload key", map[string]any{"payload": map[string]any{"k\x00": 1}}, "payload"},
		{"escape in resource.id", map[string]any{"resource": map[string]string{"type": "document", "id": "d\x1b1"}}, "resource.id"},
		{"unescaped C1 control in payload", map[string]any{"payload": map[string]any{"note": "a\u0085b"}}, "payload"},
		{"DEL in payload", map[string]any{"payload": []any{"a\x7fb"}}, "payload"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := h.do("POST", "/api/audit-entries", tok, entryBody(tc.over))
			if r.Code != http.StatusBadRequest || r.ProblemCode(t) != "invalid-input" || !strings.Contains(string(r.Body), `"field":"`+tc.field+`"`) {
				t.Fatalf("%d %s, want 400 invalid-input naming %s", r.Code, r.Body, tc.field)
			}
		})
	}
	if r := h.do("GET", "/api/audit-entries?action=a%00b", tok, nil); r.Code != http.StatusBadRequest || r.ProblemCode(t) != "invalid-input" {
		t.Fatalf("NUL in a filter: %d %s", r.Code, r.Body)
	}
	if p := h.list("/api/audit-entries", tok); len(p.Value) != 0 {
		t.Fatalf("a refused request recorded %d entries", len(p.Value))
	}
	// Line breaks and tabs are text in a payload.
	h.record(tok, "", map[string]any{"payload": map[string]any{"note": "line one\n\tline two"}})
}

// X-Correlation-Id is optional and advisory: one holding a tab (or too long) is ignored, never
// blamed on a correlationId the body does not have.
func TestRecordAuditEntry_201_BadCorrelationHeaderIgnored(t *testing.T) {
	h := newHarness(t)
	_, tok := h.tenant()
	for _, v := range []string{"abc\tdef", strings.Repeat("x", 129)} {
		r := h.do("POST", "/api/audit-entries", tok, entryBody(nil), "X-Correlation-Id", v)
		if r.Code != http.StatusCreated {
			t.Fatalf("X-Correlation-Id %q: %d %s", v, r.Code, r.Body)
		}
		if _, has := r.JSON(t)["correlationId"]; has {
			t.Fatalf("the bad header was kept: %s", r.Body)
		}
	}
	if got := h.record(tok, "", nil); got["correlationId"] != nil {
		t.Fatalf("no header, yet correlationId %v", got["correlationId"])
	}
	r := h.do("POST", "/api/audit-entries", tok, entryBody(nil), "X-Correlation-Id", "order-42")
	if r.Code != http.StatusCreated || r.JSON(t)["correlationId"] != "order-42" {
		t.Fatalf("a good header: %d %s", r.Code, r.Body)
	}
}

// A payload nested deeper than MaxPayloadDepth is a 400: stored, it would exceed what
// encoding/json writes (10,000 levels) inside a listing page, and every later GET of the tenant's
// entries would answer 500 for good (the trail is append-only). Unpaired surrogate escapes are
// refused like bytes that are not UTF-8.
func TestRecordAuditEntry_400_PayloadTooDeepOrNotUTF8(t *testing.T) {
	h := newHarness(t)
	_, tok := h.tenant()
	nested := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	body := func(payload string) string {
		return `{"actor":{"type":"user","id":"alice"},"action":"document.shared","resource":{"type":"document","id":"d"},"payload":` + payload + `}`
	}
	for name, payload := range map[string]string{
		"one level too deep":       nested(MaxPayloadDepth + 1),
		"deep enough to poison":    nested(9999),
		"deep inside an object":    `{"a":` + nested(MaxPayloadDepth) + `}`,
		"unpaired high surrogate":  `{"note":"\ud800"}`,
		"unpaired low surrogate":   `["\udfff"]`,
		"a byte that is not UTF-8": "{\"note\":\"\xff\"}",
	} {
		r := h.do("POST", "/api/audit-entries", tok, body(payload))
		if r.Code != http.StatusBadRequest || r.ProblemCode(t) != "invalid-input" || !strings.Contains(string(r.Body), "payload") {
			t.Errorf("%s: %d %s, want 400 invalid-input naming the payload", name, r.Code, r.Body)
		}
	}
	if r := h.do("POST", "/api/audit-entries", tok, body(`{"a":`+nested(MaxPayloadDepth-1)+`,"s":"[{\"}"}`)); r.Code != http.StatusCreated {
		t.Fatalf("a payload %d levels deep: %d %s", MaxPayloadDepth, r.Code, r.Body)
	}
	if p := h.list("/api/audit-entries", tok); len(p.Value) != 1 {
		t.Fatalf("listed %d entries, want the one accepted", len(p.Value))
	}
}

// to is exclusive, so the earliest time there is bounds the window to nothing (it is not "no
// bound").
func TestQueryAuditEntries_ToAtTheEarliestTimeIsEmpty(t *testing.T) {
	h := newHarness(t)
	_, tok := h.tenant()
	h.record(tok, "", nil)
	if p := h.list("/api/audit-entries?to=0001-01-01T00:00:00Z", tok); len(p.Value) != 0 {
		t.Fatalf("%d entries before 0001-01-01, want none", len(p.Value))
	}
	r := h.do("GET", "/api/audit-entries/verify?to=0001-01-01T00:00:00Z", tok, nil)
	if r.Code != http.StatusOK || r.JSON(t)["entriesChecked"] != 0.0 || r.JSON(t)["to"] == nil {
		t.Fatalf("verify: %d %s", r.Code, r.Body)
	}
}
