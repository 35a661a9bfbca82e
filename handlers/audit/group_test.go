package audit

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
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
	if len(svc.group.queues) != 0 {
		t.Fatalf("idle tenants left queues behind: %d", len(svc.group.queues))
	}
}
