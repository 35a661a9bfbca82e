package audit

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"spine/shared/events"
	"spine/shared/ids"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
	"spine/shared/testenv"
)

func TestPostgresStore_Conformance(t *testing.T) {
	runStoreConformance(t, func(t *testing.T) Store { return NewPostgresStore(openRuntime(t)) })
}

// seedTwo gives tenants A and B one entry, one inbox row and one outbox row each.
func seedTwo(t *testing.T, s Store) (a, b tenancy.TenantID, entries map[tenancy.TenantID]Entry) {
	t.Helper()
	a, b = tenancy.NewTenantID(), tenancy.NewTenantID()
	entries = map[tenancy.TenantID]Entry{}
	for _, id := range []tenancy.TenantID{a, b} {
		claim := &InboxClaim{Consumer: Consumer, EventID: uuid.Must(uuid.NewV7()).String(), EventType: "Seeded"}
		rec, _, err := s.Append(context.Background(), sqlstore.TenantScope(id), []NewEntry{mkEntry("Seeded")}, func(es []Entry) ([]events.Event, error) {
			ev, err := events.New("audit", EventEntryRecorded, es[0].ID, id.String(), nil, events.Meta{})
			return []events.Event{ev}, err
		}, claim)
		if err != nil {
			t.Fatal(err)
		}
		entries[id] = rec[0]
	}
	return a, b, entries
}

func execIn(db *sqlstore.DB, sc sqlstore.Scope, q string, args ...any) (int64, error) {
	var n int64
	err := db.InTx(context.Background(), sc, func(tx *sqlstore.Tx) error {
		res, err := tx.ExecContext(context.Background(), q, args...)
		if err != nil {
			return err
		}
		n, _ = res.RowsAffected()
		return nil
	})
	return n, err
}

// The runtime role may only insert and read entries and read export rows: UPDATE, DELETE and
// TRUNCATE of entries, any write of export rows and of the retention floor are refused for lack
// of privilege, in its own tenant's scope and in platform scope alike.
func TestAppendOnly_RuntimeRoleCannotChangeOrRemoveEntries(t *testing.T) {
	db := openRuntime(t)
	a, _, _ := seedTwo(t, NewPostgresStore(db))
	for _, sc := range []sqlstore.Scope{sqlstore.TenantScope(a), sqlstore.PlatformScope()} {
		for _, q := range []string{
			`UPDATE audit_entries SET action = 'rewritten'`,
			`DELETE FROM audit_entries`,
			`TRUNCATE audit_entries`,
			`UPDATE inbox SET event_type = 'x'`,
			`DELETE FROM inbox`,
			`UPDATE audit_exports SET blob = 'x'`,
			`DELETE FROM audit_exports`,
			`INSERT INTO audit_exports SELECT * FROM audit_exports`,
			`UPDATE audit_retention_floor SET floor_days = 0`,
		} {
			if _, err := execIn(db, sc, q); !errors.Is(err, sqlstore.ErrPermission) || !strings.Contains(err.Error(), "permission denied") {
				t.Errorf("%s as the runtime role (%+v): err = %v, want permission denied", q, sc, err)
			}
		}
	}
}

// The owner holds every privilege on its tables, yet the trigger refuses UPDATE, DELETE and
// TRUNCATE of entries for it too, even when row-level security hides every row.
func TestAppendOnly_OwnerIsRefusedByTheTrigger(t *testing.T) {
	seedTwo(t, NewPostgresStore(openRuntime(t)))
	owner := openOwner(t)
	for _, sc := range []sqlstore.Scope{sqlstore.PlatformScope(), {}} {
		for _, q := range []string{
			`UPDATE audit_entries SET action = 'rewritten'`,
			`DELETE FROM audit_entries`,
			`TRUNCATE audit_entries`,
		} {
			_, err := execIn(owner, sc, q)
			if err == nil || !strings.Contains(err.Error(), "audit_entries is append-only") {
				t.Errorf("%s as the owner (%+v): err = %v, want the append-only trigger's refusal", q, sc, err)
			}
		}
	}
	var n int
	if err := owner.InReadTx(context.Background(), sqlstore.PlatformScope(), func(tx *sqlstore.Tx) error {
		return tx.QueryRowContext(context.Background(), `SELECT count(*) FROM audit_entries WHERE action = 'rewritten'`).Scan(&n)
	}); err != nil || n != 0 {
		t.Fatalf("rewritten entries: %d, %v", n, err)
	}
}

// The grants are exactly the documented ones: INSERT and SELECT on the entries, SELECT on the
// exports (recorded through audit_record_export), nothing on audit_retention_floor;
// inbox, outbox and idempotency_keys are the platform schema's (shared/platform), granted alike to
// every service.
func TestAppendOnly_RuntimeRoleGrants(t *testing.T) {
	db := openRuntime(t)
	want := map[string]string{
		"audit_entries":    "INSERT,SELECT",
		"audit_exports":    "SELECT",
		"inbox":            "INSERT,SELECT",
		"outbox":           "DELETE,INSERT,SELECT,UPDATE",
		"idempotency_keys": "DELETE,INSERT,SELECT",
	}
	rows, err := db.QueryContext(context.Background(), `SELECT table_name, string_agg(privilege_type, ',' ORDER BY privilege_type)
		FROM information_schema.role_table_grants WHERE grantee = current_user GROUP BY table_name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[string]string{}
	for rows.Next() {
		var table, privs string
		if err := rows.Scan(&table, &privs); err != nil {
			t.Fatal(err)
		}
		got[table] = privs
	}
	for table, privs := range want {
		if got[table] != privs {
			t.Errorf("%s: runtime role has %q, want %q", table, got[table], privs)
		}
	}
	if len(got) != len(want) {
		t.Errorf("runtime role grants = %v, want exactly %v", got, want)
	}
}

// A query that forgets its tenant_id filter still returns only the current tenant's rows.
func TestRLS_UnfilteredQueryReturnsOnlyCurrentTenant(t *testing.T) {
	db := openRuntime(t)
	a, _, _ := seedTwo(t, NewPostgresStore(db))
	ctx := context.Background()
	for _, table := range []string{"audit_entries", "inbox", "outbox"} {
		var ids []string
		err := db.InReadTx(ctx, sqlstore.TenantScope(a), func(tx *sqlstore.Tx) error {
			var err error
			ids, err = testenv.QueryStrings(ctx, tx, `SELECT DISTINCT tenant_id::text FROM `+table) // no WHERE on purpose
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(ids) != 1 || ids[0] != a.String() {
			t.Errorf("%s without a filter as A: %v, want only %s", table, ids, a)
		}
		var n int
		_ = db.InReadTx(ctx, sqlstore.Scope{}, func(tx *sqlstore.Tx) error {
			return tx.QueryRowContext(ctx, `SELECT count(*) FROM `+table).Scan(&n)
		})
		if n != 0 {
			t.Errorf("%s: the zero scope sees %d rows, want none", table, n)
		}
	}
}

// The runtime role cannot write a row for another tenant, nor switch row-level security off.
func TestRLS_RuntimeRoleCannotWriteForAnotherTenantOrDisableRLS(t *testing.T) {
	db := openRuntime(t)
	a, b, _ := seedTwo(t, NewPostgresStore(db))
	_, err := execIn(db, sqlstore.TenantScope(a), `INSERT INTO audit_entries (tenant_id, seq, entry_id, occurred_at, recorded_at,
		actor_type, actor_id, action, resource_type, resource_id, trace_id, correlation_id, payload, prev_hash, hash)
		VALUES ($1, 99, $2, now(), now(), 'user', 'u', 'forged', 'r', '1', '', '', '{}', $3, $3)`,
		b.String(), ids.New(), make([]byte, HashSize))
	if err == nil || !strings.Contains(err.Error(), "row-level security") {
		t.Fatalf("inserting an entry for B as A: err = %v, want a row-level security violation", err)
	}
	for _, q := range []string{
		`ALTER TABLE audit_entries DISABLE ROW LEVEL SECURITY`,
		`ALTER TABLE audit_entries DISABLE TRIGGER audit_entries_append_only`,
		`DROP POLICY tenant_isolation ON audit_entries`,
		`SET ROLE audit_owner`,
		`SET session_replication_role = replica`,
	} {
		if _, err := execIn(db, sqlstore.Scope{}, q); err == nil {
			t.Errorf("%s succeeded for the runtime role", q)
		}
	}
}

// Appends for different tenants do not share a lock: while one tenant's append holds its lock
// (in an open transaction), another tenant's append completes. (Correctness, not timing: the
// second append would block forever if the lock were global.)
func TestAppend_TenantsDoNotWaitOnEachOther(t *testing.T) {
	db := openRuntime(t)
	s := NewPostgresStore(db)
	a, b := tenancy.NewTenantID(), tenancy.NewTenantID()
	ctx := context.Background()
	hold := make(chan struct{})
	held := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, _, err := s.Append(ctx, sqlstore.TenantScope(a), []NewEntry{mkEntry("slow")}, func([]Entry) ([]events.Event, error) {
			close(held) // A's lock is held until this transaction ends
			<-hold
			return nil, nil
		}, nil)
		done <- err
	}()
	<-held
	// The deadline only turns a hang into a failure; nothing here measures time.
	bctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, _, errB := s.Append(bctx, sqlstore.TenantScope(b), []NewEntry{mkEntry("fast")}, nil, nil)
	close(hold)
	if errB != nil {
		t.Fatalf("B's append while A holds its lock: %v", errB)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// Every method but AppendGroup and AppendGroupTx works in exactly one tenant's scope (the reads
// also in platform scope, which reads the platform chain): the zero scope, a scope whose tenant is
// not an id and a platform scope naming a tenant are refused before any statement runs, and so is
// Append in platform scope and AppendGroup for the platform chain.
func TestStore_RefusesScopesOtherThanOneTenant(t *testing.T) {
	s := NewPostgresStore(openRuntime(t))
	ctx := context.Background()
	for _, sc := range []sqlstore.Scope{sqlstore.PlatformScope(), {}, {Tenant: "not-an-id"},
		{Tenant: tenancy.NewTenantID().String(), Platform: true}} {
		_, _, errAppend := s.Append(ctx, sc, []NewEntry{mkEntry("x")}, nil, nil)
		if !errors.Is(errAppend, errScope) {
			t.Errorf("Append in scope %+v: err = %v, want errScope", sc, errAppend)
		}
		if sc.Platform && sc.Tenant == "" {
			continue // the platform chain's reads (TestPlatformChain_*)
		}
		_, errGet := s.Get(ctx, sc, uuid.Must(uuid.NewV7()).String())
		_, errQuery := s.Query(ctx, sc, Filter{Limit: 1})
		_, _, errSeqRange := s.SeqRange(ctx, sc, time.Time{}, time.Time{})
		_, errRange := s.Range(ctx, sc, 0, 1, 1)
		for name, err := range map[string]error{"Get": errGet, "Query": errQuery, "SeqRange": errSeqRange, "Range": errRange} {
			if !errors.Is(err, errScope) {
				t.Errorf("%s in scope %+v: err = %v, want errScope", name, sc, err)
			}
		}
	}
	if _, err := s.AppendGroup(ctx, []GroupItem{{Entry: mkEntry("x")}}, nil); !errors.Is(err, errScope) {
		t.Errorf("AppendGroup for the platform chain: err = %v, want errScope", err)
	}
}
