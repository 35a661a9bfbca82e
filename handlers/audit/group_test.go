package audit

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"spine/shared/events"
	"spine/shared/functions"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
)

// Concurrent API appends of one tenant are committed in groups: every caller gets back its own
// entry, seqs are 1..n without gaps, and the chain verifies.
func TestRecord_ConcurrentAppendsOfOneTenantShareCommitsAndChain(t *testing.T) {
	h := newHarness(t)
	svc, err := NewService(NewPostgresStore(h.db), h.dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	tenant, _ := h.tenant()
	caller := Caller{Subject: "group-test", Tenant: tenant}
	const n = 120
	var wg sync.WaitGroup
	got := make([]Entry, n)
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = svc.Record(context.Background(), caller, tenant, RecordInput{
				Actor: Actor{Type: "user", ID: "u"}, Action: fmt.Sprintf("act.%03d", i),
				Resource: Resource{Type: "doc", ID: "d"}})
		}()
	}
	wg.Wait()
	seen := map[int64]bool{}
	for i := range got {
		if errs[i] != nil {
			t.Fatalf("append %d: %v", i, errs[i])
		}
		if got[i].Action != fmt.Sprintf("act.%03d", i) {
			t.Fatalf("caller %d got entry %q: results crossed between callers", i, got[i].Action)
		}
		if seen[got[i].Seq] {
			t.Fatalf("seq %d given twice", got[i].Seq)
		}
		seen[got[i].Seq] = true
	}
	for s := int64(1); s <= n; s++ {
		if !seen[s] {
			t.Fatalf("seq %d missing", s)
		}
	}
	rep, err := svc.Verify(context.Background(), caller, tenant, time.Time{}, time.Time{})
	if err != nil || !rep.OK() || rep.EntriesChecked != n {
		t.Fatalf("verify: %+v %v", rep, err)
	}
	// The leaders run detached: once every caller has its answer they hand their slots back.
	deadline := time.Now().Add(5 * time.Second)
	for {
		svc.group.mu.Lock()
		pending, leaders := len(svc.group.pending), svc.group.leaders
		svc.group.mu.Unlock()
		if pending == 0 && leaders == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the grouper is not idle: %d pending, %d leaders", pending, leaders)
		}
		time.Sleep(time.Millisecond)
	}
}

// An event whose entry exists while its inbox row does not (the row was lost) is acknowledged
// without a second entry, alone or in a group with other events, which are recorded.
func TestAuditOnEvent_EntryWithoutInboxRowIsNotRecordedTwice(t *testing.T) {
	svc := newTestService(t, fakeDir{})
	h := newHost(t, svc)
	ctx := context.Background()
	tenant := tenancy.NewTenantID()
	old, oldBody := tenantRegistered(t, tenant, events.Meta{})
	withSource := func(e *NewEntry) { e.SourceEventID = old.ID }
	if _, _, err := svc.store.Append(ctx, sqlstore.TenantScope(tenant), []NewEntry{mkEntry("TenantRegistered", withSource)}, nil, nil); err != nil {
		t.Fatal(err) // recorded without an inbox row
	}
	if status, _, raw := h.deliver(t, "AuditOnTenantsEvent", oldBody, functions.EncodingObject, 1, nil); status != 200 {
		t.Fatalf("the already recorded event alone: %d %s", status, raw)
	}
	// Delivered in one batch with fresh events of the same tenant, it fails their group, and each is
	// then applied alone: the fresh ones are recorded once, in order, the old one not again.
	bodies := [][]byte{oldBody}
	metas := []functions.ServiceBusMetadata{{MessageID: old.ID, DeliveryCount: 2, EnqueuedTimeUTC: time.Now()}}
	for range 5 {
		ev, b := tenantRegistered(t, tenant, events.Meta{})
		bodies = append(bodies, b)
		metas = append(metas, functions.ServiceBusMetadata{MessageID: ev.ID, DeliveryCount: 1, EnqueuedTimeUTC: time.Now()})
	}
	data, md := functions.ServiceBusBatch(bodies, metas)
	status, res, raw, err := functions.Invoke(ctx, h.e, "AuditOnTenantsEvent", map[string]any{functions.ServiceBusBinding: data}, md)
	if err != nil || status != 200 || len(res.Logs) != 6 || !strings.Contains(res.Logs[0], "skipped") {
		t.Fatalf("the batch: %d %v %s %v", status, res, raw, err)
	}
	chain := readChain(t, svc.store, tenant)
	assertChain(t, chain, 6)
}

// Concurrent API appends of many tenants are committed in groups that span tenants: every caller
// gets back its own entry in its own tenant, each tenant's seqs are 1..n without gaps, and every
// tenant's chain verifies.
func TestRecord_ConcurrentAppendsOfManyTenantsChainEachTenant(t *testing.T) {
	h := newHarness(t)
	svc, err := NewService(NewPostgresStore(h.db), h.dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	const tenants, each = 24, 10
	ids := make([]tenancy.TenantID, tenants)
	for i := range ids {
		ids[i], _ = h.tenant()
	}
	var wg sync.WaitGroup
	got := make([]Entry, tenants*each)
	errs := make([]error, tenants*each)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tenant := ids[i%tenants]
			got[i], errs[i] = svc.Record(context.Background(), Caller{Subject: "group-test", Tenant: tenant}, tenant, RecordInput{
				Actor: Actor{Type: "user", ID: "u"}, Action: fmt.Sprintf("act.%03d", i), Resource: Resource{Type: "doc", ID: "d"}})
		}()
	}
	wg.Wait()
	seen := map[tenancy.TenantID]map[int64]bool{}
	for i := range got {
		if errs[i] != nil {
			t.Fatalf("append %d: %v", i, errs[i])
		}
		if got[i].Action != fmt.Sprintf("act.%03d", i) || got[i].TenantID != ids[i%tenants] {
			t.Fatalf("caller %d got entry %q of %s: results crossed between callers", i, got[i].Action, got[i].TenantID)
		}
		if seen[got[i].TenantID] == nil {
			seen[got[i].TenantID] = map[int64]bool{}
		}
		if seen[got[i].TenantID][got[i].Seq] {
			t.Fatalf("seq %d given twice in tenant %s", got[i].Seq, got[i].TenantID)
		}
		seen[got[i].TenantID][got[i].Seq] = true
	}
	for _, tenant := range ids {
		for s := int64(1); s <= each; s++ {
			if !seen[tenant][s] {
				t.Fatalf("tenant %s: seq %d missing", tenant, s)
			}
		}
		rep, err := svc.Verify(context.Background(), Caller{Subject: "group-test", Tenant: tenant}, tenant, time.Time{}, time.Time{})
		if err != nil || !rep.OK() || rep.EntriesChecked != each {
			t.Fatalf("verify %s: %+v %v", tenant, rep, err)
		}
	}
}
