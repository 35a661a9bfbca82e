package integrations

import (
	"context"
	"errors"

	"spine/shared/contracts"
	"spine/shared/kit"
	"spine/shared/problem"
)

// Module is Integrations as the binary serves it (kit.Module): a tenant's connections to outside
// systems, whose secrets live in Key Vault only, the connector registry, checks and the
// IntegrationSync worker.
var Module = kit.Module{
	Name:      service,
	Publishes: contracts.IntegrationsEvents,
	Declare:   &API{},
	New:       newModule,
}

var _ kit.Service = (*API)(nil)

func newModule(_ context.Context, d kit.Deps) (kit.Service, error) {
	if d.Secrets == nil {
		return nil, errors.New("SPINE_KEYVAULT_URL: integrations keeps its connections' secrets in Key Vault")
	}
	svc := NewService(NewStore(d.DB), d.Secrets, DefaultRegistry(), d.Directory,
		ServiceConfig{VaultURL: d.Config.KeyVaultURL, AllowLoopback: d.Config.EgressAllowLoopback}, d.Log)
	if err := d.Retention.Register(svc.PurgeSweepOf(PurgeSweep)); err != nil {
		return nil, err
	}
	api := NewAPI(svc, d.DB)
	api.retention = d.Retention
	return api, nil
}

// MapError implements kit.Service.
func (a *API) MapError(err error) *problem.Problem { return MapError(err) }
