package retention

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
)

// holdAfterFirstApply is a target that places a legal hold on the unit right after its first
// batch is applied: an operator's POST /api/ops/legal-holds landing while a run is under way.
type holdAfterFirstApply struct {
	*memTarget
	l    *Ledger
	once sync.Once
}

func (h *holdAfterFirstApply) Apply(ctx context.Context, unit string, r Range, ev Evidence) (int, error) {
	n, err := h.memTarget.Apply(ctx, unit, r, ev)
	if err == nil {
		h.once.Do(func() {
			err = h.l.PutHold(ctx, Hold{ID: uuid.NewString(), TenantID: unit, Scope: ScopeAll, Reason: "mid-run", CreatedBy: "test", CreatedAt: time.Now()})
		})
	}
	return n, err
}

// TestRun_HoldPlacedDuringARun_NoLaterBatchOfTheTenantIsApplied: a hold that exists stops every
// deletion of the tenant's data from then on, not only from the next run.
func TestRun_HoldPlacedDuringARun_NoLaterBatchOfTheTenantIsApplied(t *testing.T) {
	ctx := context.Background()
	l, c, m := testLedger(t), newClock(), newMem(false)
	unit := uuid.NewString()
	m.add(unit, 30, c.Now().Add(-100*24*time.Hour))
	e := newEngine(t, l, c, Config{})
	name := sweepName(t)
	if err := e.Register(Sweep{Name: name, Service: "test", Schedule: "0 0 2 * * *", Action: ActionDelete, DataScope: "notifications",
		Retention: 90 * 24 * time.Hour, Units: m.units, Target: &holdAfterFirstApply{memTarget: m, l: l}, BatchSize: 10}); err != nil {
		t.Fatal(err)
	}
	run, err := e.Run(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.count(unit); got != 20 {
		t.Fatalf("held tenant keeps %d rows, want 20 (only the batch applied before the hold); run %+v", got, run)
	}
	if run.HeldUnits != 1 {
		t.Errorf("run counts %d held units, want the tenant held mid-run (1)", run.HeldUnits)
	}
	if aff, _ := evidenceTotal(t, l, unit, name); aff != 10 {
		t.Errorf("evidence counts %d rows, want the 10 deleted", aff)
	}
}

// TestHeld_EmptyTenant_IsAnErrorNotAnotherTenantsHold: Held("") must not answer from every
// tenant's holds.
func TestHeld_EmptyTenant_IsAnErrorNotAnotherTenantsHold(t *testing.T) {
	ctx := context.Background()
	l := testLedger(t)
	e := newEngine(t, l, newClock(), Config{})
	if err := l.PutHold(ctx, Hold{ID: uuid.NewString(), TenantID: uuid.NewString(), Scope: ScopeAll, Reason: "x", CreatedBy: "test", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if held, err := e.Held(ctx, "", "notifications"); held || !errors.Is(err, ErrNoTenant) {
		t.Fatalf("Held(\"\") = %v, %v; want false, ErrNoTenant", held, err)
	}
}
