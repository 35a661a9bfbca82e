package authz

import (
	"os"
	"testing"

	"spine/shared/cache"
	"spine/shared/testenv"
	"spine/shared/testenv/tsqlcheck"
)

// The SQL Server store runs against a real server only when one is named: SPINE_TEST_SQLSERVER_URL
// is the runtime user's (authz_app) DSN, SPINE_TEST_SQLSERVER_OWNER_URL the owner's, used to apply
// the migrations (platform set first). Without a server the store is checked by
// TestSQLServerQueries and the migrations by migrations' own server-less check.

// sqlServerEnv is the conformance environment over the SQL Server test database, or skips the test
// when there is no server.
func sqlServerEnv(t *testing.T) storeEnv {
	t.Helper()
	runtimeURL := os.Getenv(testenv.EnvSQLServerURL)
	if runtimeURL == "" {
		t.Skip("SPINE_TEST_SQLSERVER_URL not set: no SQL Server on this machine; the SQL Server store is compile-checked and reviewed only")
	}
	ownerURL := os.Getenv(testenv.EnvSQLServerOwnerURL)
	if ownerURL == "" {
		t.Fatalf("%s is set but %s is not", testenv.EnvSQLServerURL, testenv.EnvSQLServerOwnerURL)
	}
	runtime, owner := testenv.SQLServer(t, "authz", runtimeURL, ownerURL)
	clk := &testClock{}
	return storeEnv{
		s:     NewStore(runtime, newTestCache(t), StoreConfig{Now: clk.now}),
		clock: clk,
		second: func(t *testing.T) (Store, *cache.Cache) {
			c := newTestCache(t)
			return NewStore(runtime, c, StoreConfig{Now: clk.now}), c
		},
		outboxTypes: func(t *testing.T, subject string) []string {
			t.Helper()
			return outboxTypesOf(t, owner, `SELECT event_type FROM dbo.outbox WHERE subject = @p1 ORDER BY seq`, subject)
		},
	}
}

// Every subtest of the conformance suite works in fresh tenants, so nothing needs emptying.
func TestSQLServerStore_Conformance(t *testing.T) { runStoreConformance(t, sqlServerEnv) }

// msUUIDColumns are the store's uniqueidentifier columns, which its statements read only as
// canonical text (client_key, LOWER(CONVERT(char(36), ...))).
var msUUIDColumns = []string{"tenant_id", "client_id", "family_id", "token_id", "replaced_by", "jti"}

// TestSQLServerQueries checks, without a server, what would otherwise only fail at run time. It
// walks the statement set by reflection, so no statement can be left out: every T-SQL statement's
// placeholders are @p1..@pN without gaps, with no PostgreSQL syntax, schema-qualified tables and no
// raw uniqueidentifier in a select list; each engine's statement takes the same number of
// parameters as the other's; every call in store_sql.go passes exactly that many arguments after
// the statement; and no SQL is written inline in store_sql.go.
func TestSQLServerQueries(t *testing.T) {
	tsqlcheck.CheckStatementSets(t, "store_sql.go", msStatements, pgStatements, msUUIDColumns...)
}
