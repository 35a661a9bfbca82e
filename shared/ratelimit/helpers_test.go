package ratelimit

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"github.com/redis/go-redis/v9"

	"spine/shared/cache"
	"spine/shared/entitlements"
	"spine/shared/httpx"
	"spine/shared/tenancy"
	"spine/shared/testenv"
	"spine/shared/testenv/apitest"
)

// memSource is the in-memory entitlements.Source of these tests: limits per tenant, an optional
// failure, and a count of the questions asked.
type memSource struct {
	mu       sync.Mutex
	of       map[tenancy.TenantID]entitlements.Entitlements
	err      error
	block    chan struct{} // when set, Of waits until it is closed
	editions map[string]entitlements.Entitlements
	calls    atomic.Int64
}

func newSource() *memSource {
	return &memSource{of: map[tenancy.TenantID]entitlements.Entitlements{}}
}

func (s *memSource) set(t tenancy.TenantID, limits ...entitlements.Limit) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.of[t] = entitlements.Entitlements{Edition: "test", Limits: limits}
}

func (s *memSource) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = err
}

func (s *memSource) Of(_ context.Context, t tenancy.TenantID) (entitlements.Entitlements, error) {
	s.calls.Add(1)
	if s.block != nil {
		<-s.block
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return entitlements.Entitlements{}, s.err
	}
	e, ok := s.of[t]
	if !ok {
		return entitlements.Entitlements{}, entitlements.ErrUnknownTenant
	}
	return e, nil
}

func (s *memSource) Edition(_ context.Context, code string) (entitlements.Entitlements, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.editions[code]
	if !ok {
		return entitlements.Entitlements{}, entitlements.ErrUnknownEdition
	}
	return e, nil
}

func (s *memSource) setEdition(code string, limits ...entitlements.Limit) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.editions == nil {
		s.editions = map[string]entitlements.Entitlements{}
	}
	s.editions[code] = entitlements.Entitlements{Edition: code, Limits: limits}
}

func newTenant(t testing.TB) tenancy.TenantID {
	t.Helper()
	id, err := tenancy.ParseTenantID(uuid.NewString())
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// stackRedis is a client of the stack's Redis with the binary's fail-fast options.
func stackRedis(t testing.TB) *redis.Client {
	t.Helper()
	url, err := testenv.Require("SPINE_REDIS_URL")
	if err != nil {
		t.Fatal(err)
	}
	return redisClient(t, url)
}

func redisClient(t testing.TB, url string) *redis.Client {
	t.Helper()
	opt, err := cache.ClientOptions(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// harness is the /api edge as the binary builds it (httpx.NewAPI) with the limiter on the
// authenticated group, and two routes: /api/things and /api/things/:id.
type harness struct {
	e      *echo.Echo
	tokens *apitest.Tokens
	lim    *Limiter
}

const (
	routeList = "/api/things"
	routeOne  = "/api/things/:id"
)

func newHarness(t testing.TB, cfg Config) *harness {
	t.Helper()
	lim, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tokens := apitest.NewTokens(t)
	e := echo.New()
	_, secured := httpx.NewAPI(e, httpx.APIConfig{Verifier: tokens.Verifier(t), MaxBodyBytes: 64 << 10})
	secured.Use(lim.Middleware())
	ok := func(c echo.Context) error { return c.JSON(http.StatusOK, map[string]string{"ok": "yes"}) }
	secured.GET("/things", ok)
	secured.GET("/things/:id", ok)
	return &harness{e: e, tokens: tokens, lim: lim}
}

func (h *harness) token(t testing.TB, tenant tenancy.TenantID) string {
	return h.tokens.Mint(t, tenant.String(), false)
}

func (h *harness) get(t testing.TB, path, token string) apitest.Response {
	t.Helper()
	return apitest.Do(t, h.e, http.MethodGet, path, token, nil)
}

var errBillingDown = errors.New("billing database unreachable")

func perMinute(route string, rate, burst int) entitlements.Limit {
	return entitlements.Limit{Route: route, Rate: rate, Burst: burst, Period: time.Minute}
}

// quietRedis keeps go-redis's per-dial lines out of the outage tests' output.
type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

func init() { redis.SetLogger(quietRedis{}) }
