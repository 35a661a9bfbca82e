package bus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"spine/shared/events"
	"spine/shared/outbox"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
)

// groupDelivery is a decoded delivery of a fresh event of type typ for tenant.
func groupDelivery(t *testing.T, tenant tenancy.TenantID, typ string) Delivery {
	t.Helper()
	ev, err := events.New("tenants", typ, tenant.String(), tenant.String(), map[string]int{"n": 1}, events.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	return Delivery{Event: ev, TenantID: tenant}
}

// runGroup queues ds on c as concurrent deliveries would and lets one leader write them, so the
// test decides what a group holds.
func runGroup(c *GroupConsumer, ds []Delivery) []groupRes {
	reqs := make([]*groupReq, len(ds))
	for i, d := range ds {
		reqs[i] = &groupReq{d: d, done: make(chan groupRes, 1)}
	}
	c.mu.Lock()
	c.pending = append(c.pending, reqs...)
	c.writers++
	c.mu.Unlock()
	c.lead(context.Background())
	out := make([]groupRes, len(reqs))
	for i, r := range reqs {
		out[i] = <-r.done
	}
	return out
}

// A group of events of several tenants is one effect call in one transaction whose scope is
// exactly those tenants; its inbox claims make a redelivered group a set of duplicates with no
// second effect, and an event listed twice in one group has one effect.
func TestGroupConsumer_OneTransactionPerGroupOneEffectPerEvent(t *testing.T) {
	db := consumeDB.OpenRuntime(t, sqlstore.PoolConfig{})
	var calls [][]string
	var scopes []sqlstore.Scope
	c := &GroupConsumer{Name: "group-test", DB: db, Effect: func(ctx context.Context, tx *sqlstore.Tx, ds []Delivery) ([]string, error) {
		ids := make([]string, len(ds))
		evs := make([]events.Event, len(ds))
		for i, d := range ds {
			ids[i] = d.Event.ID
			ev, err := events.New("audit", "Echoed", d.Event.Subject, d.TenantID.String(), nil, events.Meta{})
			if err != nil {
				return nil, err
			}
			evs[i] = ev
		}
		calls = append(calls, ids)
		scopes = append(scopes, tx.Scope())
		return ids, outbox.Emit(ctx, tx, evs...) // the effect's own writes, in the set scope
	}}
	a, b := tenancy.NewTenantID(), tenancy.NewTenantID()
	ds := []Delivery{groupDelivery(t, a, "T"), groupDelivery(t, b, "T"), groupDelivery(t, a, "T")}
	ds = append(ds, ds[1]) // the same event delivered twice, concurrently
	res := runGroup(c, ds)
	want := []string{"applied", "applied", "applied", "duplicate"}
	for i, r := range res {
		if r.err != nil || r.outcome != want[i] {
			t.Fatalf("delivery %d: %+v, want %s", i, r, want[i])
		}
		if i < 3 && r.note != ds[i].Event.ID {
			t.Fatalf("delivery %d note %q, want its effect's note", i, r.note)
		}
	}
	if len(calls) != 1 || !slices.Equal(calls[0], []string{ds[0].Event.ID, ds[1].Event.ID, ds[2].Event.ID}) {
		t.Fatalf("effect calls %v, want one call with the three events in arrival order", calls)
	}
	ids := []string{a.String(), b.String()}
	slices.Sort(ids)
	if !slices.Equal(scopes[0].Tenants, ids) || scopes[0].Tenant != "" || scopes[0].Platform {
		t.Fatalf("the group's scope is %+v, want exactly the set %v", scopes[0], ids)
	}
	res = runGroup(c, ds[:3])
	for i, r := range res {
		if r.err != nil || r.outcome != "duplicate" {
			t.Fatalf("redelivered %d: %+v, want duplicate", i, r)
		}
	}
	if len(calls) != 1 {
		t.Fatalf("a redelivered group ran the effect again: %v", calls)
	}
}

// A group whose effect fails is applied event by event: the event that broke it fails alone (its
// delivery is retried), the others are applied once; a skipped event alone is acknowledged
// without a claim.
func TestGroupConsumer_FailedGroupFallsBackEventByEvent(t *testing.T) {
	db := consumeDB.OpenRuntime(t, sqlstore.PoolConfig{})
	var mu sync.Mutex
	applied := map[string]int{}
	c := &GroupConsumer{Name: "group-fallback", DB: db, Effect: func(ctx context.Context, tx *sqlstore.Tx, ds []Delivery) ([]string, error) {
		for _, d := range ds {
			switch d.Event.Type {
			case "Poison":
				return nil, errors.New("cannot apply")
			case "Ignored":
				return nil, fmt.Errorf("not mine: %w", ErrSkip)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		for _, d := range ds {
			applied[d.Event.ID]++
		}
		return nil, nil
	}}
	tenant := tenancy.NewTenantID()
	ds := []Delivery{groupDelivery(t, tenant, "T"), groupDelivery(t, tenant, "Poison"), groupDelivery(t, tenant, "Ignored"), groupDelivery(t, tenant, "T")}
	res := runGroup(c, ds)
	if res[0].err != nil || res[0].outcome != "applied" || res[3].err != nil || res[3].outcome != "applied" {
		t.Fatalf("the good events: %+v %+v", res[0], res[3])
	}
	if res[1].err == nil {
		t.Fatal("the poison event was acknowledged")
	}
	if res[2].err != nil || res[2].outcome != "skipped" {
		t.Fatalf("the skipped event: %+v", res[2])
	}
	if applied[ds[0].Event.ID] != 1 || applied[ds[3].Event.ID] != 1 || len(applied) != 2 {
		t.Fatalf("applied %v, want the two good events once each", applied)
	}
	// Redelivered, the skipped event is skipped again (no claim was kept), the good ones are duplicates.
	res = runGroup(c, []Delivery{ds[2]})
	if res[0].err != nil || res[0].outcome != "skipped" {
		t.Fatalf("the skipped event redelivered: %+v", res[0])
	}
	if c.writers != 0 || len(c.pending) != 0 {
		t.Fatalf("the consumer is not idle: %d writers, %d pending", c.writers, len(c.pending))
	}
}
