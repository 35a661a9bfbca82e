package outbox

import (
	"context"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"spine/shared/httpx"
	"spine/shared/telemetry"
	"spine/shared/tenancy"
)

// A drain batch that publishes is traced (a drain span under the caller's, a producer span under
// it), gives the messages that carry no trace context the drain's, and records one bus publish
// per tenant with its message count and bytes.
func TestDrain_TracesAndRecordsPublishes(t *testing.T) {
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	telemetry.SetTracerProvider(tp)
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	rec, err := telemetry.NewRecorder(mp, 10)
	if err != nil {
		t.Fatal(err)
	}
	telemetry.SetDefault(rec)
	t.Cleanup(func() {
		telemetry.SetTracerProvider(nil)
		telemetry.SetDefault(nil)
		_ = tp.Shutdown(context.Background())
		_ = mp.Shutdown(context.Background())
	})

	db := open(t)
	a, b := tenancy.NewTenantID(), tenancy.NewTenantID()
	write(t, db, []tenancy.TenantID{a, b}, 2) // written outside any request: no traceparent
	pub := &recorder{}
	d, err := NewDrainer(db, "tenants", pub, DrainerConfig{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, parent := tp.Tracer("test").Start(context.Background(), "OutboxDrain")
	if r, err := d.Drain(ctx, 10*time.Second); err != nil || r.Published != 4 {
		t.Fatalf("drain: %+v %v", r, err)
	}
	parent.End()

	var drain, publish sdktrace.ReadOnlySpan
	for _, s := range spans.Ended() {
		switch s.Name() {
		case "outbox drain tenants":
			drain = s
		case "tenants publish":
			publish = s
		}
	}
	if drain == nil || publish == nil {
		t.Fatalf("spans: %v", spans.Ended())
	}
	if drain.Parent().SpanID() != parent.SpanContext().SpanID() || publish.Parent().SpanID() != drain.SpanContext().SpanID() ||
		publish.SpanKind() != trace.SpanKindProducer {
		t.Fatalf("span tree: drain parent %v, publish parent %v kind %v", drain.Parent(), publish.Parent(), publish.SpanKind())
	}
	for _, m := range pub.accepted {
		tp, ok := httpx.ParseTraceParent(m.Properties["traceparent"].(string))
		if !ok || tp.TraceID != drain.SpanContext().TraceID().String() {
			t.Fatalf("message %s carries traceparent %v, want the drain's trace", m.ID, m.Properties["traceparent"])
		}
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	items := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "spine.store.items" {
				continue
			}
			for _, dp := range m.Data.(metricdata.Histogram[int64]).DataPoints {
				store, _ := dp.Attributes.Value(telemetry.AttrStore)
				tenant, _ := dp.Attributes.Value(telemetry.AttrTenant)
				if store.AsString() == telemetry.StoreBus {
					items[tenant.AsString()] += dp.Sum
				}
			}
		}
	}
	if items[a.String()] != 2 || items[b.String()] != 2 || len(items) != 2 {
		t.Fatalf("bus publish items by tenant: %v", items)
	}
}
