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
	if fn.ServiceBus != nil {
		kind = trace.SpanKindConsumer
		if tp, ts := messageTraceParent(inv); tp != "" {
			carrier := propagation.MapCarrier{"traceparent": tp}
			if ts != "" {
				carrier["tracestate"] = ts
			}
			ctx = telemetry.Propagator.Extract(ctx, carrier)
		}
	}
	ctx, span := telemetry.Tracer().Start(ctx, fn.Name, trace.WithSpanKind(kind))
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
