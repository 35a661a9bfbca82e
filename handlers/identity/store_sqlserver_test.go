package identity

import (
	"context"
	"os"
	"testing"

	"spine/shared/ids"
	"spine/shared/sqlstore"
	"spine/shared/testenv"
	"spine/shared/testenv/tsqlcheck"
)

// The SQL Server store runs against a real server only when one is named: SPINE_TEST_SQLSERVER_URL
// is the runtime user's (identity_app) DSN, SPINE_TEST_SQLSERVER_OWNER_URL the owner's, used to
// apply the migrations (platform set first). Without a server the store is checked by
// TestSQLServerQueries and the migrations by migrations' own server-less check.

// openSQLServer returns the runtime pool of the SQL Server test database, migrated, or skips the
// test when there is no server.
func openSQLServer(t *testing.T) *sqlstore.DB {
	t.Helper()
	runtimeURL := os.Getenv(testenv.EnvSQLServerURL)
	if runtimeURL == "" {
		t.Skip("SPINE_TEST_SQLSERVER_URL not set: no SQL Server on this machine; the SQL Server store is compile-checked and reviewed only")
	}
	ownerURL := os.Getenv(testenv.EnvSQLServerOwnerURL)
	if ownerURL == "" {
		t.Fatalf("%s is set but %s is not", testenv.EnvSQLServerURL, testenv.EnvSQLServerOwnerURL)
	}
	runtime, _ := testenv.SQLServer(t, "identity", runtimeURL, ownerURL)
	return runtime
}

// Every subtest of the conformance suite works in fresh tenants, so nothing needs emptying.
func TestSQLServerStore_Conformance(t *testing.T) {
	runtime := openSQLServer(t)
	runStoreConformance(t, func(t *testing.T) *Store { return NewStore(runtime) })
}

// The security policy confines the runtime user as PostgreSQL's row-level security does.
func TestSQLServerStore_SecurityPolicyHidesOtherTenants(t *testing.T) {
	runtime := openSQLServer(t)
	ctx := context.Background()
	s := NewStore(runtime)
	a, b := newTenant(), newTenant()
	for _, tn := range []struct{ id, email string }{{a, "a@x.example"}, {b, "b@x.example"}} {
		tid := mustTenant(tn.id)
		if err := s.Write(ctx, sqlstore.TenantScope(tid), tid, func(tx *Tx) error {
			return tx.InsertUser(ctx, User{ID: UserID(ids.New()), Email: Email(tn.email), Status: StatusInvited, Version: 1})
		}); err != nil {
			t.Fatal(err)
		}
	}
	var n int
	if err := runtime.InReadTx(ctx, sqlstore.TenantScope(mustTenant(a)), func(tx *sqlstore.Tx) error {
		return tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM dbo.users`).Scan(&n) // no WHERE on purpose
	}); err != nil || n != 1 {
		t.Fatalf("unfiltered in A's scope: %d %v", n, err)
	}
}

// msUUIDColumns are the store's uniqueidentifier columns, which its statements read only as
// canonical text (user_key, invitation_key, role_key, LOWER(CONVERT(char(36), ...))).
var msUUIDColumns = []string{"tenant_id", "user_id", "role_id", "invitation_id"}

// TestSQLServerQueries checks, without a server, what would otherwise only fail at run time. It
// walks the statement set by reflection, so no statement can be left out: every T-SQL
// statement's placeholders are @p1..@pN without gaps, with no PostgreSQL syntax, schema-qualified
// tables and no raw uniqueidentifier in a select list; each engine's statement takes the same
// number of parameters as the other's; every call in store.go passes exactly that many arguments
// after the statement; and no SQL is written inline in store.go.
func TestSQLServerQueries(t *testing.T) {
	tsqlcheck.CheckStatementSets(t, "store.go", msStatements, pgStatements, msUUIDColumns...)
}
