package retention

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"spine/shared/entitlements"
	"spine/shared/tenancy"
)

// The engine's tests run against Azurite's Table service (the stack's connection string) with an
// in-memory target: rows per unit, create-only "blobs", an outbox of events. Every test uses its
// own sweep name and random units, so tests sharing the stack's ledger never meet.

func testLedger(t *testing.T) *Ledger {
	t.Helper()
	cs := os.Getenv("SPINE_STORAGE_CONNECTION_STRING")
	if cs == "" {
		t.Fatal("SPINE_STORAGE_CONNECTION_STRING is not set: run `scripts/stack.sh up --name test` and source .stack/test/env (make test does)")
	}
	l, err := OpenLedger(cs, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := l.EnsureTables(context.Background()); err != nil {
		t.Fatal(err)
	}
	return l
}

func sweepName(t *testing.T) string {
	return "Test" + strconv.FormatInt(time.Now().UnixNano(), 36) + fmt.Sprint(len(t.Name()))
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time         { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration)    { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }
func newClock() *clock                  { return &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }
func (c *clock) Set(t time.Time)        { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func (c *clock) Since(t time.Time) bool { return c.Now().After(t) }

type row struct {
	seq int
	at  time.Time
}

// memTarget keeps rows per unit in seq order; Export writes a create-only blob named by the range
// (its bytes: the rows' seqs), Apply deletes the range and appends one event when it deleted any.
type memTarget struct {
	mu      sync.Mutex
	rows    map[string][]row
	blobs   map[string][]byte
	puts    map[string]int // create-only attempts that wrote, by name
	events  []Evidence
	export  bool
	deleted map[string]int
}

func newMem(export bool) *memTarget {
	return &memTarget{rows: map[string][]row{}, blobs: map[string][]byte{}, puts: map[string]int{}, export: export, deleted: map[string]int{}}
}

func (m *memTarget) add(unit string, n int, at time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	last := 0
	if rs := m.rows[unit]; len(rs) > 0 {
		last = rs[len(rs)-1].seq
	}
	for i := 1; i <= n; i++ {
		m.rows[unit] = append(m.rows[unit], row{seq: last + i, at: at})
	}
}

func (m *memTarget) count(unit string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.rows[unit])
}

func (m *memTarget) units(context.Context, time.Time) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for u, rs := range m.rows {
		if len(rs) > 0 {
			out = append(out, u)
		}
	}
	slices.Sort(out)
	return out, nil
}

func (m *memTarget) Next(_ context.Context, unit, after string, cutoff time.Time, limit int) (Range, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var sel []row
	for _, r := range m.rows[unit] {
		if r.at.Before(cutoff) && len(sel) < limit {
			sel = append(sel, r)
		}
	}
	if len(sel) == 0 {
		return Range{}, false, nil
	}
	f, l := sel[0], sel[len(sel)-1]
	return Range{From: strconv.Itoa(f.seq), To: strconv.Itoa(l.seq), Count: len(sel), FirstAt: f.at, LastAt: l.at,
		Label: fmt.Sprintf("%d-%d", f.seq, l.seq)}, true, nil
}

func (m *memTarget) inRange(unit string, r Range) []row {
	from, _ := strconv.Atoi(r.From)
	to, _ := strconv.Atoi(r.To)
	var out []row
	for _, x := range m.rows[unit] {
		if x.seq >= from && x.seq <= to {
			out = append(out, x)
		}
	}
	return out
}

func (m *memTarget) Export(_ context.Context, unit string, r Range, _ Evidence) (*Artifact, error) {
	if !m.export {
		return nil, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var b []byte
	for _, x := range m.inRange(unit, r) {
		b = strconv.AppendInt(b, int64(x.seq), 10)
		b = append(b, '\n')
	}
	sum := sha256.Sum256(b)
	name := unit + "/" + r.Label
	if old, ok := m.blobs[name]; ok {
		if sha256.Sum256(old) != sum {
			return nil, ErrArtifactMismatch
		}
	} else {
		m.blobs[name] = b
		m.puts[name]++
	}
	return &Artifact{Container: "mem", Name: name, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(b))}, nil
}

func (m *memTarget) Apply(_ context.Context, unit string, r Range, ev Evidence) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	gone := m.inRange(unit, r)
	if len(gone) == 0 {
		return 0, nil
	}
	from, _ := strconv.Atoi(r.From)
	to, _ := strconv.Atoi(r.To)
	m.rows[unit] = slices.DeleteFunc(m.rows[unit], func(x row) bool { return x.seq >= from && x.seq <= to })
	m.deleted[unit] += len(gone)
	m.events = append(m.events, ev)
	return len(gone), nil
}

func newEngine(t *testing.T, l *Ledger, c *clock, cfg Config) *Engine {
	t.Helper()
	cfg.Ledger, cfg.Now = l, c.Now
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func tenantUnits(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = uuid.NewString()
	}
	return out
}

func evidenceTotal(t *testing.T, l *Ledger, tenant, sweep string) (affected, n int) {
	t.Helper()
	evs, err := l.Evidence(context.Background(), tenant, time.Time{}, time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		if ev.Sweep == sweep {
			affected += ev.Affected
			n++
		}
	}
	return affected, n
}

func TestRun_ArchivesDueRowsInBoundedBatches_EvidenceMatchesRowsGone(t *testing.T) {
	ctx := context.Background()
	l, c, m := testLedger(t), newClock(), newMem(true)
	units := tenantUnits(3)
	old, fresh := c.Now().Add(-100*24*time.Hour), c.Now().Add(-time.Hour)
	for _, u := range units {
		m.add(u, 25, old)
		m.add(u, 5, fresh)
	}
	e := newEngine(t, l, c, Config{})
	name := sweepName(t)
	if err := e.Register(Sweep{Name: name, Service: "test", Schedule: "0 0 2 * * *", Action: ActionArchive, DataScope: "notifications",
		Retention: 90 * 24 * time.Hour, Units: m.units, Target: m, BatchSize: 10}); err != nil {
		t.Fatal(err)
	}
	run, err := e.Run(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if run.Status != StatusCompleted || run.Affected != 75 || run.Exported != 75 || run.Batches != 9 {
		t.Fatalf("run = %+v; want completed, 75 archived in 9 batches of ≤10", run)
	}
	for _, u := range units {
		if got := m.count(u); got != 5 {
			t.Errorf("unit %s keeps %d rows, want the 5 fresh ones", u, got)
		}
		if aff, n := evidenceTotal(t, l, u, name); aff != 25 || n != 3 {
			t.Errorf("unit %s evidence: %d rows in %d entries, want 25 in 3", u, aff, n)
		}
	}
	if len(m.blobs) != 9 || len(m.events) != 9 {
		t.Errorf("%d blobs and %d events, want one of each per batch (9)", len(m.blobs), len(m.events))
	}
	runs, err := l.Runs(ctx, name, 10)
	if err != nil || len(runs) != 1 || runs[0].RunID != run.RunID {
		t.Fatalf("ledger runs = %+v, %v; want the one run", runs, err)
	}
	// A second run finds nothing due.
	again, err := e.Run(ctx, name)
	if err != nil || again.Batches != 0 || again.Status != StatusCompleted {
		t.Fatalf("second run = %+v, %v; want nothing to do", again, err)
	}
}

type crash struct{ point string }

// TestRun_CrashAtEveryPoint_RerunFinishesTheRangeExactlyOnce stops a run at each step of a batch
// (the fault hook panics, as a killed process would stop) and reruns with a fresh engine: one blob
// per range, exactly the exported rows gone, one event per range, evidence == rows gone.
func TestRun_CrashAtEveryPoint_RerunFinishesTheRangeExactlyOnce(t *testing.T) {
	for _, point := range []string{FaultAfterIntent, FaultAfterExport, FaultAfterApply, FaultAfterEvidence} {
		t.Run(point, func(t *testing.T) {
			ctx := context.Background()
			l, c, m := testLedger(t), newClock(), newMem(true)
			unit := uuid.NewString()
			m.add(unit, 30, c.Now().Add(-200*24*time.Hour))
			name := sweepName(t)
			sw := Sweep{Name: name, Service: "test", Schedule: "0 0 2 * * *", Action: ActionArchive, DataScope: "notifications",
				Retention: 90 * 24 * time.Hour, Units: m.units, Target: m, BatchSize: 10}
			crashed := newEngine(t, l, c, Config{Fault: func(p string) {
				if p == point {
					panic(crash{p})
				}
			}})
			if err := crashed.Register(sw); err != nil {
				t.Fatal(err)
			}
			func() {
				defer func() {
					if r := recover(); r == nil {
						t.Fatal("the fault hook never fired")
					}
				}()
				_, _ = crashed.Run(ctx, name)
			}()
			// The crashed run is in the ledger, still "running" (its process died).
			if runs, err := l.Runs(ctx, name, 10); err != nil || len(runs) != 1 || runs[0].Status != StatusRunning {
				t.Fatalf("runs after the crash = %+v, %v; want the one run, running", runs, err)
			}
			// New rows arrive meanwhile: the resumed range must not grow to take them.
			m.add(unit, 3, c.Now().Add(-150*24*time.Hour))
			fresh := newEngine(t, l, c, Config{})
			if err := fresh.Register(sw); err != nil {
				t.Fatal(err)
			}
			run, err := fresh.Run(ctx, name)
			if err != nil {
				t.Fatal(err)
			}
			if run.Resumed != 1 {
				t.Errorf("resumed = %d, want the crashed batch finished first", run.Resumed)
			}
			if got := m.count(unit); got != 0 {
				t.Errorf("%d rows left, want 0", got)
			}
			for name, n := range m.puts {
				if n != 1 {
					t.Errorf("blob %s written %d times", name, n)
				}
			}
			if len(m.blobs) != 4 || len(m.events) != 4 {
				t.Errorf("%d blobs, %d events; want 4 ranges (10+10+10+3), each once", len(m.blobs), len(m.events))
			}
			if aff, n := evidenceTotal(t, l, unit, name); aff != 33 || n != 4 || m.deleted[unit] != 33 {
				t.Errorf("evidence %d rows in %d entries, deleted %d; want 33 in 4 and 33", aff, n, m.deleted[unit])
			}
			w, err := l.Watermark(ctx, name, unit)
			if err != nil || w.Pending != nil || w.Affected != 33 {
				t.Errorf("watermark = %+v, %v; want no intent and 33 affected", w, err)
			}
		})
	}
}

func TestRun_LegalHoldSkipsTheTenant_ReleaseLetsTheNextRunProceed(t *testing.T) {
	ctx := context.Background()
	l, c, m := testLedger(t), newClock(), newMem(false)
	held, other := uuid.NewString(), uuid.NewString()
	for _, u := range []string{held, other} {
		m.add(u, 12, c.Now().Add(-100*24*time.Hour))
	}
	e := newEngine(t, l, c, Config{})
	name := sweepName(t)
	if err := e.Register(Sweep{Name: name, Service: "test", Schedule: "0 0 2 * * *", Action: ActionDelete, DataScope: "notifications",
		Retention: 90 * 24 * time.Hour, Units: m.units, Target: m}); err != nil {
		t.Fatal(err)
	}
	hold := Hold{ID: uuid.NewString(), TenantID: held, Scope: "notifications", Reason: "litigation", CreatedBy: "test", CreatedAt: c.Now()}
	if err := l.PutHold(ctx, hold); err != nil {
		t.Fatal(err)
	}
	run, err := e.Run(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if run.HeldUnits != 1 || m.count(held) != 12 || m.count(other) != 0 {
		t.Fatalf("run %+v: held keeps %d (want 12), other keeps %d (want 0)", run, m.count(held), m.count(other))
	}
	w, _ := l.Watermark(ctx, name, held)
	if w.HeldSkips != 1 {
		t.Errorf("held skips counted %d, want 1", w.HeldSkips)
	}
	// A hold of another scope does not hold this sweep's data; "all" does.
	if _, err := l.DeleteHold(ctx, hold.ID); err != nil {
		t.Fatal(err)
	}
	all := Hold{ID: uuid.NewString(), TenantID: held, Scope: ScopeAll, Reason: "audit", CreatedBy: "test", CreatedAt: c.Now()}
	if err := l.PutHold(ctx, all); err != nil {
		t.Fatal(err)
	}
	if run, _ := e.Run(ctx, name); run.HeldUnits != 1 || m.count(held) != 12 {
		t.Fatalf("scope all did not hold: %+v, %d rows", run, m.count(held))
	}
	if _, err := l.DeleteHold(ctx, all.ID); err != nil {
		t.Fatal(err)
	}
	if run, err := e.Run(ctx, name); err != nil || run.HeldUnits != 0 || m.count(held) != 0 {
		t.Fatalf("after release: %+v, %v, %d rows left", run, err, m.count(held))
	}
}

// TestRun_OneTenantsBacklogDoesNotStarveOthers bounds a run to fewer rows than the big tenant has:
// every small tenant is still served in the same run, and the next run serves the rest.
func TestRun_OneTenantsBacklogDoesNotStarveOthers(t *testing.T) {
	ctx := context.Background()
	l, c, m := testLedger(t), newClock(), newMem(false)
	big := uuid.NewString()
	m.add(big, 500, c.Now().Add(-100*24*time.Hour))
	small := tenantUnits(20)
	for _, u := range small {
		m.add(u, 5, c.Now().Add(-100*24*time.Hour))
	}
	e := newEngine(t, l, c, Config{MaxRows: 200})
	name := sweepName(t)
	if err := e.Register(Sweep{Name: name, Service: "test", Schedule: "0 0 2 * * *", Action: ActionDelete, DataScope: "notifications",
		Retention: 90 * 24 * time.Hour, Units: m.units, Target: m, BatchSize: 50}); err != nil {
		t.Fatal(err)
	}
	run, err := e.Run(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if run.Status != StatusPartial {
		t.Errorf("status %s, want partial (bounded at 200 rows)", run.Status)
	}
	for _, u := range small {
		if m.count(u) != 0 {
			t.Errorf("small tenant %s kept %d rows: starved by the big one", u, m.count(u))
		}
	}
	if m.count(big) == 0 || m.count(big) == 500 {
		t.Errorf("big tenant keeps %d; want some served, some left", m.count(big))
	}
	for i := 0; i < 10 && m.count(big) > 0; i++ {
		if _, err := e.Run(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	if m.count(big) != 0 {
		t.Errorf("big tenant keeps %d after ten runs", m.count(big))
	}
}

type fixedEnts map[string]map[string]time.Duration

func (f fixedEnts) Of(_ context.Context, id tenancy.TenantID) (entitlements.Entitlements, error) {
	r, ok := f[id.String()]
	if !ok {
		return entitlements.Entitlements{}, entitlements.ErrUnknownTenant
	}
	return entitlements.Entitlements{Retention: r}, nil
}

func (f fixedEnts) Edition(context.Context, string) (entitlements.Entitlements, error) {
	return entitlements.Entitlements{}, entitlements.ErrUnknownEdition
}

// TestRun_EditionRetentionAndTenantOverride: an edition may shorten or lengthen the default; a
// tenant override counts only upward; a year of retention runs on the injected clock.
func TestRun_EditionRetentionAndTenantOverride(t *testing.T) {
	ctx := context.Background()
	l, c, m := testLedger(t), newClock(), newMem(false)
	std, long, over := uuid.NewString(), uuid.NewString(), uuid.NewString()
	day := 24 * time.Hour
	for _, u := range []string{std, long, over} {
		m.add(u, 1, c.Now().Add(-10*day))
	}
	ents := fixedEnts{long: {"notifications": 365 * day}, over: {"notifications": 5 * day}}
	e := newEngine(t, l, c, Config{Entitlements: ents})
	name := sweepName(t)
	sw := Sweep{Name: name, Service: "test", Schedule: "0 0 2 * * *", Action: ActionDelete, DataScope: "notifications",
		RetentionKind: "notifications", Retention: 90 * day, Units: m.units, Target: m}
	if err := e.Register(sw); err != nil {
		t.Fatal(err)
	}
	if err := l.PutOverride(ctx, Override{TenantID: over, Kind: "notifications", Days: 30}); err != nil {
		t.Fatal(err)
	}
	if eff, ed, ov, err := e.Retention(ctx, sw, over); err != nil || eff != 30*day || ed != 5*day || ov != 30*day {
		t.Fatalf("over's retention = %v (edition %v, override %v), %v; want 30 days", eff, ed, ov, err)
	}
	if _, err := e.Run(ctx, name); err != nil {
		t.Fatal(err)
	}
	if m.count(std)+m.count(long)+m.count(over) != 3 {
		t.Fatal("a 10-day-old row went before any retention")
	}
	c.Add(25 * day) // 35 days old: over (30) goes
	_, _ = e.Run(ctx, name)
	if m.count(over) != 0 || m.count(std) != 1 {
		t.Fatalf("after 35 days: over %d std %d; want 0 and 1", m.count(over), m.count(std))
	}
	c.Add(60 * day) // 95 days: std (90) goes
	_, _ = e.Run(ctx, name)
	if m.count(std) != 0 || m.count(long) != 1 {
		t.Fatalf("after 95 days: std %d long %d; want 0 and 1", m.count(std), m.count(long))
	}
	c.Add(300 * day) // 395 days: long (365) goes
	_, _ = e.Run(ctx, name)
	if m.count(long) != 0 {
		t.Fatal("after 395 days the enterprise row is still there")
	}
}

func TestLedgerRetention_RemovesRunsAndEvidenceOlderThanAYear(t *testing.T) {
	ctx := context.Background()
	l, c := testLedger(t), newClock()
	tenant := uuid.NewString()
	sweep := sweepName(t)
	old, recent := c.Now().Add(-400*24*time.Hour), c.Now().Add(-10*24*time.Hour)
	for i, at := range []time.Time{old, old.Add(time.Second), recent} {
		if err := l.PutRun(ctx, Run{RunID: fmt.Sprint(i), Sweep: sweep, StartedAt: at, Status: StatusCompleted}); err != nil {
			t.Fatal(err)
		}
		if err := l.PutEvidence(ctx, Evidence{ID: uuid.NewString(), Sweep: sweep, Tenant: tenant, At: at}); err != nil {
			t.Fatal(err)
		}
	}
	e := newEngine(t, l, c, Config{})
	if err := e.Register(LedgerSweep(l)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Run(ctx, LedgerRetention); err != nil {
		t.Fatal(err)
	}
	runs, _ := l.Runs(ctx, sweep, 0)
	evs, _ := l.Evidence(ctx, tenant, time.Time{}, time.Time{}, 0)
	if len(runs) != 1 || len(evs) != 1 {
		t.Fatalf("%d runs and %d evidence rows left, want the recent one of each", len(runs), len(evs))
	}
}

func TestRegister_RefusesBadSweeps(t *testing.T) {
	e := newEngine(t, testLedger(t), newClock(), Config{})
	m := newMem(false)
	good := Sweep{Name: "GoodSweep", Service: "test", Action: ActionDelete, DataScope: "x", Units: m.units, Target: m}
	for name, s := range map[string]Sweep{
		"lowercase name": func() Sweep { s := good; s.Name = "bad"; return s }(),
		"no scope":       func() Sweep { s := good; s.DataScope = ""; return s }(),
		"no target":      func() Sweep { s := good; s.Target = nil; return s }(),
		"huge batch":     func() Sweep { s := good; s.BatchSize = 50_000; return s }(),
	} {
		if err := e.Register(s); err == nil {
			t.Errorf("%s: registered", name)
		}
	}
	if err := e.Register(good); err != nil {
		t.Fatal(err)
	}
	if err := e.Register(good); err == nil {
		t.Error("registered twice")
	}
}

// failingApply fails Apply while fail is set.
type failingApply struct {
	*memTarget
	fail bool
}

func (f *failingApply) Apply(ctx context.Context, unit string, r Range, ev Evidence) (int, error) {
	if f.fail {
		return 0, fmt.Errorf("store down")
	}
	return f.memTarget.Apply(ctx, unit, r, ev)
}

// TestRun_AUnitFailingEveryRun_IsCountedOnItsWatermark_ThenCleared: an intent that fails run
// after run shows its consecutive failures (the ops units view); the batch that completes clears them.
func TestRun_AUnitFailingEveryRun_IsCountedOnItsWatermark_ThenCleared(t *testing.T) {
	ctx := context.Background()
	l, c, m := testLedger(t), newClock(), newMem(false)
	unit := uuid.NewString()
	m.add(unit, 3, c.Now().Add(-100*24*time.Hour))
	f := &failingApply{memTarget: m, fail: true}
	e := newEngine(t, l, c, Config{})
	name := sweepName(t)
	if err := e.Register(Sweep{Name: name, Service: "test", Schedule: "0 0 2 * * *", Action: ActionDelete, DataScope: "notifications",
		Retention: 90 * 24 * time.Hour, Units: m.units, Target: f}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if run, err := e.Run(ctx, name); err == nil || run.Status != StatusFailed || run.ErrorClass != "target" {
			t.Fatalf("run = %+v, %v; want failed (target)", run, err)
		}
	}
	w, err := l.Watermark(ctx, name, unit)
	if err != nil || w.Failures != 2 || w.LastErrorClass != "target" || w.Pending == nil {
		t.Fatalf("watermark = %+v, %v; want 2 failures with the intent kept", w, err)
	}
	f.fail = false
	if run, err := e.Run(ctx, name); err != nil || run.Affected != 3 {
		t.Fatalf("run = %+v, %v", run, err)
	}
	if w, _ := l.Watermark(ctx, name, unit); w.Failures != 0 || w.LastErrorClass != "" || w.Pending != nil {
		t.Fatalf("watermark after success = %+v", w)
	}
}

// An export removes nothing: a legal hold does not stop it (the archive preserves).
func TestRun_ExportSweep_IsNotStoppedByALegalHold(t *testing.T) {
	ctx := context.Background()
	l, c, m := testLedger(t), newClock(), newMem(true)
	unit := uuid.NewString()
	m.add(unit, 4, c.Now().Add(-time.Hour))
	e := newEngine(t, l, c, Config{})
	name := sweepName(t)
	if err := e.Register(Sweep{Name: name, Service: "test", Schedule: "0 5 * * * *", Action: ActionExport, DataScope: "audit",
		Units: m.units, Target: m}); err != nil {
		t.Fatal(err)
	}
	if err := l.PutHold(ctx, Hold{ID: uuid.NewString(), TenantID: unit, Scope: ScopeAll, Reason: "x", CreatedBy: "test", CreatedAt: c.Now()}); err != nil {
		t.Fatal(err)
	}
	run, err := e.Run(ctx, name)
	if err != nil || run.HeldUnits != 0 || run.Exported != 4 {
		t.Fatalf("run = %+v, %v; want the 4 rows exported despite the hold", run, err)
	}
}

// shortRanges cuts every range at 3 rows (a boundary of its own, as a month is), saying More.
type shortRanges struct{ *memTarget }

func (s shortRanges) Next(ctx context.Context, unit, after string, cutoff time.Time, limit int) (Range, bool, error) {
	r, ok, err := s.memTarget.Next(ctx, unit, after, cutoff, min(limit, 3))
	if ok && r.Count == 3 && s.count(unit) > 3 {
		r.More = true
	}
	return r, ok, err
}

// A range cut short at the target's own boundary with More set keeps the unit in the run: a
// tenant's backlog of several months is archived by one run, not one month per run.
func TestRun_RangeCutShortWithMore_TheUnitGoesOnInTheSameRun(t *testing.T) {
	ctx := context.Background()
	l, c, m := testLedger(t), newClock(), newMem(false)
	unit := uuid.NewString()
	m.add(unit, 10, c.Now().Add(-100*24*time.Hour))
	e := newEngine(t, l, c, Config{})
	name := sweepName(t)
	if err := e.Register(Sweep{Name: name, Service: "test", Schedule: "0 0 2 * * *", Action: ActionDelete, DataScope: "notifications",
		Retention: 90 * 24 * time.Hour, Units: m.units, Target: shortRanges{m}, BatchSize: 50}); err != nil {
		t.Fatal(err)
	}
	run, err := e.Run(ctx, name)
	if err != nil || run.Batches != 4 || m.count(unit) != 0 {
		t.Fatalf("run = %+v, %v, %d left; want 4 batches (3+3+3+1) in one run", run, err, m.count(unit))
	}
}

// The ledger's own retention keeps a held tenant's evidence (what was done to its data) for as long
// as the hold: scope does not matter, the evidence is the litigation's.
func TestLedgerRetention_KeepsTheEvidenceOfAHeldTenant(t *testing.T) {
	ctx := context.Background()
	l, c := testLedger(t), newClock()
	held, free := uuid.NewString(), uuid.NewString()
	old := c.Now().Add(-400 * 24 * time.Hour)
	for _, tenant := range []string{held, free} {
		if err := l.PutEvidence(ctx, Evidence{ID: uuid.NewString(), Sweep: "X", Tenant: tenant, At: old}); err != nil {
			t.Fatal(err)
		}
	}
	hold := Hold{ID: uuid.NewString(), TenantID: held, Scope: "notifications", Reason: "x", CreatedBy: "test", CreatedAt: c.Now()}
	if err := l.PutHold(ctx, hold); err != nil {
		t.Fatal(err)
	}
	e := newEngine(t, l, c, Config{})
	sw := LedgerSweep(l)
	sw.Name += "T" + uuid.NewString()[:8]
	if err := e.Register(sw); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Run(ctx, sw.Name); err != nil {
		t.Fatal(err)
	}
	kept, _ := l.Evidence(ctx, held, time.Time{}, time.Time{}, 0)
	gone, _ := l.Evidence(ctx, free, time.Time{}, time.Time{}, 0)
	if len(kept) != 1 || len(gone) != 0 {
		t.Fatalf("held tenant keeps %d evidence rows (want 1), free tenant %d (want 0)", len(kept), len(gone))
	}
	if _, err := l.DeleteHold(ctx, hold.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Run(ctx, sw.Name); err != nil {
		t.Fatal(err)
	}
	if kept, _ := l.Evidence(ctx, held, time.Time{}, time.Time{}, 0); len(kept) != 0 {
		t.Fatalf("after the release the held tenant's old evidence stays (%d rows)", len(kept))
	}
}

// MaxRows bounds what a run selects: the last batch is cut to what is left of it.
func TestRun_MaxRowsBoundsTheRowsSelected(t *testing.T) {
	ctx := context.Background()
	l, c, m := testLedger(t), newClock(), newMem(false)
	unit := uuid.NewString()
	m.add(unit, 600, c.Now().Add(-100*24*time.Hour))
	e := newEngine(t, l, c, Config{MaxRows: 100})
	name := sweepName(t)
	if err := e.Register(Sweep{Name: name, Service: "test", Schedule: "0 0 2 * * *", Action: ActionDelete, DataScope: "notifications",
		Retention: 90 * 24 * time.Hour, Units: m.units, Target: m, BatchSize: 500}); err != nil {
		t.Fatal(err)
	}
	run, err := e.Run(ctx, name)
	if err != nil || run.Selected != 100 || run.Status != StatusPartial || m.count(unit) != 500 {
		t.Fatalf("run = %+v, %v, %d left; want 100 selected, partial", run, err, m.count(unit))
	}
}

// Evidence pages by its key: every row once, in order, and more says whether a page follows.
func TestLedger_EvidencePage_EveryRowOnce(t *testing.T) {
	ctx := context.Background()
	l, c := testLedger(t), newClock()
	tenant := uuid.NewString()
	for i := range 5 {
		if err := l.PutEvidence(ctx, Evidence{ID: uuid.NewString(), Sweep: "X", Tenant: tenant, At: c.Now().Add(time.Duration(i) * time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	after := ""
	for pages := 0; ; pages++ {
		evs, more, err := l.EvidencePage(ctx, tenant, time.Time{}, time.Time{}, after, 2)
		if err != nil || pages > 5 {
			t.Fatal(err, pages)
		}
		for _, ev := range evs {
			got = append(got, ev.ID)
		}
		if !more {
			break
		}
		after = EvidenceKey(evs[len(evs)-1])
	}
	all, _ := l.Evidence(ctx, tenant, time.Time{}, time.Time{}, 0)
	if len(got) != 5 || len(all) != 5 {
		t.Fatalf("paged %d rows, %d in all; want 5", len(got), len(all))
	}
	for i := range all {
		if all[i].ID != got[i] {
			t.Fatalf("row %d: paged %s, want %s", i, got[i], all[i].ID)
		}
	}
}
