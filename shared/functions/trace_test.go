package functions

import (
	"context"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"spine/shared/problem"
	"spine/shared/telemetry"
)

// Every invocation runs in a span named after its function; a Service Bus invocation's parent is
// the message's traceparent (application property, else the CloudEvent's extension), and its log
// line names that trace. A Quiet result logs its line at Debug.
func TestMount_InvocationSpansAndQuietResults(t *testing.T) {
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	telemetry.SetTracerProvider(tp)
	t.Cleanup(func() { telemetry.SetTracerProvider(nil); _ = tp.Shutdown(context.Background()) })

	var r Registry
	var seen []trace.SpanContext
	if err := r.Add(
		Function{Name: "Idle", Timer: &TimerTrigger{Schedule: "*/10 * * * * *"}, Handler: func(ctx context.Context, _ *Invocation) (*Result, error) {
			seen = append(seen, trace.SpanContextFromContext(ctx))
			return &Result{Quiet: true}, nil
		}},
		Function{Name: "AuditOnEvent", ServiceBus: &ServiceBusTrigger{Topic: "tenants", Subscription: "audit", Connection: "ServiceBusConnection"},
			Handler: func(ctx context.Context, _ *Invocation) (*Result, error) {
				seen = append(seen, trace.SpanContextFromContext(ctx))
				return nil, nil
			}},
	); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	e := echo.New()
	e.HTTPErrorHandler = (&problem.Handler{}).ServeError
	Mount(e, &r, slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	ctx := context.Background()

	const (
		propTrace = "5ca1ab1e5ca1ab1e5ca1ab1e5ca1ab1e"
		bodyTrace = "0af7651916cd43dd8448eb211c80319c"
	)
	withProp, md := ServiceBusMessage([]byte(cloudEvent), EncodingDoubleQuoted, ServiceBusMetadata{MessageID: "m-1", DeliveryCount: 1,
		ApplicationProperties: map[string]any{"traceparent": "00-" + propTrace + "-00f067aa0ba902b7-01"}})
	md["sys"] = SysMetadata("AuditOnEvent", time.Now())["sys"]
	if status, _, body, _ := Invoke(ctx, e, "AuditOnEvent", map[string]any{ServiceBusBinding: withProp}, md); status != http.StatusOK {
		t.Fatalf("service bus invocation: %d %s", status, body)
	}
	ce := `{"specversion":"1.0","id":"e-2","source":"/services/tenants","type":"TenantRegistered","traceparent":"00-` + bodyTrace + `-b7ad6b7169203331-01"}`
	inBody, md2 := ServiceBusMessage([]byte(ce), EncodingObject, ServiceBusMetadata{MessageID: "m-2", DeliveryCount: 1})
	if status, _, body, _ := Invoke(ctx, e, "AuditOnEvent", map[string]any{ServiceBusBinding: inBody}, md2); status != http.StatusOK {
		t.Fatalf("service bus invocation (trace in the body): %d %s", status, body)
	}
	if status, _, body, _ := Invoke(ctx, e, "Idle", TimerData(time.Now(), time.Now(), false), nil); status != http.StatusOK {
		t.Fatalf("timer invocation: %d %s", status, body)
	}

	if len(seen) != 3 || seen[0].TraceID().String() != propTrace || seen[1].TraceID().String() != bodyTrace || !seen[2].IsValid() {
		t.Fatalf("handlers saw span contexts %v", seen)
	}
	ended := spans.Ended()
	if len(ended) != 3 {
		t.Fatalf("%d spans, want 3", len(ended))
	}
	for i, sp := range ended[:2] {
		if sp.Name() != "AuditOnEvent" || sp.SpanKind() != trace.SpanKindConsumer || !sp.Parent().IsRemote() {
			t.Errorf("service bus span %d: %s kind %v parent %v", i, sp.Name(), sp.SpanKind(), sp.Parent())
		}
	}
	if sp := ended[2]; sp.Name() != "Idle" || sp.SpanKind() != trace.SpanKindServer || sp.Parent().IsValid() {
		t.Errorf("timer span: %s kind %v parent %v", sp.Name(), sp.SpanKind(), sp.Parent())
	}

	lines := logs.lines(t)
	if len(lines) != 3 {
		t.Fatalf("%d log lines, want 3: %v", len(lines), lines)
	}
	if lines[0]["traceId"] != propTrace || lines[1]["traceId"] != bodyTrace || lines[0]["level"] != "INFO" {
		t.Errorf("service bus log lines: %v", lines[:2])
	}
	if lines[2]["function"] != "Idle" || lines[2]["level"] != "DEBUG" {
		t.Errorf("quiet timer log line: %v", lines[2])
	}
}
