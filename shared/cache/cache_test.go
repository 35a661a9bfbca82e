package cache

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"spine/shared/testenv"
)

func newCache(t *testing.T, url string) (*Cache, *redis.Client) {
	t.Helper()
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout, opt.MaxRetries = 100*time.Millisecond, 100*time.Millisecond, 100*time.Millisecond, 0
	rdb := redis.NewClient(opt)
	c := New(rdb, Config{Cooldown: 50 * time.Millisecond, RetryInterval: 20 * time.Millisecond}, nil)
	t.Cleanup(func() { c.Close(); _ = rdb.Close() })
	return c, rdb
}

type rec struct {
	Name string
	N    int
}

func TestKeys_CarryTenantHashTag(t *testing.T) {
	if got := TenantKey("0193", "tenants", "tenant", "v1"); got != "{t:0193}:tenants:tenant:v1" {
		t.Fatal(got)
	}
	if got := PlatformKey("tenants", "slug", "acme"); got != "{p}:tenants:slug:acme" {
		t.Fatal(got)
	}
}

func TestGetOrLoad_MissThenHit(t *testing.T) {
	r := testenv.StartRedis(t)
	c, rdb := newCache(t, r.URL())
	ctx := context.Background()
	var loads atomic.Int32
	load := func(context.Context) (rec, error) { loads.Add(1); return rec{"a", 1}, nil }
	for i := 0; i < 3; i++ {
		v, err := GetOrLoad(ctx, c, "k1", time.Minute, load)
		if err != nil || v != (rec{"a", 1}) {
			t.Fatalf("%v %v", v, err)
		}
	}
	if loads.Load() != 1 {
		t.Fatalf("loads = %d, want 1", loads.Load())
	}
	if ttl := rdb.TTL(ctx, "k1").Val(); ttl <= 0 || ttl > time.Minute {
		t.Fatalf("ttl = %v: every cached value must expire", ttl)
	}
}

func TestGetOrLoad_ConcurrentMissesShareOneLoad(t *testing.T) {
	r := testenv.StartRedis(t)
	c, _ := newCache(t, r.URL())
	var loads atomic.Int32
	release := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = GetOrLoad(context.Background(), c, "sf", time.Minute, func(context.Context) (int, error) {
				loads.Add(1)
				<-release
				return 7, nil
			})
		}()
	}
	time.Sleep(50 * time.Millisecond)
	close(release)
	wg.Wait()
	if loads.Load() != 1 {
		t.Fatalf("loads = %d, want 1 (single flight)", loads.Load())
	}
}

func TestGetOrLoad_LoadErrorIsNotCached(t *testing.T) {
	r := testenv.StartRedis(t)
	c, rdb := newCache(t, r.URL())
	boom := errors.New("boom")
	if _, err := GetOrLoad(context.Background(), c, "e", time.Minute, func(context.Context) (int, error) { return 0, boom }); !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if n := rdb.Exists(context.Background(), "e").Val(); n != 0 {
		t.Fatal("an error was cached")
	}
}

// Redis stopped mid-test: reads keep succeeding from the loader, and after Redis returns the
// cache refills.
func TestRedisDown_ReadsFallBackAndCacheRefills(t *testing.T) {
	r := testenv.StartRedis(t)
	c, _ := newCache(t, r.URL())
	ctx := context.Background()
	var loads atomic.Int32
	load := func(context.Context) (int, error) { loads.Add(1); return 42, nil }
	if v, _ := GetOrLoad(ctx, c, "k", time.Minute, load); v != 42 {
		t.Fatal(v)
	}
	r.Stop()
	for i := 0; i < 5; i++ {
		if v, err := GetOrLoad(ctx, c, "k", time.Minute, load); err != nil || v != 42 {
			t.Fatalf("read during outage: %v %v", v, err)
		}
	}
	if c.Stats().RedisErrors == 0 {
		t.Fatal("the outage went unnoticed")
	}
	r.Start()
	time.Sleep(60 * time.Millisecond) // the cooldown
	before := loads.Load()
	_, _ = GetOrLoad(ctx, c, "k", time.Minute, load) // refill
	hits := c.Stats().Hits
	if v, _ := GetOrLoad(ctx, c, "k", time.Minute, load); v != 42 || c.Stats().Hits != hits+1 || loads.Load() != before+1 {
		t.Fatalf("the cache did not refill: hits %d→%d, loads %d→%d", hits, c.Stats().Hits, before, loads.Load())
	}
}

// An invalidation that fails during a blip (Redis frozen, keeping its stale value) is retried,
// and Redis is not read until it has landed: the stale value is never served.
func TestRedisBlip_MissedInvalidationIsRetriedBeforeReads(t *testing.T) {
	r := testenv.StartRedis(t)
	c, _ := newCache(t, r.URL())
	ctx := context.Background()
	var value atomic.Int32
	value.Store(1)
	load := func(context.Context) (int32, error) { return value.Load(), nil }
	if v, _ := GetOrLoad(ctx, c, "k", time.Minute, load); v != 1 {
		t.Fatal(v)
	}
	r.Pause()
	value.Store(2) // the owner's write commits while Redis is frozen
	c.Invalidate(ctx, "k")
	if c.Stats().PendingInvalidations != 1 {
		t.Fatalf("pending = %d, want the failed invalidation queued", c.Stats().PendingInvalidations)
	}
	if v, err := GetOrLoad(ctx, c, "k", time.Minute, load); err != nil || v != 2 {
		t.Fatalf("during the blip: %v %v, want 2 from the store", v, err)
	}
	r.Resume()
	deadline := time.Now().Add(5 * time.Second)
	for c.Stats().PendingInvalidations != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if c.Stats().PendingInvalidations != 0 {
		t.Fatal("the missed invalidation was never retried")
	}
	time.Sleep(60 * time.Millisecond)
	for i := 0; i < 3; i++ {
		if v, _ := GetOrLoad(ctx, c, "k", time.Minute, load); v != 2 {
			t.Fatalf("after the blip: %v, want 2 (the stale value was served)", v)
		}
	}
}

func TestNilCache_AlwaysLoads(t *testing.T) {
	var c *Cache
	v, err := GetOrLoad(context.Background(), c, "k", time.Minute, func(context.Context) (int, error) { return 3, nil })
	if err != nil || v != 3 {
		t.Fatal(v, err)
	}
	c.Invalidate(context.Background(), "k")
}

// GetOrLoadCodec with Bytes stores the loaded bytes as they are and answers them on a hit
// without a load.
func TestGetOrLoadCodec_BytesAreStoredAsLoaded(t *testing.T) {
	r := testenv.StartRedis(t)
	c, rdb := newCache(t, r.URL())
	ctx := context.Background()
	var loads atomic.Int32
	load := func(context.Context) ([]byte, error) { loads.Add(1); return []byte("body\n"), nil }
	for i := 0; i < 3; i++ {
		if v, err := GetOrLoadCodec(ctx, c, "raw", time.Minute, Bytes{}, load); err != nil || string(v) != "body\n" {
			t.Fatalf("read %d: %q %v", i, v, err)
		}
	}
	if loads.Load() != 1 {
		t.Fatalf("loads = %d, want 1", loads.Load())
	}
	if got := rdb.Get(ctx, "raw").Val(); got != "body\n" {
		t.Fatalf("Redis holds %q", got)
	}
}

// prefixed is a Codec whose values carry a format mark, as a rendered answer's do.
type prefixed struct{}

func (prefixed) Encode(s string) ([]byte, error) { return []byte("p1:" + s), nil }
func (prefixed) Decode(b []byte) (string, error) {
	if len(b) < 3 || string(b[:3]) != "p1:" {
		return "", errors.New("not p1")
	}
	return string(b[3:]), nil
}

// A value the codec refuses (another release's shape) is a miss: loaded, and overwritten in Redis.
func TestGetOrLoadCodec_ValueTheCodecRefusesIsReloadedAndOverwritten(t *testing.T) {
	r := testenv.StartRedis(t)
	c, rdb := newCache(t, r.URL())
	ctx := context.Background()
	if err := rdb.Set(ctx, "k", `{"old":"shape"}`, time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	load := func(context.Context) (string, error) { return "new", nil }
	if v, err := GetOrLoadCodec(ctx, c, "k", time.Minute, prefixed{}, load); err != nil || v != "new" {
		t.Fatalf("%q %v", v, err)
	}
	if got := rdb.Get(ctx, "k").Val(); got != "p1:new" {
		t.Fatalf("Redis holds %q, want the new shape", got)
	}
}
