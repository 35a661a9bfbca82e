package policy_test

import (
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"

	"spine/infra/internal/stacktest"
	"spine/infra/spine"
)

// migratedServices lists the services of a migrations folder: a service is a
// sub-folder with at least one dialect folder holding .sql files, which is what
// the binary embeds (migrations/*/*/*.sql) and what a fresh clone has. testdata
// (test fixtures) and platform (the platform schema's name: its SQL lives in
// shared/platform and goes into every service's database) are never services.
func migratedServices(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var services []string
	for _, e := range entries {
		if !e.IsDir() || e.Name() == "testdata" || e.Name() == "platform" {
			continue
		}
		files, err := filepath.Glob(filepath.Join(dir, e.Name(), "*", "*.sql"))
		if err != nil {
			return nil, err
		}
		if len(files) > 0 {
			services = append(services, e.Name())
		}
	}
	sort.Strings(services)
	return services, nil
}

// hasMigrations reports whether a service has .sql files for a dialect.
func hasMigrations(dir, service, dialect string) bool {
	files, _ := filepath.Glob(filepath.Join(dir, service, dialect, "*.sql"))
	return len(files) > 0
}

// migrationServices lists the services of the app's migrations/ folder
// (../migrations from infra/).
func migrationServices(t *testing.T) (string, []string) {
	t.Helper()
	infra, err := stacktest.InfraDir()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(filepath.Dir(infra), "migrations")
	services, err := migratedServices(dir)
	if err != nil {
		t.Fatalf("reading the app's migrations folder %s: %v\n"+
			"every service in a stack's spine:services needs migrations/<service>/<dialect>/*.sql there; "+
			"the stacks list must match those folders", dir, err)
	}
	return dir, services
}

func TestMigratedServicesCountsOnlyFoldersWithSQL(t *testing.T) {
	dir := t.TempDir()
	write := func(path string) {
		full := filepath.Join(dir, path)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte("-- sql"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("tenants/postgres/00001_tenants.sql")
	write("embed.go")
	write("testdata/pre-platform/tenants/postgres/00001_tenants.sql")
	write("testdata/postgres/00001_fixture.sql")
	write("platform/postgres/00001_platform.sql")
	if err := os.MkdirAll(filepath.Join(dir, "audit", "postgres"), 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := migratedServices(dir)
	if err != nil || !slices.Equal(got, []string{"tenants"}) {
		t.Fatalf("migratedServices = %v, %v; want [tenants] (audit has no .sql yet; testdata and platform are no services)", got, err)
	}
	write("audit/sqlserver/00001_audit.sql")
	got, _ = migratedServices(dir)
	if !slices.Equal(got, []string{"audit", "tenants"}) {
		t.Fatalf("migratedServices = %v, want [audit tenants]", got)
	}
	if hasMigrations(dir, "audit", "postgres") || !hasMigrations(dir, "audit", "sqlserver") {
		t.Error("hasMigrations must look at the dialect's own folder")
	}
	if _, err := migratedServices(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing migrations folder must be an error")
	}
}

// The database list of every stack is the list of services the app has
// migrations for, and each has migrations in the stack's engine dialect.
func TestStackServicesMatchMigrations(t *testing.T) {
	dir, migrated := migrationServices(t)
	if len(migrated) == 0 {
		t.Fatalf("%s has no service folders", dir)
	}
	for _, stack := range stacks {
		t.Run(stack, func(t *testing.T) {
			snap, cfg := runStack(t, stack)
			services := slices.Clone(cfg.Services)
			sort.Strings(services)
			if !slices.Equal(services, migrated) {
				t.Errorf("Pulumi.%s.yaml spine:services = %v, but %s holds migrations for %v: "+
					"a service gets its database when its migrations land, so add it to (or remove it from) "+
					"spine:services in infra/Pulumi.%s.yaml", stack, services, dir, migrated, stack)
			}
			dialect := cfg.Database.Engine
			for _, svc := range services {
				if !hasMigrations(dir, svc, dialect) {
					t.Errorf("%s runs %s, but %s has no .sql files", stack, dialect, filepath.Join(dir, svc, dialect))
				}
			}
			// And the program really provisions one database per migrated service.
			dbType := "azure-native:dbforpostgresql:Database"
			if dialect == spine.EngineSQLServer {
				dbType = "azure-native:sql:Database"
			}
			var dbs []string
			for _, db := range snap.OfType(dbType) {
				dbs = append(dbs, db.Str("databaseName"))
			}
			sort.Strings(dbs)
			if !slices.Equal(dbs, migrated) {
				t.Errorf("%s provisions databases %v, want %v", stack, dbs, migrated)
			}
		})
	}
}

// Every service with migrations is one the catalog knows, so it gets its
// topic and subscriptions when a stack lists it.
func TestMigratedServicesAreInTheCatalog(t *testing.T) {
	_, migrated := migrationServices(t)
	for _, svc := range migrated {
		if _, ok := spine.LookupService(svc); !ok {
			t.Errorf("migrations/%s: %q is not in the infra service catalog (spine/catalog.go)", svc, svc)
		}
	}
}
