package tenants

import (
	"os"
	"testing"

	"spine/shared/sqlstore"
	"spine/shared/testenv"
)

// testDB is this package's fresh database (created in TestMain, dropped after).
var testDB *testenv.Database

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, "tenants", &testDB)) }

// openRuntime opens the runtime role's pool on the package database.
func openRuntime(t testing.TB) *sqlstore.DB {
	t.Helper()
	return testDB.OpenRuntime(t, sqlstore.PoolConfig{})
}

// truncate empties every table as the owner, so each conformance subtest starts empty.
func truncate(t *testing.T) {
	t.Helper()
	owner := testDB.OpenOwner(t, sqlstore.PoolConfig{MaxOpen: 1})
	if _, err := owner.Exec(`TRUNCATE tenant_provisioning_steps, tenants, outbox, idempotency_keys`); err != nil {
		t.Fatal(err)
	}
}
