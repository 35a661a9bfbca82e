// Package telemetry is the OpenTelemetry set-up every Spine service inherits: the meter and tracer
// providers built from the settings, their exporters, and the per-store metrics recorder that the
// shared store seams (sqlstore, cache, blob, the outbox's bus publish) call for every operation.
//
// # Store metrics
//
// Every store operation is recorded on these instruments, all with the attributes service (the
// owning service: "tenants", "audit", …), store (sql, redis, blob, table, keyvault, bus), op (the
// operation: read/write for SQL transactions, the Redis command, put/get for blobs, publish for the
// bus), outcome (ok, error, notfound) and tenant (the tenant the operation is for: the SQL
// transaction's row-level-security scope, the cache key's or blob name's tenant, the event's
// tenant; failing that, the tenant of the request it serves, named by WithTenant; failing that,
// "none"):
//
//	spine.store.duration   histogram, seconds   latency of the operation
//	spine.store.operations counter              how many operations ran
//	spine.store.size       histogram, bytes     payload bytes, where an operation moves data
//	spine.store.items      histogram, {item}    keys or messages, where that is meaningful
//
// In Prometheus they read spine_store_duration_seconds, spine_store_operations_total,
// spine_store_size_bytes and spine_store_items.
//
// # Tenant cardinality
//
// The tenant attribute is bounded. The first Config.TenantLimit distinct tenants (default 1000)
// that a Recorder sees keep their id on its instruments for the life of the process; every later
// tenant is recorded as "other". Platform-level operations done for no tenant (an admin's request,
// a timer, platform events) are recorded as "none". "none" and "other" do not count against the
// limit. The instruments are always recorded together, so one admission list serves all of them.
// On top of that the SDK caps every instrument at Config.SeriesLimit series (default 50000);
// beyond it measurements land in one overflow series (otel.metric.overflow=true). The other
// attributes take their values from code (service and store names, commands), never from input.
//
// # Export
//
// Nothing is exported unless configured, and then only what is configured:
//
//   - Config.MetricsAddr (SPINE_METRICS_ADDR), a loopback host:port: a Prometheus text endpoint at
//     http://<addr>/metrics.
//   - OTLP over HTTP when the standard variables name an endpoint (OTEL_EXPORTER_OTLP_ENDPOINT, or
//     OTEL_EXPORTER_OTLP_METRICS_ENDPOINT / OTEL_EXPORTER_OTLP_TRACES_ENDPOINT for one signal); the
//     exporters read the other standard variables (headers, timeouts, OTEL_METRIC_EXPORT_INTERVAL,
//     OTEL_TRACES_SAMPLER, OTEL_RESOURCE_ATTRIBUTES, …) themselves. OTEL_SDK_DISABLED=true turns
//     everything off.
//
// With nothing configured the providers are no-ops, the store recorder returns at once (one atomic
// load), and the instrumentation wrappers (otelsql, redisotel, otelhttp) are not installed, so
// tests and unconfigured runs pay next to nothing. Spans are recorded only when traces are
// exported; otherwise the tracer is a no-op that still carries the caller's trace context.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// Config is what telemetry exports and how it bounds cardinality. Zero fields take the documented
// defaults (see WithDefaults); Validate checks the result.
type Config struct {
	// ServiceName is the resource's service.name (OTEL_SERVICE_NAME overrides it). Default "spine".
	ServiceName string
	// ServiceVersion is the resource's service.version. Default: none.
	ServiceVersion string
	// MetricsAddr is SPINE_METRICS_ADDR: a loopback host:port on which Prometheus text is served
	// at /metrics. Default "" (no endpoint).
	MetricsAddr string
	// OTLPMetrics exports metrics over OTLP/HTTP, configured by the standard OTEL_EXPORTER_OTLP_*
	// variables. Default false.
	OTLPMetrics bool
	// OTLPTraces records spans and exports them over OTLP/HTTP. Default false: spans are not
	// recorded, only the trace context is carried.
	OTLPTraces bool
	// TenantLimit is how many distinct tenants keep their id on the store instruments; later
	// tenants are recorded as "other". Default 1000.
	TenantLimit int
	// SeriesLimit is the SDK's cardinality limit per instrument. Default 50000.
	SeriesLimit int
}

// Defaults of Config.
const (
	DefaultServiceName = "spine"
	DefaultTenantLimit = 1000
	DefaultSeriesLimit = 50000
)

// WithDefaults returns c with its zero fields set to the defaults.
func (c Config) WithDefaults() Config {
	if c.ServiceName == "" {
		c.ServiceName = DefaultServiceName
	}
	if c.TenantLimit == 0 {
		c.TenantLimit = DefaultTenantLimit
	}
	if c.SeriesLimit == 0 {
		c.SeriesLimit = DefaultSeriesLimit
	}
	return c
}

// Validate checks c after defaults: a loopback MetricsAddr, positive limits.
func (c Config) Validate() error {
	var errs []error
	if c.MetricsAddr != "" {
		if err := CheckLoopback(c.MetricsAddr); err != nil {
			errs = append(errs, fmt.Errorf("telemetry: MetricsAddr: %w", err))
		}
	}
	if c.TenantLimit < 1 {
		errs = append(errs, errors.New("telemetry: TenantLimit must be at least 1"))
	}
	if c.SeriesLimit < 1 {
		errs = append(errs, errors.New("telemetry: SeriesLimit must be at least 1"))
	}
	return errors.Join(errs...)
}

// Enabled reports whether c exports anything.
func (c Config) Enabled() bool { return c.MetricsAddr != "" || c.OTLPMetrics || c.OTLPTraces }

// CheckLoopback returns an error unless addr is a host:port whose host is localhost or a loopback IP.
func CheckLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not a host:port", addr)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("%q is not a loopback address", addr)
	}
	return nil
}

// OTLPFromEnv reports which signals the standard OpenTelemetry variables ask to export over OTLP:
// both when OTEL_EXPORTER_OTLP_ENDPOINT is set, each when its signal-specific endpoint is; none
// when OTEL_SDK_DISABLED is true or OTEL_{METRICS,TRACES}_EXPORTER is "none" for that signal.
func OTLPFromEnv(getenv func(string) string) (metrics, traces bool) {
	if getenv("OTEL_SDK_DISABLED") == "true" {
		return false, false
	}
	all := getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != ""
	metrics = (all || getenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT") != "") && getenv("OTEL_METRICS_EXPORTER") != "none"
	traces = (all || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "") && getenv("OTEL_TRACES_EXPORTER") != "none"
	return metrics, traces
}

// Provider holds the process's meter and tracer providers and their exporters.
type Provider struct {
	cfg      Config
	meter    metric.MeterProvider
	tracer   trace.TracerProvider
	rec      *Recorder
	metrics  http.Handler // Prometheus, when MetricsAddr is set
	shutdown []func(context.Context) error

	installed bool
}

// enabled is true while an enabled Provider is installed: wrappers check it to stay out of the way
// when nothing is exported.
var enabled atomic.Bool

// Enabled reports whether the installed Provider exports anything. Store wrappers and app wiring
// install their instrumentation only when it does.
func Enabled() bool { return enabled.Load() }

// Propagator is the W3C trace context (and baggage) propagator Spine uses everywhere.
var Propagator propagation.TextMapPropagator = propagation.NewCompositeTextMapPropagator(
	propagation.TraceContext{}, propagation.Baggage{})

// New builds the providers cfg asks for (see the package doc). With nothing configured it returns
// a Provider of no-ops. It does not install anything process-wide: call Install.
func New(ctx context.Context, cfg Config) (*Provider, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := &Provider{cfg: cfg, meter: metricnoop.NewMeterProvider(), tracer: tracenoop.NewTracerProvider()}
	if !cfg.Enabled() {
		return p, nil
	}
	attrs := []resource.Option{resource.WithAttributes(semconv.ServiceName(cfg.ServiceName)),
		resource.WithTelemetrySDK(), resource.WithFromEnv()}
	if cfg.ServiceVersion != "" {
		attrs = append(attrs, resource.WithAttributes(semconv.ServiceVersion(cfg.ServiceVersion)))
	}
	res, err := resource.New(ctx, attrs...)
	if err != nil {
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}

	var readers []sdkmetric.Option
	if cfg.MetricsAddr != "" {
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		exp, err := otelprom.New(otelprom.WithRegisterer(reg))
		if err != nil {
			return nil, fmt.Errorf("telemetry: prometheus exporter: %w", err)
		}
		readers = append(readers, sdkmetric.WithReader(exp))
		p.metrics = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	}
	if cfg.OTLPMetrics {
		exp, err := otlpmetrichttp.New(ctx)
		if err != nil {
			return nil, fmt.Errorf("telemetry: OTLP metric exporter: %w", err)
		}
		readers = append(readers, sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp)))
	}
	if len(readers) > 0 {
		mp := sdkmetric.NewMeterProvider(append(readers, sdkmetric.WithResource(res),
			sdkmetric.WithCardinalityLimit(cfg.SeriesLimit))...)
		p.meter = mp
		p.shutdown = append(p.shutdown, mp.Shutdown)
		if p.rec, err = NewRecorder(mp, cfg.TenantLimit); err != nil {
			_ = p.Shutdown(ctx)
			return nil, err
		}
	}
	if cfg.OTLPTraces {
		exp, err := otlptracehttp.New(ctx)
		if err != nil {
			_ = p.Shutdown(ctx)
			return nil, fmt.Errorf("telemetry: OTLP trace exporter: %w", err)
		}
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
		p.tracer = tp
		p.shutdown = append(p.shutdown, tp.Shutdown)
	}
	return p, nil
}

// Install makes p the process's telemetry: the OpenTelemetry global meter and tracer providers
// and propagator, and the Recorder that store wrappers use (Default). Install a Provider once,
// before opening stores.
func (p *Provider) Install() {
	otel.SetTextMapPropagator(Propagator)
	if !p.cfg.Enabled() {
		return
	}
	otel.SetMeterProvider(p.meter)
	otel.SetTracerProvider(p.tracer)
	SetTracerProvider(p.tracer)
	SetDefault(p.rec)
	enabled.Store(true)
	p.installed = true
}

// MeterProvider is p's meter provider (a no-op when no metrics are exported).
func (p *Provider) MeterProvider() metric.MeterProvider { return p.meter }

// TracerProvider is p's tracer provider (a no-op when no traces are exported).
func (p *Provider) TracerProvider() trace.TracerProvider { return p.tracer }

// Recorder is p's store metrics recorder; nil when no metrics are exported.
func (p *Provider) Recorder() *Recorder { return p.rec }

// MetricsHandler serves the Prometheus text format; nil unless MetricsAddr is set.
func (p *Provider) MetricsHandler() http.Handler { return p.metrics }

// Config is the configuration p was built with, defaults applied.
func (p *Provider) Config() Config { return p.cfg }

// ServeMetrics listens on MetricsAddr and serves MetricsHandler at /metrics until the returned
// stop function is called. With no MetricsAddr it does nothing. A listen error is returned at once
// (a taken port must not go unnoticed).
func (p *Provider) ServeMetrics(logger *slog.Logger) (stop func(), err error) {
	if p.metrics == nil || p.cfg.MetricsAddr == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", p.cfg.MetricsAddr)
	if err != nil {
		return nil, fmt.Errorf("telemetry: metrics endpoint: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", p.metrics)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	if logger != nil {
		logger.Info("metrics", "url", "http://"+ln.Addr().String()+"/metrics")
	}
	return func() { _ = srv.Close() }, nil
}

// Shutdown flushes and stops the exporters, and uninstalls p if it is installed.
func (p *Provider) Shutdown(ctx context.Context) error {
	if p.installed {
		SetDefault(nil)
		SetTracerProvider(nil)
		enabled.Store(false)
		p.installed = false
	}
	var errs []error
	for i := len(p.shutdown) - 1; i >= 0; i-- {
		errs = append(errs, p.shutdown[i](ctx))
	}
	p.shutdown = nil
	return errors.Join(errs...)
}

// Tracer returns the tracer Spine's own spans (invocations, outbox, blob) use: the installed
// provider's (Install, SetTracerProvider), else the OpenTelemetry global one's.
func Tracer() trace.Tracer {
	if t := tracer.Load(); t != nil {
		return *t
	}
	return globalTracer
}

var (
	tracer       atomic.Pointer[trace.Tracer]
	globalTracer = otel.Tracer(scope)
)

// SetTracerProvider makes Tracer use tp's tracer (nil: the global provider's again). Install calls
// it; tests use it with a recording provider.
func SetTracerProvider(tp trace.TracerProvider) {
	if tp == nil {
		tracer.Store(nil)
		return
	}
	t := tp.Tracer(scope)
	tracer.Store(&t)
}

// scope is the instrumentation scope of Spine's own instruments and spans.
const scope = "spine"
