package httpx

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"spine/shared/auth"
	"spine/shared/events"
	"spine/shared/telemetry"
)

// Route is middleware that names the request by echo's matched route (e.g. "/api/tenants/:id",
// or a group's "/api/*" not-found route; always a registered pattern, never the raw path): it
// sets the request's Pattern ("GET /api/tenants/:id"), from which otelhttp takes the span name and
// the http.route attribute of its spans and metrics, and renames the current span. Mount it with
// Echo.Use, so it runs after routing and before any middleware replaces the request.
func Route() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if route := c.Path(); route != "" {
				r := c.Request()
				r.Pattern = r.Method + " " + route
				if span := trace.SpanFromContext(r.Context()); span.IsRecording() {
					span.SetName(r.Pattern)
					// url.path becomes the route too: a path segment may be a credential (an
					// invitation token), and spans leave the process.
					span.SetAttributes(semconv.HTTPRoute(route), semconv.URLPath(route))
				}
			}
			return next(c)
		}
	}
}

// AccessLogConfig selects what AccessLog logs.
type AccessLogConfig struct {
	// Skip selects requests that are not logged at all (nil: none).
	Skip func(echo.Context) bool
	// Quiet selects requests whose successful (2xx) answers are logged at Debug (nil: none), e.g.
	// health probes.
	Quiet func(echo.Context) bool
}

// AccessLog is middleware that logs one line per request, "request", when the answer is known:
// method, route (echo's matched route, not the raw path), status, duration (readable, e.g.
// "1.234ms"), traceId and tenantId (the caller's, when authenticated); never the token, the query
// string or the body. The level is Info, Warn for 5xx answers, Debug for cfg.Quiet's 2xx answers.
// Errors returned by the handler are rendered here (c.Error), so the status logged is the status
// answered.
func AccessLog(logger *slog.Logger, cfg AccessLogConfig) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if cfg.Skip != nil && cfg.Skip(c) {
				return next(c)
			}
			start := time.Now()
			if err := next(c); err != nil {
				c.Error(err)
			}
			r := c.Request() // as the inner middleware left it: trace, principal
			ctx := r.Context()
			status := c.Response().Status
			level := slog.LevelInfo
			switch {
			case status >= 500:
				level = slog.LevelWarn
			case status < 300 && cfg.Quiet != nil && cfg.Quiet(c):
				level = slog.LevelDebug
			}
			if !logger.Enabled(ctx, level) {
				return nil
			}
			route := c.Path()
			if route == "" {
				route = "unmatched"
			}
			attrs := make([]slog.Attr, 0, 7)
			attrs = append(attrs,
				slog.String("method", r.Method),
				slog.String("route", route),
				slog.Int("status", status),
				slog.String("duration", telemetry.FormatDuration(time.Since(start))),
			)
			if id := traceIDOf(r); id != "" {
				attrs = append(attrs, slog.String("traceId", id))
			}
			if p, ok := auth.FromContext(ctx); ok && p.TenantID != "" {
				attrs = append(attrs, slog.String("tenantId", p.TenantID))
			}
			logger.LogAttrs(ctx, level, "request", attrs...)
			return nil
		}
	}
}

// traceIDOf is the request's trace id: the one Trace put into the events metadata, else the span's.
func traceIDOf(r *http.Request) string {
	if tp, ok := ParseTraceParent(events.MetaFrom(r.Context()).TraceParent); ok {
		return tp.TraceID
	}
	return telemetry.TraceID(r.Context())
}
