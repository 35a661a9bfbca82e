// Package bus carries CloudEvents from each service's outbox to the Service Bus-triggered
// functions that consume them: the Publisher contract the outbox drainer uses, its Azure Service
// Bus adapter, the in-process transport that stands in for Service Bus where none can run
// (local runs and tests), and the decoding every consumer applies to its trigger's message.
package bus

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/google/uuid"

	"spine/shared/events"
	"spine/shared/functions"
	"spine/shared/outbox"
	"spine/shared/problem"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
)

// Delivery is one decoded Service Bus message: the CloudEvent and the broker's metadata.
//
// A delivery is either a tenant's (TenantID is the event's tenant) or, for a platform-level event
// (one without tenantid: outbox.Emit records it under outbox.PlatformTenant and publishes it with
// no tenant), a platform delivery: Platform is true and TenantID is zero. Consumer and
// GroupConsumer apply a platform delivery in sqlstore.PlatformScope(), and only when the consumer
// takes platform events (their PlatformEvents); otherwise they acknowledge it without effect.
type Delivery struct {
	Event    events.Event
	TenantID tenancy.TenantID
	// Platform reports a platform-level event (no tenantid); TenantID is zero then.
	Platform bool
	Meta     functions.ServiceBusMetadata
}

// Tenant is the tenant the delivery's rows are recorded under (its inbox claim, say): the event's
// tenant id in canonical form, or outbox.PlatformTenant (the nil UUID) for a platform delivery.
func (d Delivery) Tenant() string {
	if d.Platform {
		return outbox.PlatformTenant
	}
	return d.TenantID.String()
}

// scope is the row-level-security scope a delivery's effect runs in: its tenant's, or platform
// scope for a platform delivery.
func (d Delivery) scope() sqlstore.Scope {
	if d.Platform {
		return sqlstore.PlatformScope()
	}
	return sqlstore.TenantScope(d.TenantID)
}

// ErrInvalidMessage is wrapped by DecodeEvent for a message that is not a Spine CloudEvent.
var ErrInvalidMessage = errors.New("bus: invalid message")

// DecodeEvent reads the CloudEvent of a Service Bus-triggered invocation from the "message"
// binding in any encoding the host uses, validates it, and asserts its tenant: `tenantid`, when
// present, must be a tenant id (a present but empty or malformed one is refused, as is the nil
// UUID); an event without it is a platform-level event (Delivery.Platform). When the message
// carries a tenantId application property, it must agree with the event ("" for a platform event).
// A message that fails here fails on every delivery; the host dead-letters it after its maximum
// delivery count, so one poisoned message never stalls the others.
func DecodeEvent(inv *functions.Invocation) (Delivery, error) {
	raw, err := inv.Payload(functions.ServiceBusBinding)
	if err != nil {
		return Delivery{}, err
	}
	md, err := inv.ServiceBus()
	if err != nil {
		return Delivery{}, err
	}
	return decodeMessage(raw, md)
}

// decodeMessage decodes and checks one message's CloudEvent (see DecodeEvent).
func decodeMessage(raw []byte, md functions.ServiceBusMetadata) (Delivery, error) {
	var msg struct {
		events.Event
		// TenantID shadows Event's: nil when the event has no tenantid (a platform-level event), the
		// member's JSON otherwise, so that a present but empty or null tenantid is told from none.
		TenantID json.RawMessage `json:"tenantid"`
	}
	if err := json.Unmarshal(raw, &msg); err != nil {
		return Delivery{}, invalid(fmt.Errorf("%w: not a structured-mode CloudEvent", ErrInvalidMessage))
	}
	d := Delivery{Event: msg.Event, Meta: md, Platform: msg.TenantID == nil}
	if !d.Platform {
		if err := json.Unmarshal(msg.TenantID, &d.Event.TenantID); err != nil || string(msg.TenantID) == "null" {
			return Delivery{}, invalid(fmt.Errorf("%w: tenantid %s is not a tenant id", ErrInvalidMessage, clipped(msg.TenantID)))
		}
	}
	if err := d.Event.Validate(); err != nil {
		return Delivery{}, invalid(fmt.Errorf("%w: %w", ErrInvalidMessage, err))
	}
	if _, err := uuid.Parse(d.Event.ID); err != nil || len(d.Event.ID) != 36 {
		// Spine's events carry UUIDs (events.New); consumers' inboxes key on them.
		return Delivery{}, invalid(fmt.Errorf("%w: id %q is not a UUID", ErrInvalidMessage, d.Event.ID))
	}
	if !d.Platform {
		var err error
		if d.TenantID, err = tenancy.ParseTenantID(d.Event.TenantID); err != nil {
			return Delivery{}, invalid(fmt.Errorf("%w: tenantid %q is not a tenant id", ErrInvalidMessage, d.Event.TenantID))
		}
	}
	if p, ok := d.Meta.ApplicationProperties["tenantId"]; ok && fmt.Sprint(p) != d.Event.TenantID {
		return Delivery{}, invalid(fmt.Errorf("%w: tenantId property %v disagrees with the event's tenantid", ErrInvalidMessage, p))
	}
	return d, nil
}

// DecodeEvents reads the CloudEvents of a Service Bus-triggered invocation: one message (as
// DecodeEvent) or, for a trigger with functions.CardinalityMany, a batch (Invocation.Payloads and
// ServiceBusBatch), each message checked as DecodeEvent checks one. ds are the messages that
// decode, in the order received; bad is the first failure among the others (nil when none): the
// caller applies ds and then answers bad, so the batch is redelivered and the poisoned message
// finally dead-lettered, without holding back the rest. err is an invocation that cannot be read
// as messages at all.
func DecodeEvents(inv *functions.Invocation) (ds []Delivery, bad, err error) {
	if !inv.IsServiceBusBatch() {
		d, err := DecodeEvent(inv)
		if err != nil {
			return nil, nil, err
		}
		return []Delivery{d}, nil, nil
	}
	bodies, err := inv.Payloads(functions.ServiceBusBinding)
	if err != nil {
		return nil, nil, err
	}
	mds, err := inv.ServiceBusBatch(len(bodies))
	if err != nil {
		return nil, nil, err
	}
	for i, body := range bodies {
		d, err := decodeMessage(body, mds[i])
		if err != nil {
			if bad == nil {
				bad = err
			}
			continue
		}
		ds = append(ds, d)
	}
	return ds, bad, nil
}

// clipped is a JSON member's text for an error message, at most 64 bytes of it.
func clipped(raw json.RawMessage) string {
	if len(raw) > 64 {
		return string(raw[:64]) + "…"
	}
	return string(raw)
}

func invalid(err error) error {
	return problem.New(http.StatusBadRequest, "invalid-event", err.Error()).WithCause(err)
}
