package outbox

import (
	"context"
	"fmt"
	"sort"
	"strings"
)

// Message is one event as the broker receives it.
type Message struct {
	// ID is the event id; Service Bus uses it as MessageId, so topic duplicate detection drops a
	// message published twice (after a crash between publish and delete).
	ID string
	// Key orders messages: the broker must not accept a message while an earlier one with the same
	// Key in the same call was refused. The drainer uses "<tenantId>/<subject>" (the aggregate).
	Key string
	// Body is the structured-mode CloudEvent.
	Body []byte
	// ContentType is application/cloudevents+json.
	ContentType string
	// Subject is the event type (Service Bus Subject/Label).
	Subject string
	// CorrelationID is the event's correlation id, if any.
	CorrelationID string
	// Properties are the application properties subscriptions filter on: eventType, tenantId,
	// traceparent.
	Properties map[string]any
}

// Publisher hands messages to the broker. Implementations are safe for concurrent use.
//
// Publish sends msgs to topic in order and returns nil only when the broker accepted every one of
// them. When some were not accepted it returns a *PublishError naming them; a message whose Key
// matches an earlier refused message in the same call is never sent (it is reported Blocked), so
// per-aggregate order holds. Any other error means none was accepted. Publishing the same message
// ID again must be harmless (broker duplicate detection, or consumers' inboxes).
type Publisher interface {
	Publish(ctx context.Context, topic string, msgs []Message) error
}

// PublishError reports which messages of a Publish call were not accepted, by index.
type PublishError struct {
	// Failed maps the index of each refused message to a stable reason code (never broker text
	// that could carry a namespace or key).
	Failed map[int]string
	// Blocked holds the indexes not sent because an earlier message with the same Key failed.
	Blocked map[int]bool
}

// Error lists the refused messages by index with their codes.
func (e *PublishError) Error() string {
	idx := make([]int, 0, len(e.Failed))
	for i := range e.Failed {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	parts := make([]string, 0, len(idx))
	for _, i := range idx {
		parts = append(parts, fmt.Sprintf("#%d %s", i, e.Failed[i]))
	}
	return fmt.Sprintf("outbox: %d messages refused (%s), %d blocked", len(e.Failed), strings.Join(parts, ", "), len(e.Blocked))
}
