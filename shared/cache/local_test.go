package cache

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"spine/shared/testenv"
)

// newLocalCache is newCache with local copies on.
func newLocalCache(t *testing.T, url string) *Cache {
	t.Helper()
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout, opt.MaxRetries = 100*time.Millisecond, 100*time.Millisecond, 100*time.Millisecond, 0
	rdb := redis.NewClient(opt)
	c := New(rdb, Config{Cooldown: 50 * time.Millisecond, RetryInterval: 20 * time.Millisecond, Local: time.Minute}, nil)
	t.Cleanup(func() { c.Close(); _ = rdb.Close() })
	return c
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5 s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A local copy is served without Redis until the key is invalidated on any instance: the
// invalidation published by one instance drops the copy of every other.
func TestGetOrLoadLocal_InvalidationOnOneInstanceDropsEveryCopy(t *testing.T) {
	r := testenv.StartRedis(t)
	a, b := newLocalCache(t, r.URL()), newLocalCache(t, r.URL())
	waitFor(t, "both subscriptions confirmed", func() bool { return a.localLive.Load() && b.localLive.Load() })
	ctx := context.Background()
	var version atomic.Int64
	version.Store(1)
	var loads atomic.Int32
	load := func(context.Context) (int64, error) { loads.Add(1); return version.Load(), nil }
	read := func(c *Cache) int64 {
		t.Helper()
		v, err := GetOrLoadLocal(ctx, c, "k", time.Minute, JSON[int64]{}, load)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if v := read(b); v != 1 {
		t.Fatalf("first read = %d", v)
	}
	redisHits := b.Stats().Hits
	for range 3 {
		if v := read(b); v != 1 {
			t.Fatalf("cached read = %d", v)
		}
	}
	if st := b.Stats(); st.LocalHits != 3 || st.Hits != redisHits || loads.Load() != 1 {
		t.Fatalf("local hits %d, Redis hits %d → %d, loads %d: want 3 local hits and nothing else", st.LocalHits, redisHits, st.Hits, loads.Load())
	}
	version.Store(2) // the write commits, then its owner invalidates, on the other instance
	a.Invalidate(ctx, "k")
	waitFor(t, "the other instance's copy dropped", func() bool { return read(b) == 2 })
	if v := read(a); v != 2 {
		t.Fatalf("the invalidating instance read %d", v)
	}
}

// While the invalidation subscription is down (Redis unreachable) nothing is served locally: the
// copies are cleared, so a change made meanwhile is read from the loader, never from a stale copy.
func TestGetOrLoadLocal_NothingServedLocallyWhileTheSubscriptionIsDown(t *testing.T) {
	r := testenv.StartRedis(t)
	c := newLocalCache(t, r.URL())
	waitFor(t, "subscription confirmed", c.localLive.Load)
	ctx := context.Background()
	var version atomic.Int64
	version.Store(1)
	load := func(context.Context) (int64, error) { return version.Load(), nil }
	if v, _ := GetOrLoadLocal(ctx, c, "k", time.Minute, JSON[int64]{}, load); v != 1 {
		t.Fatal(v)
	}
	r.Stop()
	waitFor(t, "the lost subscription noticed", func() bool { return !c.localLive.Load() })
	version.Store(2) // changed while this instance could hear no invalidation
	if v, err := GetOrLoadLocal(ctx, c, "k", time.Minute, JSON[int64]{}, load); err != nil || v != 2 {
		t.Fatalf("read while the subscription is down = %d, %v; want 2 from the loader", v, err)
	}
	r.Start()
	waitFor(t, "subscription confirmed again", c.localLive.Load)
}
