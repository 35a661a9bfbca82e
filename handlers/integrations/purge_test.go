package integrations

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"spine/shared/contracts"
	"spine/shared/ids"
	"spine/shared/retention"
	"spine/shared/retention/retentiontest"
	"spine/shared/sqlstore"
)

// purgeEnv is the harness with the purge sweep registered under a test-unique name (the ledger on
// the stack's Azurite is shared) on engines over the real ledger, whose clock runs ahead of the
// service's by a settable offset.
type purgeEnv struct {
	*harness
	ledger *retention.Ledger
	name   string
	mu     sync.Mutex
	ahead  time.Duration
}

func newPurgeEnv(t *testing.T) *purgeEnv {
	return &purgeEnv{harness: newHarness(t), ledger: retentiontest.Ledger(t), name: "IntegrationPurgeT" + strings.ReplaceAll(ids.New()[:13], "-", "")}
}

func (e *purgeEnv) now() time.Time           { e.mu.Lock(); defer e.mu.Unlock(); return time.Now().Add(e.ahead) }
func (e *purgeEnv) setAhead(d time.Duration) { e.mu.Lock(); e.ahead = d; e.mu.Unlock() }

// run is one run of the sweep on a fresh engine (batches of 1); fault, when set, is the
// crash-injection hook.
func (e *purgeEnv) run(fault func(string)) retention.Run {
	e.t.Helper()
	eng, err := retention.New(retention.Config{Ledger: e.ledger, Now: e.now, Fault: fault})
	if err != nil {
		e.t.Fatal(err)
	}
	s := e.svc.PurgeSweepOf(e.name)
	s.BatchSize = 1
	if err := eng.Register(s); err != nil {
		e.t.Fatal(err)
	}
	r, err := eng.Run(context.Background(), e.name)
	if err != nil {
		e.t.Fatalf("%s: %v", r, err)
	}
	return r
}

// rows counts f's connection rows, soft-deleted ones included.
func (e *purgeEnv) rows(f tenantFixture) int {
	e.t.Helper()
	n := 0
	if err := e.rt.InReadTx(context.Background(), sqlstore.TenantScope(f.id), func(tx *sqlstore.Tx) error {
		return tx.QueryRowContext(context.Background(), `SELECT count(*) FROM connections WHERE tenant_id = $1`, f.id.String()).Scan(&n)
	}); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// checkEvidence checks one evidence row and one RetentionApplied event (its id) per range of f,
// and that the rows count purged.
func (e *purgeEnv) checkEvidence(f tenantFixture, purged int) {
	e.t.Helper()
	all, err := e.ledger.Evidence(context.Background(), f.id.String(), time.Time{}, time.Time{}, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	total := 0
	var evIDs, eventIDs []string
	for _, ev := range all {
		if ev.Sweep == e.name {
			total += ev.Affected
			evIDs = append(evIDs, ev.ID)
		}
	}
	for _, ev := range e.outbox(f.id) {
		if ev.Type == contracts.RetentionApplied {
			eventIDs = append(eventIDs, ev.ID)
		}
	}
	slices.Sort(evIDs)
	slices.Sort(eventIDs)
	if total != purged || len(evIDs) != purged || !slices.Equal(evIDs, eventIDs) {
		e.t.Errorf("evidence counts %d rows in %v, events %v: want %d, one event per range", total, evIDs, eventIDs, purged)
	}
}

// seed creates three connections of a new tenant and deletes two through the API.
func (e *purgeEnv) seed() tenantFixture {
	e.t.Helper()
	f := e.tenant()
	for i := range 3 {
		c := e.create(f, bearerBody("c", "https://api.example.com", "tok"))
		if i < 2 {
			e.must(http.StatusNoContent, "DELETE", "/api/integrations/"+c.ID, f.admin, nil)
		}
	}
	return f
}

// A soft-deleted connection's row is deleted 30 days after its deletion, not before; a live
// connection stays; the ledger's evidence counts the rows, one event per range.
func TestPurge_SoftDeletedRowsDeleted30DaysLater_LiveKept(t *testing.T) {
	e := newPurgeEnv(t)
	f := e.seed()
	e.setAhead(PurgeAfter - time.Hour)
	e.run(nil)
	if n := e.rows(f); n != 3 {
		t.Fatalf("%d rows before the 30 days, want 3", n)
	}
	e.setAhead(PurgeAfter + time.Hour)
	e.run(nil)
	if n := e.rows(f); n != 1 {
		t.Fatalf("%d rows after the 30 days, want the live one", n)
	}
	if b := e.must(http.StatusOK, "GET", "/api/integrations", f.reader, nil).Body; strings.Count(string(b), `"id"`) != 1 {
		t.Errorf("list %s", b)
	}
	e.checkEvidence(f, 2)
}

// A crash at each step of a batch is finished by the next run: every due row deleted once, the
// evidence counting them, one event per range.
func TestPurge_CrashAtEachFaultPoint_RerunDeletesEachRangeOnce(t *testing.T) {
	for _, point := range []string{retention.FaultAfterIntent, retention.FaultAfterExport, retention.FaultAfterApply, retention.FaultAfterEvidence} {
		t.Run(point, func(t *testing.T) {
			e := newPurgeEnv(t)
			f := e.seed()
			e.setAhead(PurgeAfter + time.Hour)
			crashed := false
			func() {
				defer func() { crashed = recover() != nil }()
				e.run(func(at string) {
					if at == point {
						panic("crash at " + at)
					}
				})
			}()
			if !crashed {
				t.Fatalf("the run did not reach %s", point)
			}
			if r := e.run(nil); r.Resumed != 1 {
				t.Errorf("rerun %s: want the crashed range resumed", r)
			}
			if n := e.rows(f); n != 1 {
				t.Errorf("%d rows, want the live one", n)
			}
			e.checkEvidence(f, 2)
		})
	}
}

// A legal hold of scope integrations keeps a tenant's deleted connections; removed, the next run
// purges them.
func TestPurge_LegalHold_SkipsTheTenantUntilRemoved(t *testing.T) {
	e := newPurgeEnv(t)
	held, other := e.seed(), e.seed()
	hold := retention.Hold{ID: ids.New(), TenantID: held.id.String(), Scope: PurgeScope, Reason: "litigation", CreatedBy: "test",
		CreatedAt: time.Now()}
	if err := e.ledger.PutHold(context.Background(), hold); err != nil {
		t.Fatal(err)
	}
	e.setAhead(PurgeAfter + time.Hour)
	if r := e.run(nil); r.HeldUnits < 1 {
		t.Errorf("run %s: want the held tenant counted", r)
	}
	if e.rows(held) != 3 || e.rows(other) != 1 {
		t.Fatalf("held %d rows (want 3), other %d (want 1)", e.rows(held), e.rows(other))
	}
	if _, err := e.ledger.DeleteHold(context.Background(), hold.ID); err != nil {
		t.Fatal(err)
	}
	e.run(nil)
	if n := e.rows(held); n != 1 {
		t.Fatalf("held tenant after the hold: %d rows, want 1", n)
	}
	e.checkEvidence(held, 2)
}
