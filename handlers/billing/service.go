package billing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"spine/shared/bus"
	"spine/shared/cache"
	"spine/shared/contracts"
	"spine/shared/events"
	"spine/shared/idempotency"
	"spine/shared/ids"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
)

// Caller is who calls the API (tenancy.Caller).
type Caller = tenancy.Caller

// Service is the billing service's rules over its Store: the subscription state machine, edition
// changes with proration, invoices, and the tenants' entitlements (Source, cached).
type Service struct {
	store *Store
	cache *cache.Cache
	fence tenancy.Fence
	cfg   ServiceConfig
	log   *slog.Logger
	// tenantsConsumer is BillingOnTenantsEvent's group consumer (newTenantsConsumer).
	tenantsConsumer *bus.GroupConsumer
}

// ServiceConfig tunes the service. Zero fields take the documented defaults.
type ServiceConfig struct {
	// CacheTTL bounds how long cached entitlements may be served (every change of a subscription
	// invalidates them after its commit; the TTL is the backstop). Default 60s.
	CacheTTL time.Duration
	// Now is the clock (tests move it); default sqlstore.Now.
	Now func() time.Time
	// PastDueGrace is how long a subscription may stay PastDue before the renewal timer cancels
	// it (reason "unpaid"). Default 14 days.
	PastDueGrace time.Duration
	// RenewalBatch is how many due subscriptions one BillingRenewals run takes on. Default 100.
	RenewalBatch int
	// RenewalRetry is how long the renewal timer leaves a subscription whose renewal failed
	// before it tries again, doubled at each failure in a row up to 24 hours. Default 1 hour.
	RenewalRetry time.Duration
}

func (c ServiceConfig) withDefaults() ServiceConfig {
	if c.CacheTTL == 0 {
		c.CacheTTL = 60 * time.Second
	}
	if c.Now == nil {
		c.Now = sqlstore.Now
	}
	if c.PastDueGrace == 0 {
		c.PastDueGrace = 14 * 24 * time.Hour
	}
	if c.RenewalBatch == 0 {
		c.RenewalBatch = 100
	}
	if c.RenewalRetry == 0 {
		c.RenewalRetry = time.Hour
	}
	return c
}

// NewService wires a service. dir answers tenant states for the write fence; c may be nil (no
// Redis: entitlements are read from SQL every time).
func NewService(store *Store, c *cache.Cache, dir tenancy.Directory, cfg ServiceConfig, logger *slog.Logger) *Service {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{store: store, cache: c, fence: tenancy.Fence{Dir: dir}, cfg: cfg.withDefaults(), log: logger}
	s.tenantsConsumer = s.newTenantsConsumer()
	return s
}

// writable is the start of every tenant-level write through the API: the caller reaches the
// tenant and the tenant accepts writes (the write fence).
func (s *Service) writable(ctx context.Context, c Caller, tenant tenancy.TenantID) error {
	if err := c.Reaches(tenant); err != nil {
		return err
	}
	return s.fence.CheckWrite(ctx, tenant)
}

// entitlementsKey is the cache key of a tenant's effective entitlements.
func entitlementsKey(tenant tenancy.TenantID) string {
	return cache.TenantKey(tenant.String(), service, "edition-ref", "current")
}

// invalidateAfterCommit drops the tenant's cached entitlements once tx commits (in a consumer's
// group: with the group's other tenants', in one call after its commit).
func (s *Service) invalidateAfterCommit(ctx context.Context, tx *Tx, tenant tenancy.TenantID) {
	if tx.group != nil {
		tx.group.invalidate(tenant)
		return
	}
	tx.AfterCommit(func() { s.cache.Invalidate(context.WithoutCancel(ctx), entitlementsKey(tenant)) })
}

// ---- editions ----

// Editions returns the catalog, by rank then code.
func (s *Service) Editions(ctx context.Context) ([]Edition, error) { return s.store.Editions(ctx) }

// Edition returns the edition with this code, or ErrEditionNotFound.
func (s *Service) Edition(ctx context.Context, code string) (Edition, error) {
	if !editionCodeRE.MatchString(code) {
		return Edition{}, ErrEditionNotFound
	}
	return s.store.Edition(ctx, code)
}

// EditionsFor returns the catalog as c sees it, by rank then code: every edition for a platform
// admin; for a tenant the public ones and the editions of its live subscription (current and
// pending), private as they may be.
func (s *Service) EditionsFor(ctx context.Context, c Caller) ([]Edition, error) {
	all, err := s.store.Editions(ctx)
	if err != nil || c.Platform {
		return all, err
	}
	own, err := s.ownEditions(ctx, c.Tenant)
	if err != nil {
		return nil, err
	}
	out := make([]Edition, 0, len(all))
	for _, e := range all {
		if e.Public || own[e.Code] {
			out = append(out, e)
		}
	}
	return out, nil
}

// EditionFor returns the edition with this code as c sees it (EditionsFor): a private edition
// that is not the tenant's own is ErrEditionNotFound for a tenant.
func (s *Service) EditionFor(ctx context.Context, c Caller, code string) (Edition, error) {
	e, err := s.Edition(ctx, code)
	if err != nil || e.Public || c.Platform {
		return e, err
	}
	own, err := s.ownEditions(ctx, c.Tenant)
	if err != nil {
		return Edition{}, err
	}
	if !own[e.Code] {
		return Edition{}, ErrEditionNotFound
	}
	return e, nil
}

// ownEditions are the codes of the tenant's live subscription's edition and pending edition.
func (s *Service) ownEditions(ctx context.Context, tenant tenancy.TenantID) (map[string]bool, error) {
	own := map[string]bool{}
	err := s.store.Read(ctx, sqlstore.TenantScope(tenant), tenant, func(tx *Tx) error {
		sub, err := tx.LiveSubscription(ctx)
		if errors.Is(err, ErrNoSubscription) {
			return nil
		}
		if err != nil {
			return err
		}
		own[sub.EditionCode] = true
		if sub.PendingEdition != "" {
			own[sub.PendingEdition] = true
		}
		return nil
	})
	return own, err
}

// ---- subscriptions ----

// newSubscription is a fresh subscription on e at now: Trial until now + e.TrialDays when the
// edition has a trial and trial allows one (the trial is the first period), otherwise Active for
// one period.
func newSubscription(e Edition, now time.Time, trial bool) Subscription {
	sub := Subscription{ID: SubscriptionID(ids.New()), EditionCode: e.Code, PeriodStart: now, Version: 1,
		CreatedAt: now, UpdatedAt: now}
	if e.TrialDays > 0 && trial {
		end := now.AddDate(0, 0, e.TrialDays)
		sub.Status, sub.TrialEndsAt, sub.PeriodEnd = StatusTrial, &end, end
	} else {
		sub.Status, sub.PeriodEnd = StatusActive, addMonths(now, e.PeriodMonths)
	}
	return sub
}

// Subscribe creates the tenant's subscription on edition code (ErrSubscriptionExists when it has
// a live one; ErrEditionNotPublic for a tenant's token on a private edition). It starts as a Trial when the edition has trial days and the tenant never had a
// trial (one trial per tenant, whatever the edition: cancelling and subscribing again gives none);
// otherwise it starts Active and, when the edition has a price, issues the period's invoice.
func (s *Service) Subscribe(ctx context.Context, c Caller, tenant tenancy.TenantID, code string) (Subscription, error) {
	if err := s.writable(ctx, c, tenant); err != nil {
		return Subscription{}, err
	}
	var out Subscription
	err := s.store.Write(ctx, sqlstore.TenantScope(tenant), tenant, func(tx *Tx) error {
		if err := idempotency.Claim(ctx, tx.Tx); err != nil {
			return err
		}
		var err error
		out, err = s.subscribe(ctx, tx, tenant, code, c.Platform, events.MetaFrom(ctx))
		return err
	})
	return out, err
}

// subscribe is Subscribe's work inside tx (the API's and the TenantRegistered consumer's).
// anyEdition allows a private edition (platform admins, the consumer); otherwise it is
// ErrEditionNotPublic.
func (s *Service) subscribe(ctx context.Context, tx *Tx, tenant tenancy.TenantID, code string, anyEdition bool, meta events.Meta) (Subscription, error) {
	e, err := tx.Edition(ctx, code)
	if err != nil {
		return Subscription{}, err
	}
	if !e.Public && !anyEdition {
		return Subscription{}, ErrEditionNotPublic
	}
	if _, err := tx.LiveSubscription(ctx); err == nil {
		return Subscription{}, ErrSubscriptionExists
	} else if err != ErrNoSubscription {
		return Subscription{}, err
	}
	hadTrial, err := tx.HadTrial(ctx)
	if err != nil {
		return Subscription{}, err
	}
	return s.subscribeNew(ctx, tx, tenant, e, hadTrial, meta)
}

// subscribeNew is subscribe once its reads are done: e is the edition (allowed), the tenant has no
// live subscription, and hadTrial says whether it ever had a trial.
func (s *Service) subscribeNew(ctx context.Context, tx *Tx, tenant tenancy.TenantID, e Edition, hadTrial bool, meta events.Meta) (Subscription, error) {
	// One trial per tenant: a tenant that ever had one (any earlier subscription) starts Active,
	// its first period invoiced.
	sub := newSubscription(e, s.cfg.Now(), !hadTrial)
	if err := tx.InsertSubscription(ctx, sub); err != nil {
		return Subscription{}, err
	}
	var evs []events.Event
	if sub.Status == StatusActive {
		var err error
		if evs, err = s.periodStarted(ctx, tx, tenant, sub, e, meta); err != nil {
			return Subscription{}, err
		}
	}
	s.invalidateAfterCommit(ctx, tx, tenant)
	return sub, tx.emit(ctx, evs...)
}

// periodStarted is what an Active subscription's new paid period brings: SubscriptionActivated
// and, when the edition has a price, the period's invoice, issued (InvoiceIssued).
func (s *Service) periodStarted(ctx context.Context, tx *Tx, tenant tenancy.TenantID, sub Subscription, e Edition, meta events.Meta) ([]events.Event, error) {
	ev, err := events.New(service, contracts.SubscriptionActivated, string(sub.ID), tenant.String(), subscriptionData(tenant, sub, ""), meta)
	if err != nil {
		return nil, err
	}
	evs := []events.Event{ev}
	if e.PriceMinor > 0 {
		inv, err := s.issue(ctx, tx, tenant, e.Currency, sub.PeriodStart, sub.PeriodEnd, []InvoiceLine{{
			Description: fmt.Sprintf("%s edition, %s to %s", e.Name, sub.PeriodStart.Format(time.DateOnly), sub.PeriodEnd.Format(time.DateOnly)),
			Quantity:    1, UnitMinor: e.PriceMinor}}, meta)
		if err != nil {
			return nil, err
		}
		evs = append(evs, inv)
	}
	return evs, nil
}

// issue writes an invoice with lines (numbered 1.., amounts computed) as Draft, issues it and
// returns its InvoiceIssued event. Numbers are INV-000001, … per tenant.
func (s *Service) issue(ctx context.Context, tx *Tx, tenant tenancy.TenantID, currency string, start, end time.Time, lines []InvoiceLine, meta events.Meta) (events.Event, error) {
	n, err := tx.CountInvoices(ctx)
	if err != nil {
		return events.Event{}, err
	}
	now := s.cfg.Now()
	inv := Invoice{ID: InvoiceID(ids.New()), Number: fmt.Sprintf("INV-%06d", n+1), Status: InvoiceDraft, Currency: currency,
		PeriodStart: start, PeriodEnd: end, CreatedAt: now}
	for i := range lines {
		var ok bool
		lines[i].No = i + 1
		if lines[i].AmountMinor, ok = mulMinor(lines[i].Quantity, lines[i].UnitMinor); !ok {
			return events.Event{}, fmt.Errorf("%w: invoice line %q", ErrTotalTooLarge, lines[i].Description)
		}
		if inv.TotalMinor, ok = addMinor(inv.TotalMinor, lines[i].AmountMinor); !ok {
			return events.Event{}, fmt.Errorf("%w: invoice total", ErrTotalTooLarge)
		}
	}
	inv.Lines = lines
	if err := tx.InsertInvoice(ctx, inv); err != nil {
		return events.Event{}, err
	}
	inv.Status, inv.IssuedAt = InvoiceIssued, &now
	if err := tx.SetInvoiceStatus(ctx, inv); err != nil {
		return events.Event{}, err
	}
	return events.New(service, contracts.InvoiceIssued, string(inv.ID), tenant.String(), contracts.InvoiceIssuedData{
		TenantID: tenant.String(), InvoiceID: string(inv.ID), Number: inv.Number, TotalMinor: inv.TotalMinor,
		Currency: inv.Currency, IssuedAt: now}, meta)
}

// checkPeriodTotal refuses with ErrTotalTooLarge what would make the invoice that closes the
// period starting at start exceed maxMinor: price (the next period's) plus the usage recorded into
// the period, with extra more of metric, each metric priced by prices; or a metric's recorded
// quantity exceed maxMinor (its sum must stay readable too, priced or not). The renewal computes
// the same invoice; checking at the writes that change it keeps it within bounds.
func checkPeriodTotal(ctx context.Context, tx *Tx, start time.Time, price int64, prices map[string]int64, metric string, extra int64) error {
	totals, err := tx.PeriodUsage(ctx, start)
	if err != nil {
		return err
	}
	if metric != "" {
		q, ok := addMinor(totals[metric], extra)
		if !ok {
			return fmt.Errorf("%w: usage of %s in the period", ErrTotalTooLarge, metric)
		}
		totals[metric] = q
	}
	total := price
	for m, q := range totals {
		amount, ok := mulMinor(q, prices[m])
		if ok {
			total, ok = addMinor(total, amount)
		}
		if !ok {
			return fmt.Errorf("%w: the period's invoice", ErrTotalTooLarge)
		}
	}
	return nil
}

func subscriptionData(tenant tenancy.TenantID, sub Subscription, reason string) contracts.SubscriptionData {
	return contracts.SubscriptionData{TenantID: tenant.String(), SubscriptionID: string(sub.ID), EditionCode: sub.EditionCode,
		Status: string(sub.Status), PeriodStart: sub.PeriodStart, PeriodEnd: sub.PeriodEnd, Reason: reason}
}

// Subscriptions returns the tenant's subscriptions, newest first, each rolled over to now (a
// read does not write: the stored row rolls at its next change).
func (s *Service) Subscriptions(ctx context.Context, c Caller, tenant tenancy.TenantID) ([]Subscription, error) {
	if err := c.Reaches(tenant); err != nil {
		return nil, err
	}
	var out []Subscription
	err := s.store.Read(ctx, sqlstore.TenantScope(tenant), tenant, func(tx *Tx) error {
		subs, err := tx.Subscriptions(ctx)
		if err != nil {
			return err
		}
		for i := range subs {
			if subs[i], err = s.rolled(ctx, tx, subs[i]); err != nil {
				return err
			}
		}
		out = subs
		return nil
	})
	return out, err
}

// rolled returns sub with its period rolled over to now (rollOver with its edition's period).
func (s *Service) rolled(ctx context.Context, tx *Tx, sub Subscription) (Subscription, error) {
	if sub.Status != StatusActive && sub.Status != StatusPastDue || s.cfg.Now().Before(sub.PeriodEnd) {
		return sub, nil
	}
	e, err := tx.Edition(ctx, sub.EditionCode)
	if err != nil {
		return sub, err
	}
	rollOver(&sub, s.cfg.Now(), e.PeriodMonths)
	return sub, nil
}

// change runs fn on the subscription locked and, when due, renewed first (renewIn: its period
// rolled and invoiced as the renewal timer would), checks ifMatch against its version, writes it
// with the version bumped and emits what the renewal and fn return.
//
// A cancel (cancelling) is never refused because the renewal cannot bill: see renewFirst.
func (s *Service) change(ctx context.Context, c Caller, tenant tenancy.TenantID, id SubscriptionID, ifMatch *int64, cancelling bool,
	fn func(tx *Tx, sub *Subscription) ([]events.Event, error)) (Subscription, error) {
	if err := s.writable(ctx, c, tenant); err != nil {
		return Subscription{}, err
	}
	var out Subscription
	err := s.store.Write(ctx, sqlstore.TenantScope(tenant), tenant, func(tx *Tx) error {
		var err error
		out, err = s.changeIn(ctx, tx, tenant, id, ifMatch, cancelling, fn)
		return err
	})
	return out, err
}

func (s *Service) changeIn(ctx context.Context, tx *Tx, tenant tenancy.TenantID, id SubscriptionID, ifMatch *int64, cancelling bool,
	fn func(tx *Tx, sub *Subscription) ([]events.Event, error)) (Subscription, error) {
	sub, err := tx.LockSubscription(ctx, id)
	if err != nil {
		return Subscription{}, err
	}
	if ifMatch != nil && *ifMatch != sub.Version {
		return Subscription{}, ErrVersionMismatch
	}
	// A period that ended is renewed first (its invoice issued), as the renewal timer would.
	evs, err := s.renewFirst(ctx, tx, tenant, &sub, cancelling)
	if err != nil {
		return Subscription{}, err
	}
	more, err := fn(tx, &sub)
	if err != nil {
		return Subscription{}, err
	}
	evs = append(evs, more...)
	sub.Version, sub.UpdatedAt = sub.Version+1, s.cfg.Now()
	if err := tx.UpdateSubscription(ctx, sub); err != nil {
		return Subscription{}, err
	}
	s.invalidateAfterCommit(ctx, tx, tenant)
	return sub, tx.emit(ctx, evs...)
}

// renewFirst renews the locked sub when it is due (renewIn). When the renewal cannot bill
// (ErrTotalTooLarge: an invoice beyond maxMinor) a write fails with it — except a cancel
// (cancelling): the renewal's writes are undone (a savepoint) and the subscription is cancelled
// as it stands, its period not rolled and the period that could not be billed left unbilled (its
// usage records stay, for an operator to bill). A tenant or its decommissioning can always cancel.
func (s *Service) renewFirst(ctx context.Context, tx *Tx, tenant tenancy.TenantID, sub *Subscription, cancelling bool) ([]events.Event, error) {
	if !cancelling {
		evs, _, err := s.renewIn(ctx, tx, tenant, sub, events.MetaFrom(ctx))
		return evs, err
	}
	if err := tx.savepoint(ctx); err != nil {
		return nil, err
	}
	before := *sub
	evs, _, err := s.renewIn(ctx, tx, tenant, sub, events.MetaFrom(ctx))
	if !errors.Is(err, ErrTotalTooLarge) {
		return evs, err
	}
	if err := tx.rollbackTo(ctx); err != nil {
		return nil, err
	}
	*sub = before
	s.log.WarnContext(ctx, "billing: cancelled without the renewal that cannot bill; the period stays unbilled",
		"tenant", tenant.String(), "subscription", string(sub.ID), "err", err)
	return nil, nil
}

func illegal(sub Subscription, to Status) error {
	return fmt.Errorf("%w: a %s subscription cannot become %s", ErrIllegalTransition, sub.Status, to)
}

// Activate moves a Trial or PastDue subscription to Active. From Trial a paid period starts now
// (its invoice issued, SubscriptionActivated); from PastDue the current period goes on
// (SubscriptionActivated) — a platform admin's override only: a tenant's PastDue subscription
// becomes Active by paying its open invoice (MoveInvoice), and the tenant asking is
// ErrPaymentRequired.
func (s *Service) Activate(ctx context.Context, c Caller, tenant tenancy.TenantID, id SubscriptionID, ifMatch *int64) (Subscription, error) {
	meta := events.MetaFrom(ctx)
	return s.change(ctx, c, tenant, id, ifMatch, false, func(tx *Tx, sub *Subscription) ([]events.Event, error) {
		if !sub.Status.CanBecome(StatusActive) {
			return nil, illegal(*sub, StatusActive)
		}
		if sub.Status == StatusPastDue && !c.Platform {
			return nil, ErrPaymentRequired
		}
		from := sub.Status
		sub.Status, sub.PastDueSince = StatusActive, nil
		if from != StatusTrial {
			ev, err := events.New(service, contracts.SubscriptionActivated, string(sub.ID), tenant.String(), subscriptionData(tenant, *sub, ""), meta)
			return []events.Event{ev}, err
		}
		e, err := tx.Edition(ctx, sub.EditionCode)
		if err != nil {
			return nil, err
		}
		now := s.cfg.Now()
		sub.PeriodStart, sub.PeriodEnd = now, addMonths(now, e.PeriodMonths)
		return s.periodStarted(ctx, tx, tenant, *sub, e, meta)
	})
}

// MarkPastDue moves an Active subscription to PastDue (a period's payment failed). No route
// calls it yet (payment integration is not built); the state machine and the tests do.
func (s *Service) MarkPastDue(ctx context.Context, c Caller, tenant tenancy.TenantID, id SubscriptionID) (Subscription, error) {
	return s.change(ctx, c, tenant, id, nil, false, func(_ *Tx, sub *Subscription) ([]events.Event, error) {
		if !sub.Status.CanBecome(StatusPastDue) {
			return nil, illegal(*sub, StatusPastDue)
		}
		now := s.cfg.Now()
		sub.Status, sub.PastDueSince = StatusPastDue, &now
		return nil, nil
	})
}

// Cancel moves a Trial, Active or PastDue subscription to Cancelled (SubscriptionCancelled). Its
// invoices and usage stay (financial retention).
func (s *Service) Cancel(ctx context.Context, c Caller, tenant tenancy.TenantID, id SubscriptionID, reason string, ifMatch *int64) (Subscription, error) {
	return s.change(ctx, c, tenant, id, ifMatch, true, s.cancel(ctx, tenant, reason, events.MetaFrom(ctx)))
}

func (s *Service) cancel(_ context.Context, tenant tenancy.TenantID, reason string, meta events.Meta) func(*Tx, *Subscription) ([]events.Event, error) {
	return func(_ *Tx, sub *Subscription) ([]events.Event, error) {
		if !sub.Status.CanBecome(StatusCancelled) {
			return nil, illegal(*sub, StatusCancelled)
		}
		now := s.cfg.Now()
		sub.Status, sub.CancelledAt, sub.CancelReason, sub.PendingEdition = StatusCancelled, &now, reason, ""
		ev, err := events.New(service, contracts.SubscriptionCancelled, string(sub.ID), tenant.String(), subscriptionData(tenant, *sub, reason), meta)
		return []events.Event{ev}, err
	}
}

// ChangeEdition moves a live subscription to edition code. An upgrade (a higher rank) applies
// now: an Active or PastDue subscription is invoiced the prorated difference for the rest of its
// period (Prorate; a trial pays nothing). A downgrade (a lower rank) and a lateral change (an
// equal rank, whatever the prices: rank is what orders editions) are pending until the period
// end, never prorated nor credited, and asking for the current edition again drops a pending
// change. A Cancelled subscription cannot change edition (ErrIllegalTransition). Editions priced in
// another currency are refused (ErrCurrencyMismatch), a private edition for a tenant's token
// (ErrEditionNotPublic; platform admins may). SubscriptionEditionChanged either way.
func (s *Service) ChangeEdition(ctx context.Context, c Caller, tenant tenancy.TenantID, id SubscriptionID, code string, ifMatch *int64) (Subscription, error) {
	meta := events.MetaFrom(ctx)
	return s.change(ctx, c, tenant, id, ifMatch, false, func(tx *Tx, sub *Subscription) ([]events.Event, error) {
		if sub.Status == StatusCancelled {
			return nil, fmt.Errorf("%w: a Cancelled subscription cannot change edition (subscribe again instead)", ErrIllegalTransition)
		}
		from, err := tx.Edition(ctx, sub.EditionCode)
		if err != nil {
			return nil, err
		}
		to, err := tx.Edition(ctx, code)
		if err != nil {
			return nil, err
		}
		if to.Code == from.Code {
			if sub.PendingEdition == "" {
				return nil, ErrSameEdition
			}
			sub.PendingEdition = "" // keep the current edition: the pending downgrade is dropped
			return nil, nil
		}
		if !to.Public && !c.Platform {
			return nil, ErrEditionNotPublic
		}
		if to.Currency != from.Currency {
			return nil, ErrCurrencyMismatch
		}
		// The invoice closing the period: usage priced by the edition in force at its end (to on an
		// upgrade, from otherwise) and the next period at to's price.
		prices := from.Entitlements.UsagePrices
		if to.Rank > from.Rank {
			prices = to.Entitlements.UsagePrices
		}
		if err := checkPeriodTotal(ctx, tx, sub.PeriodStart, to.PriceMinor, prices, "", 0); err != nil {
			return nil, err
		}
		now := s.cfg.Now()
		data := contracts.SubscriptionEditionChangedData{TenantID: tenant.String(), SubscriptionID: string(sub.ID),
			FromEdition: from.Code, ToEdition: to.Code, Currency: to.Currency}
		var evs []events.Event
		if to.Rank > from.Rank {
			data.EffectiveAt = now
			if sub.Status != StatusTrial {
				data.ProrationMinor = Prorate(from.PriceMinor, to.PriceMinor, sub.PeriodStart, sub.PeriodEnd, now)
			}
			if data.ProrationMinor > 0 {
				inv, err := s.issue(ctx, tx, tenant, to.Currency, now, sub.PeriodEnd, []InvoiceLine{{
					Description: fmt.Sprintf("Upgrade %s to %s, prorated to %s", from.Name, to.Name, sub.PeriodEnd.Format(time.DateOnly)),
					Quantity:    1, UnitMinor: data.ProrationMinor}}, meta)
				if err != nil {
					return nil, err
				}
				evs = append(evs, inv)
			}
			sub.EditionCode, sub.PendingEdition = to.Code, ""
		} else {
			data.EffectiveAt = sub.PeriodEnd
			sub.PendingEdition = to.Code
		}
		ev, err := events.New(service, contracts.SubscriptionEditionChanged, string(sub.ID), tenant.String(), data, meta)
		if err != nil {
			return nil, err
		}
		return append([]events.Event{ev}, evs...), nil
	})
}

// ---- invoices ----

// Invoices returns a page of the tenant's invoices (id order, after the cursor), without lines.
func (s *Service) Invoices(ctx context.Context, c Caller, tenant tenancy.TenantID, after InvoiceID, limit int) ([]Invoice, error) {
	if err := c.Reaches(tenant); err != nil {
		return nil, err
	}
	var out []Invoice
	err := s.store.Read(ctx, sqlstore.TenantScope(tenant), tenant, func(tx *Tx) error {
		var err error
		out, err = tx.Invoices(ctx, after, limit)
		return err
	})
	return out, err
}

// Invoice returns the tenant's invoice with its lines, or ErrInvoiceNotFound.
func (s *Service) Invoice(ctx context.Context, c Caller, tenant tenancy.TenantID, id InvoiceID) (Invoice, error) {
	if err := c.Reaches(tenant); err != nil {
		return Invoice{}, err
	}
	var out Invoice
	err := s.store.Read(ctx, sqlstore.TenantScope(tenant), tenant, func(tx *Tx) error {
		var err error
		out, err = tx.Invoice(ctx, id)
		return err
	})
	return out, err
}
