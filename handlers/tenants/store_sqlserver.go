package tenants

import "spine/shared/sqlstore"

// NewSQLServerStore returns the Azure SQL store over db (the runtime user's connection).
func NewSQLServerStore(db *sqlstore.DB) Store { return &msStore{db: db} }
