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
// /api/clients, as identity's and tenants' do), the AuthzTokenPrune timer, and the consumers that
// revoke refresh tokens when identity disables a user or revokes a role and when tenants suspends
// or decommissions a tenant (consumer.go), on the identity and tenants topics' "authz"
// subscriptions.
func (a *API) Functions(kit.Catalog) []functions.Function {
	return []functions.Function{
		{
			Name: "AuthzClients",
			HTTP: &functions.HTTPTrigger{Route: "clients/{*rest}", Methods: []string{"get", "post", "patch", "delete"},
				AuthLevel: functions.AuthAnonymous},
		},
		{
			Name:    "AuthzTokenPrune",
			Timer:   &functions.TimerTrigger{Schedule: PruneSchedule},
			Handler: a.prune,
		},
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
	}
}

// onEvent serves both consumers: bus.Consumer over authz's database and inbox.
func (a *API) onEvent(ctx context.Context, inv *functions.Invocation) (*functions.Result, error) {
	return bus.Consumer{Name: Consumer, DB: a.db, Effect: a.svc.onEvent, Log: a.svc.log}.Consume(ctx, inv)
}

// prune is the AuthzTokenPrune timer: one bounded pruning run (Service.Prune). A store failure
// answers non-2xx so the host records the failed run; a run that found nothing to delete is Quiet
// (an idle server says nothing every five minutes), any other reports its counts per table.
func (a *API) prune(ctx context.Context, _ *functions.Invocation) (*functions.Result, error) {
	r, err := a.svc.Prune(ctx)
	if err != nil {
		return nil, err
	}
	if r.Total() == 0 && r.Complete {
		return &functions.Result{Quiet: true}, nil
	}
	return &functions.Result{Logs: []string{r.String()}}, nil
}
