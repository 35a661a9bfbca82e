package retention

import (
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/google/uuid"

	"spine/shared/contracts"
	"spine/shared/events"
	"spine/shared/outbox"
	"spine/shared/sqlstore"
	"spine/shared/testenv"
	"spine/shared/testenv/tsqlcheck"
)

var recordsDB *testenv.Database

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, "tenants", &recordsDB)) }

// TestRecordSweeps_DeleteOldIdempotencyRecordsAndInboxIds_WithOneEventPerBatch runs the platform
// records sweeps over a real database as the runtime role: only rows older than the retention
// go, each batch's RetentionApplied is in the service's outbox, and the evidence counts them.
func TestRecordSweeps_DeleteOldIdempotencyRecordsAndInboxIds_WithOneEventPerBatch(t *testing.T) {
	ctx := context.Background()
	owner := recordsDB.OpenOwner(t, sqlstore.PoolConfig{})
	runtime := recordsDB.OpenRuntime(t, sqlstore.PoolConfig{})
	c := newClock()
	c.Set(time.Now().UTC().Truncate(time.Microsecond))
	old, fresh := c.Now().Add(-30*24*time.Hour), c.Now().Add(-time.Hour)
	tenant := uuid.NewString()
	for i := range 12 {
		at := old.Add(time.Duration(i) * time.Minute)
		if i >= 9 {
			at = fresh
		}
		if _, err := owner.ExecContext(ctx, `INSERT INTO idempotency_keys (caller, key, request_hash, status_code, response_body, created_at)
			VALUES ($1, $2, '\x00', 201, '\x00', $3)`, "caller", uuid.NewString(), at); err != nil {
			t.Fatal(err)
		}
		if err := owner.InTx(ctx, sqlstore.PlatformScope(), func(tx *sqlstore.Tx) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO inbox (tenant_id, consumer, event_id, event_type, received_at)
				VALUES ($1, 'test', $2, 'TenantRegistered', $3)`, tenant, uuid.NewString(), at)
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	l := testLedger(t)
	e := newEngine(t, l, c, Config{})
	unit := "tenants-" + uuid.NewString()[:8] // a unit of this test alone in the shared ledger
	var names []string
	for _, s := range RecordSweeps(map[string]*sqlstore.DB{unit: runtime}) {
		s.Name += "T" + uuid.NewString()[:8]
		s.BatchSize = 4
		names = append(names, s.Name)
		if err := e.Register(s); err != nil {
			t.Fatal(err)
		}
		run, err := e.Run(ctx, s.Name)
		if err != nil {
			t.Fatal(err)
		}
		if run.Affected != 9 || run.Batches != 3 {
			t.Errorf("%s: %+v; want the 9 old rows in 3 batches of ≤ 4", s.Name, run)
		}
	}
	var idem, inbox int
	_ = owner.QueryRowContext(ctx, `SELECT count(*) FROM idempotency_keys WHERE caller = 'caller'`).Scan(&idem)
	_ = owner.InReadTx(ctx, sqlstore.PlatformScope(), func(tx *sqlstore.Tx) error {
		return tx.QueryRowContext(ctx, `SELECT count(*) FROM inbox WHERE tenant_id = $1`, tenant).Scan(&inbox)
	})
	if idem != 3 || inbox != 3 {
		t.Fatalf("left %d idempotency records and %d inbox ids; want the 3 fresh of each", idem, inbox)
	}
	var raws []string
	if err := owner.InReadTx(ctx, sqlstore.PlatformScope(), func(tx *sqlstore.Tx) (err error) {
		raws, err = testenv.QueryStrings(ctx, tx, `SELECT envelope::text FROM outbox WHERE tenant_id = $1 ORDER BY seq`, outbox.PlatformTenant)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var evs []events.Event
	for _, raw := range raws {
		var ev events.Event
		if err := json.Unmarshal([]byte(raw), &ev); err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
	}
	n := 0
	for _, ev := range evs {
		if ev.Type == contracts.RetentionApplied && ev.Subject == unit && ev.Source == "/services/"+unit {
			n++
		}
	}
	if n != 6 {
		t.Errorf("%d RetentionApplied events, want one per batch (6)", n)
	}
	for _, name := range names {
		if aff, rows := evidenceTotal(t, l, "", name); rows != 3 || aff != 9 {
			t.Errorf("%s evidence: %d rows in %d entries, want 9 in 3", name, aff, rows)
		}
	}
}

func TestRecordSweeps_SQLServerStatements(t *testing.T) {
	for table, set := range recordsQueries {
		q := set[sqlstore.SQLServer]
		tsqlcheck.CheckStatement(t.Errorf, table+".next", q.next)
		tsqlcheck.CheckStatement(t.Errorf, table+".delete", q.delete)
		tsqlcheck.PostgresPlaceholders(t.Errorf, table+".next", set[sqlstore.Postgres].next)
		tsqlcheck.PostgresPlaceholders(t.Errorf, table+".delete", set[sqlstore.Postgres].delete)
	}
}
