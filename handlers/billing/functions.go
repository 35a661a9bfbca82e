package billing

import (
	"context"

	"spine/shared/bus"
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
			ServiceBus: &functions.ServiceBusTrigger{Topic: "tenants", Subscription: Consumer, Connection: ServiceBusConnection,
				EventTypes: []string{contracts.TenantRegistered, contracts.TenantProvisioned, contracts.TenantDecommissioned}},
			Handler: a.onTenantsEvent,
		},
	}
}

// onTenantsEvent serves BillingOnTenantsEvent: bus.Consumer over billing's database and inbox.
func (a *API) onTenantsEvent(ctx context.Context, inv *functions.Invocation) (*functions.Result, error) {
	return bus.Consumer{Name: Consumer, DB: a.db, Effect: a.svc.onTenantsEvent, Log: a.svc.log}.Consume(ctx, inv)
}
