package config

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/labstack/echo/v4"
	"github.com/redis/go-redis/v9"

	"spine/shared/cache"
	"spine/shared/entitlements"
	"spine/shared/httpx"
	"spine/shared/problem"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
	"spine/shared/testenv"
	"spine/shared/testenv/apitest"
)

// fakeDir is the tenant directory the tests control: every tenant is Active unless set.
type fakeDir struct {
	mu sync.Mutex
	m  map[tenancy.TenantID]tenancy.Status
}

func (d *fakeDir) TenantStatus(_ context.Context, id tenancy.TenantID) (tenancy.Status, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if st, ok := d.m[id]; ok {
		return st, nil
	}
	return tenancy.StatusActive, nil
}

// memEntitlements is an in-memory entitlements.Source: tenant → edition code → entitlements.
type memEntitlements struct {
	mu       sync.Mutex
	tenants  map[tenancy.TenantID]string
	editions map[string]entitlements.Entitlements
}

func (m *memEntitlements) Of(ctx context.Context, tenant tenancy.TenantID) (entitlements.Entitlements, error) {
	m.mu.Lock()
	code, ok := m.tenants[tenant]
	m.mu.Unlock()
	if !ok {
		return entitlements.Entitlements{}, entitlements.ErrUnknownTenant
	}
	return m.Edition(ctx, code)
}

func (m *memEntitlements) Edition(_ context.Context, code string) (entitlements.Entitlements, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.editions[code]
	if !ok {
		return e, fmt.Errorf("%w: %s", entitlements.ErrUnknownEdition, code)
	}
	return e, nil
}

func (m *memEntitlements) set(tenant tenancy.TenantID, code string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tenants[tenant] = code
}

// harness is the config API wired as app.go wires it (the /api edge, the authenticated group,
// the shared error mappers), over the package database and a Redis, with local copies on.
type harness struct {
	t      testing.TB
	e      *echo.Echo
	svc    *Service
	cache  *cache.Cache
	tokens *apitest.Tokens
	ents   *memEntitlements
	log    *stmtLog
}

type harnessOpts struct {
	redisURL string          // default: the stack's Redis
	tokens   *apitest.Tokens // default: a fresh key
	ents     *memEntitlements
	// requestTimeout is the edge's request deadline (default httpx.DefaultRequestTimeout).
	requestTimeout time.Duration
}

func newHarness(t testing.TB, o harnessOpts) *harness {
	t.Helper()
	if o.redisURL == "" {
		var err error
		if o.redisURL, err = testenv.Require("SPINE_REDIS_URL"); err != nil {
			t.Fatal(err)
		}
	}
	if o.tokens == nil {
		o.tokens = apitest.NewTokens(t)
	}
	if o.ents == nil {
		o.ents = &memEntitlements{tenants: map[tenancy.TenantID]string{}, editions: map[string]entitlements.Entitlements{}}
	}
	opt, err := redis.ParseURL(o.redisURL)
	if err != nil {
		t.Fatal(err)
	}
	opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout, opt.MaxRetries = 200*time.Millisecond, 200*time.Millisecond, 200*time.Millisecond, 0
	rdb := redis.NewClient(opt)
	c := cache.New(rdb, cache.Config{Local: 5 * time.Second, Cooldown: 100 * time.Millisecond, RetryInterval: 50 * time.Millisecond}, nil)
	t.Cleanup(func() { c.Close(); _ = rdb.Close() })
	rt, log := openTraced(t)
	svc := NewService(NewStore(rt), c, o.ents, &fakeDir{m: map[tenancy.TenantID]tenancy.Status{}}, ServiceConfig{}, slog.New(slog.DiscardHandler))
	e := echo.New()
	_, sec := httpx.NewAPI(e, httpx.APIConfig{Verifier: o.tokens.Verifier(t), MaxBodyBytes: 64 << 10, Mappers: []problem.Mapper{MapError},
		RequestTimeout: o.requestTimeout})
	NewAPI(svc).Routes(sec)
	return &harness{t: t, e: e, svc: svc, cache: c, tokens: o.tokens, ents: o.ents, log: log}
}

func (h *harness) do(method, path, token string, body any, hdr ...string) apitest.Response {
	h.t.Helper()
	return apitest.Do(h.t, h.e, method, path, token, body, hdr...)
}

func (h *harness) must(want int, method, path, token string, body any, hdr ...string) apitest.Response {
	h.t.Helper()
	r := h.do(method, path, token, body, hdr...)
	if r.Code != want {
		h.t.Fatalf("%s %s: %d %s, want %d", method, path, r.Code, r.Body, want)
	}
	return r
}

func (h *harness) admin() string {
	return h.tokens.MintAs(h.t, "platform-admin", "", true, ScopeConfigRead, ScopeConfigManage)
}

func (h *harness) tenantToken(tenant tenancy.TenantID) string {
	return h.tokens.MintAs(h.t, "user-"+tenant.String(), tenant.String(), false, ScopeConfigRead, ScopeConfigManage)
}

// stmtLog records every statement a pool sends (a pgx tracer).
type stmtLog struct {
	mu sync.Mutex
	n  int
}

func (l *stmtLog) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	l.mu.Lock()
	l.n++
	l.mu.Unlock()
	return ctx
}

func (l *stmtLog) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (l *stmtLog) count() int { l.mu.Lock(); defer l.mu.Unlock(); return l.n }

// openTraced opens a runtime pool of the package database whose statements are counted.
func openTraced(t testing.TB) (*sqlstore.DB, *stmtLog) {
	t.Helper()
	cfg, err := pgx.ParseConfig(testDB.RuntimeURL)
	if err != nil {
		t.Fatal(err)
	}
	log := &stmtLog{}
	cfg.Tracer = log
	db := stdlib.OpenDB(*cfg)
	t.Cleanup(func() { _ = db.Close() })
	return &sqlstore.DB{DB: db, Dialect: sqlstore.Postgres, Service: service}, log
}

var keySeq struct {
	sync.Mutex
	n int
}

// newKey returns a flag key no other test uses (definitions are platform-level, shared by the package).
func newKey(prefix string) string {
	keySeq.Lock()
	defer keySeq.Unlock()
	keySeq.n++
	return fmt.Sprintf("%s-%d-%d", prefix, time.Now().UnixNano()%1e9, keySeq.n)
}
