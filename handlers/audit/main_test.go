package audit

import (
	"context"
	"database/sql"
	"os"
	"testing"

	"spine/shared/sqlstore"
	"spine/shared/testenv"
)

// testDB is this package's fresh database (created in TestMain, dropped after). Tests and
// benchmarks isolate themselves by using fresh tenants: the entries table cannot be emptied
// (that is the point of it).
var testDB *testenv.Database

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, "audit", &testDB)) }

// openRuntime opens the runtime role's pool on the package database.
func openRuntime(tb testing.TB) *sqlstore.DB {
	tb.Helper()
	return testDB.OpenRuntime(tb, sqlstore.PoolConfig{})
}

// openOwner opens the owner role's pool (the migration role: bound by row-level security and by
// the append-only trigger).
func openOwner(tb testing.TB) *sqlstore.DB {
	tb.Helper()
	return testDB.OpenOwner(tb, sqlstore.PoolConfig{MaxOpen: 2})
}

// openSuperuser opens the cluster superuser on the package database: the one role that can get
// past both row-level security and the trigger, as an attacker with full database access would.
func openSuperuser(tb testing.TB) *sql.DB {
	tb.Helper()
	db, err := sql.Open("pgx", testDB.AdminURL)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = db.Close() })
	return db
}

// tamper runs q as the superuser with triggers off for its transaction only
// (session_replication_role = replica skips ordinary triggers), then commits.
func tamper(t *testing.T, q string, args ...any) int64 {
	t.Helper()
	ctx := context.Background()
	tx, err := openSuperuser(t).BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SET LOCAL session_replication_role = replica`); err != nil {
		t.Fatal(err)
	}
	res, err := tx.ExecContext(ctx, q, args...)
	if err != nil {
		t.Fatalf("tamper %q: %v", q, err)
	}
	n, _ := res.RowsAffected()
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	return n
}
