package notifications

import (
	"os"
	"testing"

	"spine/shared/sqlstore"
	"spine/shared/testenv"
	"spine/shared/testenv/tsqlcheck"
)

// openSQLServer returns the runtime pool of the SQL Server test database, migrated, or skips the
// test when there is no server (SPINE_TEST_SQLSERVER_URL, SPINE_TEST_SQLSERVER_OWNER_URL).
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
	runtime, _ := testenv.SQLServer(t, service, runtimeURL, ownerURL)
	return runtime
}

func TestSQLServerStore_Conformance(t *testing.T) {
	runtime := openSQLServer(t)
	runStoreConformance(t, func(t *testing.T) *Store { return NewStore(runtime) })
}

func TestPostgresStore_Conformance(t *testing.T) {
	runStoreConformance(t, func(t *testing.T) *Store { return NewStore(testDB.OpenRuntime(t, sqlstore.PoolConfig{})) })
}

// msUUIDColumns are the store's uniqueidentifier columns, read only as canonical text.
var msUUIDColumns = []string{"tenant_id", "notification_id", "endpoint_id"}

// TestSQLServerQueries checks, without a server, every T-SQL statement of the set against its
// PostgreSQL twin and store.go's calls.
func TestSQLServerQueries(t *testing.T) {
	tsqlcheck.CheckStatementSets(t, "store.go", msStatements, pgStatements, msUUIDColumns...)
}
