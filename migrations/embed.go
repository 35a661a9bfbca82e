// Package migrations embeds every service's numbered SQL migrations, one folder per service and
// dialect (migrations/<service>/<dialect>/NNNNN_name.sql), and applies them after the platform
// schema (shared/platform) with goose: `handler migrate` and shared/testenv both call Apply.
package migrations

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"sort"

	"spine/shared/platform"
	"spine/shared/sqlstore"
)

//go:embed */*/*.sql
var files embed.FS

// For returns the migrations of service for dialect ("postgres" or "sqlserver").
func For(service, dialect string) (fs.FS, error) {
	sub, err := fs.Sub(files, service+"/"+dialect)
	if err != nil {
		return nil, err
	}
	if _, err := fs.Stat(files, service+"/"+dialect); err != nil {
		return nil, fmt.Errorf("migrations: no %s migrations for service %q", dialect, service)
	}
	return sub, nil
}

// Services lists the services that have migrations, sorted. It is the single list of databases
// the app needs; infra/ and the local stack check theirs against it. The platform schema is not
// a service: it lives in shared/platform and is applied to every service's database.
func Services() []string {
	entries, _ := fs.ReadDir(files, ".")
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out
}

// Applied is what Apply applied to one service database, version numbers in order.
type Applied struct {
	Platform []int64 // the platform schema's (version table spine_migrations_platform)
	Service  []int64 // the service's own (version table spine_migrations_<service>)
}

// Apply migrates service's database over db, an owner connection: first the platform schema
// (shared/platform, granted to the service's runtime role platform.RuntimeRole(service)), then the
// service's own migrations for db's dialect, each set with its own version table. Pending
// migrations only: on an up-to-date database it applies nothing. The platform set also adopts
// databases whose service migrations created the platform objects before the set existed.
func Apply(ctx context.Context, db *sqlstore.DB, service string, logger *slog.Logger) (Applied, error) {
	var a Applied
	if service == platform.Name {
		return a, fmt.Errorf("migrations: %q is the platform schema's name, not a service's", service)
	}
	own, err := For(service, string(db.Dialect))
	if err != nil {
		return a, err
	}
	plat, err := platform.Migrations(db.Dialect, platform.RuntimeRole(service))
	if err != nil {
		return a, err
	}
	if a.Platform, err = sqlstore.Migrate(ctx, db, platform.Name, plat, logger); err != nil {
		return a, fmt.Errorf("%s database: %w", service, err)
	}
	if a.Service, err = sqlstore.Migrate(ctx, db, service, own, logger); err != nil {
		return a, err
	}
	return a, nil
}
