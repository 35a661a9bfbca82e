package ratelimit

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"spine/shared/entitlements"
	"spine/shared/httpx"
	"spine/shared/testenv/apitest"
)

// BenchmarkMiddleware is the limiter's overhead on a cached read: the same authenticated GET
// through the /api edge without the limiter (bare), with it deciding in the stack's Redis (one
// EVALSHA round trip), in memory, and for an exempt platform admin. The limit is never reached.
//
//	go test -run '^$' -bench Middleware -benchtime 2s ./shared/ratelimit/
func BenchmarkMiddleware(b *testing.B) {
	src := newSource()
	tn := newTenant(b)
	src.set(tn, entitlements.Limit{Rate: 1 << 30, Burst: 1 << 30, Period: time.Second},
		entitlements.Limit{Route: routeOne, Rate: 1 << 30, Burst: 1 << 30, Period: time.Second})
	tokens := apitest.NewTokens(b)
	build := func(lim *Limiter) *echo.Echo {
		e := echo.New()
		_, secured := httpx.NewAPI(e, httpx.APIConfig{Verifier: tokens.Verifier(b), MaxBodyBytes: 64 << 10})
		if lim != nil {
			secured.Use(lim.Middleware())
		}
		secured.GET("/things/:id", func(c echo.Context) error { return c.JSON(http.StatusOK, map[string]string{"ok": "yes"}) })
		return e
	}
	limiter := func(cfg Config) *Limiter {
		l, err := New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		return l
	}
	tenantTok, adminTok := tokens.Mint(b, tn.String(), false), tokens.Mint(b, "", true)
	cases := []struct {
		name  string
		e     *echo.Echo
		token string
	}{
		{"bare", build(nil), tenantTok},
		{"redis", build(limiter(Config{Redis: stackRedis(b), Source: src})), tenantTok},
		{"memory", build(limiter(Config{Source: src})), tenantTok},
		{"exempt-admin", build(limiter(Config{Redis: stackRedis(b), Source: src})), adminTok},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, "/api/things/1", nil)
			req.Header.Set("Authorization", "Bearer "+c.token)
			for b.Loop() {
				rec := httptest.NewRecorder()
				c.e.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("%d %s", rec.Code, rec.Body)
				}
			}
		})
	}
}
