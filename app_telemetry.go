package main

import (
	"context"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"

	"spine/shared/blob"
	"spine/shared/cache"
	"spine/shared/httpx"
	"spine/shared/problem"
	"spine/shared/secrets"
	"spine/shared/sqlstore"
	"spine/shared/telemetry"
)

// setupTelemetry builds and installs the process's telemetry from the settings (see
// shared/telemetry): before any store opens, so the stores pick their instrumentation up.
func (a *app) setupTelemetry(ctx context.Context) error {
	p, err := telemetry.New(ctx, telemetry.Config{
		MetricsAddr: a.cfg.MetricsAddr,
		OTLPMetrics: a.cfg.OTLPMetrics,
		OTLPTraces:  a.cfg.OTLPTraces,
		TenantLimit: a.cfg.MetricsTenantLimit,
	})
	if err != nil {
		return err
	}
	p.Install()
	a.telemetry = p
	a.closers = append(a.closers, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = p.Shutdown(ctx)
	})
	return nil
}

// instrumentRedis records every keyed Redis command as a store operation (cache.MetricsHook)
// and, when telemetry is on, adds go-redis's own spans and metrics (without the command text,
// which holds cached values).
func (a *app) instrumentRedis(rdb *redis.Client) {
	if !telemetry.Enabled() {
		return
	}
	rdb.AddHook(cache.MetricsHook())
	if err := redisotel.InstrumentTracing(rdb, redisotel.WithDBStatement(false), redisotel.WithCallerEnabled(false)); err != nil {
		a.log.Warn("telemetry: redis tracing not installed", "error", err)
	}
	if err := redisotel.InstrumentMetrics(rdb); err != nil {
		a.log.Warn("telemetry: redis metrics not installed", "error", err)
	}
}

// instrumentEcho names requests by their route (for otelhttp) and writes the access log: one
// line per /api request; health answers that succeed are logged at Debug (probes are frequent).
// Invocation requests (POST /<Function>) log their own line (functions.Mount).
func (a *app) instrumentEcho(e *echo.Echo) {
	e.Use(httpx.Route(), httpx.AccessLog(a.log, httpx.AccessLogConfig{
		Skip:  func(c echo.Context) bool { return !strings.HasPrefix(c.Request().URL.Path, "/api/") },
		Quiet: func(c echo.Context) bool { return strings.HasPrefix(c.Path(), "/api/health") },
	}))
}

// handler is what the HTTP server serves: echo, wrapped by otelhttp (a server span and the HTTP
// server metrics per /api request) when telemetry is on. Invocations get their spans from
// functions.Mount instead.
func (a *app) handler() http.Handler {
	if a.telemetry == nil || !telemetry.Enabled() {
		return a.echo
	}
	return otelhttp.NewHandler(a.echo, "spine",
		otelhttp.WithMeterProvider(a.telemetry.MeterProvider()),
		otelhttp.WithTracerProvider(a.telemetry.TracerProvider()),
		otelhttp.WithPropagators(telemetry.Propagator),
		otelhttp.WithFilter(func(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, "/api/") }),
	)
}

// serveMetrics serves the Prometheus endpoint when SPINE_METRICS_ADDR is set.
func (a *app) serveMetrics() (stop func(), err error) {
	if a.telemetry == nil {
		return func() {}, nil
	}
	return a.telemetry.ServeMetrics(a.log)
}

// readyTimeout bounds the whole readiness check.
const readyTimeout = 2 * time.Second

// dependency is one thing /api/health/ready checks.
type dependency struct {
	name string
	ping func(context.Context) error
}

// mountHealth serves GET /api/health (liveness: cheap, touches nothing) and GET
// /api/health/ready (readiness: pings each service database, Redis when configured, Blob
// storage and Key Vault when configured, concurrently, within readyTimeout). Both are anonymous.
func (a *app) mountHealth(api *echo.Group, dbs map[string]*sqlstore.DB, rc *cache.Cache, blobs *blob.Store, vault *secrets.Vault) {
	api.GET("/health", func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]any{"status": "ok", "services": a.cfg.Enabled})
	})
	var deps []dependency
	for _, svc := range a.cfg.Enabled {
		if db := dbs[svc]; db != nil {
			deps = append(deps, dependency{"db." + svc, db.PingContext})
		}
	}
	if rc != nil {
		deps = append(deps, dependency{"redis", rc.Ping})
	}
	if blobs != nil {
		deps = append(deps, dependency{"blob", blobs.Ping})
	}
	if vault != nil {
		deps = append(deps, dependency{"keyvault", vault.Ping})
	}
	if a.retention != nil {
		deps = append(deps, dependency{"ledger", a.retention.Ledger().Ping})
	}
	api.GET("/health/ready", a.ready(deps))
}

// notReady is the 503 answer of /api/health/ready: problem details naming what is down.
type notReady struct {
	problem.Problem
	Checks map[string]string `json:"checks"`
	Down   []string          `json:"down"`
}

// ready answers 200 {"status":"ready","checks":{name:"up"}} when every dependency answers, else
// 503 problem+json (code not-ready) naming the ones that are down. A driver's error text is
// logged, never answered.
func (a *app) ready(deps []dependency) echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx, cancel := context.WithTimeout(c.Request().Context(), readyTimeout)
		defer cancel()
		checks := make(map[string]string, len(deps))
		var down []string
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, d := range deps {
			wg.Go(func() {
				err := d.ping(ctx)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					checks[d.name] = "down"
					down = append(down, d.name)
					a.log.WarnContext(ctx, "health: dependency down", "dependency", d.name, "error", err)
					return
				}
				checks[d.name] = "up"
			})
		}
		wg.Wait()
		if len(down) == 0 {
			return c.JSON(http.StatusOK, map[string]any{"status": "ready", "checks": checks})
		}
		sort.Strings(down)
		p := problem.New(http.StatusServiceUnavailable, "not-ready", "Not ready: "+strings.Join(down, ", ")+" down.")
		p.Instance = c.Request().URL.Path
		c.Response().Header().Set("Retry-After", "5")
		c.Response().Header().Set(echo.HeaderContentType, problem.ContentType)
		return c.JSON(http.StatusServiceUnavailable, notReady{Problem: *p, Checks: checks, Down: down})
	}
}
