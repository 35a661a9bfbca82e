package audit

import (
	"context"

	"spine/shared/contracts"
	"spine/shared/kit"
	"spine/shared/problem"
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

func newModule(_ context.Context, d kit.Deps) (kit.Service, error) {
	svc, err := NewService(storeFor(d.DB), d.Directory, d.Log)
	if err != nil {
		return nil, err
	}
	return NewAPI(svc), nil
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
