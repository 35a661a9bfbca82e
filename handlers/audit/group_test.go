package audit

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

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
	if len(svc.group.pending) != 0 || svc.group.leaders != 0 {
		t.Fatalf("the grouper is not idle: %d pending, %d leaders", len(svc.group.pending), svc.group.leaders)
	}
}

// A failed event group falls back to recording each event alone: the event that broke the group
// comes out a duplicate, the others are recorded.
func TestEventGrouper_FailedGroupFallsBackEventByEvent(t *testing.T) {
	store := NewPostgresStore(openRuntime(t))
	ctx := context.Background()
	tenant := tenancy.NewTenantID()
	recorded := uuid.Must(uuid.NewV7()).String()
	withSource := func(id string) func(*NewEntry) { return func(e *NewEntry) { e.SourceEventID = id } }
	if _, _, err := store.Append(ctx, sqlstore.TenantScope(tenant), []NewEntry{mkEntry("Old", withSource(recorded))}, nil, nil); err != nil {
		t.Fatal(err) // recorded without an inbox row: a group holding it fails as a whole
	}
	fresh := uuid.Must(uuid.NewV7()).String()
	g := &eventGrouper{store: store}
	reqs := []*eventReq{
		{item: EventItem{Tenant: tenant, Entry: mkEntry("Old", withSource(recorded)), Claim: InboxClaim{Consumer: Consumer, EventID: recorded, EventType: "Old"}}, done: make(chan eventRes, 1)},
		{item: EventItem{Tenant: tenant, Entry: mkEntry("New", withSource(fresh)), Claim: InboxClaim{Consumer: Consumer, EventID: fresh, EventType: "New"}}, done: make(chan eventRes, 1)},
	}
	g.pending, g.leaders = reqs, 1
	g.lead(ctx)
	old, nw := <-reqs[0].done, <-reqs[1].done
	if old.err != nil || !old.out.Duplicate {
		t.Fatalf("the already recorded event: %+v", old)
	}
	if nw.err != nil || nw.out.Duplicate || nw.out.Entry.Action != "New" || nw.out.Entry.Seq != 2 {
		t.Fatalf("the fresh event: %+v", nw)
	}
	if g.leaders != 0 || len(g.pending) != 0 {
		t.Fatal("the leader did not hand back the queue")
	}
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
