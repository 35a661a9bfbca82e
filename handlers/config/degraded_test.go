package config

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"spine/shared/tenancy"
)

// The sets compiled without edition defaults while the entitlements source fails are kept in
// process for degradedTTL: an expired one is dropped when another is stored, so the map holds at
// most the sets degraded within the last degradedTTL, not every tenant ever evaluated in an outage.
func TestFlagSet_DegradedSetsExpiredAreDroppedOnInsert(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.svc.ents = &failingEntitlements{}
	var mu sync.Mutex
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	h.svc.cfg.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	key := newKey("degraded")
	h.must(http.StatusCreated, "PUT", "/api/feature-flags/"+key, h.admin(), boolFlagBody())
	count := func() int {
		n := 0
		h.svc.degraded.Range(func(any, any) bool { n++; return true })
		return n
	}
	for range 3 {
		if _, err := h.svc.FlagSet(t.Context(), tenancy.NewTenantID()); err != nil {
			t.Fatal(err)
		}
	}
	if n := count(); n != 3 {
		t.Fatalf("%d degraded sets within the TTL, want 3", n)
	}
	mu.Lock()
	now = now.Add(degradedTTL + time.Millisecond)
	mu.Unlock()
	if _, err := h.svc.FlagSet(t.Context(), tenancy.NewTenantID()); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 1 {
		t.Fatalf("%d degraded sets after the others expired, want 1 (the new one)", n)
	}
}
