package httpx

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/trace"

	"spine/shared/auth"
	"spine/shared/events"
	"spine/shared/telemetry"
	"spine/shared/text"
)

// TraceParent is a W3C trace context `traceparent` value split into its parts.
type TraceParent struct {
	TraceID, SpanID string
	Flags           string
}

// String formats the version-00 header value.
func (t TraceParent) String() string { return "00-" + t.TraceID + "-" + t.SpanID + "-" + t.Flags }

// ParseTraceParent parses a version-00 traceparent; ok is false for anything malformed or all-zero.
func ParseTraceParent(s string) (TraceParent, bool) {
	if s == "" {
		return TraceParent{}, false // most requests carry none: skip the split's allocation
	}
	p := strings.Split(strings.TrimSpace(s), "-")
	if len(p) != 4 || p[0] != "00" || len(p[1]) != 32 || len(p[2]) != 16 || len(p[3]) != 2 ||
		!isHex(p[1]) || !isHex(p[2]) || !isHex(p[3]) ||
		p[1] == strings.Repeat("0", 32) || p[2] == strings.Repeat("0", 16) {
		return TraceParent{}, false
	}
	return TraceParent{TraceID: p[1], SpanID: p[2], Flags: p[3]}, true
}

func isHex(s string) bool {
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return false
		}
	}
	return true
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// NewChildSpan continues parent's trace with a fresh span id, or starts a new sampled trace.
func NewChildSpan(parent string) TraceParent {
	if tp, ok := ParseTraceParent(parent); ok {
		return TraceParent{TraceID: tp.TraceID, SpanID: randHex(8), Flags: tp.Flags}
	}
	ids := randHex(24) // one random read for both ids
	return TraceParent{TraceID: ids[:32], SpanID: ids[32:], Flags: "01"}
}

// maxCorrelationID is the longest X-Correlation-Id kept, in bytes.
const maxCorrelationID = 128

// Trace is middleware that continues the caller's trace (or starts one), puts the event
// extensions (traceparent, correlation id) into the request context for stores that write events,
// and echoes the trace id in the response header `traceparent` so callers can find their logs.
// When OpenTelemetry records a span for the request (otelhttp), its trace and span ids are used,
// so the traceparent of the answer, the events and the logs name the exported span.
func Trace() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			var tp TraceParent
			if sc := trace.SpanContextFromContext(r.Context()); sc.IsValid() && !sc.IsRemote() {
				tp = TraceParent{TraceID: sc.TraceID().String(), SpanID: sc.SpanID().String(), Flags: sc.TraceFlags().String()}
			} else {
				tp = NewChildSpan(r.Header.Get("traceparent"))
			}
			corr := r.Header.Get("X-Correlation-Id")
			if len(corr) > maxCorrelationID || text.CheckLine(corr) != nil {
				corr = "" // optional and advisory: a header we cannot store is ignored, never blamed on the body
			}
			header := tp.String()
			ctx := events.WithMeta(r.Context(), events.Meta{TraceParent: header, CorrelationID: corr})
			c.SetRequest(r.WithContext(ctx))
			c.Response().Header().Set("traceparent", header)
			return next(c)
		}
	}
}

// ActorContext records the verified caller p as the actor of every event the request writes:
// "user:<sub>" for tenant tokens, "admin:<sub>" for platform admins. It also names the caller's
// tenant for telemetry (telemetry.WithTenant), so store operations without a tenant scope of their
// own (a shared cache load) count for it. NewAPI runs it inside authentication
// (auth.Authenticate), so the request is replaced once for both.
func ActorContext(ctx context.Context, p auth.Principal) context.Context {
	m := events.MetaFrom(ctx)
	m.Actor = "user:" + p.Subject
	if p.PlatformAdmin {
		m.Actor = "admin:" + p.Subject
	}
	return telemetry.WithTenant(events.WithMeta(ctx, m), p.TenantID)
}
