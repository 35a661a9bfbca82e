package functions

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"spine/shared/problem"
)

// newApp returns an echo wired as Spine's main wires it: the problem error handler and Mount.
func newApp(t *testing.T, r *Registry, mw ...echo.MiddlewareFunc) (*echo.Echo, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, nil))
	e := echo.New()
	e.HTTPErrorHandler = (&problem.Handler{}).ServeError
	Mount(e, r, logger, mw...)
	return e, logs
}

func TestMountAndInvoke(t *testing.T) {
	type seen struct {
		inv     *Invocation
		fromCtx *Invocation
		timer   TimerInfo
		sys     SysInfo
		sbMeta  ServiceBusMetadata
		sbEvent map[string]any
	}
	got := make(chan seen, 8)
	var r Registry
	err := r.Add(
		Function{Name: "OutboxDrain", Timer: &TimerTrigger{Schedule: "0 */5 * * * *"}, Handler: func(ctx context.Context, inv *Invocation) (*Result, error) {
			s := seen{inv: inv}
			s.fromCtx, _ = FromContext(ctx)
			var err error
			if s.timer, err = inv.Timer(TimerBinding); err != nil {
				return nil, err
			}
			if s.sys, err = inv.Sys(); err != nil {
				return nil, err
			}
			got <- s
			return &Result{Logs: []string{"drained 3"}, ReturnValue: 3}, nil
		}},
		Function{Name: "AuditOnEvent", ServiceBus: &ServiceBusTrigger{Topic: "tenants", Subscription: "audit", Connection: "ServiceBusConnection"},
			Handler: func(ctx context.Context, inv *Invocation) (*Result, error) {
				s := seen{inv: inv}
				var err error
				if err = inv.Bind(ServiceBusBinding, &s.sbEvent); err != nil {
					return nil, err
				}
				if s.sbMeta, err = inv.ServiceBus(); err != nil {
					return nil, err
				}
				got <- s
				return nil, nil
			}},
		Function{Name: "Fails", Timer: &TimerTrigger{Schedule: "0 0 * * * *"}, Handler: func(context.Context, *Invocation) (*Result, error) {
			return nil, errors.New("database exploded")
		}},
		Function{Name: "Conflicts", Timer: &TimerTrigger{Schedule: "0 0 * * * *"}, Handler: func(context.Context, *Invocation) (*Result, error) {
			return nil, problem.New(http.StatusConflict, "busy", "Another run holds the lease.")
		}},
		Function{Name: "Unencodable", Timer: &TimerTrigger{Schedule: "0 0 * * * *"}, Handler: func(context.Context, *Invocation) (*Result, error) {
			return &Result{ReturnValue: make(chan int)}, nil
		}},
		Function{Name: "Tiny", Timer: &TimerTrigger{Schedule: "0 0 * * * *"}, MaxBodyBytes: 64, Handler: nopHandler},
		httpFn(),
	)
	if err != nil {
		t.Fatal(err)
	}
	marked := func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			c.Response().Header().Set("X-Middleware", "ran")
			return next(c)
		}
	}
	e, logs := newApp(t, &r, marked)
	ctx := context.Background()

	t.Run("readiness ping", func(t *testing.T) {
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		if rec.Code != http.StatusOK {
			t.Fatalf("GET / = %d", rec.Code)
		}
	})

	t.Run("timer invocation", func(t *testing.T) {
		last := time.Date(2026, 11, 26, 20, 0, 0, 0, time.UTC)
		next := last.Add(5 * time.Minute)
		status, res, body, err := Invoke(ctx, e, "OutboxDrain", TimerData(last, next, false), SysMetadata("OutboxDrain", next))
		if err != nil || status != http.StatusOK {
			t.Fatalf("Invoke = %d, %v, %s", status, err, body)
		}
		if len(res.Logs) != 1 || res.Logs[0] != "drained 3" || res.ReturnValue != float64(3) || res.Outputs == nil {
			t.Fatalf("result = %+v (body %s)", res, body)
		}
		if !bytes.Contains(body, []byte(`"Outputs":{}`)) {
			t.Fatalf("nil Outputs not written as {}: %s", body)
		}
		s := <-got
		if s.fromCtx != s.inv {
			t.Fatal("FromContext does not return the invocation")
		}
		if s.inv.FunctionName != "OutboxDrain" || s.inv.HostVersion != StandaloneHostVersion || len(s.inv.InvocationID) != 36 {
			t.Fatalf("invocation = %+v", s.inv)
		}
		if !s.timer.Last.Equal(last) || !s.timer.Next.Equal(next) || s.timer.IsPastDue {
			t.Fatalf("timer = %+v", s.timer)
		}
		if s.sys.MethodName != "OutboxDrain" || !s.sys.UtcNow.Equal(next) {
			t.Fatalf("sys = %+v", s.sys)
		}
	})

	t.Run("nil result is written with empty Outputs and Logs", func(t *testing.T) {
		data, md := ServiceBusMessage([]byte(cloudEvent), EncodingDoubleQuoted, ServiceBusMetadata{MessageID: "m-1", DeliveryCount: 4})
		status, res, body, err := Invoke(ctx, e, "AuditOnEvent", map[string]any{ServiceBusBinding: data}, md)
		if err != nil || status != http.StatusOK {
			t.Fatalf("Invoke = %d, %v, %s", status, err, body)
		}
		var wire map[string]json.RawMessage
		if err := json.Unmarshal(body, &wire); err != nil {
			t.Fatal(err)
		}
		if string(wire["Outputs"]) != "{}" || string(wire["Logs"]) != "[]" || string(wire["ReturnValue"]) != "null" {
			t.Fatalf("body = %s", body)
		}
		if res.Outputs == nil || res.Logs == nil {
			t.Fatalf("result = %+v", res)
		}
		s := <-got
		if s.sbEvent["type"] != "TenantRegistered" || s.sbMeta.DeliveryCount != 4 || s.sbMeta.MessageID != "m-1" {
			t.Fatalf("service bus handler saw %+v / %+v", s.sbEvent, s.sbMeta)
		}
	})

	t.Run("handler error fails the invocation with problem+json", func(t *testing.T) {
		status, res, body, err := Invoke(ctx, e, "Fails", nil, nil)
		if err != nil || res != nil {
			t.Fatalf("Invoke = %v, %+v", err, res)
		}
		if status != http.StatusInternalServerError || !bytes.Contains(body, []byte(`"code":"internal"`)) {
			t.Fatalf("Fails answered %d %s", status, body)
		}
		if bytes.Contains(body, []byte("exploded")) {
			t.Fatalf("internal error text leaked: %s", body)
		}
	})

	t.Run("problem error keeps its status", func(t *testing.T) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/Conflicts", strings.NewReader(`{"Data":{},"Metadata":{}}`))
		e.ServeHTTP(rec, req)
		if rec.Code != http.StatusConflict || rec.Header().Get("Content-Type") != problem.ContentType || !strings.Contains(rec.Body.String(), `"code":"busy"`) {
			t.Fatalf("Conflicts answered %d %q %s", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
		}
		if rec.Header().Get("X-Middleware") != "ran" {
			t.Fatal("route middleware did not run")
		}
	})

	t.Run("malformed and oversized bodies", func(t *testing.T) {
		for _, tc := range []struct {
			path, body string
			status     int
			code       string
		}{
			{"/OutboxDrain", `{"Data":`, http.StatusBadRequest, CodeInvocationMalformed},
			{"/Tiny", `{"Data":{"timer":"` + strings.Repeat("x", 100) + `"},"Metadata":{}}`, http.StatusRequestEntityTooLarge, CodeInvocationTooLarge},
			{"/OutboxDrain", `{"Data":{},"Metadata":{}}`, http.StatusBadRequest, CodeBindingMissing},
		} {
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, tc.path, strings.NewReader(tc.body)))
			var p problem.Problem
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
				t.Fatal(err)
			}
			if rec.Code != tc.status || p.Code != tc.code || rec.Header().Get("Content-Type") != problem.ContentType {
				t.Fatalf("%s answered %d %s, want %d %s", tc.path, rec.Code, rec.Body, tc.status, tc.code)
			}
		}
	})

	t.Run("unencodable result fails instead of a truncated 200", func(t *testing.T) {
		status, _, body, _ := Invoke(ctx, e, "Unencodable", nil, nil)
		if status != http.StatusInternalServerError {
			t.Fatalf("Unencodable answered %d %s", status, body)
		}
	})

	t.Run("http and unknown functions are not invocation routes", func(t *testing.T) {
		for _, name := range []string{"TenantsApi", "Nope"} {
			if status, _, _, _ := Invoke(ctx, e, name, nil, nil); status != http.StatusNotFound {
				t.Fatalf("POST /%s = %d, want 404", name, status)
			}
		}
	})

	t.Run("one log line per invocation", func(t *testing.T) {
		var inv []map[string]any
		for _, l := range logs.lines(t) {
			if l["msg"] == "invocation" {
				inv = append(inv, l)
			}
		}
		// timer, service bus, Fails, Conflicts, 3 malformed/oversized/missing, Unencodable.
		if len(inv) != 8 {
			t.Fatalf("%d invocation log lines, want 8: %v", len(inv), inv)
		}
		byFn := map[string][]map[string]any{}
		for _, l := range inv {
			byFn[l["function"].(string)] = append(byFn[l["function"].(string)], l)
			if d, ok := l["duration"].(string); !ok || !strings.HasSuffix(d, "s") {
				t.Fatalf("log line without a readable duration: %v", l)
			}
		}
		drain := byFn["OutboxDrain"][0]
		if drain["status"] != float64(200) || drain["trigger"] != KindTimer || drain["level"] != "INFO" || len(drain["invocationId"].(string)) != 36 || drain["error"] != nil {
			t.Fatalf("timer log line = %v", drain)
		}
		if _, ok := drain["deliveryCount"]; ok {
			t.Fatalf("timer log line has a deliveryCount: %v", drain)
		}
		audit := byFn["AuditOnEvent"][0]
		if audit["trigger"] != KindServiceBus || audit["deliveryCount"] != float64(4) || audit["status"] != float64(200) {
			t.Fatalf("service bus log line = %v", audit)
		}
		fails := byFn["Fails"][0]
		if fails["status"] != float64(500) || fails["level"] != "ERROR" || !strings.Contains(fails["error"].(string), "database exploded") {
			t.Fatalf("failure log line = %v", fails)
		}
		conflict := byFn["Conflicts"][0]
		if conflict["status"] != float64(409) || conflict["level"] != "WARN" || conflict["error"] == nil {
			t.Fatalf("conflict log line = %v", conflict)
		}
		if tiny := byFn["Tiny"][0]; tiny["status"] != float64(413) {
			t.Fatalf("oversized log line = %v", tiny)
		}
	})
}

func TestMountLogsPanics(t *testing.T) {
	var r Registry
	if err := r.Add(Function{Name: "Panics", Timer: &TimerTrigger{Schedule: "0 0 * * * *"}, Handler: func(context.Context, *Invocation) (*Result, error) {
		panic("boom")
	}}); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	e := echo.New()
	e.HTTPErrorHandler = (&problem.Handler{}).ServeError
	e.Use(func(next echo.HandlerFunc) echo.HandlerFunc { // a minimal recover, as echo's middleware.Recover does
		return func(c echo.Context) (err error) {
			defer func() {
				if p := recover(); p != nil {
					c.Error(errors.New("recovered"))
				}
			}()
			return next(c)
		}
	})
	Mount(e, &r, slog.New(slog.NewJSONHandler(logs, nil)))
	if status, _, _, _ := Invoke(context.Background(), e, "Panics", nil, nil); status != http.StatusInternalServerError {
		t.Fatalf("status = %d", status)
	}
	lines := logs.lines(t)
	if len(lines) != 1 || lines[0]["status"] != float64(500) || !strings.Contains(lines[0]["error"].(string), "panic: boom") {
		t.Fatalf("log lines = %v", lines)
	}
}

func TestInvokeContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	called := false
	h := http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called = true })
	if _, _, _, err := Invoke(ctx, h, "X", nil, nil); !errors.Is(err, context.Canceled) || called {
		t.Fatalf("Invoke on a done context = %v (handler called: %v)", err, called)
	}
	if _, _, _, err := Invoke(context.Background(), h, "", nil, nil); err == nil {
		t.Fatal("Invoke accepted an empty name")
	}

	var seen *http.Request
	var seenBody []byte
	h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r
		seenBody, _ = readAll(r)
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("not a result"))
	})
	status, res, body, err := Invoke(context.Background(), h, "Fn", map[string]any{"k": 1}, nil)
	if err == nil || status != http.StatusOK || res != nil || string(body) != "not a result" {
		t.Fatalf("Invoke with a non-Result 200 = %d %+v %q %v", status, res, body, err)
	}
	if seen.Method != http.MethodPost || seen.URL.Path != "/Fn" || seen.Header.Get("Content-Type") != "application/json" ||
		seen.Header.Get(HeaderHostVersion) != "4.x-standalone" || seen.Header.Get("User-Agent") != "Azure-Functions-Host/4.x-standalone" ||
		len(seen.Header.Get(HeaderInvocationID)) != 36 {
		t.Fatalf("request = %s %s %v", seen.Method, seen.URL, seen.Header)
	}
	if string(seenBody) != `{"Data":{"k":1},"Metadata":{}}` {
		t.Fatalf("request body = %s", seenBody)
	}
}

func readAll(r *http.Request) ([]byte, error) {
	var b bytes.Buffer
	_, err := b.ReadFrom(r.Body)
	return b.Bytes(), err
}

// Invocations are the host's: with LoopbackOnly, a peer that is not loopback, or a request that
// came through a proxy, is refused before the handler runs; Invoke (the standalone scheduler and
// the in-process transport) still gets through.
func TestLoopbackOnly_403_InvocationFromAnotherHost(t *testing.T) {
	var r Registry
	var ran int
	if err := r.Add(Function{Name: "OutboxDrain", Timer: &TimerTrigger{Schedule: "0 */5 * * * *"},
		Handler: func(context.Context, *Invocation) (*Result, error) { ran++; return nil, nil }}); err != nil {
		t.Fatal(err)
	}
	e, _ := newApp(t, &r, LoopbackOnly())
	for _, tc := range []struct {
		name, remote, proxyHeader string
		want                      int
	}{
		{"remote IPv4 peer", "192.0.2.10:40000", "", http.StatusForbidden},
		{"remote IPv6 peer", "[2001:db8::1]:40000", "", http.StatusForbidden},
		{"loopback through a proxy", "127.0.0.1:40000", "X-Forwarded-For: 192.0.2.10", http.StatusForbidden},
		{"loopback through an RFC 7239 proxy", "127.0.0.1:40000", "Forwarded: for=192.0.2.10", http.StatusForbidden},
		{"loopback through nginx", "127.0.0.1:40000", "X-Real-IP: 192.0.2.10", http.StatusForbidden},
		{"unparseable peer", "somewhere", "", http.StatusForbidden},
		{"loopback IPv4 (the host)", "127.0.0.1:40000", "", http.StatusOK},
		{"loopback IPv6", "[::1]:40000", "", http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := ran
			req := httptest.NewRequest(http.MethodPost, "/OutboxDrain", strings.NewReader(`{"Data":{},"Metadata":{}}`))
			req.Header.Set("Content-Type", "application/json")
			req.RemoteAddr = tc.remote
			if k, v, ok := strings.Cut(tc.proxyHeader, ": "); ok {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, req)
			if rec.Code != tc.want {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.want, rec.Body)
			}
			if tc.want == http.StatusForbidden {
				if ran != before || !strings.Contains(rec.Body.String(), "invocation-forbidden") {
					t.Fatalf("refused invocation ran the handler or lacks its code: %s", rec.Body)
				}
			}
		})
	}
	if status, _, body, err := Invoke(context.Background(), e, "OutboxDrain", nil, nil); err != nil || status != http.StatusOK {
		t.Fatalf("Invoke through LoopbackOnly: %d %s %v", status, body, err)
	}
}

// Each refused invocation's problem names its own path: the shared problem value is never
// rewritten by the request that happened to be refused first.
func TestLoopbackOnly_403_ProblemNamesEachRefusedFunction(t *testing.T) {
	var r Registry
	for _, name := range []string{"OutboxDrain", "TenantProvisioningSweep"} {
		if err := r.Add(Function{Name: name, Timer: &TimerTrigger{Schedule: "0 */5 * * * *"},
			Handler: func(context.Context, *Invocation) (*Result, error) { return nil, nil }}); err != nil {
			t.Fatal(err)
		}
	}
	e, _ := newApp(t, &r, LoopbackOnly())
	for _, name := range []string{"OutboxDrain", "TenantProvisioningSweep", "OutboxDrain"} {
		req := httptest.NewRequest(http.MethodPost, "/"+name, strings.NewReader(`{"Data":{},"Metadata":{}}`))
		req.RemoteAddr = "192.0.2.10:40000"
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), `"instance":"/`+name+`"`) {
			t.Fatalf("POST /%s: %d %s, want 403 naming /%s", name, rec.Code, rec.Body, name)
		}
	}
}
