package httpx

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/labstack/echo/v4"

	"spine/shared/auth"
	"spine/shared/problem"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.b.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// One line per request, named by the route, with status, a readable duration, the trace and the
// tenant; never the token, the query or the body. Health answers are quiet; skipped paths silent.
func TestAccessLogAndRoute(t *testing.T) {
	logs := &lockedBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e := echo.New()
	e.HTTPErrorHandler = (&problem.Handler{}).ServeError
	e.Use(Route(), AccessLog(logger, AccessLogConfig{
		Skip:  func(c echo.Context) bool { return !strings.HasPrefix(c.Request().URL.Path, "/api/") },
		Quiet: func(c echo.Context) bool { return c.Path() == "/api/health" },
	}))
	var pattern string
	api := e.Group("/api", Trace(), func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error { // stands in for auth.Middleware
			if tok := c.Request().Header.Get("Authorization"); tok != "" {
				c.SetRequest(c.Request().WithContext(auth.WithPrincipal(c.Request().Context(), auth.Principal{Subject: "u", TenantID: "t-1"})))
			}
			return next(c)
		}
	})
	api.GET("/things/:id", func(c echo.Context) error {
		pattern = c.Request().Pattern
		if c.Param("id") == "missing" {
			return echo.ErrNotFound
		}
		return c.String(http.StatusOK, "ok")
	})
	api.GET("/health", func(c echo.Context) error { return c.NoContent(http.StatusOK) })
	e.POST("/OutboxDrain", func(c echo.Context) error { return c.NoContent(http.StatusOK) })

	do := func(method, path, token string) int {
		req := httptest.NewRequest(method, path, strings.NewReader(`{"secret":"body"}`))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		return rec.Code
	}
	if code := do("GET", "/api/things/42?q=hidden", "tok-secret"); code != 200 {
		t.Fatalf("GET = %d", code)
	}
	if pattern != "GET /api/things/:id" {
		t.Errorf("Pattern = %q", pattern)
	}
	if code := do("GET", "/api/things/missing", ""); code != 404 {
		t.Fatalf("GET missing = %d", code)
	}
	do("GET", "/api/health", "")
	do("POST", "/OutboxDrain", "")

	lines := logs.lines(t)
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3 (the invocation path is skipped): %v", len(lines), lines)
	}
	ok, missing, health := lines[0], lines[1], lines[2]
	if ok["msg"] != "request" || ok["level"] != "INFO" || ok["method"] != "GET" || ok["route"] != "/api/things/:id" ||
		ok["status"] != float64(200) || ok["tenantId"] != "t-1" || len(ok["traceId"].(string)) != 32 {
		t.Errorf("request line: %v", ok)
	}
	if d, _ := ok["duration"].(string); !strings.HasSuffix(d, "s") {
		t.Errorf("duration %v is not readable", ok["duration"])
	}
	if missing["status"] != float64(404) || missing["level"] != "INFO" || missing["tenantId"] != nil {
		t.Errorf("404 line (status written by the error handler, no tenant): %v", missing)
	}
	if health["route"] != "/api/health" || health["level"] != "DEBUG" {
		t.Errorf("health line: %v", health)
	}
	all := logs.b.String()
	for _, leak := range []string{"tok-secret", "hidden", "secret\\\":"} {
		if strings.Contains(all, leak) {
			t.Errorf("the log holds %q: %s", leak, all)
		}
	}
}
