package ratelimit

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"syscall"
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

// BenchmarkMiddlewareParallel is BenchmarkMiddleware's Redis case under 32 concurrent requests
// (the bench's wrk connections), with the round trips shared (pipelined, as served; or one pipeline at a time) and with every
// decision sent alone. Besides ns/op it reports the CPU per request of this process
// (cpu-µs/op: the edge, the client, its syscalls) and of the Redis server (redis-cpu-µs/op, from
// INFO cpu): what a shared machine's noise moves least.
//
//	go test -run '^$' -bench MiddlewareParallel -benchtime 3s ./shared/ratelimit/
func BenchmarkMiddlewareParallel(b *testing.B) {
	src := newSource()
	tn := newTenant(b)
	src.set(tn, entitlements.Limit{Rate: 1 << 30, Burst: 1 << 30, Period: time.Second})
	tokens := apitest.NewTokens(b)
	tok := tokens.Mint(b, tn.String(), false)
	rdb := stackRedis(b)
	for _, c := range []struct {
		name string
		max  int
	}{{"pipelined", maxPipelines}, {"one-pipeline", 1}, {"alone", 1 << 30}} {
		b.Run(c.name, func(b *testing.B) {
			lim, err := New(Config{Redis: rdb, Source: src})
			if err != nil {
				b.Fatal(err)
			}
			lim.batch.max = c.max
			e := echo.New()
			_, secured := httpx.NewAPI(e, httpx.APIConfig{Verifier: tokens.Verifier(b), MaxBodyBytes: 64 << 10})
			secured.Use(lim.Middleware())
			secured.GET("/things/:id", func(c echo.Context) error { return c.JSON(http.StatusOK, map[string]string{"ok": "yes"}) })
			redisCPU := func() float64 {
				info, err := rdb.Info(b.Context(), "cpu").Result()
				if err != nil {
					b.Fatal(err)
				}
				var sum float64
				for _, line := range strings.Split(info, "\r\n") {
					if k, v, ok := strings.Cut(line, ":"); ok && (k == "used_cpu_sys" || k == "used_cpu_user") {
						f, _ := strconv.ParseFloat(v, 64)
						sum += f
					}
				}
				return sum
			}
			selfCPU := func() time.Duration {
				var ru syscall.Rusage
				_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
				return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
			}
			b.SetParallelism(16) // × GOMAXPROCS 2 = 32 concurrent requests
			r0, s0 := redisCPU(), selfCPU()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req := httptest.NewRequest(http.MethodGet, "/api/things/1", nil)
					req.Header.Set("Authorization", "Bearer "+tok)
					rec := httptest.NewRecorder()
					e.ServeHTTP(rec, req)
					if rec.Code != http.StatusOK {
						b.Errorf("%d %s", rec.Code, rec.Body)
						return
					}
				}
			})
			b.StopTimer()
			n := float64(b.N)
			b.ReportMetric(float64(selfCPU()-s0)/1e3/n, "cpu-µs/op")
			b.ReportMetric((redisCPU()-r0)*1e6/n, "redis-cpu-µs/op")
		})
	}
}
