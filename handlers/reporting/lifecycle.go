package reporting

import (
	"context"
	"fmt"
	"time"

	"spine/shared/outbox"
	"spine/shared/retention"
	"spine/shared/tenancy"
)

// The report artifact lifecycle: ReportArtifactLifecycle, a retention sweep (shared/retention)
// run daily by its timer. Each Succeeded run carries its own expires_at (the tenant's edition's
// artifact TTL at generation), so the sweep has no retention of its own (Retention 0: a run is
// due once expires_at < now): per tenant, the due runs in (expires_at, run id) order, a bounded
// range at a time, have their artifact blob deleted and are then marked Expired, with the
// RetentionApplied event, in one transaction. A download of an Expired run answers 410
// artifact-expired, as one past its expiresAt did already. A tenant under a legal hold of scope
// "reports" (or "all") is skipped by the engine. The storage account's lifecycle rule on the
// reports container deletes artifacts too, never earlier than the sweep: it is the backstop.
const (
	LifecycleSweep    = "ReportArtifactLifecycle"
	LifecycleSchedule = "0 15 2 * * *" // daily, 02:15 UTC
	// LifecycleScope is the legal-hold scope of report artifacts.
	LifecycleScope = "reports"
)

// LifecycleSweepOf returns the lifecycle sweep over s under name (LifecycleSweep; tests register
// it under names of their own, as the ledger is shared).
func (s *Service) LifecycleSweepOf(name string) retention.Sweep {
	return retention.Sweep{
		Name: name, Service: service, Schedule: LifecycleSchedule, Action: retention.ActionExpire,
		DataScope: LifecycleScope, Units: s.store.DueTenants, Target: lifecycleTarget{s: s},
	}
}

// lifecycleTarget is the sweep's retention.Target over the service's store and blobs.
type lifecycleTarget struct {
	retention.NoExport
	s *Service
}

// Next implements retention.Target: the next due runs of tenant after the position after.
func (t lifecycleTarget) Next(ctx context.Context, unit, after string, cutoff time.Time, limit int) (retention.Range, bool, error) {
	return retention.NextByKey(unit, after, func(tenant tenancy.TenantID, from retention.Key) (keys []retention.Key, err error) {
		err = t.s.store.Read(ctx, tenant, func(tx *Tx) (err error) {
			keys, err = tx.NextExpiring(ctx, from, cutoff, limit)
			return err
		})
		return keys, err
	})
}

// Apply implements retention.Target: deletes the artifacts of the range's due runs (a blob
// already gone is fine: a rerun deletes again), then marks exactly those runs Expired with the
// evidence event in one transaction. A rerun after a committed attempt finds no due run in the
// range: it changes nothing and emits nothing.
func (t lifecycleTarget) Apply(ctx context.Context, unit string, r retention.Range, ev retention.Evidence) (int, error) {
	tenant, from, to, err := retention.ParseRange(unit, r)
	if err != nil {
		return 0, err
	}
	var blobs []string
	if err := t.s.store.Read(ctx, tenant, func(tx *Tx) (err error) {
		_, blobs, err = tx.ExpiringRuns(ctx, from, to, ev.Cutoff)
		return err
	}); err != nil {
		return 0, err
	}
	for _, name := range blobs {
		if err := t.s.blobs.Delete(ctx, Container, name); err != nil {
			return 0, fmt.Errorf("reporting: deleting an expired artifact: %w", err)
		}
	}
	n := 0
	err = t.s.store.Write(ctx, tenant, func(tx *Tx) error {
		var err error
		if n, err = tx.ExpireRuns(ctx, from, to, ev.Cutoff, t.s.cfg.Now()); err != nil || n == 0 {
			return err
		}
		e, err := retention.EvidenceEvent(ev)
		if err != nil {
			return err
		}
		return outbox.Emit(ctx, tx.Tx, e)
	})
	return n, err
}
