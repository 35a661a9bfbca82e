package billing

import (
	"context"

	"spine/shared/contracts"
	"spine/shared/functions"
	"spine/shared/kit"
)

// ServiceBusConnection is the app setting prefix BillingOnTenantsEvent's trigger uses.
const ServiceBusConnection = "ServiceBusConnection"

// Functions implements kit.Service: one catch-all HTTP function per top-level route the service
// owns — subscriptions/, editions/, entitlements, invoices/, usage-records — whose requests the host forwards to
// echo (a catch-all {*rest} also matches its bare prefix), and the BillingOnTenantsEvent consumer
// on the tenants topic's "billing" subscription (TenantRegistered, TenantProvisioned,
// TenantDecommissioned), and the BillingRenewals timer (Renewals) every minute.
func (a *API) Functions(kit.Catalog) []functions.Function {
	http := func(name, prefix string, methods ...string) functions.Function {
		return functions.Function{Name: name, HTTP: &functions.HTTPTrigger{Route: prefix + "/{*rest}", Methods: methods,
			AuthLevel: functions.AuthAnonymous}}
	}
	return []functions.Function{
		http("BillingSubscriptions", "subscriptions", "get", "post"),
		http("BillingEditions", "editions", "get", "put"),
		http("BillingEntitlements", "entitlements", "get"),
		http("BillingInvoices", "invoices", "get", "post"),
		http("BillingUsageRecords", "usage-records", "get", "post"),
		{
			Name:    "BillingRenewals",
			Timer:   &functions.TimerTrigger{Schedule: RenewalSchedule},
			Handler: a.renewals,
		},
		{
			Name: "BillingOnTenantsEvent",
			// Batches: the consumer commits groups (bus.GroupConsumer), and a batch is a group's worth
			// of events in one invocation.
			ServiceBus: &functions.ServiceBusTrigger{Topic: "tenants", Subscription: Consumer, Connection: ServiceBusConnection,
				EventTypes:  []string{contracts.TenantRegistered, contracts.TenantProvisioned, contracts.TenantDecommissioned},
				Cardinality: functions.CardinalityMany},
			Handler: a.onTenantsEvent,
		},
	}
}

// onTenantsEvent serves BillingOnTenantsEvent through the service's group consumer over billing's
// database and inbox: the events delivered meanwhile share one transaction (onTenantsEvents).
func (a *API) onTenantsEvent(ctx context.Context, inv *functions.Invocation) (*functions.Result, error) {
	return a.svc.tenantsConsumer.Consume(ctx, inv)
}
