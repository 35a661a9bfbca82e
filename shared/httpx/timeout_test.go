package httpx

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"spine/shared/testenv/apitest"
)

// A handler that waits on a store that never answers (here: the request's context) is cut off at
// the request timeout and answered 503 timeout with Retry-After, not left to hang.
func TestTimeout_503WhenAStoreNeverAnswers(t *testing.T) {
	e := echo.New()
	api, _ := NewAPI(e, APIConfig{Verifier: apitest.NewTokens(t).Verifier(t), MaxBodyBytes: 1 << 10, RequestTimeout: 50 * time.Millisecond})
	api.GET("/stuck", func(c echo.Context) error {
		select {
		case <-c.Request().Context().Done():
			return c.Request().Context().Err()
		case <-time.After(30 * time.Second):
			return c.NoContent(http.StatusNoContent)
		}
	})
	rec := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/stuck", nil))
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("the request was not cut off by its timeout")
	}
	var p struct{ Code string }
	_ = json.Unmarshal(rec.Body.Bytes(), &p)
	if rec.Code != http.StatusServiceUnavailable || p.Code != "timeout" || rec.Header().Get("Retry-After") != "1" {
		t.Fatalf("%d %s, Retry-After %q", rec.Code, rec.Body, rec.Header().Get("Retry-After"))
	}
}
