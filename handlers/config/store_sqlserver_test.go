package config

import (
	"os"
	"testing"

	"spine/shared/testenv"
	"spine/shared/testenv/tsqlcheck"
)

// TestSQLServerQueries checks the statement sets without a server: placeholders, no PostgreSQL
// syntax in the T-SQL, equal parameter counts, every call in store.go passing that many, no inline SQL.
func TestSQLServerQueries(t *testing.T) {
	tsqlcheck.CheckStatementSets(t, "store.go", msStatements, pgStatements, "tenant_id")
}

// The conformance suite against SQL Server, when a server is named.
func TestSQLServerStore_Conformance(t *testing.T) {
	runtimeURL := os.Getenv(testenv.EnvSQLServerURL)
	if runtimeURL == "" {
		t.Skip("SPINE_TEST_SQLSERVER_URL not set: no SQL Server on this machine; the SQL Server store is compile-checked and reviewed only")
	}
	ownerURL := os.Getenv(testenv.EnvSQLServerOwnerURL)
	if ownerURL == "" {
		t.Fatalf("%s is set but %s is not", testenv.EnvSQLServerURL, testenv.EnvSQLServerOwnerURL)
	}
	runtime, _ := testenv.SQLServer(t, service, runtimeURL, ownerURL)
	runStoreConformance(t, func(*testing.T) *Store { return NewStore(runtime) })
}
