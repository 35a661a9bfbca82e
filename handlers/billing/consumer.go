package billing

import (
	"context"
	"errors"
	"fmt"

	"spine/shared/bus"
	"spine/shared/contracts"
	"spine/shared/events"
	"spine/shared/outbox"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
)

// Consumer is the inbox consumer name (and Service Bus subscription) of BillingOnTenantsEvent.
const Consumer = "billing"

// systemActor is who the consumer's changes are recorded as.
const systemActor = "system:billing"

// newTenantsConsumer is BillingOnTenantsEvent's group consumer (bus.GroupConsumer): the events
// delivered while a group is written share one transaction (one inbox claim, one commit).
func (s *Service) newTenantsConsumer() *bus.GroupConsumer {
	return &bus.GroupConsumer{Name: Consumer, DB: s.store.DB(), Effect: s.onTenantsEvents, Log: s.log}
}

// onTenantsEvents is BillingOnTenantsEvent's group effect (bus.GroupConsumer: inside the
// transaction that claims the group's events in billing's inbox, in the set scope of their
// tenants, so a redelivery has no second effect). Each event is applied in the order delivered,
// as it would be alone (onTenantsEvent), and sees what the group's earlier events wrote; what the
// group reads once is the catalog's editions (per code) and, for the tenants it subscribes, whether
// each has a live subscription and ever had a trial (one statement). The events the group emits go
// to the outbox in one statement, in order, and the entitlements of the tenants it changed are
// invalidated in one call after the commit. An event acknowledged without effect (an edition
// outside the catalog, a tenant subscribed already, nothing live to cancel) does not fail the
// group: its claim commits with the others and its note says why. Any other failure fails the
// group, which bus.GroupConsumer then applies event by event, so only that event's delivery
// fails. The write fence does not apply: these are consequences of the lifecycle event.
func (s *Service) onTenantsEvents(ctx context.Context, tx *sqlstore.Tx, ds []bus.Delivery) ([]string, error) {
	g := &groupWrites{editions: map[string]editionRead{}}
	// Whether each tenant to subscribe has a live subscription or had a trial, read once: valid
	// for a tenant until the group's first event of it (which may write), see onTenantsEvent.
	var subscribing []string
	seen := map[tenancy.TenantID]bool{}
	for _, d := range ds {
		if (d.Event.Type == contracts.TenantRegistered || d.Event.Type == contracts.TenantProvisioned) && !seen[d.TenantID] {
			seen[d.TenantID] = true
			subscribing = append(subscribing, d.TenantID.String())
		}
	}
	if len(subscribing) > 0 {
		facts, err := s.store.Bind(tx, tenancy.TenantID{}).SubscriptionFacts(ctx, subscribing)
		if err != nil {
			return nil, err
		}
		g.facts = make(map[tenancy.TenantID]SubscriptionFacts, len(facts))
		for _, id := range subscribing {
			if f, ok := facts[id]; ok {
				t, _ := tenancy.ParseTenantID(id) // canonical: it is a TenantID's String
				g.facts[t] = f
			}
		}
	}
	notes := make([]string, len(ds))
	for i, d := range ds {
		t := s.store.Bind(tx, d.TenantID)
		t.group = g
		note, err := s.onTenantsEvent(ctx, t, d, g)
		if err != nil {
			return nil, err
		}
		notes[i] = note
		delete(g.facts, d.TenantID) // the event may have written: later events of the tenant read again
	}
	if err := outbox.Emit(ctx, tx, g.events...); err != nil {
		return nil, err
	}
	if len(g.tenants) > 0 {
		keys := make([]string, len(g.tenants))
		for i, t := range g.tenants {
			keys[i] = entitlementsKey(t)
		}
		tx.AfterCommit(func() { s.cache.Invalidate(context.WithoutCancel(ctx), keys...) })
	}
	return notes, nil
}

// onTenantsEvent applies one event of the group g in t (its tenant's rows) and returns its note:
//
//   - TenantRegistered subscribes the tenant to the edition it registered with (a Trial when the
//     edition has one), public or private (the registration is the platform's). A tenant with a
//     live subscription already keeps it (acknowledged, no second one). An edition outside the
//     catalog is acknowledged without effect: the tenants service's edition step refuses it too,
//     and the subscription follows at TenantProvisioned, once the tenant's edition has been
//     corrected and checked.
//   - TenantProvisioned subscribes the tenant to its edition when it has no live subscription yet
//     (its registration named an edition outside the catalog); otherwise nothing.
//   - TenantDecommissioned cancels the live subscription (reason "tenant-decommissioned"); its
//     invoices and usage stay (financial retention). None: acknowledged.
//
// Any other type is acknowledged without effect (the trigger does not deliver it).
func (s *Service) onTenantsEvent(ctx context.Context, t *Tx, d bus.Delivery, g *groupWrites) (string, error) {
	meta := events.Meta{TraceParent: d.Event.TraceParent, CorrelationID: d.Event.CorrelationID, CausationID: d.Event.ID,
		Actor: systemActor}
	var code string
	switch d.Event.Type {
	case contracts.TenantRegistered:
		var data contracts.TenantRegisteredData
		if err := d.Data(&data); err != nil {
			return "", err
		}
		code = data.EditionCode
	case contracts.TenantProvisioned:
		var data contracts.TenantProvisionedData
		if err := d.Data(&data); err != nil {
			return "", err
		}
		code = data.EditionCode
	case contracts.TenantDecommissioned:
		sub, err := t.LiveSubscription(ctx)
		if errors.Is(err, ErrNoSubscription) {
			return "no effect: no live subscription to cancel", nil
		}
		if err != nil {
			return "", err
		}
		sub, err = s.changeIn(ctx, t, d.TenantID, sub.ID, nil, true, s.cancel(ctx, d.TenantID, "tenant-decommissioned", meta))
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("subscription %s cancelled", sub.ID), nil
	default:
		return fmt.Sprintf("no effect: billing does not consume %s", d.Event.Type), nil
	}
	sub, err := s.subscribeInGroup(ctx, t, d.TenantID, code, g, meta)
	switch {
	case errors.Is(err, ErrSubscriptionExists):
		return "no effect: the tenant's live subscription stays", nil
	case errors.Is(err, ErrEditionNotFound) && d.Event.Type == contracts.TenantRegistered:
		return fmt.Sprintf("no effect: edition %q is not in the catalog; the subscription waits for TenantProvisioned", code), nil
	case err != nil:
		return "", err
	}
	return fmt.Sprintf("subscription %s on %s (%s)", sub.ID, sub.EditionCode, sub.Status), nil
}

// subscribeInGroup is subscribe (any edition) with the group's reads: the edition from g's
// catalog reads, the tenant's facts from g's when its first event in the group is this one.
func (s *Service) subscribeInGroup(ctx context.Context, tx *Tx, tenant tenancy.TenantID, code string, g *groupWrites, meta events.Meta) (Subscription, error) {
	e, err := g.edition(ctx, tx, code)
	if err != nil {
		return Subscription{}, err
	}
	f, ok := g.facts[tenant]
	if !ok { // an earlier event of the group may have changed them: read them
		if _, err := tx.LiveSubscription(ctx); err == nil {
			f.Live = true
		} else if !errors.Is(err, ErrNoSubscription) {
			return Subscription{}, err
		}
		if !f.Live {
			if f.HadTrial, err = tx.HadTrial(ctx); err != nil {
				return Subscription{}, err
			}
		}
	}
	if f.Live {
		return Subscription{}, ErrSubscriptionExists
	}
	return s.subscribeNew(ctx, tx, tenant, e, f.HadTrial, meta)
}

// groupWrites is what BillingOnTenantsEvent's group reads once and writes once: the catalog's
// editions it read, the tenants' SubscriptionFacts read at its start, and the events and
// invalidations its events queued (Tx.emit, Service.invalidateAfterCommit).
type groupWrites struct {
	editions map[string]editionRead
	facts    map[tenancy.TenantID]SubscriptionFacts
	events   []events.Event
	tenants  []tenancy.TenantID
}

// editionRead is one read of the catalog: the edition, or ErrEditionNotFound.
type editionRead struct {
	e   Edition
	err error
}

// edition returns the edition with this code, read once per group (ErrEditionNotFound included).
func (g *groupWrites) edition(ctx context.Context, tx *Tx, code string) (Edition, error) {
	if r, ok := g.editions[code]; ok {
		return r.e, r.err
	}
	e, err := tx.Edition(ctx, code)
	if err != nil && !errors.Is(err, ErrEditionNotFound) {
		return Edition{}, err
	}
	g.editions[code] = editionRead{e: e, err: err}
	return e, err
}

// invalidate queues tenant's entitlements for the invalidation after the group's commit.
func (g *groupWrites) invalidate(tenant tenancy.TenantID) {
	for _, t := range g.tenants {
		if t == tenant {
			return
		}
	}
	g.tenants = append(g.tenants, tenant)
}

// emit writes evs to the outbox in tx; in a consumer's group it queues them, in order, for the
// group's one insert at its end (the same transaction: they commit or roll back with the group).
func (tx *Tx) emit(ctx context.Context, evs ...events.Event) error {
	if tx.group != nil {
		tx.group.events = append(tx.group.events, evs...)
		return nil
	}
	return outbox.Emit(ctx, tx.Tx, evs...)
}
