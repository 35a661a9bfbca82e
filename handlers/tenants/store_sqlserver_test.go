package tenants

import (
	"context"
	"errors"
	"os"
	"testing"

	"spine/shared/sqlstore"
	"spine/shared/testenv"
	"spine/shared/testenv/tsqlcheck"
)

// The SQL Server store runs against a real server only when one is named: SPINE_TEST_SQLSERVER_URL
// is the runtime user's (tenants_app) DSN, SPINE_TEST_SQLSERVER_OWNER_URL the owner's, used to
// apply the migrations and to empty the tables before each conformance subtest (the runtime user
// may not delete tenants). Without a server the store is checked by TestSQLServerQueries only.

// openSQLServer returns the runtime and owner pools of the SQL Server test database, migrated,
// or skips the test when there is no server.
func openSQLServer(t *testing.T) (runtime, owner *sqlstore.DB) {
	t.Helper()
	runtimeURL := os.Getenv(testenv.EnvSQLServerURL)
	if runtimeURL == "" {
		t.Skip("SPINE_TEST_SQLSERVER_URL not set: no SQL Server on this machine; the SQL Server store is compile-checked and reviewed only")
	}
	ownerURL := os.Getenv(testenv.EnvSQLServerOwnerURL)
	if ownerURL == "" {
		t.Fatalf("%s is set but %s is not: the suite needs the owner to empty the tables between subtests",
			testenv.EnvSQLServerURL, testenv.EnvSQLServerOwnerURL)
	}
	return testenv.SQLServer(t, "tenants", runtimeURL, ownerURL)
}

// emptySQLServer deletes every row as the owner. The security policy binds the owner too, so the
// batch switches platform scope on for its own connection (one batch, one connection) and off again.
func emptySQLServer(t *testing.T, owner *sqlstore.DB) {
	t.Helper()
	_, err := owner.ExecContext(context.Background(), `
		EXEC sp_set_session_context @key = N'platform', @value = N'on';
		DELETE FROM dbo.tenant_provisioning_steps;
		DELETE FROM dbo.tenants;
		DELETE FROM dbo.outbox;
		DELETE FROM dbo.idempotency_keys;
		EXEC sp_set_session_context @key = N'platform', @value = N'off';`)
	if err != nil {
		t.Fatal(err)
	}
}

func TestSQLServerStore_Conformance(t *testing.T) {
	runtime, owner := openSQLServer(t)
	runStoreConformance(t, func(t *testing.T) Store {
		emptySQLServer(t, owner)
		return NewSQLServerStore(runtime)
	})
}

// The security policy confines the runtime user as PostgreSQL's row-level security does: a query
// without a tenant filter sees and changes only the current tenant's rows, a row for another
// tenant cannot be written, and the policy cannot be switched off.
func TestSQLServerRLS_RuntimeUserIsConfined(t *testing.T) {
	db, owner := openSQLServer(t)
	emptySQLServer(t, owner)
	a, b := seedTwo(t, NewSQLServerStore(db))
	ctx := context.Background()
	sa := sqlstore.TenantScope(a.ID)
	for _, table := range []string{"dbo.tenants", "dbo.tenant_provisioning_steps", "dbo.outbox"} {
		var ids []string
		err := db.InReadTx(ctx, sa, func(tx *sqlstore.Tx) error {
			var err error
			ids, err = testenv.QueryStrings(ctx, tx, `SELECT LOWER(CONVERT(char(36), tenant_id)) FROM `+table) // no WHERE on purpose
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(ids) != 1 || ids[0] != a.ID.String() {
			t.Errorf("%s without a filter as A: %v, want only %s", table, ids, a.ID)
		}
	}
	var n int64
	err := db.InTx(ctx, sa, func(tx *sqlstore.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE dbo.tenants SET name = N'pwned'`)
		if err == nil {
			n, _ = res.RowsAffected()
		}
		return err
	})
	if err != nil || n != 1 {
		t.Fatalf("unfiltered UPDATE as A touched %d rows (err %v), want 1", n, err)
	}
	err = db.InTx(ctx, sa, func(tx *sqlstore.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO dbo.tenant_provisioning_steps (tenant_id, seq, name, status, updated_at)
			VALUES (@p1, 9, 'x', 'Pending', SYSUTCDATETIME())`, b.ID.String())
		return err
	})
	if !errors.Is(err, sqlstore.ErrPermission) {
		t.Fatalf("inserting a row for B as A: err = %v, want the block predicate's refusal", err)
	}
	for _, q := range []string{
		`ALTER SECURITY POLICY rls.tenant_isolation WITH (STATE = OFF)`,
		`DROP SECURITY POLICY rls.tenant_isolation`,
		`DELETE FROM dbo.tenants`,
	} {
		err := db.InTx(ctx, sa, func(tx *sqlstore.Tx) error { _, err := tx.ExecContext(ctx, q); return err })
		if err == nil {
			t.Errorf("%s succeeded for the runtime user", q)
		}
	}
}

// msUUIDColumns are the store's uniqueidentifier columns, which its statements read only as
// canonical text (tenant_key, see statements_sqlserver.go).
var msUUIDColumns = []string{"tenant_id"}

// TestSQLServerQueries checks, without a server, what would otherwise only fail at run time. It
// walks the statement set by reflection, so no statement can be left out: every T-SQL
// statement's placeholders are @p1..@pN without gaps, no PostgreSQL syntax crept in, tables are
// schema-qualified, ids are never selected as raw uniqueidentifiers; each engine's statement takes
// the same number of parameters as the other's; every call in store_sql.go passes exactly that
// many arguments after the statement; and no SQL is written inline in store_sql.go.
func TestSQLServerQueries(t *testing.T) {
	tsqlcheck.CheckStatementSets(t, "store_sql.go", msStatements, pgStatements, msUUIDColumns...)
}
