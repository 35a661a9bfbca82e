package sqlstore_test

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"spine/shared/sqlstore"
	"spine/shared/telemetry"
	"spine/shared/tenancy"
	"spine/shared/testenv"
)

// These tests run on the local stack's PostgreSQL (`make test`), on a tenants database of their own.
var testDB *testenv.Database

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, "tenants", &testDB)) }

// probe opens an owner pool of max connections with an empty table probe(k text primary key).
func probe(t *testing.T, max int) *sqlstore.DB {
	t.Helper()
	db := testDB.OpenOwner(t, sqlstore.PoolConfig{MaxOpen: max})
	if _, err := db.Exec(`CREATE TABLE IF NOT EXISTS probe (k text PRIMARY KEY); TRUNCATE probe`); err != nil {
		t.Fatal(err)
	}
	return db
}

// rows is the number of probe rows with key k, read in a transaction of its own.
func rows(t *testing.T, db *sqlstore.DB, k string) int {
	t.Helper()
	var n int
	if err := db.InReadTx(context.Background(), sqlstore.PlatformScope(), func(tx *sqlstore.Tx) error {
		return tx.QueryRowContext(context.Background(), `SELECT count(*) FROM probe WHERE k = $1`, k).Scan(&n)
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// freshTx fails t unless a transaction on db starts without a transaction id, as only a new
// transaction does (every one these tests abandon has written a row, so has an id).
func freshTx(t *testing.T, db *sqlstore.DB) {
	t.Helper()
	var xid *int64
	if err := db.InTx(context.Background(), sqlstore.PlatformScope(), func(tx *sqlstore.Tx) error {
		return tx.QueryRowContext(context.Background(), `SELECT txid_current_if_assigned()`).Scan(&xid)
	}); err != nil {
		t.Fatal(err)
	}
	if xid != nil {
		t.Fatalf("the next transaction already has id %d: the previous one was still open on its connection", *xid)
	}
}

// PostgreSQL answers COMMIT with ROLLBACK, and no error, in a transaction one of whose statements
// failed; InTx reports it and nothing is written, even when fn ignored the statement's error.
func TestInTx_CommitOfAFailedTransactionIsAnError(t *testing.T) {
	db := probe(t, 1)
	ctx := context.Background()
	err := db.InTx(ctx, sqlstore.PlatformScope(), func(tx *sqlstore.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO probe VALUES ('failed')`); err != nil {
			return err
		}
		_, _ = tx.ExecContext(ctx, `SELECT 1/0`) // the error is dropped on purpose
		return nil
	})
	if !errors.Is(err, pgx.ErrTxCommitRollback) {
		t.Fatalf("InTx = %v, want pgx.ErrTxCommitRollback", err)
	}
	if n := rows(t, db, "failed"); n != 0 {
		t.Fatalf("%d rows of the failed transaction were committed", n)
	}
	freshTx(t, db)
}

// The scope is written by the query that begins the transaction: a transaction of one statement
// takes three round trips (BEGIN with the scope, the statement, COMMIT), read-only ones too, and
// its statement sees exactly the scope's settings.
func TestInTx_ScopeIsSetByTheBeginInOneRoundTrip(t *testing.T) {
	db, rt := testDB.OpenRuntimeCounted(t, sqlstore.PoolConfig{MaxOpen: 1})
	ctx := context.Background()
	a, b := tenancy.NewTenantID().String(), tenancy.NewTenantID().String()
	for _, tc := range []struct {
		name                  string
		scope                 sqlstore.Scope
		tenant, platform, set string
	}{
		{"tenant", sqlstore.TenantScope(tenancy.MustParseTenantID(a)), a, "off", ""},
		{"platform", sqlstore.PlatformScope(), "", "on", ""},
		{"set", sqlstore.TenantSetScope([]string{a, strings.ToUpper(b)}), "", "off", "{" + a + "," + b + "}"},
		{"none", sqlstore.Scope{}, "", "off", ""},
	} {
		for _, readOnly := range []bool{false, true} {
			run, mode := db.InTx, "read-write"
			if readOnly {
				run, mode = db.InReadTx, "read only"
			}
			var tenant, platform, set, ro string
			read := func() error {
				return run(ctx, tc.scope, func(tx *sqlstore.Tx) error {
					return tx.QueryRowContext(ctx, `SELECT current_setting('spine.tenant_id'), current_setting('spine.platform'),
						current_setting('spine.tenant_set'), current_setting('transaction_read_only')`).Scan(&tenant, &platform, &set, &ro)
				})
			}
			if err := read(); err != nil { // connects and prepares the statement
				t.Fatalf("%s %s: %v", tc.name, mode, err)
			}
			before := rt.Count()
			if err := read(); err != nil {
				t.Fatalf("%s %s: %v", tc.name, mode, err)
			}
			if got := rt.Count() - before; got != 3 {
				t.Errorf("%s %s: %d round trips, want 3 (BEGIN with the scope, the statement, COMMIT)", tc.name, mode, got)
			}
			if tenant != tc.tenant || platform != tc.platform || set != tc.set {
				t.Errorf("%s %s: settings %q %q %q, want %q %q %q", tc.name, mode, tenant, platform, set, tc.tenant, tc.platform, tc.set)
			}
			if want := map[bool]string{false: "off", true: "on"}[readOnly]; ro != want {
				t.Errorf("%s %s: transaction_read_only = %s, want %s", tc.name, mode, ro, want)
			}
		}
	}
}

// A read-only transaction refuses writes.
func TestInReadTx_RefusesWrites(t *testing.T) {
	db := probe(t, 1)
	ctx := context.Background()
	err := db.InReadTx(ctx, sqlstore.PlatformScope(), func(tx *sqlstore.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO probe VALUES ('read')`)
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "read-only transaction") {
		t.Fatalf("INSERT in InReadTx: %v, want PostgreSQL's read-only refusal", err)
	}
	if n := rows(t, db, "read"); n != 0 {
		t.Fatalf("the read-only transaction wrote %d rows", n)
	}
}

// A scope value that is not made of id characters could close a string literal: it is never
// inlined into the BEGIN but sent as a parameter, and arrives exactly as it was.
func TestInTx_ScopeValueThatCouldLeaveALiteralIsSentAsAParameter(t *testing.T) {
	db, rt := testDB.OpenRuntimeCounted(t, sqlstore.PoolConfig{MaxOpen: 1})
	ctx := context.Background()
	evil := `x', true), set_config('spine.platform', 'on', true); --`
	var tenant, platform string
	before := rt.Count()
	err := db.InTx(ctx, sqlstore.Scope{Tenant: evil}, func(tx *sqlstore.Tx) error {
		return tx.QueryRowContext(ctx, `SELECT current_setting('spine.tenant_id'), current_setting('spine.platform')`).Scan(&tenant, &platform)
	})
	if err != nil {
		t.Fatal(err)
	}
	if tenant != evil || platform != "off" {
		t.Fatalf("settings %q %q, want %q and off", tenant, platform, evil)
	}
	if got := rt.Count() - before; got < 4 {
		t.Fatalf("%d round trips: the value went inside the BEGIN", got)
	}
}

// A set scope naming something other than a tenant id fails before anything is sent.
func TestInTx_SetScopeOfANonIDFailsBeforeAnyRoundTrip(t *testing.T) {
	db, rt := testDB.OpenRuntimeCounted(t, sqlstore.PoolConfig{MaxOpen: 1})
	before := rt.Count()
	err := db.InTx(context.Background(), sqlstore.TenantSetScope([]string{"'}') --"}), func(*sqlstore.Tx) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "is not a tenant id") {
		t.Fatalf("InTx = %v, want the set scope refused", err)
	}
	if got := rt.Count() - before; got != 0 {
		t.Fatalf("%d round trips for a refused scope", got)
	}
}

// However a transaction ends — its context cancelled between statements or during one, fn
// panicking — its writes are rolled back and its connection never reaches the next caller inside
// it (one connection, so the next transaction runs on the same one or a new one).
func TestInTx_ConnectionNeverReturnsToThePoolInsideATransaction(t *testing.T) {
	db := probe(t, 1)
	insert := func(ctx context.Context, tx *sqlstore.Tx, k string) {
		if _, err := tx.ExecContext(ctx, `INSERT INTO probe VALUES ($1)`, k); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("cancelled between statements", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		err := db.InTx(ctx, sqlstore.PlatformScope(), func(tx *sqlstore.Tx) error {
			insert(ctx, tx, "between")
			cancel()
			_, err := tx.ExecContext(ctx, `SELECT 1`)
			return err
		})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("InTx = %v, want context.Canceled", err)
		}
		if n := rows(t, db, "between"); n != 0 {
			t.Fatalf("%d rows of the cancelled transaction committed", n)
		}
		freshTx(t, db)
	})
	t.Run("cancelled during a statement", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		err := db.InTx(ctx, sqlstore.PlatformScope(), func(tx *sqlstore.Tx) error {
			insert(ctx, tx, "during")
			_, err := tx.ExecContext(ctx, `SELECT pg_sleep(5)`)
			return err
		})
		if err == nil {
			t.Fatal("InTx = nil, want the cancelled statement's error")
		}
		if n := rows(t, db, "during"); n != 0 {
			t.Fatalf("%d rows of the cancelled transaction committed", n)
		}
		freshTx(t, db)
	})
	t.Run("fn panics", func(t *testing.T) {
		func() {
			defer func() { _ = recover() }()
			_ = db.InTx(context.Background(), sqlstore.PlatformScope(), func(tx *sqlstore.Tx) error {
				insert(context.Background(), tx, "panic")
				panic("fn fails")
			})
		}()
		if n := rows(t, db, "panic"); n != 0 {
			t.Fatalf("%d rows of the panicked transaction committed", n)
		}
		freshTx(t, db)
	})
}

// A serialization failure is retried in a fresh transaction: the first attempt's writes are gone
// and the second commits once.
func TestInTx_RetriesASerializationFailureInAFreshTransaction(t *testing.T) {
	db := probe(t, 1)
	ctx := context.Background()
	attempts := 0
	err := db.InTx(ctx, sqlstore.PlatformScope(), func(tx *sqlstore.Tx) error {
		attempts++
		if _, err := tx.ExecContext(ctx, `INSERT INTO probe VALUES ('retried')`); err != nil {
			return err // a leftover row of the first attempt would make this a unique violation
		}
		if attempts == 1 {
			_, err := tx.ExecContext(ctx, `DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = '40001'; END $$`)
			return err
		}
		return nil
	})
	if err != nil || attempts != 2 {
		t.Fatalf("InTx = %v after %d attempts, want success on the second", err, attempts)
	}
	if n := rows(t, db, "retried"); n != 1 {
		t.Fatalf("%d rows, want 1", n)
	}
}

// With telemetry enabled the connection is wrapped by otelsql: transactions still begin, commit
// and fail as without it, and every statement, BEGIN and COMMIT included, reaches its metrics.
func TestInTx_InstrumentedConnectionCommitsAndRecordsTheStatements(t *testing.T) {
	ctx := context.Background()
	p, err := telemetry.New(ctx, telemetry.Config{MetricsAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	p.Install()
	t.Cleanup(func() { _ = p.Shutdown(ctx) })
	db := probe(t, 1)
	if err := db.InTx(ctx, sqlstore.PlatformScope(), func(tx *sqlstore.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO probe VALUES ('traced')`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if n := rows(t, db, "traced"); n != 1 {
		t.Fatalf("%d rows, want 1", n)
	}
	err = db.InTx(ctx, sqlstore.PlatformScope(), func(tx *sqlstore.Tx) error {
		_, _ = tx.ExecContext(ctx, `SELECT 1/0`)
		return nil
	})
	if !errors.Is(err, pgx.ErrTxCommitRollback) {
		t.Fatalf("failed transaction through otelsql: InTx = %v, want pgx.ErrTxCommitRollback", err)
	}
	rec := httptest.NewRecorder()
	p.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	// Three transactions (the insert, rows' read, the failed one), each begun by one statement
	// that also wrote its scope; the table's creation and the insert ran; one SELECT failed; two
	// COMMITs succeeded and the failed transaction's did not.
	for _, want := range []struct {
		op, errType string
		n           int
	}{
		{"sql.conn.begin_tx", "", 3},
		{"sql.conn.exec", "", 2},
		{"sql.conn.exec", "*pgconn.PgError", 1},
		{"sql.tx.commit", "", 2},
		{"sql.tx.commit", "*errors.errorString", 1},
	} {
		if got := opCount(string(body), want.op, want.errType); got != want.n {
			t.Errorf("%s (error %q) recorded %d times, want %d", want.op, want.errType, got, want.n)
		}
	}
}

// opCount is the count of otelsql's operation duration histogram for op (and error type, "" for
// none) in Prometheus text.
func opCount(metrics, op, errType string) int {
	for _, line := range strings.Split(metrics, "\n") {
		if !strings.HasPrefix(line, "db_client_operation_duration_seconds_count{") ||
			!strings.Contains(line, `db_operation_name="`+op+`"`) ||
			strings.Contains(line, "error_type=") != (errType != "") ||
			(errType != "" && !strings.Contains(line, `error_type="`+errType+`"`)) {
			continue
		}
		n, _ := strconv.Atoi(line[strings.LastIndexByte(line, ' ')+1:])
		return n
	}
	return 0
}

// A transaction whose context ends before its commit (the caller went away) reports the
// cancellation, which the API edge answers as an abandoned request, not as an internal failure.
func TestInTx_CommitAfterTheCallerLeftReportsTheCancellation(t *testing.T) {
	db := probe(t, 2)
	ctx, cancel := context.WithCancel(context.Background())
	err := db.InTx(ctx, sqlstore.PlatformScope(), func(tx *sqlstore.Tx) error {
		if _, err := tx.ExecContext(ctx, `SELECT 1`); err != nil {
			return err
		}
		cancel()
		time.Sleep(50 * time.Millisecond) // database/sql rolls back once it sees the context end
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("InTx = %v, want context.Canceled", err)
	}
}
