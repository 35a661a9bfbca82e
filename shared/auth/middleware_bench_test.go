package auth

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
)

// BenchmarkMiddleware_Cached serves one authenticated request through echo: Middleware with a
// token already in the verified-token cache, RequireScope, and a handler writing a constant. It is
// the per-request cost of authentication at the HTTP edge, without the network.
func BenchmarkMiddleware_Cached(b *testing.B) {
	e := newEnv(b, 0)
	e.v.onKeyLookup = nil
	tok := e.es256(b, claims(time.Now()))
	srv := echo.New()
	srv.GET("/api/tenants/:id", func(c echo.Context) error { return c.String(http.StatusOK, "ok") },
		Middleware(e.v), RequireScope("tenant.read"))
	req := httptest.NewRequest(http.MethodGet, "/api/tenants/tenant-1", nil)
	req.Header.Set(echo.HeaderAuthorization, "Bearer "+tok)
	serve := func() {
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
	serve() // the first request verifies the signature and fills the cache
	b.ReportAllocs()
	for b.Loop() {
		serve()
	}
}
