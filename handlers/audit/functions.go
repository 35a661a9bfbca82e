package audit

import (
	"context"
	"slices"
	"strings"
	"unicode"

	"spine/shared/functions"
	"spine/shared/kit"
)

// ServiceBusConnection is the app setting prefix the audit consumers' Service Bus triggers use.
const ServiceBusConnection = "ServiceBusConnection"

// Functions implements kit.Service: one catch-all HTTP function whose requests the host forwards
// to echo, and for every topic of c except audit's own a Service Bus function AuditOn<Topic>Event
// on the topic's "audit" subscription (every event type, in batches: functions.CardinalityMany),
// which records each event as one audit entry; and the retention sweeps' timers (AuditExport,
// AuditPurge).
func (a *API) Functions(c kit.Catalog) []functions.Function {
	topics := make([]string, len(c))
	for i, t := range c {
		topics[i] = t.Name
	}
	return a.functions(topics)
}

// functions declares the functions for the publishing topics; duplicates are ignored.
func (a *API) functions(topics []string) []functions.Function {
	fns := []functions.Function{{
		Name: "Audit",
		HTTP: &functions.HTTPTrigger{Route: "audit-entries/{*rest}", Methods: []string{"get", "post"},
			AuthLevel: functions.AuthAnonymous},
	}}
	seen := map[string]bool{}
	for _, t := range topics {
		if t == service || seen[t] {
			continue // audit's own events would come back to audit
		}
		seen[t] = true
		fns = append(fns, functions.Function{
			Name: ConsumerName(t),
			// Batches: the consumer commits groups (bus.GroupConsumer), and a batch is a group's worth
			// of events in one invocation.
			ServiceBus: &functions.ServiceBusTrigger{Topic: t, Subscription: Consumer, Connection: ServiceBusConnection,
				Cardinality: functions.CardinalityMany},
			Handler: a.onEvent,
		})
	}
	fns = append(fns, a.retention.Function(SweepExport, SweepExportSchedule), a.retention.Function(SweepPurge, SweepPurgeSchedule))
	slices.SortStableFunc(fns[1:], func(x, y functions.Function) int { return strings.Compare(x.Name, y.Name) })
	return fns
}

// ConsumerName is the function that records topic's events: "AuditOn" + the topic in PascalCase
// + "Event" (tenants → AuditOnTenantsEvent, feature_flags → AuditOnFeatureFlagsEvent).
func ConsumerName(topic string) string {
	var b strings.Builder
	b.WriteString("AuditOn")
	for _, part := range strings.FieldsFunc(topic, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
		r := []rune(part)
		r[0] = unicode.ToUpper(r[0])
		b.WriteString(string(r))
	}
	b.WriteString("Event")
	return b.String()
}

// onEvent serves every AuditOn<Topic>Event invocation through the service's group consumer: it
// decodes the CloudEvent in whatever encoding the host used and records it, inbox claim and entry
// in one transaction shared with the other events delivered meanwhile. A redelivery answers 200
// and records nothing; an undecodable message answers 400 and a store failure 5xx, so the host
// retries and finally dead-letters.
func (a *API) onEvent(ctx context.Context, inv *functions.Invocation) (*functions.Result, error) {
	return a.svc.consumer.Consume(ctx, inv)
}
