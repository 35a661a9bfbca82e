package telemetry

import (
	"context"
	"log/slog"
	"time"

	"github.com/go-logr/logr"
	"go.opentelemetry.io/otel"
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

// UseLogger makes l the process's one log: slog's default (and so the log package, which
// libraries such as the JWKS refresher write to), OpenTelemetry's internal logger (exporter set-up
// problems) and its error handler (failed exports, as Warn). Without it those lines are plain
// text among the JSON ones. Call it once, early, in the process itself; tests leave it alone.
func UseLogger(l *slog.Logger) {
	slog.SetDefault(l)
	otel.SetLogger(logr.FromSlogHandler(l.Handler()))
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		l.Warn("telemetry: export failed", "error", err)
	}))
}
