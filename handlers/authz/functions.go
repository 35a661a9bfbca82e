package authz

import (
	"context"

	"spine/shared/bus"
	"spine/shared/functions"
	"spine/shared/kit"
)

// ServiceBusConnection is the app setting prefix the consumers' Service Bus triggers use.
const ServiceBusConnection = "ServiceBusConnection"

// PruneSchedule is AuthzTokenPrune's schedule: every five minutes.
const PruneSchedule = "0 */5 * * * *"

// Functions implements kit.Service: the catch-all HTTP function of the client admin API, whose
// requests the host forwards to echo (clients/{*rest} also matches the bare prefix, GET
// /api/clients, as identity's and tenants' do), the AuthzTokenPrune timer (the retention engine's
// pruning sweep, prune.go), and the consumers that
// revoke refresh tokens when identity disables a user or revokes a role and when tenants suspends
// or decommissions a tenant (consumer.go), on the identity and tenants topics' "authz"
// subscriptions; and the protocol's AuthzConnect (the OpenID provider, connect/{*rest}) and the
// AuthzKeyRotation timer (connect_module.go).
func (a *API) Functions(kit.Catalog) []functions.Function {
	return append([]functions.Function{
		{
			Name: "AuthzClients",
			HTTP: &functions.HTTPTrigger{Route: "clients/{*rest}", Methods: []string{"get", "post", "patch", "delete"},
				AuthLevel: functions.AuthAnonymous},
		},
		a.retention.Function(PruneSweep, PruneSchedule),
		{
			Name: "AuthzOnIdentityEvent",
			ServiceBus: &functions.ServiceBusTrigger{Topic: "identity", Subscription: Consumer, Connection: ServiceBusConnection,
				EventTypes: identityEventTypes},
			Handler: a.onEvent,
		},
		{
			Name: "AuthzOnTenantsEvent",
			ServiceBus: &functions.ServiceBusTrigger{Topic: "tenants", Subscription: Consumer, Connection: ServiceBusConnection,
				EventTypes: tenantsEventTypes},
			Handler: a.onEvent,
		},
	}, a.connectFunctions()...)
}

// onEvent serves both consumers: bus.Consumer over authz's database and inbox.
func (a *API) onEvent(ctx context.Context, inv *functions.Invocation) (*functions.Result, error) {
	return bus.Consumer{Name: Consumer, DB: a.db, Effect: a.svc.onEvent, Log: a.svc.log}.Consume(ctx, inv)
}
