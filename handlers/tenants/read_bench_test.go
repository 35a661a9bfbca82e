package tenants

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkGetTenant_Cached is GET /api/tenants/{id} through the real echo handler (the /api edge,
// token verification, scope check) with the tenant already in the real Redis: the bench's
// cached read without the network, so allocs/op counts the process's own work per request.
func BenchmarkGetTenant_Cached(b *testing.B) {
	h := newHarness(b, harnessOpts{})
	id := h.active(uniqueSlug("bench"))
	for name, token := range map[string]string{
		"admin":  h.admin,
		"tenant": h.token(id, false, ScopeRead),
	} {
		b.Run(name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, "/api/tenants/"+id, nil)
			req.Header.Set("Authorization", "Bearer "+token)
			serve := func() *httptest.ResponseRecorder {
				rec := httptest.NewRecorder()
				h.e.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("GET: %d %s", rec.Code, rec.Body)
				}
				return rec
			}
			serve() // fills the cache
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				serve()
			}
		})
	}
}
