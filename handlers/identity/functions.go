package identity

import (
	"context"

	"spine/shared/bus"
	"spine/shared/contracts"
	"spine/shared/functions"
	"spine/shared/kit"
)

// ServiceBusConnection is the app setting prefix IdentityOnTenantsEvent's trigger uses.
const ServiceBusConnection = "ServiceBusConnection"

// Functions implements kit.Service: one catch-all HTTP function per top-level route the service
// owns — users/, roles/, permissions and authz/ — whose requests the host forwards to echo, and
// the IdentityOnTenantsEvent consumer on the tenants topic's "identity" subscription (filtered to
// TenantProvisioned and TenantDecommissioned). A catch-all {*rest} also matches its bare prefix
// (users/{*rest} serves GET /api/users), as tenants' does; none of the routes starts with admin
// or runtime, which the host reserves.
func (a *API) Functions(kit.Catalog) []functions.Function {
	http := func(name, prefix string, methods ...string) functions.Function {
		return functions.Function{Name: name, HTTP: &functions.HTTPTrigger{Route: prefix + "/{*rest}", Methods: methods,
			AuthLevel: functions.AuthAnonymous}}
	}
	return []functions.Function{
		http("IdentityUsers", "users", "get", "post", "patch", "delete"),
		http("IdentityRoles", "roles", "get", "post", "patch", "put", "delete"),
		http("IdentityPermissions", "permissions", "get"),
		http("IdentityAuthz", "authz", "post"),
		{
			Name: "IdentityOnTenantsEvent",
			ServiceBus: &functions.ServiceBusTrigger{Topic: "tenants", Subscription: Consumer, Connection: ServiceBusConnection,
				EventTypes: []string{contracts.TenantProvisioned, contracts.TenantDecommissioned}},
			Handler: a.onTenantsEvent,
		},
	}
}

// onTenantsEvent serves IdentityOnTenantsEvent: bus.Consumer over identity's database and inbox,
// with the effect Service.TenantsEffect prepares outside the consumer's transaction.
func (a *API) onTenantsEvent(ctx context.Context, inv *functions.Invocation) (*functions.Result, error) {
	d, err := bus.DecodeEvent(inv) // Consume decodes it again; this failure is the one it would answer
	if err != nil {
		return nil, err
	}
	effect, err := a.svc.TenantsEffect(ctx, d)
	if err != nil {
		return nil, err
	}
	return bus.Consumer{Name: Consumer, DB: a.db, Effect: effect, Log: a.svc.log}.Consume(ctx, inv)
}
