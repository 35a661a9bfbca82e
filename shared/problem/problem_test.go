package problem

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
)

var errDomain = errors.New("domain: thing is gone")

func serve(t *testing.T, h *Handler, err error, ctx context.Context) *httptest.ResponseRecorder {
	t.Helper()
	e := echo.New()
	req := httptest.NewRequest("GET", "/api/things/1", nil).WithContext(ctx)
	rec := httptest.NewRecorder()
	h.ServeError(err, e.NewContext(req, rec))
	return rec
}

func TestServeError_MapsOnceAndNeverLeaksCauses(t *testing.T) {
	h := &Handler{Mappers: []Mapper{func(err error) *Problem {
		if errors.Is(err, errDomain) {
			return New(http.StatusGone, "thing-gone", "The thing is gone.")
		}
		return nil
	}}}
	for _, tc := range []struct {
		name   string
		err    error
		status int
		code   string
	}{
		{"mapped sentinel, wrapped", fmt.Errorf("store: %w", errDomain), 410, "thing-gone"},
		{"problem passes through", New(http.StatusConflict, "slug-taken", "taken").WithHeader("Retry-After", "1"), 409, "slug-taken"},
		{"echo 404", echo.ErrNotFound, 404, "not-found"},
		{"echo 405", echo.ErrMethodNotAllowed, 405, "method-not-allowed"},
		{"unknown error is internal", errors.New("pq: password authentication failed for user app at 10.0.0.1"), 500, "internal"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := serve(t, h, tc.err, context.Background())
			if rec.Code != tc.status || rec.Header().Get("Content-Type") != ContentType {
				t.Fatalf("%d %q", rec.Code, rec.Header().Get("Content-Type"))
			}
			var p map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
				t.Fatal(err)
			}
			if p["code"] != tc.code || p["status"] != float64(tc.status) || p["type"] != TypeBase+tc.code || p["instance"] != "/api/things/1" {
				t.Fatalf("body %v", p)
			}
			if tc.status == 500 && (contains(rec.Body.String(), "password") || contains(rec.Body.String(), "10.0.0.1")) {
				t.Fatalf("the cause leaked: %s", rec.Body)
			}
		})
	}
}

func TestServeError_AbandonedRequestWritesNoProblem(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rec := serve(t, &Handler{}, fmt.Errorf("query: %w", context.Canceled), ctx)
	if rec.Code != 499 || rec.Body.Len() != 0 {
		t.Fatalf("%d %q", rec.Code, rec.Body)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// A problem answered for many requests (a package-level value) carries each request's own path
// as its instance, and is never changed by writing it.
func TestWrite_SharedProblemAnswersEachRequestWithItsOwnInstance(t *testing.T) {
	shared := New(http.StatusForbidden, "forbidden-here", "No.")
	for _, path := range []string{"/first", "/second"} {
		rec := httptest.NewRecorder()
		Write(rec, httptest.NewRequest("POST", path, nil), shared)
		if !strings.Contains(rec.Body.String(), `"instance":"`+path+`"`) {
			t.Fatalf("POST %s answered %s", path, rec.Body)
		}
	}
	if shared.Instance != "" {
		t.Fatalf("Write changed the shared problem: instance %q", shared.Instance)
	}
}

// On a route named OAuthRoute every problem — one returned by middleware before the handler too,
// as the /api edge's are — is OAuth 2.0 error JSON with the same status and headers; other routes
// keep problem+json.
func TestServeError_OAuthRouteAnswersOAuthErrorJSON(t *testing.T) {
	e := echo.New()
	e.HTTPErrorHandler = (&Handler{}).ServeError
	edge := func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			switch c.QueryParam("fail") {
			case "413":
				return New(http.StatusRequestEntityTooLarge, "body-too-large", "The request body is too large.")
			case "400":
				return New(http.StatusBadRequest, "invalid-input", "state holds a control character.")
			case "503":
				return New(http.StatusServiceUnavailable, "unavailable", "Try later.").WithHeader("Retry-After", "5")
			case "500":
				return errors.New("pq: secret internals")
			}
			return next(c)
		}
	}
	g := e.Group("/api", edge)
	for _, r := range g.Any("/connect/*", func(c echo.Context) error { return c.String(http.StatusOK, "ok") }) {
		r.Name = OAuthRoute
	}
	g.GET("/things", func(c echo.Context) error { return c.String(http.StatusOK, "ok") })

	for _, tc := range []struct {
		fail, code string
		status     int
	}{{"413", "invalid_request", 413}, {"400", "invalid_request", 400}, {"503", "temporarily_unavailable", 503}, {"500", "server_error", 500}} {
		for _, method := range []string{"GET", "POST"} {
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, httptest.NewRequest(method, "/api/connect/token?fail="+tc.fail, nil))
			var body map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("%s %s: %q: %v", method, tc.fail, rec.Body, err)
			}
			if rec.Code != tc.status || rec.Header().Get("Content-Type") != "application/json" || rec.Header().Get("Cache-Control") != "no-store" ||
				body["error"] != tc.code || body["code"] != nil || strings.Contains(rec.Body.String(), "internals") {
				t.Errorf("%s %s: %d %v %s", method, tc.fail, rec.Code, rec.Header(), rec.Body)
			}
			if tc.fail == "503" && rec.Header().Get("Retry-After") != "5" {
				t.Errorf("503 without its Retry-After: %v", rec.Header())
			}
		}
	}
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest("GET", "/api/things?fail=413", nil))
	if rec.Code != 413 || rec.Header().Get("Content-Type") != ContentType {
		t.Fatalf("another route: %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
}

func TestDetail_TheMessageAfterItsSentinel(t *testing.T) {
	sentinel := errors.New("svc: invalid input")
	for err, want := range map[error]string{
		fmt.Errorf("%w: name is too long", sentinel):                         "name is too long",
		fmt.Errorf("wrapped: %w", fmt.Errorf("%w: slug is taken", sentinel)): "slug is taken",
		errors.New("no sentinel here"):                                       "no sentinel here",
	} {
		if got := Detail(err, sentinel); got != want {
			t.Errorf("Detail(%q) = %q, want %q", err, got, want)
		}
	}
}
