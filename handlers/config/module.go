package config

import (
	"context"

	"spine/shared/contracts"
	"spine/shared/kit"
	"spine/shared/problem"
)

// Module is Configuration as the binary serves it (kit.Module): feature flags (platform
// definitions, tenant overrides), settings, and flag evaluation over OFREP.
var Module = kit.Module{
	Name:      service,
	Publishes: contracts.ConfigEvents,
	Declare:   &API{},
	New:       newModule,
}

var (
	_ kit.Service     = (*API)(nil)
	_ kit.RootAliaser = (*API)(nil)
)

// RootAliases implements kit.RootAliaser: OFREP's paths, for clients given the bare host.
func (a *API) RootAliases() []string { return []string{"/ofrep/"} }

func newModule(_ context.Context, d kit.Deps) (kit.Service, error) {
	svc := NewService(NewStore(d.DB), d.Cache, d.Entitlements, d.Directory, ServiceConfig{SetTTL: d.Config.CacheTTL}, d.Log)
	return NewAPI(svc), nil
}

// MapError implements kit.Service.
func (a *API) MapError(err error) *problem.Problem { return MapError(err) }
