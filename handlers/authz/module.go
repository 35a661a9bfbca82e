package authz

import (
	"context"

	"spine/shared/contracts"
	"spine/shared/kit"
	"spine/shared/problem"
)

// Module is the authorization server as the binary serves it (kit.Module): its OAuth clients and
// their admin API, the codes and tokens it issues, and the pruning of expired ones.
var Module = kit.Module{
	Name:      service,
	Publishes: contracts.AuthzEvents,
	Declare:   &API{},
	New:       newModule,
}

var (
	_ kit.Service      = (*API)(nil)
	_ kit.PublicRouter = (*API)(nil)
	_ kit.KeysProvider = (*API)(nil)
)

func newModule(ctx context.Context, d kit.Deps) (kit.Service, error) {
	store := NewStore(d.DB, d.Cache, StoreConfig{CacheTTL: d.Config.CacheTTL, Log: d.Log})
	svc, err := NewService(store, d.Directory, ServiceConfig{}, d.Log)
	if err != nil {
		return nil, err
	}
	if err := d.Retention.Register(svc.PruneSweepOf(PruneSweep)); err != nil {
		return nil, err
	}
	api := NewAPI(svc, d.DB)
	api.retention = d.Retention
	if api.connect, err = newConnect(ctx, d, store); err != nil {
		return nil, err
	}
	return api, nil
}

// MapError implements kit.Service.
func (a *API) MapError(err error) *problem.Problem { return MapError(err) }
