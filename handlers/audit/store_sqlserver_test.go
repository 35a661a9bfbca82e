package audit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"spine/migrations"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
	"spine/shared/testenv"
	"spine/shared/testenv/tsqlcheck"
)

// The SQL Server store runs against a real server only when one is named: SPINE_TEST_SQLSERVER_URL
// is the runtime user's (audit_app) DSN, SPINE_TEST_SQLSERVER_OWNER_URL the owner's, used to apply
// the migrations. The entries table is an append-only ledger table, so nothing is emptied between
// subtests: each uses fresh tenants. Without a server the store is checked by TestSQLServerQueries.

// openSQLServer returns the runtime and owner pools of the SQL Server test database, migrated,
// or skips the test when there is no server.
func openSQLServer(t *testing.T) (runtime, owner *sqlstore.DB) {
	t.Helper()
	runtimeURL, ownerURL := os.Getenv(testenv.EnvSQLServerURL), os.Getenv(testenv.EnvSQLServerOwnerURL)
	if runtimeURL == "" || ownerURL == "" {
		t.Skip("SPINE_TEST_SQLSERVER_URL and SPINE_TEST_SQLSERVER_OWNER_URL not set: no SQL Server on this machine; " +
			"the SQL Server store is checked by TestSQLServerQueries and review only")
	}
	return testenv.SQLServer(t, "audit", runtimeURL, ownerURL)
}

func TestSQLServerStore_Conformance(t *testing.T) {
	runtime, _ := openSQLServer(t)
	runStoreConformance(t, func(t *testing.T) Store { return NewSQLServerStore(runtime) })
}

// The ledger table refuses UPDATE and DELETE for everyone, db_owner included; the runtime user
// lacks the privilege in the first place; the security policy confines it to its tenant.
func TestSQLServerAppendOnly_LedgerRefusesChangesForRuntimeAndOwner(t *testing.T) {
	runtime, owner := openSQLServer(t)
	a, b, _ := seedTwo(t, NewSQLServerStore(runtime))
	for _, q := range []string{`UPDATE dbo.audit_entries SET action = N'rewritten'`, `DELETE FROM dbo.audit_entries`} {
		if _, err := execIn(runtime, sqlstore.TenantScope(a), q); !errors.Is(err, sqlstore.ErrPermission) {
			t.Errorf("%s as the runtime user: err = %v, want permission denied", q, err)
		}
		if _, err := execIn(owner, sqlstore.PlatformScope(), q); err == nil {
			t.Errorf("%s as the owner succeeded on an append-only ledger table", q)
		}
	}
	if _, err := execIn(owner, sqlstore.PlatformScope(), `TRUNCATE TABLE dbo.audit_entries`); err == nil {
		t.Error("TRUNCATE as the owner succeeded on an append-only ledger table")
	}
	var ids []string
	err := runtime.InReadTx(context.Background(), sqlstore.TenantScope(a), func(tx *sqlstore.Tx) error {
		var err error
		ids, err = testenv.QueryStrings(context.Background(), tx, `SELECT DISTINCT LOWER(CONVERT(char(36), tenant_id)) FROM dbo.audit_entries`)
		return err
	})
	if err != nil || len(ids) != 1 || ids[0] != a.String() {
		t.Fatalf("entries visible to A without a filter: %v, %v", ids, err)
	}
	if _, err := execIn(runtime, sqlstore.TenantScope(a), `INSERT INTO dbo.inbox (tenant_id, consumer, event_id, event_type, received_at)
		VALUES (@p1, 'x', NEWID(), 'T', SYSUTCDATETIME())`, b.String()); !errors.Is(err, sqlstore.ErrPermission) {
		t.Fatalf("inserting an inbox row for B as A: err = %v, want the block predicate's refusal", err)
	}
}

// msUUIDColumns are the store's uniqueidentifier columns, which its statements select only as
// canonical text.
var msUUIDColumns = []string{"tenant_id", "entry_id", "source_event_id"}

// TestSQLServerQueries checks, without a server, what would otherwise only fail at run time. It
// walks the statement set by reflection, so no statement can be left out: every T-SQL
// statement's placeholders are @p1..@pN without gaps (other @names must be declared variables or
// a system procedure's parameters), no PostgreSQL syntax crept in, tables are schema-qualified,
// uniqueidentifier columns are only ever selected as canonical text; each engine's statement
// takes the same number of parameters as the other's; every call in store_sql.go passes exactly
// that many arguments after the statement; and no SQL is written inline in store_sql.go. The
// checker's own tests (spine/shared/testenv/tsqlcheck) prove it is not vacuous.
func TestSQLServerQueries(t *testing.T) {
	tsqlcheck.CheckStatementSets(t, "store_sql.go", msStatements, pgStatements, msUUIDColumns...)
}

// TestAssembledQueries checks the statements Query and SeqRange assemble at run time, on both
// engines, for every combination of filter members: the T-SQL as TestSQLServerQueries checks a
// statement, the PostgreSQL's placeholders, and that each passes exactly as many arguments as it
// has placeholders.
func TestAssembledQueries(t *testing.T) {
	tenant := tenancy.NewTenantID()
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	members := []func(*Filter){
		func(f *Filter) { f.From = at },
		func(f *Filter) { f.To = at.Add(time.Hour) },
		func(f *Filter) { f.ActorID = "user:1" },
		func(f *Filter) { f.Action = "thing.done" },
		func(f *Filter) { f.ResourceType = "thing" },
		func(f *Filter) { f.ResourceID = "42" },
		func(f *Filter) { f.TraceID = strings.Repeat("ab", 16) },
	}
	check := func(name string, ms, pg string, msArgs, pgArgs []any) {
		t.Helper()
		if n := tsqlcheck.CheckStatement(t.Errorf, name, ms, msUUIDColumns...); n != len(msArgs) {
			t.Errorf("%s: T-SQL has %d placeholders but %d arguments: %s", name, n, len(msArgs), ms)
		}
		if n := tsqlcheck.PostgresPlaceholders(t.Errorf, name, pg); n != len(pgArgs) {
			t.Errorf("%s: PostgreSQL has %d placeholders but %d arguments: %s", name, n, len(pgArgs), pg)
		}
	}
	for set := 0; set < 1<<len(members); set++ {
		f := Filter{AfterSeq: 7, Limit: 10}
		for i, m := range members {
			if set&(1<<i) != 0 {
				m(&f)
			}
		}
		ms, msArgs := msStatements.queryStatement(tenant, f)
		pg, pgArgs := pgStatements.queryStatement(tenant, f)
		check(fmt.Sprintf("query %07b", set), ms, pg, msArgs, pgArgs)
		if set < 4 {
			ms, msArgs = msStatements.seqRangeStatement(tenant, f.From, f.To)
			pg, pgArgs = pgStatements.seqRangeStatement(tenant, f.From, f.To)
			check(fmt.Sprintf("seqRange %02b", set), ms, pg, msArgs, pgArgs)
		}
	}
	// Every member set adds its condition and its argument; the limit is the last argument.
	f := Filter{AfterSeq: 7, Limit: 10}
	for _, m := range members {
		m(&f)
	}
	for name, q := range map[string]*statements{"T-SQL": &msStatements, "PostgreSQL": &pgStatements} {
		stmt, args := q.queryStatement(tenant, f)
		if len(args) != 10 || args[0] != tenant.String() || args[len(args)-1] != 10 || strings.Count(stmt, " AND ") < 8 {
			t.Errorf("%s: every member set: %s with %v", name, stmt, args)
		}
	}
}

// TestSQLServerMigration_Shape reads the SQL Server migration (which cannot run here) for the
// properties the store and the issue rely on: the ledger clause, the grants, a goose batch of
// its own for each statement that must stand alone, and the filtered unique index. (The schema
// rls, its predicate, inbox and outbox are the platform schema's, checked in shared/platform.)
func TestSQLServerMigration_Shape(t *testing.T) {
	fsys, err := migrations.For("audit", "sqlserver")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := fsys.(interface{ ReadFile(string) ([]byte, error) }).ReadFile("00001_audit.sql")
	if err != nil {
		t.Fatal(err)
	}
	src := string(raw)
	up, down, ok := strings.Cut(src, "-- +goose Down")
	if !ok {
		t.Fatal("no -- +goose Down section")
	}
	for _, want := range []string{
		"WITH (LEDGER = ON (APPEND_ONLY = ON));",
		"GRANT SELECT, INSERT ON dbo.audit_entries TO audit_app;",
		"CREATE UNIQUE INDEX " + sourceEventConstraint + " ON dbo.audit_entries (tenant_id, source_event_id)\n    WHERE source_event_id IS NOT NULL;",
		"ISJSON(payload, VALUE) = 1",
	} {
		if !strings.Contains(up, want) {
			t.Errorf("Up lacks %q", want)
		}
	}
	if regexp.MustCompile(`(?i)GRANT[^;]*(UPDATE|DELETE)[^;]*dbo\.audit_entries`).MatchString(up) {
		t.Error("audit_app must not be granted UPDATE or DELETE on dbo.audit_entries")
	}
	// CREATE SECURITY POLICY must be its own batch.
	blocks := regexp.MustCompile(`(?s)-- \+goose StatementBegin\n(.*?)-- \+goose StatementEnd`).FindAllStringSubmatch(up, -1)
	alone := map[string]bool{}
	for _, b := range blocks {
		body := strings.TrimSpace(b[1])
		for _, stmt := range []string{"CREATE SECURITY POLICY"} {
			if strings.HasPrefix(body, stmt) {
				alone[stmt] = true
				if strings.Count(strings.TrimSuffix(body, ";"), ";") > 0 {
					t.Errorf("the %s block holds more than one statement", stmt)
				}
			}
		}
	}
	outside := regexp.MustCompile(`(?s)-- \+goose StatementBegin\n.*?-- \+goose StatementEnd`).ReplaceAllString(up, "")
	for _, stmt := range []string{"CREATE SECURITY POLICY"} {
		if !alone[stmt] || strings.Contains(outside, stmt) {
			t.Errorf("%s must stand alone in a StatementBegin/StatementEnd block", stmt)
		}
	}
	for _, want := range []string{"DROP SECURITY POLICY rls.tenant_isolation;", "DROP TABLE dbo.audit_entries;"} {
		if !strings.Contains(down, want) {
			t.Errorf("Down lacks %q", want)
		}
	}
}

// TestSQLServerArchiveQueries checks the retention sweeps' statement sets as TestSQLServerQueries
// checks the store's.
func TestSQLServerArchiveQueries(t *testing.T) {
	tsqlcheck.CheckStatementSets(t, "store_archive.go", msArchive, pgArchive, append(msUUIDColumns, "evidence_id")...)
}
