package billing

import (
	"context"

	"spine/shared/contracts"
	"spine/shared/entitlements"
	"spine/shared/kit"
	"spine/shared/problem"
)

// Module is Billing as the binary serves it (kit.Module): the edition catalog, subscriptions,
// usage and invoices, and the tenants' entitlements, which it answers for every other service
// (kit.EntitlementsProvider).
var Module = kit.Module{
	Name:      service,
	Publishes: contracts.BillingEvents,
	Declare:   &API{},
	New:       newModule,
}

var (
	_ kit.Service              = (*API)(nil)
	_ kit.EntitlementsProvider = (*API)(nil)
)

func newModule(_ context.Context, d kit.Deps) (kit.Service, error) {
	svc := NewService(NewStore(d.DB), d.Cache, d.Directory, ServiceConfig{CacheTTL: d.Config.CacheTTL}, d.Log)
	return NewAPI(svc, d.DB), nil
}

// MapError implements kit.Service.
func (a *API) MapError(err error) *problem.Problem { return MapError(err) }

// Entitlements implements kit.EntitlementsProvider: billing answers every service's
// entitlements question (its tenants' subscriptions' editions).
func (a *API) Entitlements() entitlements.Source { return a.svc.Source() }
