package tests

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// scrape reads the Prometheus endpoint.
func scrape(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %d %s", resp.StatusCode, b)
	}
	return string(b)
}

// series returns the lines of metric whose labels include every one of want.
func series(body, metric string, want map[string]string) []string {
	var out []string
	for _, line := range strings.Split(body, "\n") {
		if !strings.HasPrefix(line, metric+"{") {
			continue
		}
		ok := true
		for k, v := range want {
			if !strings.Contains(line, fmt.Sprintf(`%s="%s"`, k, v)) {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, line)
		}
	}
	return out
}

// One API call that reads SQL and Redis shows up on the Prometheus endpoint as store operations
// with service, store, op and tenant, for SQL and for Redis.
func TestTelemetry_PrometheusShowsPerStoreMetricsByTenant(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	s := startServer(t, map[string]string{"SPINE_METRICS_ADDR": addr})
	sl := slug("metrics")
	id := s.register(sl, "standard")
	tok := s.token(id, false)
	// The first read misses the cache and loads from SQL; the second finds the slug's mapping in
	// Redis (the tenant itself is then served from the process's local copy, which no store sees).
	for i := 0; i < 2; i++ {
		if r := s.call("GET", "/api/tenants/by-slug/"+sl, tok, nil, nil); r.Code != http.StatusOK {
			t.Fatalf("GET tenant by slug: %d %s", r.Code, r.Body)
		}
	}
	if r := s.call("GET", "/api/tenants/"+id, tok, nil, nil); r.Code != http.StatusOK { // the route's metrics and log line
		t.Fatalf("GET tenant: %d %s", r.Code, r.Body)
	}
	body := scrape(t, addr)

	sql := series(body, "spine_store_operations_total", map[string]string{"service": "tenants", "store": "sql", "op": "read", "tenant": id})
	if len(sql) == 0 {
		t.Errorf("no SQL read series for tenant %s:\n%s", id, grep(body, "spine_store_operations_total"))
	}
	redisGets := series(body, "spine_store_operations_total", map[string]string{"service": "tenants", "store": "redis", "op": "get", "tenant": id})
	if len(redisGets) == 0 {
		t.Errorf("no Redis get series for tenant %s:\n%s", id, grep(body, "spine_store_operations_total"))
	}
	// The second GET hit the cache: one ok get; the first missed: one notfound get.
	for _, outcome := range []string{"ok", "notfound"} {
		if len(series(body, "spine_store_operations_total", map[string]string{"store": "redis", "op": "get", "tenant": id, "outcome": outcome})) == 0 {
			t.Errorf("no Redis get with outcome %s for the tenant", outcome)
		}
	}
	if len(series(body, "spine_store_duration_seconds_bucket", map[string]string{"store": "sql", "tenant": id})) == 0 {
		t.Error("no SQL latency histogram for the tenant")
	}
	if len(series(body, "spine_store_size_bytes_sum", map[string]string{"store": "redis", "op": "get", "tenant": id, "outcome": "ok"})) == 0 {
		t.Error("no Redis value size for the tenant's cache hit")
	}
	// Platform-level work counts as tenant "none": the outbox drainer deletes the registration's
	// published rows in platform scope, after the commit's kick (so it may land after the scrape
	// above: wait for it, bounded).
	platformWrite := map[string]string{"service": "tenants", "store": "sql", "op": "write", "tenant": "none"}
	for deadline := time.Now().Add(10 * time.Second); len(series(body, "spine_store_operations_total", platformWrite)) == 0 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		body = scrape(t, addr)
	}
	if len(series(body, "spine_store_operations_total", platformWrite)) == 0 {
		t.Errorf("no platform-level SQL write:\n%s", grep(body, "spine_store_operations_total"))
	}
	// otelhttp names requests by echo's route, not by the raw path.
	if len(series(body, "http_server_request_duration_seconds_count", map[string]string{"http_route": "/api/tenants/:id"})) == 0 {
		t.Errorf("no HTTP server metric with the echo route:\n%s", grep(body, "http_server_request_duration_seconds_count"))
	}
	if strings.Contains(body, id+`"`) && regexp.MustCompile(`http_route="/api/tenants/`+id).MatchString(body) {
		t.Error("a raw path leaked into http.route")
	}

	// The access log: one line per request, with the route, a readable duration, the trace and
	// the tenant, and never the token.
	var found bool
	for _, line := range strings.Split(s.logs.String(), "\n") {
		var l map[string]any
		if json.Unmarshal([]byte(line), &l) != nil || l["msg"] != "request" || l["route"] != "/api/tenants/:id" {
			continue
		}
		found = true
		if l["method"] != "GET" || l["status"] != float64(200) || l["tenantId"] != id || len(fmt.Sprint(l["traceId"])) != 32 {
			t.Errorf("access log line: %v", l)
		}
		if d, _ := l["duration"].(string); !strings.HasSuffix(d, "s") {
			t.Errorf("duration is not readable: %v", l["duration"])
		}
	}
	if !found {
		t.Errorf("no access log line for GET /api/tenants/:id:\n%s", s.logs.String())
	}
	if strings.Contains(s.logs.String(), tok) {
		t.Error("the token reached the logs")
	}

	// Everything up: ready.
	r := s.call("GET", "/api/health/ready", "", nil, nil)
	if r.Code != http.StatusOK || r.JSON(t)["status"] != "ready" {
		t.Fatalf("ready: %d %s", r.Code, r.Body)
	}
	checks := r.JSON(t)["checks"].(map[string]any)
	for _, dep := range []string{"db.tenants", "db.audit", "redis", "blob"} {
		if checks[dep] != "up" {
			t.Errorf("check %s = %v", dep, checks[dep])
		}
	}
}

// Redis unreachable: /api/health/ready answers 503 naming it (and only it); /api/health, the
// liveness answer, stays 200; the API keeps serving from SQL.
func TestHealth_ReadyNamesAnUnreachableDependency(t *testing.T) {
	dead := fmt.Sprintf("redis://127.0.0.1:%d/0", freePort(t)) // nothing listens there
	s := startServer(t, map[string]string{"SPINE_REDIS_URL": dead})
	if r := s.call("GET", "/api/health", "", nil, nil); r.Code != http.StatusOK {
		t.Fatalf("health: %d %s", r.Code, r.Body)
	}
	r := s.call("GET", "/api/health/ready", "", nil, nil)
	if r.Code != http.StatusServiceUnavailable || r.Hdr.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("ready with Redis down: %d %s %s", r.Code, r.Hdr.Get("Content-Type"), r.Body)
	}
	body := r.JSON(t)
	if body["code"] != "not-ready" || fmt.Sprint(body["down"]) != "[redis]" || !strings.Contains(fmt.Sprint(body["detail"]), "redis") {
		t.Fatalf("ready body: %s", r.Body)
	}
	checks := body["checks"].(map[string]any)
	if checks["redis"] != "down" || checks["db.tenants"] != "up" || checks["blob"] != "up" || checks["keyvault"] != "up" {
		t.Fatalf("checks: %v", checks)
	}
	if strings.Contains(string(r.Body), "dial") || strings.Contains(string(r.Body), "connection refused") {
		t.Fatalf("driver error text in the answer: %s", r.Body)
	}
	id := s.register(slug("noredis"), "standard")
	if r := s.call("GET", "/api/tenants/"+id, s.admin, nil, nil); r.Code != http.StatusOK {
		t.Fatalf("reads without Redis: %d %s", r.Code, r.Body)
	}
}

// grep returns body's lines that start with prefix, for failure messages.
func grep(body, prefix string) string {
	var out []string
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, prefix) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// An OutboxDrain tick that finds nothing to do says nothing at Info: no Logs in its answer (the
// scheduler would log them) and no invocation line (it is Debug).
func TestOutboxDrain_IdleTickIsQuiet(t *testing.T) {
	s := startServer(t, nil)
	for i := 0; i < 2; i++ {
		r := s.invoke("OutboxDrain", hostTimerBody(t, "OutboxDrain"))
		if r.Code != http.StatusOK {
			t.Fatalf("OutboxDrain: %d %s", r.Code, r.Body)
		}
		var out struct{ Logs []string }
		if err := json.Unmarshal(r.Body, &out); err != nil || len(out.Logs) != 0 {
			t.Fatalf("idle tick answered Logs %v (%v)", out.Logs, err)
		}
	}
	for _, line := range strings.Split(s.logs.String(), "\n") {
		if strings.Contains(line, `"function":"OutboxDrain"`) || strings.Contains(line, "outbox tenants") {
			t.Errorf("an idle tick logged at Info: %s", line)
		}
	}
}

// otlpReceiver collects the spans an OTLP/HTTP trace exporter sends it.
type otlpReceiver struct {
	mu    sync.Mutex
	spans []*tracepb.Span
}

func (o *otlpReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var req coltracepb.ExportTraceServiceRequest
	if r.URL.Path == "/v1/traces" && proto.Unmarshal(body, &req) == nil {
		o.mu.Lock()
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				o.spans = append(o.spans, ss.Spans...)
			}
		}
		o.mu.Unlock()
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(http.StatusOK)
}

// named returns the received spans called name.
func (o *otlpReceiver) named(name string) []*tracepb.Span {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []*tracepb.Span
	for _, s := range o.spans {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

// With traces exported over OTLP, one registration is one trace from the HTTP request (named by
// its route) to the Service Bus consumer (a consumer span whose parent is the event's traceparent,
// the request's span); the outbox drain and its publish are spans too, and the answer's
// traceparent names the exported request span.
func TestTelemetry_OTLPTraceFromRequestToConsumer(t *testing.T) {
	rcv := &otlpReceiver{}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	s := startServer(t, map[string]string{
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": srv.URL + "/v1/traces",
		"OTEL_BSP_SCHEDULE_DELAY":            "50",
	})
	sl := slug("traced")
	r := s.call("POST", "/api/tenants", s.admin, map[string]string{"name": "Traced", "slug": sl, "editionCode": "standard",
		"ownerEmail": "o@" + sl + ".example"}, nil)
	if r.Code != http.StatusCreated {
		t.Fatalf("register: %d %s", r.Code, r.Body)
	}
	id := r.JSON(t)["id"].(string)
	parts := strings.Split(r.Hdr.Get("traceparent"), "-")
	if len(parts) != 4 {
		t.Fatalf("traceparent %q", r.Hdr.Get("traceparent"))
	}
	traceID, spanID := parts[1], parts[2]
	if entries := s.waitEntries(id, 1); len(entries) != 1 || entries[0]["traceId"] != traceID {
		t.Fatalf("audit entries %v, want one with trace %s", entries, traceID)
	}

	deadline := time.Now().Add(10 * time.Second)
	for len(rcv.named("AuditOnTenantsEvent")) == 0 || len(rcv.named("tenants publish")) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("spans received: %d, none named AuditOnTenantsEvent or tenants publish", len(rcv.spans))
		}
		time.Sleep(20 * time.Millisecond)
	}
	hexID := func(b []byte) string { return fmt.Sprintf("%x", b) }
	var request *tracepb.Span
	for _, sp := range rcv.named("POST /api/tenants") {
		if hexID(sp.TraceId) == traceID {
			request = sp
		}
	}
	if request == nil || hexID(request.SpanId) != spanID || request.Kind != tracepb.Span_SPAN_KIND_SERVER {
		t.Fatalf("no server span POST /api/tenants with the answer's traceparent (%s): %v", r.Hdr.Get("traceparent"), request)
	}
	var consumer *tracepb.Span
	for _, sp := range rcv.named("AuditOnTenantsEvent") {
		if hexID(sp.TraceId) == traceID {
			consumer = sp
		}
	}
	if consumer == nil || consumer.Kind != tracepb.Span_SPAN_KIND_CONSUMER || hexID(consumer.ParentSpanId) != spanID {
		t.Fatalf("consumer span: %v, want kind consumer, parent %s", consumer, spanID)
	}
	if pub := rcv.named("tenants publish")[0]; pub.Kind != tracepb.Span_SPAN_KIND_PRODUCER || len(rcv.named("outbox drain tenants")) == 0 {
		t.Fatalf("publish span %v; drain spans %d", pub, len(rcv.named("outbox drain tenants")))
	}
}

// Every line the process logs is JSON, also what a library logs through the log package or slog's
// default (the JWKS refresher's warning when the authorization server cannot be reached).
func TestServe_LibraryWarningsAreJSONLines(t *testing.T) {
	closed := freePort(t) // nothing listens there
	s := startServer(t, map[string]string{"SPINE_AUTH_JWKS_FILE": "",
		"SPINE_AUTH_JWKS_URL": fmt.Sprintf("http://127.0.0.1:%d/jwks", closed)})
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(s.logs.String(), "JWKS refresh failed") {
		if time.Now().After(deadline) {
			t.Fatalf("no JWKS warning logged:\n%s", s.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, line := range strings.Split(strings.TrimSpace(s.logs.String()), "\n") {
		var v map[string]any
		if err := json.Unmarshal([]byte(line), &v); err != nil || v["level"] == nil {
			t.Errorf("not a JSON log line: %s", line)
		}
	}
}

// A TenantProvisioningSweep tick with nothing to retry says nothing at Info either (it runs every
// minute): no Logs in its answer and no invocation line.
func TestProvisioningSweep_IdleTickIsQuiet(t *testing.T) {
	s := startServer(t, nil)
	r := s.invoke("TenantProvisioningSweep", hostTimerBody(t, "TenantProvisioningSweep"))
	if r.Code != http.StatusOK {
		t.Fatalf("TenantProvisioningSweep: %d %s", r.Code, r.Body)
	}
	var out struct{ Logs []string }
	if err := json.Unmarshal(r.Body, &out); err != nil || len(out.Logs) != 0 {
		t.Fatalf("idle tick answered Logs %v (%v)", out.Logs, err)
	}
	for _, line := range strings.Split(s.logs.String(), "\n") {
		if strings.Contains(line, "TenantProvisioningSweep") || strings.Contains(line, "provisioning sweep") {
			t.Errorf("an idle tick logged at Info: %s", line)
		}
	}
}
