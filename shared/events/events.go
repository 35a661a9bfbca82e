// Package events defines the CloudEvents 1.0 envelope every Spine service publishes through its
// outbox (structured JSON mode) and the trace/causation extensions carried with it.
package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// SpecVersion is the CloudEvents version Spine emits.
const SpecVersion = "1.0"

// ContentType is the Service Bus content type of a structured-mode CloudEvent.
const ContentType = "application/cloudevents+json"

// Event is a CloudEvent in structured JSON mode with Spine's extensions. Type is NounVerbPastTense;
// Source is /services/<service>; Subject is the aggregate id; TenantID names the tenant the event
// belongs to ("" only for platform-level events).
type Event struct {
	SpecVersion     string    `json:"specversion"`
	ID              string    `json:"id"`
	Source          string    `json:"source"`
	Type            string    `json:"type"`
	Subject         string    `json:"subject,omitempty"`
	Time            time.Time `json:"time"`
	DataContentType string    `json:"datacontenttype,omitempty"`
	TenantID        string    `json:"tenantid,omitempty"`
	TraceParent     string    `json:"traceparent,omitempty"`
	CorrelationID   string    `json:"correlationid,omitempty"`
	CausationID     string    `json:"causationid,omitempty"`
	// Actor is who caused the change, "<type>:<id>" (e.g. "user:0193...", "client:reporting",
	// "system:provisioning-sweep").
	Actor string          `json:"actor,omitempty"`
	Data  json.RawMessage `json:"data,omitempty"`
}

// Meta carries the request-scoped extensions (trace, correlation, causation) into new events.
type Meta struct {
	TraceParent   string
	CorrelationID string
	CausationID   string
	Actor         string
}

// New builds an event with a fresh UUIDv7 id, the current UTC time and data marshalled as JSON.
func New(service, typ, subject, tenantID string, data any, m Meta) (Event, error) {
	raw, err := json.Marshal(data)
	if err != nil {
		return Event{}, fmt.Errorf("events: marshal %s data: %w", typ, err)
	}
	return Event{
		SpecVersion:     SpecVersion,
		ID:              uuid.Must(uuid.NewV7()).String(),
		Source:          "/services/" + service,
		Type:            typ,
		Subject:         subject,
		Time:            time.Now().UTC(),
		DataContentType: "application/json",
		TenantID:        tenantID,
		TraceParent:     m.TraceParent,
		CorrelationID:   m.CorrelationID,
		CausationID:     m.CausationID,
		Actor:           m.Actor,
		Data:            raw,
	}, nil
}

// ErrInvalidEvent is wrapped by Validate for an envelope missing a required attribute.
var ErrInvalidEvent = errors.New("events: invalid CloudEvent")

// Validate checks the attributes CloudEvents 1.0 requires plus Spine's own rules.
func (e Event) Validate() error {
	switch {
	case e.SpecVersion != SpecVersion:
		return fmt.Errorf("%w: specversion %q", ErrInvalidEvent, e.SpecVersion)
	case e.ID == "":
		return fmt.Errorf("%w: missing id", ErrInvalidEvent)
	case e.Source == "":
		return fmt.Errorf("%w: missing source", ErrInvalidEvent)
	case e.Type == "":
		return fmt.Errorf("%w: missing type", ErrInvalidEvent)
	}
	return nil
}

type metaKey struct{}

// WithMeta returns ctx carrying m; stores read it with MetaFrom when they build events.
func WithMeta(ctx context.Context, m Meta) context.Context {
	return context.WithValue(ctx, metaKey{}, m)
}

// MetaFrom returns the Meta stored in ctx, or the zero Meta.
func MetaFrom(ctx context.Context) Meta {
	m, _ := ctx.Value(metaKey{}).(Meta)
	return m
}
