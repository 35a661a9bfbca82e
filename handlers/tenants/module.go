package tenants

import (
	"context"

	"spine/shared/contracts"
	"spine/shared/kit"
	"spine/shared/problem"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
)

// Module is Tenant Management as the binary serves it (kit.Module). It comes first in the module
// list: every other service asks it for tenant states (tenancy.Directory).
var Module = kit.Module{
	Name:      service,
	Publishes: contracts.TenantsEvents,
	Declare:   &API{},
	New:       newModule,
}

var (
	_ kit.Service           = (*API)(nil)
	_ kit.DirectoryProvider = (*API)(nil)
)

func newModule(ctx context.Context, d kit.Deps) (kit.Service, error) {
	if d.Config.StorageConnectionString != "" {
		// Local stacks (Azurite) get their container here; in Azure, Pulumi creates it.
		if err := d.Blobs.EnsureContainer(ctx, ManifestContainer); err != nil {
			d.Log.Warn("blob: cannot create container; provisioning's storage step will fail until storage is reachable",
				"container", ManifestContainer, "error", err)
		}
	}
	// The editions on sale are billing's catalog when a module answers entitlements (asked through
	// shared/entitlements, never by importing billing), else SPINE_TENANT_EDITIONS.
	edition := EditionStep{Editions: d.Config.TenantEditions, Catalog: d.Entitlements}
	svc, err := NewService(storeFor(d.DB), d.Cache, []StepRunner{
		edition,
		StorageStep{Blobs: d.Blobs},
	}, ServiceConfig{CacheTTL: d.Config.CacheTTL, RetryAfter: d.Config.ProvisioningRetryAfter}, d.Log)
	if err != nil {
		return nil, err
	}
	return NewAPI(svc, d.DB), nil
}

// storeFor picks the store for the database's engine.
func storeFor(db *sqlstore.DB) Store {
	if db.Dialect == sqlstore.SQLServer {
		return NewSQLServerStore(db)
	}
	return NewPostgresStore(db)
}

// MapError implements kit.Service.
func (a *API) MapError(err error) *problem.Problem { return MapError(err) }

// Directory implements kit.DirectoryProvider: the tenants service answers every other service's
// tenant-state questions.
func (a *API) Directory() tenancy.Directory { return a.svc }
