package audit

import (
	"context"
	"fmt"

	"spine/shared/contracts"
	"spine/shared/kit"
	"spine/shared/problem"
	"spine/shared/retention"
	"spine/shared/sqlstore"
)

// Module is the Audit Trail as the binary serves it (kit.Module).
var Module = kit.Module{
	Name:      service,
	Publishes: contracts.AuditEvents,
	Declare:   &API{},
	New:       newModule,
}

var _ kit.Service = (*API)(nil)

func newModule(ctx context.Context, d kit.Deps) (kit.Service, error) {
	svc, err := NewService(storeFor(d.DB), d.Directory, d.Log)
	if err != nil {
		return nil, err
	}
	if d.Blobs != nil {
		if err := d.Blobs.EnsureContainer(ctx, ArchiveContainer); err != nil {
			return nil, fmt.Errorf("audit: the archive container: %w", err)
		}
		svc.blobs = d.Blobs
	}
	for _, sw := range []retention.Sweep{svc.ExportSweep(SweepExport), svc.PurgeSweep(SweepPurge)} {
		if err := d.Retention.Register(sw); err != nil {
			return nil, err
		}
	}
	a := NewAPI(svc)
	a.retention = d.Retention
	return a, nil
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
