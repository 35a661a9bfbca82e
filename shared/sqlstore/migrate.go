package sqlstore

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/database"
	"github.com/pressly/goose/v3/lock"
)

// MigrationTable is the name of a migration set's version table: a service's own, or the platform
// schema's (spine_migrations_platform, in every service database). Each set has its own, so sets
// that share a physical database never see each other's history.
func MigrationTable(service string) string { return "spine_migrations_" + service }

// Migrate applies every pending migration in fsys (one set for this dialect: a service's folder,
// e.g. migrations/tenants/postgres, or the platform schema's; migrations.Apply runs both in order)
// using the owner connection db, with service's version table. It is safe to run from several
// processes at once on PostgreSQL (a session advisory lock serializes them); on SQL Server, run it
// from one deployment step. It returns the versions applied.
func Migrate(ctx context.Context, db *DB, service string, fsys fs.FS, logger *slog.Logger) ([]int64, error) {
	p, err := newProvider(db, service, fsys, logger)
	if err != nil {
		return nil, err
	}
	res, err := p.Up(ctx)
	applied := make([]int64, 0, len(res))
	for _, r := range res {
		applied = append(applied, r.Source.Version)
	}
	if err != nil {
		return applied, fmt.Errorf("sqlstore: migrate %s: %w", service, err)
	}
	return applied, nil
}

func newProvider(db *DB, service string, fsys fs.FS, logger *slog.Logger) (*goose.Provider, error) {
	gd := database.DialectPostgres
	if db.Dialect == SQLServer {
		gd = database.DialectMSSQL
	}
	store, err := database.NewStore(gd, MigrationTable(service))
	if err != nil {
		return nil, fmt.Errorf("sqlstore: migration store: %w", err)
	}
	opts := []goose.ProviderOption{goose.WithStore(store), goose.WithDisableGlobalRegistry(true)}
	if db.Dialect == Postgres {
		locker, err := lock.NewPostgresSessionLocker()
		if err != nil {
			return nil, fmt.Errorf("sqlstore: migration lock: %w", err)
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	opts = append(opts, goose.WithSlog(logger))
	p, err := goose.NewProvider("", db.DB, fsys, opts...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: migrations of %s: %w", service, err)
	}
	return p, nil
}
