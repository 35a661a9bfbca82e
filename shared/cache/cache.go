// Package cache is Spine's Redis cache-aside: derived, never authoritative. Every value has a TTL;
// owners invalidate keys after their write commits; concurrent misses for one key share a single
// load; and when Redis is unreachable reads fall back to the loader (slower, never wrong, never
// failing because of Redis).
package cache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/singleflight"
)

// TenantKey builds a tenant-owned key: {t:<tenantId>}:<service>:<kind>:<key>. The hash tag keeps
// one tenant's keys on one cluster slot.
func TenantKey(tenantID, service, kind, key string) string {
	return "{t:" + tenantID + "}:" + service + ":" + kind + ":" + key
}

// PlatformKey builds a platform-level key: {p}:<service>:<kind>:<key>.
func PlatformKey(service, kind, key string) string {
	return "{p}:" + service + ":" + kind + ":" + key
}

// Config tunes a Cache. Zero fields take the documented defaults.
type Config struct {
	// Cooldown is how long Redis is bypassed after a failure, so an outage costs one timeout per
	// cooldown rather than one per request. Default 2s.
	Cooldown time.Duration
	// RetryInterval is how often failed invalidations are retried. Default 1s.
	RetryInterval time.Duration
	// MaxPendingInvalidations bounds the retry queue; beyond it the oldest are dropped (they expire
	// by TTL). Default 10000.
	MaxPendingInvalidations int
	// Local keeps the values read through GetOrLoadLocal in this process for up to Local, so a hit
	// costs no Redis round trip (0, the default: off). Every Cache with Local on subscribes to
	// InvalidationChannel and Invalidate publishes the keys it deletes there, so an invalidation
	// drops the local copies on every instance; while an instance's subscription is not confirmed
	// (Redis unreachable, reconnecting) it serves nothing locally and clears what it held. A
	// publish that fails leaves other instances' copies to expire within Local.
	Local time.Duration
	// LocalMax bounds the local copies; a full local cache is cleared. Default 10000.
	LocalMax int
}

// InvalidationChannel is the Redis channel Invalidate publishes invalidated keys on (one message
// per call, the keys separated by newlines) for the local copies of every instance.
const InvalidationChannel = "spine:cache:invalidate"

func (c Config) withDefaults() Config {
	if c.Cooldown == 0 {
		c.Cooldown = 2 * time.Second
	}
	if c.RetryInterval == 0 {
		c.RetryInterval = time.Second
	}
	if c.MaxPendingInvalidations == 0 {
		c.MaxPendingInvalidations = 10000
	}
	if c.LocalMax == 0 {
		c.LocalMax = 10000
	}
	return c
}

// Stats counts what the cache did, for metrics and tests.
type Stats struct {
	Hits, Misses, Loads, RedisErrors, Bypassed, PendingInvalidations int64
	// LocalHits are GetOrLoadLocal reads served from the process's local copy.
	LocalHits int64
}

// Cache is safe for concurrent use. A nil *Cache is valid and always loads (no Redis configured).
type Cache struct {
	rdb    redis.UniversalClient
	cfg    Config
	log    *slog.Logger
	group  singleflight.Group
	downTo atomic.Int64 // unix nanos until which Redis is bypassed

	hits, misses, loads, redisErrs, bypassed atomic.Int64

	mu       sync.Mutex
	pending  map[string]struct{}
	npending atomic.Int64 // len(pending), read without the lock on every Get
	stop     chan struct{}
	done     chan struct{}

	// The local copies (Config.Local): served only while live (the invalidation subscription is
	// confirmed); gen counts invalidations, so a value read before one is not kept after it.
	localMu   sync.RWMutex
	local     map[string]localEntry
	localGen  atomic.Uint64
	localLive atomic.Bool
	localHits atomic.Int64
	subDone   chan struct{}
}

type localEntry struct {
	v     any
	until int64 // unix nanos
}

// New returns a cache over rdb and starts its invalidation retrier; Close stops it.
func New(rdb redis.UniversalClient, cfg Config, logger *slog.Logger) *Cache {
	if logger == nil {
		logger = slog.Default()
	}
	c := &Cache{rdb: rdb, cfg: cfg.withDefaults(), log: logger,
		pending: map[string]struct{}{}, stop: make(chan struct{}), done: make(chan struct{})}
	go c.retryLoop()
	if c.cfg.Local > 0 && rdb != nil {
		c.local = map[string]localEntry{}
		c.subDone = make(chan struct{})
		go c.subscribe()
	}
	return c
}

// Close stops the retrier. It does not close the Redis client, which the caller owns.
func (c *Cache) Close() {
	if c == nil {
		return
	}
	close(c.stop)
	<-c.done
	if c.subDone != nil {
		<-c.subDone
	}
}

// Redis returns the client the cache reads through, or nil for a nil Cache (no Redis configured),
// for state that lives only in Redis and has no store to fall back to (the authorization
// server's auth requests and sign-in sessions). Such a caller fails cleanly when Redis does.
func (c *Cache) Redis() redis.UniversalClient {
	if c == nil {
		return nil
	}
	return c.rdb
}

// Stats returns a snapshot of the counters.
func (c *Cache) Stats() Stats {
	if c == nil {
		return Stats{}
	}
	c.mu.Lock()
	n := len(c.pending)
	c.mu.Unlock()
	return Stats{Hits: c.hits.Load(), Misses: c.misses.Load(), Loads: c.loads.Load(),
		RedisErrors: c.redisErrs.Load(), Bypassed: c.bypassed.Load(), PendingInvalidations: int64(n),
		LocalHits: c.localHits.Load()}
}

// Codec turns a cached value into the bytes Redis holds and back. Decode's error marks a value of
// another shape (an older release's, say): it reads as a miss and the load overwrites it.
type Codec[T any] interface {
	Encode(v T) ([]byte, error)
	Decode(b []byte) (T, error)
}

// JSON is the Codec GetOrLoad uses: encoding/json both ways.
type JSON[T any] struct{}

// Encode implements Codec.
func (JSON[T]) Encode(v T) ([]byte, error) { return json.Marshal(v) }

// Decode implements Codec.
func (JSON[T]) Decode(b []byte) (T, error) {
	var v T
	err := json.Unmarshal(b, &v)
	return v, err
}

// Bytes is the Codec of values that are bytes already (a rendered response, say): stored and
// returned as they are, with no decode on a hit. Every byte string decodes, so an owner whose
// format can change marks the format in the bytes (or uses a Codec of its own).
type Bytes struct{}

// Encode implements Codec.
func (Bytes) Encode(v []byte) ([]byte, error) { return v, nil }

// Decode implements Codec.
func (Bytes) Decode(b []byte) ([]byte, error) { return b, nil }

// GetOrLoad returns the value at key, or calls load, stores its result with ttl and returns it.
// Concurrent callers missing the same key share one load. A load error is returned as is and
// nothing is stored (negative results are the loader's business: return a value, not an error,
// to cache them). Redis errors never fail the call. Values are stored as JSON (GetOrLoadCodec
// with JSON[T]).
func GetOrLoad[T any](ctx context.Context, c *Cache, key string, ttl time.Duration, load func(context.Context) (T, error)) (T, error) {
	return GetOrLoadCodec(ctx, c, key, ttl, JSON[T]{}, load)
}

// GetOrLoadCodec is GetOrLoad with the value stored in Redis as codec encodes it: a hit costs one
// GET and codec.Decode. Concurrent callers that share a load share its value too, so a value
// holding a slice or map (Bytes) must be treated as read-only by every caller.
func GetOrLoadCodec[T any](ctx context.Context, c *Cache, key string, ttl time.Duration, codec Codec[T], load func(context.Context) (T, error)) (T, error) {
	if c != nil && c.available() {
		raw, err := c.rdb.Get(ctx, key).Bytes()
		switch {
		case err == nil:
			if v, derr := codec.Decode(raw); derr == nil {
				c.hits.Add(1)
				return v, nil
			}
			// A value we cannot decode (an older shape): treat as a miss and overwrite it.
		case errors.Is(err, redis.Nil):
		default:
			c.fail(ctx, "get", err)
		}
		c.misses.Add(1)
	}
	if c == nil {
		return load(ctx)
	}
	v, err, _ := c.group.Do(key, func() (any, error) {
		c.loads.Add(1)
		// The load runs for every waiter: detach it from one caller's cancellation.
		lctx := context.WithoutCancel(ctx)
		v, err := load(lctx)
		if err != nil {
			return v, err
		}
		if c.available() {
			if raw, eerr := codec.Encode(v); eerr == nil {
				if serr := c.rdb.Set(lctx, key, raw, ttl).Err(); serr != nil {
					c.fail(lctx, "set", serr)
				}
			}
		}
		return v, nil
	})
	if err != nil {
		var zero T
		return zero, err
	}
	return v.(T), nil
}

// Invalidate deletes keys and, with Config.Local on, drops their local copies here and publishes
// them (in the same round trip as the delete) so every other instance drops its copies too. Call it
// after the owning write commits. If Redis cannot be reached the
// keys are queued and retried in the background until they are deleted, so a blip between the
// commit and the delete cannot leave a stale value beyond the next successful retry (or its TTL).
func (c *Cache) Invalidate(ctx context.Context, keys ...string) {
	if c == nil || len(keys) == 0 {
		return
	}
	if c.local != nil {
		c.dropLocal(keys)
	}
	if c.available() {
		var err error
		if c.local == nil {
			err = c.rdb.Del(ctx, keys...).Err()
		} else {
			// One round trip: the server runs the DEL before the PUBLISH, so an instance that hears
			// the invalidation and reads Redis again finds the key gone.
			_, err = c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
				p.Del(ctx, keys...)
				p.Publish(ctx, InvalidationChannel, strings.Join(keys, "\n"))
				return nil
			})
		}
		if err == nil {
			return
		}
		c.fail(ctx, "del", err)
	}
	if c.local != nil {
		c.publish(ctx, keys) // Redis skipped or failing: the other instances must still drop their copies
	}
	c.mu.Lock()
	for _, k := range keys {
		if len(c.pending) >= c.cfg.MaxPendingInvalidations {
			for old := range c.pending { // map order is random: drop one arbitrary key
				delete(c.pending, old)
				break
			}
		}
		c.pending[k] = struct{}{}
	}
	c.npending.Store(int64(len(c.pending)))
	c.mu.Unlock()
}

func (c *Cache) retryLoop() {
	defer close(c.done)
	t := time.NewTicker(c.cfg.RetryInterval)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		c.mu.Lock()
		keys := make([]string, 0, len(c.pending))
		for k := range c.pending {
			keys = append(keys, k)
		}
		c.mu.Unlock()
		if len(keys) == 0 {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := c.rdb.Del(ctx, keys...).Err()
		cancel()
		if err != nil {
			continue
		}
		c.downTo.Store(0)
		c.mu.Lock()
		for _, k := range keys {
			delete(c.pending, k)
		}
		c.npending.Store(int64(len(c.pending)))
		c.mu.Unlock()
		c.log.Info("cache: retried invalidations", "keys", len(keys))
	}
}

// available reports whether Redis may be tried now. While invalidations are pending Redis is not
// read either: a value it holds may be one whose invalidation has not landed yet.
func (c *Cache) available() bool {
	if until := c.downTo.Load(); until != 0 && time.Now().UnixNano() < until {
		c.bypassed.Add(1)
		return false
	}
	if c.npending.Load() > 0 {
		c.bypassed.Add(1)
		return false
	}
	return true
}

func (c *Cache) fail(ctx context.Context, op string, err error) {
	c.redisErrs.Add(1)
	if errors.Is(err, context.Canceled) {
		return
	}
	first := c.downTo.Swap(time.Now().Add(c.cfg.Cooldown).UnixNano()) == 0
	if first {
		// Only the transition is logged; the error text of go-redis holds no secrets but can be long.
		c.log.WarnContext(ctx, "cache: redis unavailable, serving from the store", "op", op, "error", fmt.Sprint(err))
	}
}
