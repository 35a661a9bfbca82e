package httpx

import (
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"spine/shared/auth"
	"spine/shared/events"
	"spine/shared/telemetry"
)

// Route is middleware that names the request by echo's matched route (e.g. "/api/tenants/:id"):
// it sets the request's Pattern ("GET /api/tenants/:id"), from which otelhttp takes the span name
// and the http.route attribute of its spans and metrics, and renames the current span. Mount it
// with Echo.Use, so it runs after routing and before any middleware replaces the request.
// Unmatched requests keep no route (their paths would be unbounded).
func Route() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if route := matchedRoute(c); route != "" {
				r := c.Request()
				r.Pattern = r.Method + " " + route
				if span := trace.SpanFromContext(r.Context()); span.IsRecording() {
					span.SetName(r.Pattern)
					span.SetAttributes(semconv.HTTPRoute(route))
				}
			}
			return next(c)
		}
	}
}

// matchedRoute is echo's route for c, or "" when no route matched (echo's not-found routes).
func matchedRoute(c echo.Context) string {
	route := c.Path()
	if route == "" || route == "/*" || strings.HasSuffix(route, "/*") && c.Response().Status == http.StatusNotFound {
		return ""
	}
	return route
}

// AccessLog is middleware that logs one line per request at Info (Warn for 5xx answers), when
// the answer is known: method, route (echo's matched route, not the raw path), status, duration
// (readable, e.g. "1.234ms"), traceId and tenantId (the caller's, when authenticated). Never the
// token, the query string or the body. Requests skip selects are not logged. Errors returned by
// the handler are rendered here (c.Error) so the status logged is the status answered.
func AccessLog(logger *slog.Logger, skip func(echo.Context) bool) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if skip != nil && skip(c) {
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
			if status >= 500 {
				level = slog.LevelWarn
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
