package tenants

import (
	"context"
	"fmt"
	"os"
	"testing"

	"spine/shared/sqlstore"
	"spine/shared/testenv"
)

// testDB is this package's fresh database (created in TestMain, dropped after).
var testDB *testenv.Database

func TestMain(m *testing.M) {
	ctx := context.Background()
	db, err := testenv.FreshDatabase(ctx, "tenants")
	if err != nil {
		fmt.Fprintln(os.Stderr, "tenants tests:", err)
		os.Exit(1)
	}
	testDB = db
	code := m.Run()
	db.Drop()
	os.Exit(code)
}

// openRuntime opens the runtime role's pool on the package database.
func openRuntime(t *testing.T) *sqlstore.DB {
	t.Helper()
	db, err := sqlstore.Open(context.Background(), sqlstore.Postgres, testDB.RuntimeURL, sqlstore.PoolConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// truncate empties every table as the owner, so each conformance subtest starts empty.
func truncate(t *testing.T) {
	t.Helper()
	owner, err := sqlstore.Open(context.Background(), sqlstore.Postgres, testDB.OwnerURL, sqlstore.PoolConfig{MaxOpen: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer owner.Close()
	if _, err := owner.Exec(`TRUNCATE tenant_provisioning_steps, tenants, outbox, idempotency_keys`); err != nil {
		t.Fatal(err)
	}
}
