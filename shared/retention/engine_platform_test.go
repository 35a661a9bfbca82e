package retention

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
)

// onlyUnits is a platform target over a fixed set of units (a service's database each), failing
// for any other, as records does for a service no longer enabled.
type onlyUnits struct {
	*memTarget
	units []string
}

func (o *onlyUnits) check(unit string) error {
	if !slices.Contains(o.units, unit) {
		return fmt.Errorf("no database %q", unit)
	}
	return nil
}

func (o *onlyUnits) list(context.Context, time.Time) ([]string, error) { return o.units, nil }

func (o *onlyUnits) Next(ctx context.Context, unit, after string, cutoff time.Time, limit int) (Range, bool, error) {
	if err := o.check(unit); err != nil {
		return Range{}, false, err
	}
	return o.memTarget.Next(ctx, unit, after, cutoff, limit)
}

func (o *onlyUnits) Export(ctx context.Context, unit string, r Range, ev Evidence) (*Artifact, error) {
	if err := o.check(unit); err != nil {
		return nil, err
	}
	return o.memTarget.Export(ctx, unit, r, ev)
}

func (o *onlyUnits) Apply(ctx context.Context, unit string, r Range, ev Evidence) (int, error) {
	if err := o.check(unit); err != nil {
		return 0, err
	}
	return o.memTarget.Apply(ctx, unit, r, ev)
}

// TestRun_PlatformUnitGoneWithAnIntent_OtherUnitsRunAndTheIntentWaits: a platform sweep's unit
// (a service) crashed mid-batch and was then disabled. Its intent cannot be finished by a binary
// without that service; the sweep must not fail on every run for it, and the intent stays in the
// ledger for the day the service is back.
func TestRun_PlatformUnitGoneWithAnIntent_OtherUnitsRunAndTheIntentWaits(t *testing.T) {
	ctx := context.Background()
	l, c, m := testLedger(t), newClock(), newMem(false)
	gone, kept := "svc-"+uuid.NewString()[:8], "svc-"+uuid.NewString()[:8]
	m.add(gone, 5, c.Now().Add(-48*time.Hour))
	m.add(kept, 5, c.Now().Add(-48*time.Hour))
	name := sweepName(t)
	before := &onlyUnits{memTarget: m, units: []string{gone}}
	crashed := newEngine(t, l, c, Config{Fault: func(p string) {
		if p == FaultAfterIntent {
			panic(crash{p})
		}
	}})
	if err := crashed.Register(Sweep{Name: name, Service: "platform", Action: ActionDelete, Platform: true,
		Retention: 24 * time.Hour, Units: before.list, Target: before}); err != nil {
		t.Fatal(err)
	}
	func() {
		defer func() { _ = recover() }()
		_, _ = crashed.Run(ctx, name)
	}()
	after := &onlyUnits{memTarget: m, units: []string{kept}}
	e := newEngine(t, l, c, Config{})
	if err := e.Register(Sweep{Name: name, Service: "platform", Action: ActionDelete, Platform: true,
		Retention: 24 * time.Hour, Units: after.list, Target: after}); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		run, err := e.Run(ctx, name)
		if err != nil || run.Status != StatusCompleted {
			t.Fatalf("run %d: %+v, %v; want completed (the gone unit's intent waits)", i, run, err)
		}
	}
	if m.count(kept) != 0 || m.count(gone) != 5 {
		t.Errorf("kept unit keeps %d rows (want 0), gone unit %d (want 5)", m.count(kept), m.count(gone))
	}
	if w, err := l.Watermark(ctx, name, gone); err != nil || w.Pending == nil {
		t.Errorf("gone unit's watermark %+v, %v; want its intent kept", w, err)
	}
}
