package retention

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"spine/shared/entitlements"
	"spine/shared/tenancy"
)

// entsHook answers every tenant with no subscription, calling hook once at the first question
// (the engine asks after it read the watermarks, before any batch).
type entsHook struct {
	once sync.Once
	hook func()
}

func (h *entsHook) Of(context.Context, tenancy.TenantID) (entitlements.Entitlements, error) {
	h.once.Do(h.hook)
	return entitlements.Entitlements{}, entitlements.ErrUnknownTenant
}

func (h *entsHook) Edition(context.Context, string) (entitlements.Entitlements, error) {
	return entitlements.Entitlements{}, entitlements.ErrUnknownEdition
}

// TestRun_TwoInstancesResumeOneIntent_TheLateOneSkipsTheUnit: instance B reads a crashed run's
// intent; before B reaches the unit, instance A finishes it. B must not work on the stale intent
// (re-exporting a range whose rows are gone reports a tampered blob, and its writes conflict).
func TestRun_TwoInstancesResumeOneIntent_TheLateOneSkipsTheUnit(t *testing.T) {
	ctx := context.Background()
	l, c, m := testLedger(t), newClock(), newMem(true)
	unit := uuid.NewString()
	m.add(unit, 30, c.Now().Add(-200*24*time.Hour))
	name := sweepName(t)
	sw := Sweep{Name: name, Service: "test", Schedule: "0 0 2 * * *", Action: ActionArchive, DataScope: "notifications",
		RetentionKind: "notifications", Retention: 90 * 24 * time.Hour, Units: m.units, Target: m, BatchSize: 10}
	crashed := newEngine(t, l, c, Config{Fault: func(p string) {
		if p == FaultAfterIntent {
			panic(crash{p})
		}
	}})
	if err := crashed.Register(sw); err != nil {
		t.Fatal(err)
	}
	func() {
		defer func() { _ = recover() }()
		_, _ = crashed.Run(ctx, name)
	}()
	a := newEngine(t, l, c, Config{})
	if err := a.Register(sw); err != nil {
		t.Fatal(err)
	}
	var aErr error
	b := newEngine(t, l, c, Config{Entitlements: &entsHook{hook: func() { _, aErr = a.Run(ctx, name) }}})
	if err := b.Register(sw); err != nil {
		t.Fatal(err)
	}
	run, err := b.Run(ctx, name)
	if aErr != nil {
		t.Fatalf("instance A: %v", aErr)
	}
	if err != nil || run.Status != StatusCompleted {
		t.Fatalf("instance B: %+v, %v; want it to leave the unit to A", run, err)
	}
	if errors.Is(err, ErrArtifactMismatch) || m.count(unit) != 0 || len(m.blobs) != 3 || len(m.events) != 3 {
		t.Errorf("%d rows left, %d blobs, %d events; want 0, 3, 3", m.count(unit), len(m.blobs), len(m.events))
	}
	if aff, n := evidenceTotal(t, l, unit, name); aff != 30 || n != 3 {
		t.Errorf("evidence %d rows in %d entries, want 30 in 3", aff, n)
	}
}
