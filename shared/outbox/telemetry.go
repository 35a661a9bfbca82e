package outbox

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"spine/shared/telemetry"
)

// maxDrainLinks bounds the links from a drain span to the traces of the events it publishes.
const maxDrainLinks = 32

// startDrainSpan starts the span of a drain batch that claimed msgs, backdated to the start of its
// transaction, linked to the traces of (up to maxDrainLinks of) the events it publishes.
func (d *Drainer) startDrainSpan(ctx context.Context, start time.Time, msgs []Message) (context.Context, trace.Span) {
	ctx, span := telemetry.Tracer().Start(ctx, "outbox drain "+d.topic, trace.WithTimestamp(start),
		trace.WithSpanKind(trace.SpanKindInternal))
	if span.IsRecording() {
		span.SetAttributes(attribute.String("spine.outbox.topic", d.topic), attribute.Int("spine.outbox.claimed", len(msgs)))
		for i, m := range msgs {
			if i == maxDrainLinks {
				break
			}
			if tp, _ := m.Properties["traceparent"].(string); tp != "" {
				if sc := trace.SpanContextFromContext(telemetry.Propagator.Extract(context.Background(),
					propagation.MapCarrier{"traceparent": tp})); sc.IsValid() {
					span.AddLink(trace.Link{SpanContext: sc})
				}
			}
		}
	}
	return ctx, span
}

// endDrainSpan ends a drain batch's span with what the batch did.
func endDrainSpan(span trace.Span, r Result, err error) {
	if span.IsRecording() {
		span.SetAttributes(attribute.Int("spine.outbox.published", r.Published), attribute.Int("spine.outbox.failed", r.Failed),
			attribute.Int("spine.outbox.parked", r.Parked), attribute.Int("spine.outbox.blocked", r.Blocked))
		if err != nil {
			span.SetStatus(codes.Error, "drain batch failed")
		}
	}
	span.End()
}

// propagate gives every message that carries no trace context the current one (the drain's), so
// the consumer's span continues a trace even for events written outside any request.
func propagate(ctx context.Context, msgs []Message) {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return
	}
	carrier := propagation.MapCarrier{}
	telemetry.Propagator.Inject(ctx, carrier)
	tp := carrier["traceparent"]
	if tp == "" {
		return
	}
	for i := range msgs {
		if _, ok := msgs[i].Properties["traceparent"]; ok {
			continue
		}
		if msgs[i].Properties == nil {
			msgs[i].Properties = map[string]any{}
		}
		msgs[i].Properties["traceparent"] = tp
	}
}

// publish hands msgs to the publisher under a producer span and records the bus store operation:
// one per tenant in the batch (service = the topic's service, op publish, items = the tenant's
// messages, size = their bytes, outcome error when any of them was refused).
func (d *Drainer) publish(ctx context.Context, rows []row, msgs []Message) error {
	ctx, span := telemetry.Tracer().Start(ctx, d.topic+" publish", trace.WithSpanKind(trace.SpanKindProducer))
	if span.IsRecording() {
		span.SetAttributes(semconv.MessagingOperationTypeSend, semconv.MessagingDestinationName(d.topic),
			semconv.MessagingBatchMessageCount(len(msgs)))
	}
	start := time.Now()
	err := d.pub.Publish(ctx, d.topic, msgs)
	elapsed := time.Since(start)
	if err != nil {
		span.SetStatus(codes.Error, "publish refused")
	}
	span.End()
	if rec := telemetry.Default(); rec != nil {
		d.recordPublish(ctx, rec, rows, msgs, err, elapsed)
	}
	return err
}

func (d *Drainer) recordPublish(ctx context.Context, rec *telemetry.Recorder, rows []row, msgs []Message, err error, elapsed time.Duration) {
	var pe *PublishError
	partial := errors.As(err, &pe)
	type tally struct {
		items, bytes int64
		failed       bool
	}
	byTenant := map[string]*tally{}
	order := []string{}
	for i, rw := range rows {
		t := byTenant[rw.tenant]
		if t == nil {
			t = &tally{}
			byTenant[rw.tenant] = t
			order = append(order, rw.tenant)
		}
		t.items++
		t.bytes += int64(len(msgs[i].Body))
		if err != nil && (!partial || pe.Blocked[i] || pe.Failed[i] != "") {
			t.failed = true
		}
	}
	for _, tenant := range order {
		t := byTenant[tenant]
		outcome := telemetry.OutcomeOK
		if t.failed {
			outcome = telemetry.OutcomeError
		}
		rec.Record(ctx, d.topic, telemetry.StoreBus, "publish", tenant, outcome, elapsed, t.items, t.bytes)
	}
}
