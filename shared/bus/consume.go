package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"spine/shared/functions"
	"spine/shared/httpx"
	"spine/shared/inbox"
	"spine/shared/problem"
	"spine/shared/sqlstore"
)

// Effect is what a consumer does with one event, inside the transaction that also claims the
// event in the consumer's inbox: tx runs in the event's tenant's row-level-security scope (a
// platform delivery's, which only a consumer with PlatformEvents gets, in platform scope), and
// whatever the effect writes (its own rows, outbox.Emit) commits with the claim or not at all.
// It must not call out (it may run again after a failed commit). An error fails the delivery,
// which the host retries and finally dead-letters; wrap ErrSkip to acknowledge the event with no
// effect (e.g. an event type the consumer does not handle).
type Effect func(ctx context.Context, tx *sqlstore.Tx, d Delivery) error

// Consumer is one service's Service Bus consumer: its inbox name and its effect over its own
// database.
type Consumer struct {
	// Name is the consumer's name in the inbox (the consuming service's subscription name).
	Name string
	// DB is the consuming service's database.
	DB *sqlstore.DB
	// Effect is applied once per event.
	Effect Effect
	// Log receives one line per event at INFO (recorded or duplicate), with its trace id.
	Log *slog.Logger
	// PlatformEvents has Effect applied to platform deliveries too (Delivery.Platform: events
	// without a tenant), in sqlstore.PlatformScope(), claimed in the inbox under
	// outbox.PlatformTenant. Without it a platform delivery is acknowledged as "skipped": no
	// transaction, no claim, no effect. A consumer written for tenants' events leaves it false.
	PlatformEvents bool
}

// Consume is a Service Bus-triggered function's whole body for c: it decodes the CloudEvent from
// whatever encoding the host used (DecodeEvent), opens a transaction in the event's tenant's scope
// (platform scope for a platform delivery; see PlatformEvents), claims the event in c's inbox, runs
// c.Effect, commits, and answers the host. A redelivered or duplicated event finds its claim and
// has no second effect (200, "duplicate"). An undecodable message answers 400 and a failed effect
// or store a non-2xx problem, so the host retries and finally dead-letters. Safe for concurrent
// use.
func (c Consumer) Consume(ctx context.Context, inv *functions.Invocation) (*functions.Result, error) {
	d, err := DecodeEvent(inv)
	if err != nil {
		return nil, err
	}
	first := true
	if d.Platform && !c.PlatformEvents {
		err = fmt.Errorf("%w: %s takes no platform events", ErrSkip, c.Name)
	} else {
		err = c.DB.InTx(ctx, d.scope(), func(tx *sqlstore.Tx) error {
			var err error
			if first, err = inbox.Claim(ctx, tx, c.Name, d.Event.ID, d.Event.Type); err != nil || !first {
				return err
			}
			return c.Effect(ctx, tx, d)
		})
	}
	skipped := errors.Is(err, ErrSkip)
	if err != nil && !skipped {
		return nil, err
	}
	outcome := "applied"
	switch {
	case !first:
		outcome = "duplicate"
	case skipped:
		outcome = "skipped"
	}
	if c.Log != nil {
		trace := ""
		if tp, ok := httpx.ParseTraceParent(d.Event.TraceParent); ok {
			trace = tp.TraceID
		}
		c.Log.InfoContext(ctx, "event consumed", "consumer", c.Name, "outcome", outcome, "eventId", d.Event.ID,
			"type", d.Event.Type, "tenantId", d.Tenant(), "traceId", trace,
			"invocationId", inv.InvocationID, "function", inv.FunctionName)
	}
	return &functions.Result{Logs: []string{fmt.Sprintf("%s: %s event %s %s", c.Name, d.Event.Type, d.Event.ID, outcome)}}, nil
}

// ErrSkip, wrapped by an Effect's error, acknowledges the event without an effect: the
// transaction rolls back (so not even the inbox claim is kept) and the host gets 200.
var ErrSkip = errors.New("bus: event skipped")

// Data decodes the event's data into v (a type from shared/contracts). A data member that does
// not decode into v is a 400 invalid-event problem: the message fails on every delivery and is
// dead-lettered.
func (d Delivery) Data(v any) error {
	if len(d.Event.Data) == 0 {
		return invalid(fmt.Errorf("%w: %s has no data", ErrInvalidMessage, d.Event.Type))
	}
	if err := json.Unmarshal(d.Event.Data, v); err != nil {
		return problem.New(http.StatusBadRequest, "invalid-event",
			fmt.Sprintf("The data of %s %s does not match its contract.", d.Event.Type, d.Event.ID)).WithCause(err)
	}
	return nil
}
