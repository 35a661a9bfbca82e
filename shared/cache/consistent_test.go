package cache

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"spine/shared/testenv"
)

func TestGetOrLoadConsistent_MissThenHit(t *testing.T) {
	r := testenv.StartRedis(t)
	c, rdb := newCache(t, r.URL())
	ctx := context.Background()
	var loads atomic.Int32
	load := func(context.Context) ([]string, error) { loads.Add(1); return []string{"a.read"}, nil }
	for i := 0; i < 3; i++ {
		v, err := GetOrLoadConsistent(ctx, c, "p1", time.Minute, load)
		if err != nil || len(v) != 1 || v[0] != "a.read" {
			t.Fatalf("%v %v", v, err)
		}
	}
	if loads.Load() != 1 {
		t.Fatalf("loads = %d, want 1", loads.Load())
	}
	if ttl := rdb.TTL(ctx, "p1").Val(); ttl <= 0 || ttl > time.Minute {
		t.Fatalf("ttl = %v", ttl)
	}
}

// The race GetOrLoad cannot rule out: a load reads the store, a change commits and invalidates,
// then the load stores what it read before the change. Here the invalidation removes the load's
// lease, so its value is returned to its own caller but never stored: the next read loads again.
func TestGetOrLoadConsistent_LoadRacingAnInvalidationIsNotStored(t *testing.T) {
	r := testenv.StartRedis(t)
	c, rdb := newCache(t, r.URL())
	ctx := context.Background()
	v, err := GetOrLoadConsistent(ctx, c, "p2", time.Minute, func(context.Context) (string, error) {
		if raw := rdb.Get(ctx, "p2").Val(); !strings.HasPrefix(raw, leasePrefix) {
			t.Errorf("no lease while loading: %q", raw)
		}
		c.Invalidate(ctx, "p2") // the change commits and invalidates while this load is under way
		return "before", nil
	})
	if err != nil || v != "before" {
		t.Fatalf("%v %v", v, err)
	}
	if n := rdb.Exists(ctx, "p2").Val(); n != 0 {
		t.Fatalf("the raced value was stored: %q", rdb.Get(ctx, "p2").Val())
	}
	v, err = GetOrLoadConsistent(ctx, c, "p2", time.Minute, func(context.Context) (string, error) { return "after", nil })
	if err != nil || v != "after" || rdb.Get(ctx, "p2").Val() != `"after"` {
		t.Fatalf("%v %v %q", v, err, rdb.Get(ctx, "p2").Val())
	}
}

// A caller that finds another caller's lease does not wait for or share that load (which may
// have read before the caller's own request began): it loads for itself and stores nothing.
func TestGetOrLoadConsistent_AnotherLoadersLeaseIsNotShared(t *testing.T) {
	r := testenv.StartRedis(t)
	c, rdb := newCache(t, r.URL())
	ctx := context.Background()
	rdb.Set(ctx, "p3", leasePrefix+"someone-else", time.Minute)
	v, err := GetOrLoadConsistent(ctx, c, "p3", time.Minute, func(context.Context) (int, error) { return 7, nil })
	if err != nil || v != 7 {
		t.Fatalf("%v %v", v, err)
	}
	if got := rdb.Get(ctx, "p3").Val(); got != leasePrefix+"someone-else" {
		t.Fatalf("the other loader's lease was replaced by %q", got)
	}
}

func TestGetOrLoadConsistent_FailedLoadLeavesNoLease(t *testing.T) {
	r := testenv.StartRedis(t)
	c, rdb := newCache(t, r.URL())
	ctx := context.Background()
	if _, err := GetOrLoadConsistent(ctx, c, "p4", time.Minute, func(context.Context) (int, error) { return 0, context.DeadlineExceeded }); err == nil {
		t.Fatal("the load's error was lost")
	}
	if n := rdb.Exists(ctx, "p4").Val(); n != 0 {
		t.Fatalf("a lease was left behind: %q", rdb.Get(ctx, "p4").Val())
	}
}

// Redis down: every call loads, and none fails.
func TestGetOrLoadConsistent_RedisDownLoads(t *testing.T) {
	r := testenv.StartRedis(t)
	c, _ := newCache(t, r.URL())
	ctx := context.Background()
	r.Stop()
	var loads atomic.Int32
	for i := 0; i < 3; i++ {
		v, err := GetOrLoadConsistent(ctx, c, "p5", time.Minute, func(context.Context) (int, error) { loads.Add(1); return 5, nil })
		if err != nil || v != 5 {
			t.Fatalf("%v %v", v, err)
		}
	}
	if loads.Load() != 3 {
		t.Fatalf("loads = %d, want 3", loads.Load())
	}
	var nilCache *Cache
	if v, err := GetOrLoadConsistent(ctx, nilCache, "p5", time.Minute, func(context.Context) (int, error) { return 6, nil }); err != nil || v != 6 {
		t.Fatalf("nil cache: %v %v", v, err)
	}
}
