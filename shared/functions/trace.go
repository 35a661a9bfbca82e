package functions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"spine/shared/problem"
	"spine/shared/telemetry"
)

// startInvocationSpan starts the span of one invocation, named after the function: kind consumer
// for a Service Bus function, whose parent is the message's trace context (see messageTraceParent),
// and kind server otherwise. With no tracer recording, the returned context still carries the
// message's trace context, so log lines can name the trace.
func startInvocationSpan(ctx context.Context, fn Function, inv *Invocation) (context.Context, trace.Span) {
	kind := trace.SpanKindServer
	var opts []trace.SpanStartOption
	batch := 0
	if fn.ServiceBus != nil {
		kind = trace.SpanKindConsumer
		var parents [][2]string // traceparent, tracestate
		if inv.IsServiceBusBatch() {
			parents = batchTraceParents(inv)
			batch = len(parents)
		} else if tp, ts := messageTraceParent(inv); tp != "" {
			parents = [][2]string{{tp, ts}}
		}
		// A batch's span continues its first message's trace and links every message's trace
		// (the messaging conventions' batch process span), so each message's trace reaches it.
		for i, p := range parents {
			if p[0] == "" {
				continue
			}
			carrier := propagation.MapCarrier{"traceparent": p[0]}
			if p[1] != "" {
				carrier["tracestate"] = p[1]
			}
			mctx := telemetry.Propagator.Extract(context.Background(), carrier)
			if i == 0 || trace.SpanContextFromContext(ctx).TraceID() == (trace.TraceID{}) {
				ctx = telemetry.Propagator.Extract(ctx, carrier)
			}
			if batch > 0 {
				opts = append(opts, trace.WithLinks(trace.LinkFromContext(mctx)))
			}
		}
	}
	ctx, span := telemetry.Tracer().Start(ctx, fn.Name, append(opts, trace.WithSpanKind(kind))...)
	if span.IsRecording() {
		span.SetAttributes(semconv.FaaSName(fn.Name), semconv.FaaSInvocationID(inv.InvocationID))
		switch {
		case fn.Timer != nil:
			span.SetAttributes(semconv.FaaSTriggerTimer)
		case fn.ServiceBus != nil:
			span.SetAttributes(semconv.FaaSTriggerPubSub, semconv.MessagingSystemServiceBus,
				semconv.MessagingOperationTypeProcess,
				semconv.MessagingDestinationName(fn.ServiceBus.Topic),
				semconv.MessagingDestinationSubscriptionName(fn.ServiceBus.Subscription))
			if id, err := inv.metaString("MessageId"); err == nil && id != "" {
				span.SetAttributes(semconv.MessagingMessageID(id))
			}
			if batch > 0 {
				span.SetAttributes(semconv.MessagingBatchMessageCount(batch))
			}
		}
	}
	return ctx, span
}

// endInvocationSpan ends span with the handler's outcome. Only the problem code is recorded,
// never an error's text (it may be a driver's).
func endInvocationSpan(span trace.Span, err error) {
	if err != nil && span.IsRecording() {
		code := "internal"
		var p *problem.Problem
		if errors.As(err, &p) {
			code = p.Code
		}
		span.SetAttributes(semconv.ErrorTypeKey.String(code))
		span.SetStatus(codes.Error, fmt.Sprintf("invocation failed: %s", code))
	}
	span.End()
}

// batchTraceParents returns each message's trace context of a batch invocation, as
// messageTraceParent finds one message's: its application properties, else its CloudEvent's
// traceparent ("" when a message has none).
func batchTraceParents(inv *Invocation) [][2]string {
	bodies, err := inv.Payloads(ServiceBusBinding)
	if err != nil {
		return nil
	}
	out := make([][2]string, len(bodies))
	mds, _ := inv.ServiceBusBatch(len(bodies))
	for i, b := range bodies {
		if mds != nil {
			if tp, _ := mds[i].ApplicationProperties["traceparent"].(string); tp != "" {
				ts, _ := mds[i].ApplicationProperties["tracestate"].(string)
				out[i] = [2]string{tp, ts}
				continue
			}
		}
		var ce struct {
			TraceParent string `json:"traceparent"`
			TraceState  string `json:"tracestate"`
		}
		if json.Unmarshal(b, &ce) == nil {
			out[i] = [2]string{ce.TraceParent, ce.TraceState}
		}
	}
	return out
}

// messageTraceParent finds the trace context a Service Bus message carries: the traceparent
// application property (what Spine's outbox sets; UserProperties is the older name), else the
// CloudEvent's traceparent extension in the body, else the Diagnostic-Id property the Azure SDKs
// set (a traceparent too). A malformed value is ignored by the propagator.
func messageTraceParent(inv *Invocation) (traceparent, tracestate string) {
	app, _ := inv.metaObject("ApplicationProperties")
	user, _ := inv.metaObject("UserProperties")
	for _, props := range []map[string]any{app, user} {
		if tp, _ := props["traceparent"].(string); tp != "" {
			ts, _ := props["tracestate"].(string)
			return tp, ts
		}
	}
	if raw, err := inv.Payload(ServiceBusBinding); err == nil {
		var ce struct {
			TraceParent string `json:"traceparent"`
			TraceState  string `json:"tracestate"`
		}
		if json.Unmarshal(raw, &ce) == nil && ce.TraceParent != "" {
			return ce.TraceParent, ce.TraceState
		}
	}
	for _, props := range []map[string]any{app, user} {
		if tp, _ := props["Diagnostic-Id"].(string); tp != "" {
			return tp, ""
		}
	}
	return "", ""
}
