package integrations

import (
	"context"
	"time"

	"spine/shared/outbox"
	"spine/shared/retention"
	"spine/shared/tenancy"
)

// IntegrationPurge, a retention sweep (shared/retention) run daily by its timer: a connection
// deleted through the API is soft-deleted (deleted_at; its Key Vault secret soft-deleted with it,
// recoverable for the vault's retention) and its row is deleted PurgeAfter later — per tenant, a
// bounded range at a time in (deleted_at, connection id) order, in one transaction with the
// RetentionApplied event. The Key Vault secret is not purged here: infra enables purge protection
// on the vault, which refuses a purge; Key Vault purges a soft-deleted secret itself when its
// soft-delete retention ends. A tenant under a legal hold of scope "integrations" (or "all") is
// skipped by the engine.
const (
	PurgeSweep    = "IntegrationPurge"
	PurgeSchedule = "0 45 2 * * *" // daily, 02:45 UTC
	// PurgeScope is the legal-hold scope of integrations' data.
	PurgeScope = "integrations"
	// PurgeAfter is how long a soft-deleted connection's row is kept.
	PurgeAfter = 30 * 24 * time.Hour
)

// PurgeSweepOf returns the purge sweep over s under name (PurgeSweep; tests register it under
// names of their own, as the ledger is shared).
func (s *Service) PurgeSweepOf(name string) retention.Sweep {
	return retention.Sweep{
		Name: name, Service: service, Schedule: PurgeSchedule, Action: retention.ActionDelete,
		DataScope: PurgeScope, Retention: PurgeAfter, Units: s.store.DeletedTenants, Target: purgeTarget{s: s},
	}
}

// purgeTarget is the sweep's retention.Target over the service's store.
type purgeTarget struct {
	retention.NoExport
	s *Service
}

// Next implements retention.Target: the next connections of tenant soft-deleted before cutoff.
func (p purgeTarget) Next(ctx context.Context, unit, after string, cutoff time.Time, limit int) (retention.Range, bool, error) {
	return retention.NextByKey(unit, after, func(tenant tenancy.TenantID, from retention.Key) (keys []retention.Key, err error) {
		err = p.s.store.Read(ctx, tenant, func(tx *Tx) (err error) {
			keys, err = tx.NextDeleted(ctx, from, cutoff, limit)
			return err
		})
		return keys, err
	})
}

// Apply implements retention.Target: deletes exactly the range's rows with the evidence event in
// one transaction; a rerun finds them gone and changes nothing.
func (p purgeTarget) Apply(ctx context.Context, unit string, r retention.Range, ev retention.Evidence) (int, error) {
	tenant, from, to, err := retention.ParseRange(unit, r)
	if err != nil {
		return 0, err
	}
	n := 0
	err = p.s.store.Write(ctx, tenant, func(tx *Tx) error {
		var err error
		if n, err = tx.PurgeDeleted(ctx, from, to, ev.Cutoff); err != nil || n == 0 {
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
