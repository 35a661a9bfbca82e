package billing

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/redis/go-redis/v9"

	"spine/shared/cache"
	"spine/shared/contracts"
	"spine/shared/events"
	"spine/shared/functions"
	"spine/shared/httpx"
	"spine/shared/problem"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
	"spine/shared/testenv"
	"spine/shared/testenv/apitest"
)

// testDB is this package's fresh database (platform schema + billing's migrations).
var testDB *testenv.Database

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, "billing", &testDB)) }

// fakeDir is the tenant directory the tests control (the tenants service answers it in the app).
type fakeDir = testenv.Directory

// clock is a settable clock: tests move it across trial and period ends.
type clock struct{ offset atomic.Int64 }

func (c *clock) now() time.Time       { return sqlstore.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) move(d time.Duration) { c.offset.Add(int64(d)) }

// harness is the billing API wired as app.go wires it, over the package database and a Redis.
type harness struct {
	t      *testing.T
	e      *echo.Echo
	svc    *Service
	api    *API
	rt     *sqlstore.DB
	tokens *apitest.Tokens
	dir    *fakeDir
	clock  *clock
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	url, err := testenv.Require("SPINE_REDIS_URL")
	if err != nil {
		t.Fatal(err)
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	c := cache.New(rdb, cache.Config{}, nil)
	t.Cleanup(func() { c.Close(); _ = rdb.Close() })
	rt := testDB.OpenRuntime(t, sqlstore.PoolConfig{})
	clk := &clock{}
	dir := testenv.NewDirectory()
	svc := NewService(NewStore(rt), c, dir, ServiceConfig{Now: clk.now}, nil)
	api := NewAPI(svc, rt)
	tokens := apitest.NewTokens(t)
	e := echo.New()
	_, sec := httpx.NewAPI(e, httpx.APIConfig{Verifier: tokens.Verifier(t), MaxBodyBytes: 64 << 10, Mappers: []problem.Mapper{MapError}})
	api.Routes(sec)
	return &harness{t: t, e: e, svc: svc, api: api, rt: rt, tokens: tokens, dir: dir, clock: clk}
}

func (h *harness) do(method, path, token string, body any, hdr ...string) apitest.Response {
	h.t.Helper()
	return apitest.Do(h.t, h.e, method, path, token, body, hdr...)
}

// must sends a request and fails the test unless it answers want.
func (h *harness) must(want int, method, path, token string, body any, hdr ...string) apitest.Response {
	h.t.Helper()
	r := h.do(method, path, token, body, hdr...)
	if r.Code != want {
		h.t.Fatalf("%s %s: %d %s, want %d", method, path, r.Code, r.Body, want)
	}
	return r
}

// tenantFixture is an Active tenant with tokens of its administrator (tenant.read and
// tenant.manage) and of a reader (tenant.read only).
type tenantFixture struct {
	id     tenancy.TenantID
	admin  string
	reader string
}

func (h *harness) tenant() tenantFixture {
	h.t.Helper()
	id := tenancy.NewTenantID()
	h.dir.Set(id, tenancy.StatusActive)
	return tenantFixture{id: id, admin: h.tokens.Mint(h.t, id.String(), false, ScopeRead, ScopeManage),
		reader: h.tokens.Mint(h.t, id.String(), false, ScopeRead)}
}

// platformAdmin is a platform admin's token with the billing scopes.
func (h *harness) platformAdmin() string {
	return h.tokens.Mint(h.t, "", true, ScopeRead, ScopeManage, ScopeUsageWrite)
}

// meter is a metering client's token: a platform token with billing.usage.write only.
func (h *harness) meter() string {
	return h.tokens.Mint(h.t, "", true, ScopeUsageWrite)
}

// usagePath is POST /api/usage-records naming the tenant, as a metering client calls it.
func usagePath(f tenantFixture) string { return "/api/usage-records?tenantId=" + f.id.String() }

// subscribe subscribes the tenant to edition through the API and returns the answer.
func (h *harness) subscribe(f tenantFixture, edition string) subscriptionJSON {
	h.t.Helper()
	r := h.must(http.StatusCreated, "POST", "/api/subscriptions", f.admin, map[string]any{"editionCode": edition})
	var s subscriptionJSON
	if err := json.Unmarshal(r.Body, &s); err != nil {
		h.t.Fatal(err)
	}
	return s
}

// invoices lists the tenant's invoices through the API.
func (h *harness) invoices(f tenantFixture) []invoiceJSON {
	h.t.Helper()
	r := h.must(http.StatusOK, "GET", "/api/invoices", f.reader, nil)
	var page struct{ Value []invoiceJSON }
	if err := json.Unmarshal(r.Body, &page); err != nil {
		h.t.Fatal(err)
	}
	return page.Value
}

// deliver hands BillingOnTenantsEvent one event of the tenants topic, in the host's encoding.
func (h *harness) deliver(tenant tenancy.TenantID, typ string, data any) error {
	h.t.Helper()
	ev, err := events.New("tenants", typ, tenant.String(), tenant.String(), data, events.Meta{Actor: "admin:test"})
	if err != nil {
		h.t.Fatal(err)
	}
	return h.deliverEvent(ev)
}

func (h *harness) deliverEvent(ev events.Event) error {
	h.t.Helper()
	body, _ := json.Marshal(ev)
	d, meta := functions.ServiceBusMessage(body, functions.EncodingString, functions.ServiceBusMetadata{MessageID: ev.ID,
		DeliveryCount: 1, EnqueuedTimeUTC: time.Now(), ApplicationProperties: map[string]any{"tenantId": ev.TenantID}})
	raw, _ := json.Marshal(map[string]any{"Data": map[string]any{functions.ServiceBusBinding: d}, "Metadata": meta})
	var inv functions.Invocation
	if err := json.Unmarshal(raw, &inv); err != nil {
		h.t.Fatal(err)
	}
	inv.FunctionName = "BillingOnTenantsEvent"
	_, err := h.api.onTenantsEvent(context.Background(), &inv)
	return err
}

// outboxTypes returns the event types in the outbox for tenant, in order.
func (h *harness) outboxTypes(tenant tenancy.TenantID) []string {
	h.t.Helper()
	ctx := context.Background()
	var out []string
	if err := h.rt.InReadTx(ctx, sqlstore.TenantScope(tenant), func(tx *sqlstore.Tx) error {
		var err error
		out, err = testenv.QueryStrings(ctx, tx, `SELECT event_type FROM outbox WHERE tenant_id = $1 ORDER BY seq`, tenant.String())
		return err
	}); err != nil {
		h.t.Fatal(err)
	}
	return out
}

var _ = contracts.TenantRegistered
