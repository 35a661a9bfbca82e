package billing

import (
	"context"
	"testing"
	"time"

	"spine/shared/sqlstore"
)

// waitingOnLock reports whether a session of the database waits on a lock while running a
// statement that contains marker.
func (h *harness) waitingOnLock(ctx context.Context, marker string) bool {
	h.t.Helper()
	var n int
	err := h.rt.InReadTx(ctx, sqlstore.PlatformScope(), func(tx *sqlstore.Tx) error {
		return tx.QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
			AND wait_event_type = 'Lock' AND position($1 in query) > 0`, marker).Scan(&n)
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return n > 0
}

// Usage recorded while a renewal holds the subscription (summing the period it closes) waits for
// the renewal and goes into the new period: it never lands in a period already billed.
func TestUsage_RecordedDuringARenewalGoesIntoTheNewPeriod(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	s := h.subscribe(f, h.meteredEdition())
	ctx := context.Background()
	locked, release, renewed := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	newStart := s.PeriodEnd
	go func() { // a renewal: the row locked, the period summed, then rolled
		renewed <- h.svc.store.Write(ctx, sqlstore.TenantScope(f.id), f.id, func(tx *Tx) error {
			sub, err := tx.LockSubscription(ctx, SubscriptionID(s.ID))
			if err != nil {
				return err
			}
			close(locked)
			<-release
			sub.PeriodStart, sub.PeriodEnd = newStart, addMonths(newStart, 1)
			sub.Version++
			return tx.UpdateSubscription(ctx, sub)
		})
	}()
	<-locked
	type result struct {
		u   UsageRecord
		err error
	}
	done := make(chan result, 1)
	go func() {
		u, _, err := h.svc.RecordUsage(ctx, Caller{Platform: true}, f.id, UsageInput{ID: newID(), Metric: "api.calls", Quantity: 3})
		done <- result{u, err}
	}()
	for waiting := false; !waiting; {
		select {
		case r := <-done:
			close(release)
			t.Fatalf("usage recorded while the renewal held the subscription: period %v (err %v), the renewal's period was %v",
				r.u.PeriodStart, r.err, s.PeriodStart)
		default:
			waiting = h.waitingOnLock(ctx, "FOR SHARE")
			time.Sleep(5 * time.Millisecond)
		}
	}
	close(release)
	if err := <-renewed; err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || !r.u.PeriodStart.Equal(newStart) {
		t.Errorf("usage %+v (%v), want it in the period starting %v", r.u, r.err, newStart)
	}
}
