package telemetry

import (
	"context"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// FormatDuration writes d for people: rounded to the microsecond below a second and to the
// millisecond above ("1.234ms", "250µs", "2.5s").
func FormatDuration(d time.Duration) string {
	if d >= time.Second || d <= -time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Microsecond).String()
}

// ReadableDurations is a slog.HandlerOptions.ReplaceAttr that writes time.Duration values with
// FormatDuration instead of as nanoseconds (what slog's JSON handler does by default).
func ReadableDurations(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		return slog.String(a.Key, FormatDuration(a.Value.Duration()))
	}
	return a
}

// TraceID returns the trace id of the span in ctx (a recorded one, or the caller's trace carried
// by a no-op tracer), or "" when ctx has no valid span context.
func TraceID(ctx context.Context) string {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		return sc.TraceID().String()
	}
	return ""
}
