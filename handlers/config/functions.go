package config

import (
	"spine/shared/contracts"
	"spine/shared/functions"
	"spine/shared/kit"
)

// ServiceBusConnection is the app setting prefix ConfigOnBillingEvent's trigger uses.
const ServiceBusConnection = "ServiceBusConnection"

// Functions implements kit.Service: one catch-all HTTP function per top-level route the service
// owns — feature-flags/, settings/ and ofrep/ — whose requests the host forwards to echo. The
// host's route prefix is "api", so OFREP is served at /api/ofrep/v1/...: OFREP clients use the
// base URL <host>/api (the provider appends /ofrep/v1/evaluate/flags[/{key}]). ConfigOnBillingEvent
// consumes the billing topic's subscription events, whose tenant's edition defaults may change.
func (a *API) Functions(kit.Catalog) []functions.Function {
	http := func(name, prefix string, methods ...string) functions.Function {
		return functions.Function{Name: name, HTTP: &functions.HTTPTrigger{Route: prefix + "/{*rest}", Methods: methods,
			AuthLevel: functions.AuthAnonymous}}
	}
	return []functions.Function{
		http("ConfigFeatureFlags", "feature-flags", "get", "put", "delete"),
		http("ConfigSettings", "settings", "get", "put"),
		http("ConfigOfrep", "ofrep", "post"),
		{
			Name: "ConfigOnBillingEvent",
			// Batches: the consumer commits groups (bus.GroupConsumer), and a batch is a group's worth
			// of events in one invocation.
			ServiceBus: &functions.ServiceBusTrigger{Topic: "billing", Subscription: Consumer, Connection: ServiceBusConnection,
				EventTypes:  []string{contracts.SubscriptionActivated, contracts.SubscriptionCancelled, contracts.SubscriptionEditionChanged},
				Cardinality: functions.CardinalityMany},
			Handler: a.onBillingEvent,
		},
	}
}
