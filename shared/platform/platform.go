// Package platform owns the platform schema: the objects every service database holds whatever
// the service, applied before the service's own migrations, with a version table of its own
// (spine_migrations_platform) in each service database:
//
//   - the row-level-security helper the services' policies call (PostgreSQL
//     spine_tenant_visible(uuid); SQL Server schema rls with rls.tenant_visible);
//   - outbox (shared/outbox) with every index the drainer's statements need, under the tenant
//     policy;
//   - inbox (shared/inbox), under the tenant policy;
//   - idempotency_keys, platform-level (caller, key, scope), for creating POSTs' Idempotency-Key;
//   - the grants of those objects to the service's runtime role.
//
// Its numbered SQL lives in migrations/<dialect>/ beside this file, embedded. A service's own
// migrations (migrations/<service>/<dialect>/) may use the helper and must not create any of these
// objects; migrations.Apply runs both sets in that order (see handlers/README.md, "Migrations").
package platform

import (
	"embed"
	"fmt"
	"io/fs"
	"regexp"
	"strings"
	"testing/fstest"

	"spine/shared/sqlstore"
)

//go:embed migrations/*/*.sql
var files embed.FS

// Name is the platform set's name: its version table is sqlstore.MigrationTable(Name)
// (spine_migrations_platform), so no service may be called this.
const Name = "platform"

// RoleParam is the placeholder the platform migrations write where the service's runtime role
// goes; Migrations replaces it.
const RoleParam = "{{runtime_role}}"

// RuntimeRole returns the name of service's runtime role: <service>_app, as scripts/stack.sh and
// shared/testenv create it and the services' own migrations grant to it.
func RuntimeRole(service string) string { return service + "_app" }

var roleRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// Migrations returns the platform migrations for dialect with runtimeRole written in for
// RoleParam, ready for sqlstore.Migrate. runtimeRole must be a plain lowercase identifier
// (it is written into the SQL unquoted).
func Migrations(dialect sqlstore.Dialect, runtimeRole string) (fs.FS, error) {
	if !roleRE.MatchString(runtimeRole) {
		return nil, fmt.Errorf("platform: runtime role %q is not a plain lowercase identifier", runtimeRole)
	}
	dir := "migrations/" + string(dialect)
	entries, err := fs.ReadDir(files, dir)
	if err != nil || len(entries) == 0 {
		return nil, fmt.Errorf("platform: no migrations for dialect %q", dialect)
	}
	out := fstest.MapFS{}
	for _, e := range entries {
		raw, err := fs.ReadFile(files, dir+"/"+e.Name())
		if err != nil {
			return nil, err
		}
		src := strings.ReplaceAll(string(raw), RoleParam, runtimeRole)
		if i := strings.Index(src, "{{"); i >= 0 {
			end := min(len(src), i+40)
			return nil, fmt.Errorf("platform: %s/%s: unknown placeholder at %q", dir, e.Name(), src[i:end])
		}
		out[e.Name()] = &fstest.MapFile{Data: []byte(src), Mode: 0o444}
	}
	return out, nil
}
