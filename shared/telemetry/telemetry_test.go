package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

func TestTenantLimiter_FoldsBeyondTheLimit(t *testing.T) {
	l := NewTenantLimiter(2)
	if got := l.Fold("a"); got != "a" {
		t.Fatalf("first tenant: %q", got)
	}
	if got := l.Fold("b"); got != "b" {
		t.Fatalf("second tenant: %q", got)
	}
	if got := l.Fold("c"); got != TenantOther {
		t.Fatalf("third tenant: %q, want %q", got, TenantOther)
	}
	if got := l.Fold("a"); got != "a" {
		t.Fatalf("an admitted tenant stays admitted: %q", got)
	}
	for _, none := range []string{"", TenantNone, platformTenant} {
		if got := l.Fold(none); got != TenantNone {
			t.Fatalf("Fold(%q) = %q, want %q", none, got, TenantNone)
		}
	}
	if l.Admitted() != 2 {
		t.Fatalf("admitted %d, want 2 (none and other do not count)", l.Admitted())
	}
}

func TestTenantLimiter_ConcurrentAdmissionsNeverExceedTheLimit(t *testing.T) {
	l := NewTenantLimiter(10)
	var wg sync.WaitGroup
	var mu sync.Mutex
	kept := map[string]bool{}
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				got := l.Fold(fmt.Sprintf("t-%d", (i*7+g)%50))
				mu.Lock()
				kept[got] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	delete(kept, TenantOther)
	if len(kept) != 10 || l.Admitted() != 10 {
		t.Fatalf("kept %d distinct tenants (admitted %d), want exactly 10", len(kept), l.Admitted())
	}
}

// newTestRecorder installs a Recorder over a ManualReader as the default for the test.
func newTestRecorder(t *testing.T, limit int) (*Recorder, *sdkmetric.ManualReader) {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	rec, err := NewRecorder(mp, limit)
	if err != nil {
		t.Fatal(err)
	}
	prev := Default()
	SetDefault(rec)
	t.Cleanup(func() { SetDefault(prev) })
	return rec, reader
}

func collect(t *testing.T, r *sdkmetric.ManualReader) map[string]metricdata.Aggregation {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]metricdata.Aggregation{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			out[m.Name] = m.Data
		}
	}
	return out
}

func attrs(s attribute.Set) map[string]string {
	m := map[string]string{}
	for _, kv := range s.ToSlice() {
		m[string(kv.Key)] = kv.Value.String()
	}
	return m
}

func TestOp_RecordsEveryInstrumentWithTheAttributes(t *testing.T) {
	_, reader := newTestRecorder(t, 1)
	ctx := context.Background()
	op := Start(ctx, "tenants", StoreRedis, "get", "t1")
	op.EndWith(ctx, OutcomeOK, 1, 42)
	Start(ctx, "tenants", StoreRedis, "get", "t2").End(ctx, errors.New("down")) // beyond the limit
	Start(ctx, "audit", StoreSQL, "write", "").End(ctx, nil)                    // platform-level

	data := collect(t, reader)
	sum, ok := data["spine.store.operations"].(metricdata.Sum[int64])
	if !ok {
		t.Fatalf("no operations counter: %v", data)
	}
	want := map[string]map[string]string{
		"t1":        {"service": "tenants", "store": "redis", "op": "get", "outcome": "ok", "tenant": "t1"},
		TenantOther: {"service": "tenants", "store": "redis", "op": "get", "outcome": "error", "tenant": TenantOther},
		TenantNone:  {"service": "audit", "store": "sql", "op": "write", "outcome": "ok", "tenant": TenantNone},
	}
	if len(sum.DataPoints) != len(want) {
		t.Fatalf("%d series, want %d: %+v", len(sum.DataPoints), len(want), sum.DataPoints)
	}
	for _, dp := range sum.DataPoints {
		a := attrs(dp.Attributes)
		w := want[a["tenant"]]
		if fmt.Sprint(a) != fmt.Sprint(w) || dp.Value != 1 {
			t.Errorf("series %v = %d, want %v = 1", a, dp.Value, w)
		}
	}
	size := data["spine.store.size"].(metricdata.Histogram[int64])
	if len(size.DataPoints) != 1 || size.DataPoints[0].Sum != 42 {
		t.Errorf("size: %+v, want one point summing 42 (only the sized op)", size.DataPoints)
	}
	dur := data["spine.store.duration"].(metricdata.Histogram[float64])
	if len(dur.DataPoints) != 3 {
		t.Errorf("duration: %d series, want 3", len(dur.DataPoints))
	}
}

// An operation without a tenant of its own counts for the tenant its context names.
func TestStart_FallsBackToTheContextsTenant(t *testing.T) {
	_, reader := newTestRecorder(t, 10)
	ctx := WithTenant(context.Background(), "t9")
	Start(ctx, "tenants", StoreSQL, "read", "").End(ctx, nil)
	Start(ctx, "tenants", StoreSQL, "read", "t1").End(ctx, nil) // its own tenant wins
	Start(context.Background(), "tenants", StoreSQL, "read", "").End(ctx, nil)
	got := map[string]bool{}
	for _, dp := range collect(t, reader)["spine.store.operations"].(metricdata.Sum[int64]).DataPoints {
		got[attrs(dp.Attributes)["tenant"]] = true
	}
	if len(got) != 3 || !got["t9"] || !got["t1"] || !got[TenantNone] {
		t.Fatalf("tenants recorded: %v", got)
	}
}

func TestStart_RecordsNothingWithoutARecorder(t *testing.T) {
	prev := Default()
	SetDefault(nil)
	t.Cleanup(func() { SetDefault(prev) })
	op := Start(context.Background(), "tenants", StoreSQL, "read", "t1")
	if op.Active() {
		t.Fatal("an Op without a recorder is active")
	}
	op.End(context.Background(), nil) // must not panic
}

func TestConfig_Validate(t *testing.T) {
	for addr, ok := range map[string]bool{"127.0.0.1:9464": true, "localhost:9464": true, "[::1]:9464": true,
		"0.0.0.0:9464": false, ":9464": false, "10.0.0.1:9464": false, "nonsense": false} {
		err := Config{MetricsAddr: addr}.WithDefaults().Validate()
		if (err == nil) != ok {
			t.Errorf("MetricsAddr %q: err %v, want ok=%v", addr, err, ok)
		}
	}
	if err := (Config{TenantLimit: -1, SeriesLimit: 1}).Validate(); err == nil {
		t.Error("a negative TenantLimit validated")
	}
	c := Config{}.WithDefaults()
	if c.ServiceName != "spine" || c.TenantLimit != 1000 || c.SeriesLimit != 50000 || c.Enabled() {
		t.Errorf("defaults: %+v", c)
	}
}

func TestOTLPFromEnv(t *testing.T) {
	env := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	cases := []struct {
		env            func(string) string
		metrics, trace bool
	}{
		{env(), false, false},
		{env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"), true, true},
		{env("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://127.0.0.1:4318/v1/metrics"), true, false},
		{env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://127.0.0.1:4318/v1/traces"), false, true},
		{env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318", "OTEL_TRACES_EXPORTER", "none"), true, false},
		{env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318", "OTEL_SDK_DISABLED", "true"), false, false},
	}
	for i, c := range cases {
		if m, tr := OTLPFromEnv(c.env); m != c.metrics || tr != c.trace {
			t.Errorf("case %d: metrics %v traces %v, want %v %v", i, m, tr, c.metrics, c.trace)
		}
	}
}

// The Prometheus endpoint serves the store instruments with their attributes.
func TestProvider_PrometheusEndpoint(t *testing.T) {
	ctx := context.Background()
	p, err := New(ctx, Config{MetricsAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Shutdown(ctx) })
	p.Recorder().Record(ctx, "tenants", StoreSQL, "read", "0193a0c4-0000-7000-8000-000000000001", OutcomeOK, time.Millisecond, NoSize, NoSize)

	stop, err := p.ServeMetrics(slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	// 127.0.0.1:0 picks a port; ask the handler directly rather than guess it.
	rec := &recorderWriter{h: http.Header{}}
	req, _ := http.NewRequest("GET", "/metrics", nil)
	p.MetricsHandler().ServeHTTP(rec, req)
	body := rec.b.String()
	for _, want := range []string{
		`spine_store_operations_total{`,
		`op="read"`, `outcome="ok"`, `service="tenants"`, `store="sql"`, `tenant="0193a0c4-0000-7000-8000-000000000001"`,
		`spine_store_duration_seconds_bucket{`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s:\n%s", want, body)
		}
	}
}

// With the standard OTLP variables set, metrics and spans are exported over OTLP/HTTP (flushed at
// Shutdown at the latest).
func TestProvider_OTLPExport(t *testing.T) {
	var mu sync.Mutex
	got := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got[r.URL.Path]++
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
	metrics, traces := OTLPFromEnv(os.Getenv)
	ctx := context.Background()
	p, err := New(ctx, Config{OTLPMetrics: metrics, OTLPTraces: traces})
	if err != nil {
		t.Fatal(err)
	}
	p.Recorder().Record(ctx, "audit", StoreSQL, "write", "t1", OutcomeOK, time.Millisecond, NoSize, NoSize)
	_, span := p.TracerProvider().Tracer("test").Start(ctx, "work")
	span.End()
	if err := p.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if got["/v1/metrics"] == 0 || got["/v1/traces"] == 0 {
		t.Fatalf("OTLP requests received: %v", got)
	}
}

type recorderWriter struct {
	h    http.Header
	b    strings.Builder
	code int
}

func (r *recorderWriter) Header() http.Header         { return r.h }
func (r *recorderWriter) Write(p []byte) (int, error) { return r.b.Write(p) }
func (r *recorderWriter) WriteHeader(c int)           { r.code = c }

var _ io.Writer = (*recorderWriter)(nil)

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		1234567 * time.Nanosecond: "1.235ms",
		250 * time.Microsecond:    "250µs",
		2500 * time.Millisecond:   "2.5s",
		90 * time.Second:          "1m30s",
	} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
	}
	a := ReadableDurations(nil, slog.Duration("duration", 1500*time.Microsecond))
	if a.Value.String() != "1.5ms" {
		t.Errorf("ReadableDurations: %v", a)
	}
}

func BenchmarkOp_Recorded(b *testing.B) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	rec, err := NewRecorder(mp, 1000)
	if err != nil {
		b.Fatal(err)
	}
	prev := Default()
	SetDefault(rec)
	defer SetDefault(prev)
	ctx := context.Background()
	tenants := []string{"0193a0c4-0000-7000-8000-000000000001", "0193a0c4-0000-7000-8000-000000000002"}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		Start(ctx, "tenants", StoreRedis, "get", tenants[i&1]).EndWith(ctx, OutcomeOK, NoSize, 512)
	}
}

func BenchmarkOp_NothingRecorded(b *testing.B) {
	prev := Default()
	SetDefault(nil)
	defer SetDefault(prev)
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		Start(ctx, "tenants", StoreRedis, "get", "t").EndWith(ctx, OutcomeOK, NoSize, 512)
	}
}

// After UseLogger, slog's default, the log package and OpenTelemetry's error handler all write
// the given logger's JSON lines.
func TestUseLogger_LibraryAndExportErrorsAreJSON(t *testing.T) {
	prev := slog.Default()
	prevFlags, prevOut := log.Flags(), log.Writer()
	t.Cleanup(func() {
		slog.SetDefault(prev)
		log.SetFlags(prevFlags)
		log.SetOutput(prevOut)
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { log.Print(err) }))
		otel.SetLogger(logr.FromSlogHandler(prev.Handler()))
	})
	var buf syncBuf
	UseLogger(slog.New(slog.NewJSONHandler(&buf, nil)))
	slog.Warn("from slog's default")
	log.Print("from the log package")
	otel.Handle(errors.New("traces export: connection refused"))
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3:\n%s", len(lines), buf.String())
	}
	for _, l := range lines {
		var v map[string]any
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("not JSON: %s", l)
		}
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }
