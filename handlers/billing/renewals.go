package billing

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"spine/shared/contracts"
	"spine/shared/events"
	"spine/shared/functions"
	"spine/shared/outbox"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
)

// RenewalSchedule is BillingRenewals' NCRONTAB schedule: every minute.
const RenewalSchedule = "0 * * * * *"

// maxCatchUp bounds how many periods one renewal of one subscription rolls (a subscription
// nobody renewed for longer is rolled on by the next runs).
const maxCatchUp = 24

// cancelUnpaid is the cancel reason of a subscription PastDue for longer than the grace period.
const cancelUnpaid = "unpaid"

// RenewalReport counts what a BillingRenewals run did.
type RenewalReport struct {
	Renewed   int // subscriptions whose period rolled (an invoice issued when there was something to bill)
	TrialsEnd int // trials that ended: PastDue with their first invoice, or Active on a free edition
	Cancelled int // PastDue beyond the grace period: Cancelled "unpaid"
	Skipped   int // due when listed, but locked by another run or no longer due
	Failed    int
}

func (r RenewalReport) total() int {
	return r.Renewed + r.TrialsEnd + r.Cancelled + r.Skipped + r.Failed
}

func (r RenewalReport) String() string {
	return fmt.Sprintf("billing renewals: renewed %d, trials ended %d, cancelled unpaid %d, skipped %d, failed %d",
		r.Renewed, r.TrialsEnd, r.Cancelled, r.Skipped, r.Failed)
}

// Renewals is the BillingRenewals timer's work, in batches of ServiceConfig.RenewalBatch over
// every tenant: each live subscription whose current period ended rolls to its next period —
// a pending downgrade applies first (SubscriptionEditionChanged) — and the new period's invoice
// (the edition's price, plus the closed period's usage priced by the closed period's edition's
// usagePrices; unpriced metrics are not billed) is issued (InvoiceIssued); a Trial whose trial
// ended becomes PastDue with its first period's invoice issued (Active at once when the edition
// is free: SubscriptionActivated); a subscription PastDue for longer than
// ServiceConfig.PastDueGrace is Cancelled with reason "unpaid" (SubscriptionCancelled).
//
// Safe when several instances run it at once: each subscription is renewed in its own
// transaction that locks its row with SKIP LOCKED (a row another run holds is skipped, not
// waited for) and checks again, under the lock, that it is still due — so each period is billed
// once. A failure of one subscription is counted, logged and recorded on it (renewal_attempts,
// renewal_failed_at, renewal_retry_at): it is not due again before its retry time
// (ServiceConfig.RenewalRetry, doubling per failure in a row, at most 24 hours), so failing
// subscriptions never hold up the others' batches. The first failure is returned.
func (s *Service) Renewals(ctx context.Context) (RenewalReport, error) {
	var r RenewalReport
	var first error
	for range 10 { // at most 10 batches a run; the next minute's run goes on
		now := s.cfg.Now()
		due, err := s.store.DueSubscriptions(ctx, now, now.Add(-s.cfg.PastDueGrace), s.cfg.RenewalBatch)
		if err != nil {
			return r, err
		}
		progress := 0
		for _, d := range due {
			kind, err := s.renewOne(ctx, d)
			switch {
			case err != nil:
				r.Failed++
				s.log.ErrorContext(ctx, "billing renewal failed", "tenant", d.Tenant.String(), "subscription", string(d.ID), "err", err)
				if first == nil {
					first = err
				}
				// Recorded, it is left out of the next batches until its retry time: failing
				// subscriptions never fill a batch and starve the others.
				if err := s.recordFailure(ctx, d); err != nil {
					s.log.ErrorContext(ctx, "billing renewal failure not recorded", "tenant", d.Tenant.String(), "subscription", string(d.ID), "err", err)
				} else {
					progress++
				}
			case kind == renewSkipped:
				r.Skipped++
			default:
				progress++
				switch kind {
				case renewTrialEnded:
					r.TrialsEnd++
				case renewCancelled:
					r.Cancelled++
				default:
					r.Renewed++
				}
			}
		}
		if len(due) < s.cfg.RenewalBatch || progress == 0 {
			break
		}
	}
	return r, first
}

// recordFailure records that d's renewal failed now; the renewal timer leaves it until
// ServiceConfig.RenewalRetry × 2^(attempts − 1) later, at most 24 hours.
func (s *Service) recordFailure(ctx context.Context, d DueSubscription) error {
	now := s.cfg.Now()
	return s.store.Write(ctx, sqlstore.TenantScope(d.Tenant), d.Tenant, func(tx *Tx) error {
		_, err := tx.RecordRenewalFailure(ctx, d.ID, now, func(n int) time.Time { return now.Add(renewalBackoff(s.cfg.RenewalRetry, n)) })
		return err
	})
}

// renewalBackoff is base × 2^(attempts − 1), at most 24 hours.
func renewalBackoff(base time.Duration, attempts int) time.Duration {
	const ceiling = 24 * time.Hour
	d := base
	for i := 1; i < attempts && d < ceiling; i++ {
		d *= 2
	}
	return min(d, ceiling)
}

type renewKind int

const (
	renewSkipped renewKind = iota
	renewRolled
	renewTrialEnded
	renewCancelled
)

// renewOne renews one subscription in a transaction of its tenant.
func (s *Service) renewOne(ctx context.Context, d DueSubscription) (renewKind, error) {
	meta := events.Meta{Actor: "system:billing-renewals"}
	kind := renewSkipped
	err := s.store.Write(ctx, sqlstore.TenantScope(d.Tenant), d.Tenant, func(tx *Tx) error {
		kind = renewSkipped
		sub, err := tx.LockDueSubscription(ctx, d.ID)
		if errors.Is(err, ErrSubscriptionNotFound) {
			return nil // another run holds it
		}
		if err != nil {
			return err
		}
		before := sub.Status
		evs, changed, err := s.renewIn(ctx, tx, d.Tenant, &sub, meta)
		if err != nil || !changed {
			return err // not due any more: another run renewed it
		}
		switch {
		case sub.Status == StatusCancelled:
			kind = renewCancelled
		case before == StatusTrial:
			kind = renewTrialEnded
		default:
			kind = renewRolled
		}
		sub.Version, sub.UpdatedAt = sub.Version+1, s.cfg.Now()
		if err := tx.UpdateSubscription(ctx, sub); err != nil {
			return err
		}
		s.invalidateAfterCommit(ctx, tx, d.Tenant)
		return outbox.Emit(ctx, tx.Tx, evs...)
	})
	return kind, err
}

// renewIn brings the locked subscription sub up to now (see Renewals) and returns the events of
// what it did and whether it changed sub; the caller writes sub. Every write to a subscription
// runs it first (changeIn), so a period is never rolled without its invoice.
func (s *Service) renewIn(ctx context.Context, tx *Tx, tenant tenancy.TenantID, sub *Subscription, meta events.Meta) ([]events.Event, bool, error) {
	now := s.cfg.Now()
	var evs []events.Event
	changed := false
	for range maxCatchUp {
		switch {
		case sub.Status == StatusPastDue && sub.PastDueSince != nil && !now.Before(sub.PastDueSince.Add(s.cfg.PastDueGrace)):
			sub.Status, sub.CancelledAt, sub.CancelReason, sub.PendingEdition = StatusCancelled, &now, cancelUnpaid, ""
			ev, err := events.New(service, contracts.SubscriptionCancelled, string(sub.ID), tenant.String(),
				subscriptionData(tenant, *sub, cancelUnpaid), meta)
			return append(evs, ev), true, err

		case sub.Status == StatusTrial && sub.TrialEndsAt != nil && !now.Before(*sub.TrialEndsAt):
			end := *sub.TrialEndsAt
			if sub.PendingEdition != "" {
				ev, err := s.applyPending(ctx, tx, tenant, sub, end, meta)
				if err != nil {
					return nil, false, err
				}
				evs = append(evs, ev)
			}
			e, err := tx.Edition(ctx, sub.EditionCode)
			if err != nil {
				return nil, false, err
			}
			sub.PeriodStart, sub.PeriodEnd = end, addMonths(end, e.PeriodMonths)
			if e.PriceMinor == 0 { // nothing to pay: the trial simply becomes the paid (free) plan
				sub.Status = StatusActive
				ev, err := events.New(service, contracts.SubscriptionActivated, string(sub.ID), tenant.String(), subscriptionData(tenant, *sub, ""), meta)
				if err != nil {
					return nil, false, err
				}
				evs = append(evs, ev)
			} else { // never activated: the first period's invoice is issued and awaits payment
				sub.Status, sub.PastDueSince = StatusPastDue, &end
				ev, err := s.issue(ctx, tx, tenant, e.Currency, sub.PeriodStart, sub.PeriodEnd, []InvoiceLine{editionLine(e, *sub)}, meta)
				if err != nil {
					return nil, false, err
				}
				evs = append(evs, ev)
			}

		case (sub.Status == StatusActive || sub.Status == StatusPastDue) && !now.Before(sub.PeriodEnd):
			closed, err := tx.Edition(ctx, sub.EditionCode)
			if err != nil {
				return nil, false, err
			}
			closedStart, closedEnd := sub.PeriodStart, sub.PeriodEnd
			if sub.PendingEdition != "" {
				ev, err := s.applyPending(ctx, tx, tenant, sub, closedEnd, meta)
				if err != nil {
					return nil, false, err
				}
				evs = append(evs, ev)
			}
			e, err := tx.Edition(ctx, sub.EditionCode)
			if err != nil {
				return nil, false, err
			}
			sub.PeriodStart, sub.PeriodEnd = closedEnd, addMonths(closedEnd, e.PeriodMonths)
			var lines []InvoiceLine
			if e.PriceMinor > 0 {
				lines = append(lines, editionLine(e, *sub))
			}
			usage, err := s.usageLines(ctx, tx, closed, closedStart, closedEnd)
			if err != nil {
				return nil, false, err
			}
			if lines = append(lines, usage...); len(lines) > 0 {
				ev, err := s.issue(ctx, tx, tenant, e.Currency, sub.PeriodStart, sub.PeriodEnd, lines, meta)
				if err != nil {
					return nil, false, err
				}
				evs = append(evs, ev)
			}

		default:
			return evs, changed, nil
		}
		changed = true
	}
	return evs, changed, nil
}

// applyPending applies sub's pending downgrade effective at `at` (SubscriptionEditionChanged).
func (s *Service) applyPending(ctx context.Context, tx *Tx, tenant tenancy.TenantID, sub *Subscription, at time.Time, meta events.Meta) (events.Event, error) {
	to, err := tx.Edition(ctx, sub.PendingEdition)
	if err != nil {
		return events.Event{}, err
	}
	data := contracts.SubscriptionEditionChangedData{TenantID: tenant.String(), SubscriptionID: string(sub.ID),
		FromEdition: sub.EditionCode, ToEdition: to.Code, EffectiveAt: at, Currency: to.Currency}
	sub.EditionCode, sub.PendingEdition = to.Code, ""
	return events.New(service, contracts.SubscriptionEditionChanged, string(sub.ID), tenant.String(), data, meta)
}

// editionLine is the invoice line of a period of edition e.
func editionLine(e Edition, sub Subscription) InvoiceLine {
	return InvoiceLine{Description: fmt.Sprintf("%s edition, %s to %s", e.Name, sub.PeriodStart.Format(time.DateOnly),
		sub.PeriodEnd.Format(time.DateOnly)), Quantity: 1, UnitMinor: e.PriceMinor}
}

// usageLines are the lines of the usage recorded into the period [start, end), priced by the
// edition in force in it: one line per metric with a unit price > 0 and a quantity > 0, by
// metric. A metric the edition does not price is not billed.
func (s *Service) usageLines(ctx context.Context, tx *Tx, e Edition, start, end time.Time) ([]InvoiceLine, error) {
	totals, err := tx.PeriodUsage(ctx, start)
	if err != nil {
		return nil, err
	}
	metrics := make([]string, 0, len(totals))
	for m := range totals {
		metrics = append(metrics, m)
	}
	slices.Sort(metrics)
	var lines []InvoiceLine
	for _, m := range metrics {
		q, price := totals[m], e.Entitlements.UsagePrices[m]
		if q <= 0 || price <= 0 {
			continue
		}
		if _, ok := mulMinor(q, price); !ok {
			return nil, fmt.Errorf("%w: usage %s: %d × %d", ErrTotalTooLarge, m, q, price)
		}
		lines = append(lines, InvoiceLine{Description: fmt.Sprintf("Usage %s, %s to %s", m, start.Format(time.DateOnly),
			end.Format(time.DateOnly)), Quantity: q, UnitMinor: price})
	}
	return lines, nil
}

// renewals serves the BillingRenewals timer. A run with nothing due is Quiet; a failure answers
// non-2xx so the host records the failed run (the other subscriptions were renewed).
func (a *API) renewals(ctx context.Context, _ *functions.Invocation) (*functions.Result, error) {
	r, err := a.svc.Renewals(ctx)
	if err != nil {
		return nil, err
	}
	if r.total() == 0 {
		return &functions.Result{Quiet: true}, nil
	}
	return &functions.Result{Logs: []string{r.String()}}, nil
}
