package migrations_test

import (
	"io/fs"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"spine/migrations"
	"spine/shared/platform"
	"spine/shared/sqlstore"
	"spine/shared/testenv/tsqlcheck"
)

// The platform schema is not a service: it is not in the list, and no service may take its name
// (its version table, spine_migrations_platform, would be shared).
func TestServices_NeverListThePlatformSchema(t *testing.T) {
	services := migrations.Services()
	if len(services) == 0 {
		t.Fatal("no services")
	}
	for _, s := range services {
		if s == platform.Name || s == "testdata" {
			t.Errorf("Services() lists %q, which is not a service", s)
		}
	}
}

// The local stack (scripts/stack.sh) creates one database per service of this list, and none for
// migrations/testdata or the platform schema.
func TestServices_AreTheStacksDatabases(t *testing.T) {
	stack := os.Getenv("SPINE_DB_SERVICES") // written by stack.sh up into the env file
	if stack == "" {
		t.Fatal("SPINE_DB_SERVICES is not set: run the tests on the local stack (`make test`)")
	}
	got := strings.Fields(stack)
	slices.Sort(got)
	if want := migrations.Services(); !slices.Equal(got, want) {
		t.Errorf("the stack's databases %v, want one per service %v", got, want)
	}
}

// platformObject matches SQL that creates or changes an object of the platform schema.
var platformObject = regexp.MustCompile(`(?i)\b(?:` +
	`(?:CREATE|ALTER|DROP)\s+TABLE\s+(?:IF\s+(?:NOT\s+)?EXISTS\s+)?(?:dbo\.)?(?:outbox|inbox|idempotency_keys)\b` +
	`|\bON\s+(?:dbo\.)?(?:outbox|inbox|idempotency_keys)\b` +
	`|CREATE\s+(?:OR\s+REPLACE\s+)?FUNCTION\s+(?:spine_tenant_visible|rls\.tenant_visible)\b` +
	`|CREATE\s+SCHEMA\s+rls\b` +
	`|(?:GRANT|REVOKE)\s[^;]*\bspine_tenant_visible\b)`)

// A service's migrations leave the platform schema's objects to the platform set: they may call
// the RLS helper in their own policies, and must not create, alter, index, police or grant
// outbox, inbox, idempotency_keys or the helper (see handlers/README.md, "Migrations").
func TestServiceMigrations_LeaveThePlatformObjectsToThePlatformSet(t *testing.T) {
	comment := regexp.MustCompile(`--[^\n]*`)
	for _, svc := range migrations.Services() {
		for _, dialect := range []string{"postgres", "sqlserver"} {
			fsys, err := migrations.For(svc, dialect)
			if err != nil {
				continue
			}
			names, _ := fs.Glob(fsys, "*.sql")
			for _, name := range names {
				raw, _ := fs.ReadFile(fsys, name)
				src := comment.ReplaceAllString(string(raw), "")
				if m := platformObject.FindString(src); m != "" {
					t.Errorf("migrations/%s/%s/%s: %q belongs to the platform schema (shared/platform)", svc, dialect, name, m)
				}
			}
		}
	}
	// The check itself: the platform set's own SQL is what it must catch.
	for _, d := range []string{"postgres", "sqlserver"} {
		fsys, err := platform.Migrations(sqlstore.Dialect(d), "x_app")
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := fs.ReadFile(fsys, "00001_platform.sql")
		if n := len(platformObject.FindAllString(comment.ReplaceAllString(string(raw), ""), -1)); n < 8 {
			t.Errorf("the check finds only %d platform statements in the platform set (%s)", n, d)
		}
	}
}

// Every service's SQL Server migrations, which cannot run here, are checked as goose would send
// them, batch by batch.
func TestServiceMigrations_SQLServerCheckedWithoutAServer(t *testing.T) {
	for _, svc := range migrations.Services() {
		fsys, err := migrations.For(svc, "sqlserver")
		if err != nil {
			t.Errorf("%s: %v", svc, err)
			continue
		}
		t.Run(svc, func(t *testing.T) { tsqlcheck.CheckMigrations(t, fsys) })
	}
}

func TestFor_RefusesUnknownServiceOrDialect(t *testing.T) {
	if _, err := migrations.For("nosuch", "postgres"); err == nil {
		t.Error("For(nosuch) succeeded")
	}
	if _, err := migrations.For("tenants", "oracle"); err == nil {
		t.Error("For(tenants, oracle) succeeded")
	}
	if _, err := migrations.For("tenants", "postgres"); err != nil {
		t.Error(err)
	}
}
