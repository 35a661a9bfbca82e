package bus

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"spine/shared/events"
	"spine/shared/functions"
	"spine/shared/outbox"
	"spine/shared/problem"
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

// runGroup queues each delivery of ds as its own unit, as concurrent single-message invocations
// would, and lets one leader write them, so the test decides what a group holds. It returns each
// delivery's outcome ("" and the error when it failed).
func runGroup(c *GroupConsumer, ds []Delivery) []groupOut {
	units := make([]*unit, len(ds))
	for i, d := range ds {
		units[i] = &unit{ds: []Delivery{d}, done: make(chan unitRes, 1)}
	}
	c.mu.Lock()
	c.pending = append(c.pending, units...)
	c.waiting += len(units)
	c.writers++
	c.mu.Unlock()
	c.lead(context.Background())
	out := make([]groupOut, len(units))
	for i, u := range units {
		ur := <-u.done
		out[i].err = ur.err
		if ur.err == nil {
			out[i].groupRes = ur.res[0]
		}
	}
	return out
}

type groupOut struct {
	groupRes
	err error
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

// batchInvocation is an invocation of a batch of ds (bodies replaced where raw has an entry), in
// the host's batch shape.
func batchInvocation(t *testing.T, ds []Delivery, raw map[int][]byte) *functions.Invocation {
	t.Helper()
	bodies := make([][]byte, len(ds))
	metas := make([]functions.ServiceBusMetadata, len(ds))
	for i, d := range ds {
		b, err := json.Marshal(d.Event)
		if err != nil {
			t.Fatal(err)
		}
		if r, ok := raw[i]; ok {
			b = r
		}
		bodies[i] = b
		metas[i] = functions.ServiceBusMetadata{MessageID: d.Event.ID, DeliveryCount: 1, EnqueuedTimeUTC: time.Now()}
	}
	data, md := functions.ServiceBusBatch(bodies, metas)
	body, err := json.Marshal(map[string]any{"Data": map[string]any{functions.ServiceBusBinding: data}, "Metadata": md})
	if err != nil {
		t.Fatal(err)
	}
	inv, err := functions.DecodeInvocation(httptest.NewRequest(http.MethodPost, "/Fn", bytes.NewReader(body)), int64(len(body)))
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

// A batch invocation is one unit: its events are applied in one group, in order. A message of the
// batch that is not a CloudEvent is left out, the others are applied, and the batch answers 400
// (the host redelivers it; the applied events are then duplicates). An event whose effect fails
// holds back its aggregate's later events, the batch's other events are applied, and the batch
// answers the failure.
func TestGroupConsumer_BatchIsOneUnitSettledAsAWhole(t *testing.T) {
	db := consumeDB.OpenRuntime(t, sqlstore.PoolConfig{})
	var mu sync.Mutex
	var calls [][]string
	c := &GroupConsumer{Name: "group-batch", DB: db, Effect: func(ctx context.Context, tx *sqlstore.Tx, ds []Delivery) ([]string, error) {
		ids := make([]string, len(ds))
		for i, d := range ds {
			if d.Event.Type == "Poison" {
				return nil, errors.New("cannot apply")
			}
			ids[i] = d.Event.ID
		}
		mu.Lock()
		calls = append(calls, ids)
		mu.Unlock()
		return nil, nil
	}}
	ctx := context.Background()
	tenant := tenancy.NewTenantID()
	ds := []Delivery{groupDelivery(t, tenant, "T"), groupDelivery(t, tenant, "T"), groupDelivery(t, tenant, "T")}
	if res, err := c.Consume(ctx, batchInvocation(t, ds, nil)); err != nil || len(res.Logs) != 3 {
		t.Fatalf("batch: %+v %v", res, err)
	}
	if len(calls) != 1 || len(calls[0]) != 3 || calls[0][0] != ds[0].Event.ID || calls[0][2] != ds[2].Event.ID {
		t.Fatalf("effect calls %v, want one group of the three events in order", calls)
	}

	// A message that is not a CloudEvent: the others are applied, the batch answers 400.
	fresh := []Delivery{groupDelivery(t, tenant, "T"), groupDelivery(t, tenant, "T"), groupDelivery(t, tenant, "T")}
	_, err := c.Consume(ctx, batchInvocation(t, fresh, map[int][]byte{1: []byte(`{"not":"an event"}`)}))
	var p *problem.Problem
	if !errors.As(err, &p) || p.Status != http.StatusBadRequest {
		t.Fatalf("a batch with an undecodable message answered %v, want 400", err)
	}
	if last := calls[len(calls)-1]; len(last) != 2 || last[0] != fresh[0].Event.ID || last[1] != fresh[2].Event.ID {
		t.Fatalf("the batch's good events were not applied: %v", last)
	}

	// An event whose effect fails: its aggregate's later event is held back behind it, every other
	// event of the batch is applied (before and after it).
	other := tenancy.NewTenantID()
	mid := []Delivery{groupDelivery(t, tenant, "T"), groupDelivery(t, tenant, "Poison"), groupDelivery(t, tenant, "T"),
		groupDelivery(t, other, "T")}
	if _, err := c.Consume(ctx, batchInvocation(t, mid, nil)); err == nil {
		t.Fatal("a batch whose effect failed was acknowledged")
	}
	applied := map[string]bool{}
	for _, call := range calls {
		for _, id := range call {
			applied[id] = true
		}
	}
	if !applied[mid[0].Event.ID] || applied[mid[2].Event.ID] || !applied[mid[3].Event.ID] {
		t.Fatalf("after a failure mid-batch: applied %v %v %v (first, same aggregate after it, other aggregate); want true, false, true",
			applied[mid[0].Event.ID], applied[mid[2].Event.ID], applied[mid[3].Event.ID])
	}
	// The redelivered batch finds the first event's claim.
	mid[1] = groupDelivery(t, tenant, "T") // (a batch can never heal a poisoned event; stand in a good one)
	res, err := c.Consume(ctx, batchInvocation(t, mid, nil))
	if err != nil || !strings.Contains(res.Logs[0], "duplicate") || !strings.Contains(res.Logs[2], "applied") ||
		!strings.Contains(res.Logs[3], "duplicate") {
		t.Fatalf("redelivery: %+v %v", res, err)
	}
}
