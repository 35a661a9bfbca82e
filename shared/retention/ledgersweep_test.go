package retention

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestLedgerRetention_CrashAfterDeletes_RerunDeletesNoMoreThanTheRange_EvidenceCountsEveryRow stops
// the ledger's own sweep after its first batch's deletes (before the evidence): the rerun finishes
// that range without deleting the next batch's rows under its name, and the evidence of the two
// runs counts every old row deleted, once.
func TestLedgerRetention_CrashAfterDeletes_RerunDeletesNoMoreThanTheRange_EvidenceCountsEveryRow(t *testing.T) {
	ctx := context.Background()
	l, c := testLedger(t), newClock()
	sweep := sweepName(t)
	old := c.Now().Add(-400 * 24 * time.Hour)
	for i := range 7 {
		if err := l.PutRun(ctx, Run{RunID: fmt.Sprint(i), Sweep: sweep, StartedAt: old.Add(time.Duration(i) * time.Second), Status: StatusCompleted}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.PutRun(ctx, Run{RunID: "recent", Sweep: sweep, StartedAt: c.Now().Add(-time.Hour), Status: StatusCompleted}); err != nil {
		t.Fatal(err)
	}
	sw := LedgerSweep(l)
	sw.BatchSize = 3
	crashed := newEngine(t, l, c, Config{Fault: func(p string) {
		if p == FaultAfterApply {
			panic(crash{p})
		}
	}})
	if err := crashed.Register(sw); err != nil {
		t.Fatal(err)
	}
	func() {
		defer func() { _ = recover() }()
		_, _ = crashed.Run(ctx, LedgerRetention)
	}()
	w, err := l.Watermark(ctx, LedgerRetention, TableRuns)
	if err != nil || w.Pending == nil {
		t.Fatalf("watermark after the crash: %+v, %v; want the intent", w, err)
	}
	crashRun := w.Pending.RunID
	e := newEngine(t, l, c, Config{})
	if err := e.Register(sw); err != nil {
		t.Fatal(err)
	}
	run, err := e.Run(ctx, LedgerRetention)
	if err != nil {
		t.Fatal(err)
	}
	if runs, _ := l.Runs(ctx, sweep, 0); len(runs) != 1 {
		t.Fatalf("%d runs left, want the recent one", len(runs))
	}
	evs, err := l.Evidence(ctx, PlatformPartition, time.Time{}, time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	total, first := 0, -1
	for _, ev := range evs {
		if ev.Sweep == LedgerRetention && ev.Unit == TableRuns && (ev.RunID == crashRun || ev.RunID == run.RunID) {
			total += ev.Affected
			if ev.RunID == crashRun {
				first = ev.Affected
			}
		}
	}
	if total != 7 || first != 3 {
		t.Errorf("evidence counts %d deleted runs (the crashed range %d); want 7 (3)", total, first)
	}
}
