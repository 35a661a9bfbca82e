package platform_test

import (
	"io/fs"
	"regexp"
	"strings"
	"testing"

	"spine/shared/platform"
	"spine/shared/sqlstore"
	"spine/shared/testenv/tsqlcheck"
)

func read(t *testing.T, fsys fs.FS, name string) string {
	t.Helper()
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The runtime role is written in for the placeholder, in every dialect, and nothing else is a
// placeholder; a role that is not a plain identifier is refused (it is written in unquoted).
func TestMigrations_WriteTheRuntimeRoleIn(t *testing.T) {
	for _, d := range []sqlstore.Dialect{sqlstore.Postgres, sqlstore.SQLServer} {
		fsys, err := platform.Migrations(d, "billing_app")
		if err != nil {
			t.Fatal(err)
		}
		src := read(t, fsys, "00001_platform.sql")
		if strings.Contains(src, "{{") || strings.Contains(src, platform.RoleParam) {
			t.Errorf("%s: a placeholder is left", d)
		}
		if n := strings.Count(src, " TO billing_app;"); n < 3 {
			t.Errorf("%s: %d grants to billing_app, want at least 3 (outbox, inbox, idempotency_keys)", d, n)
		}
	}
	for _, bad := range []string{"", "Billing_app", "billing-app", "x; DROP TABLE outbox", `"billing_app"`} {
		if _, err := platform.Migrations(sqlstore.Postgres, bad); err == nil {
			t.Errorf("runtime role %q accepted", bad)
		}
	}
	if _, err := platform.Migrations("oracle", "x_app"); err == nil {
		t.Error("an unknown dialect was accepted")
	}
	if got := platform.RuntimeRole("tenants"); got != "tenants_app" {
		t.Errorf("RuntimeRole(tenants) = %q", got)
	}
}

// The grants are the ones the services had before the platform schema owned these tables, the
// same in both dialects: outbox full DML (the drainer updates and deletes), inbox INSERT and
// SELECT (an inbox row is never changed), idempotency_keys SELECT, INSERT, DELETE.
func TestMigrations_GrantExactlyTodaysPrivileges(t *testing.T) {
	want := map[string]string{
		"outbox":           "SELECT, INSERT, UPDATE, DELETE",
		"inbox":            "SELECT, INSERT",
		"idempotency_keys": "SELECT, INSERT, DELETE",
	}
	grant := regexp.MustCompile(`(?m)^GRANT ([A-Z, ]+) ON (?:dbo\.)?(\w+) TO x_app;$`)
	for _, d := range []sqlstore.Dialect{sqlstore.Postgres, sqlstore.SQLServer} {
		fsys, err := platform.Migrations(d, "x_app")
		if err != nil {
			t.Fatal(err)
		}
		up, _, _ := strings.Cut(read(t, fsys, "00001_platform.sql"), "-- +goose Down")
		got := map[string]string{}
		for _, m := range grant.FindAllStringSubmatch(up, -1) {
			if _, dup := got[m[2]]; dup {
				t.Errorf("%s: %s granted twice", d, m[2])
			}
			got[m[2]] = m[1]
		}
		for table, privs := range want {
			if got[table] != privs {
				t.Errorf("%s: %s granted %q, want %q", d, table, got[table], privs)
			}
		}
		if len(got) != len(want) {
			t.Errorf("%s: table grants %v, want exactly %v", d, got, want)
		}
	}
}

// The SQL Server set cannot run here: it is checked as goose would send it, batch by batch.
func TestSQLServerMigrations_CheckedWithoutAServer(t *testing.T) {
	fsys, err := platform.Migrations(sqlstore.SQLServer, "x_app")
	if err != nil {
		t.Fatal(err)
	}
	tsqlcheck.CheckMigrations(t, fsys)

	batches, err := tsqlcheck.Batches(fsys)
	if err != nil {
		t.Fatal(err)
	}
	var up []string
	for _, b := range batches {
		if b.Up {
			up = append(up, b.SQL)
		}
	}
	all := strings.Join(up, "\n")
	// Every Up batch that creates something is guarded, so the set also runs on databases that
	// already have the objects (created by the services' 00001 before the platform set existed).
	create := regexp.MustCompile(`(?i)\bCREATE\s+(UNIQUE\s+)?(TABLE|INDEX|SCHEMA|FUNCTION|SECURITY\s+POLICY)\b`)
	for _, b := range up {
		if create.MatchString(b) && !regexp.MustCompile(`^IF `).MatchString(strings.TrimSpace(b)) {
			t.Errorf("an unguarded CREATE (does not begin with IF):\n%s", b)
		}
	}
	for _, want := range []string{
		"CREATE INDEX outbox_pending ON dbo.outbox (seq) WHERE parked_at IS NULL;",
		"CREATE INDEX outbox_aggregate ON dbo.outbox (tenant_id, subject, seq);",
		"CREATE UNIQUE INDEX outbox_seq_key ON dbo.outbox (seq);",
		"CREATE INDEX outbox_parked ON dbo.outbox (seq) WHERE parked_at IS NOT NULL;",
		"EXEC sys.sp_executesql @move;",
		"ADD BLOCK PREDICATE rls.tenant_visible(tenant_id) ON dbo.outbox AFTER UPDATE",
		"PRIMARY KEY (caller, [key], scope)",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("Up lacks %q", want)
		}
	}
}

// Both dialects create the same objects: the same tables, indexes and primary keys.
func TestMigrations_DialectsAgree(t *testing.T) {
	names := regexp.MustCompile(`(?i)\bCREATE\s+(?:UNIQUE\s+)?(?:TABLE|INDEX)\s+(?:IF\s+NOT\s+EXISTS\s+)?(?:dbo\.)?(\w+)`)
	objects := func(d sqlstore.Dialect) []string {
		fsys, err := platform.Migrations(d, "x_app")
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, m := range names.FindAllStringSubmatch(read(t, fsys, "00001_platform.sql"), -1) {
			out = append(out, m[1])
		}
		return out
	}
	pg, ms := objects(sqlstore.Postgres), objects(sqlstore.SQLServer)
	if strings.Join(pg, ",") != strings.Join(ms, ",") {
		t.Errorf("postgres creates %v, sqlserver %v", pg, ms)
	}
}
