package retention

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
)

// TestRun_EditionSweep_UnitsFilteringOnBefore_StillFindsDueTenants: Units is given a bound its
// implementation can filter on ("rows older than before") even when editions may shorten the
// retention.
func TestRun_EditionSweep_UnitsFilteringOnBefore_StillFindsDueTenants(t *testing.T) {
	ctx := context.Background()
	l, c, m := testLedger(t), newClock(), newMem(false)
	unit := uuid.NewString()
	m.add(unit, 5, c.Now().Add(-100*24*time.Hour))
	unitsOlder := func(ctx context.Context, before time.Time) ([]string, error) {
		m.mu.Lock()
		defer m.mu.Unlock()
		var out []string
		for u, rs := range m.rows {
			for _, r := range rs {
				if r.at.Before(before) {
					out = append(out, u)
					break
				}
			}
		}
		return out, nil
	}
	e := newEngine(t, l, c, Config{})
	name := sweepName(t)
	if err := e.Register(Sweep{Name: name, Service: "test", Schedule: "0 0 2 * * *", Action: ActionDelete, DataScope: "notifications",
		RetentionKind: "notifications", Retention: 90 * 24 * time.Hour, Units: unitsOlder, Target: m}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Run(ctx, name); err != nil {
		t.Fatal(err)
	}
	if got := m.count(unit); got != 0 {
		t.Fatalf("%d rows 100 days old kept by a 90-day sweep: Units found no tenant", got)
	}
}
