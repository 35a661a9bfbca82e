package reporting

import (
	"slices"
	"strings"

	"spine/shared/contracts"
	"spine/shared/functions"
	"spine/shared/kit"
)

// ServiceBusConnection is the app setting prefix the reporting functions' Service Bus triggers use.
const ServiceBusConnection = "ServiceBusConnection"

// auditTopic is the audit service's topic, which feeds no read model.
const auditTopic = "audit"

// GenerationFunction is the worker's function name.
const GenerationFunction = "ReportGeneration"

// Functions implements kit.Service: the catch-all HTTP functions of /api/reports and
// /api/report-runs; ReportGeneration, the worker, on reporting's own topic (ReportRequested, one
// message per invocation: a run streams for as long as it takes); ReportArtifactLifecycle, the
// retention sweep's daily timer (lifecycle.go); and for every other topic of c a
// ReportingOn<Topic>Event group consumer feeding the read models (every event type, in batches).
// Reporting's own topic feeds no read model (its subscription is the worker's), nor does audit's
// (its AuditEntryRecorded entries record activity the other topics carry already).
func (a *API) Functions(c kit.Catalog) []functions.Function {
	http := func(name, prefix string, methods ...string) functions.Function {
		return functions.Function{Name: name, HTTP: &functions.HTTPTrigger{Route: prefix + "/{*rest}", Methods: methods,
			AuthLevel: functions.AuthAnonymous}}
	}
	fns := []functions.Function{
		http("ReportingReports", "reports", "get", "post", "patch", "delete"),
		http("ReportingReportRuns", "report-runs", "get"),
		{
			Name: GenerationFunction,
			ServiceBus: &functions.ServiceBusTrigger{Topic: service, Subscription: Consumer, Connection: ServiceBusConnection,
				EventTypes: []string{contracts.ReportRequested}},
			Handler: a.onReportRequested,
		},
		a.retention.Function(LifecycleSweep, LifecycleSchedule),
	}
	var consumers []functions.Function
	seen := map[string]bool{}
	for _, t := range c {
		if t.Name == service || t.Name == auditTopic || seen[t.Name] || len(t.Publishes) == 0 {
			continue // the worker's topic; audit's trail is a record of the activity counted here
		}
		seen[t.Name] = true
		consumers = append(consumers, functions.Function{
			Name: ConsumerName(t.Name),
			ServiceBus: &functions.ServiceBusTrigger{Topic: t.Name, Subscription: Consumer, Connection: ServiceBusConnection,
				Cardinality: functions.CardinalityMany},
			Handler: a.onEvent,
		})
	}
	slices.SortFunc(consumers, func(x, y functions.Function) int { return strings.Compare(x.Name, y.Name) })
	return append(fns, consumers...)
}

// ConsumerName is the read-model consumer of topic: "ReportingOn" + the topic with its first letter
// upper-cased + "Event" (identity → ReportingOnIdentityEvent). Topics are module names
// (kit.Check: lowercase letters and digits), so that is their PascalCase.
func ConsumerName(topic string) string {
	if topic == "" {
		return "ReportingOnEvent"
	}
	return "ReportingOn" + strings.ToUpper(topic[:1]) + topic[1:] + "Event"
}
