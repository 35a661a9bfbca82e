package cache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// leasePrefix starts the placeholder GetOrLoadConsistent writes while it loads a key. No JSON
// value starts with it, so a reader can never mistake a lease for a value.
const leasePrefix = "\x00lease:"

// LeaseTTL bounds how long a lease placeholder lives when its loader dies before storing.
const LeaseTTL = 10 * time.Second

// storeIfLeased stores ARGV[2] with a TTL of ARGV[3] ms at KEYS[1] only if the key still holds the
// lease ARGV[1]: an Invalidate (DEL) between the lease and the store removed it, and then the
// value loaded may predate the change that invalidated it.
var storeIfLeased = redis.NewScript(`if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
return false`)

// GetOrLoadConsistent is GetOrLoad for values that must never be served stale once the
// Invalidate of the change that altered them has returned — by this process or any other sharing
// the Redis (an authorization decision, say). GetOrLoad can store a value its loader read just
// before a concurrent change committed (after that change's Invalidate ran), and shares one load
// among concurrent callers, so a caller that arrives after an invalidation may get a load that
// began before it. Here, instead:
//
//   - a hit is one GET, as in GetOrLoad;
//   - on a miss the caller first takes a lease (SET NX of a unique placeholder, LeaseTTL), then
//     loads, then stores the value only if its lease is still there (a script: compare, then
//     set). Invalidate deletes the key, lease and all, so a load that raced with a change never
//     lands in Redis;
//   - a caller that finds another's lease, or cannot take one, loads for itself and stores
//     nothing: no load is shared, so each answer comes from a read that began after the caller
//     did.
//
// Redis errors never fail the call (the value is loaded), as in GetOrLoad; while Redis is down or
// invalidations are pending every call loads.
func GetOrLoadConsistent[T any](ctx context.Context, c *Cache, key string, ttl time.Duration, load func(context.Context) (T, error)) (T, error) {
	if c == nil || !c.available() {
		return load(ctx)
	}
	raw, err := c.rdb.Get(ctx, key).Result()
	switch {
	case err == nil && !strings.HasPrefix(raw, leasePrefix):
		var v T
		if jerr := json.Unmarshal([]byte(raw), &v); jerr == nil {
			c.hits.Add(1)
			return v, nil
		}
		// An older shape: a miss. Its value is replaced only after an Invalidate (or its TTL),
		// since the lease below cannot be taken over an existing value.
	case err == nil: // another caller's lease: it is loading
	case errors.Is(err, redis.Nil):
	default:
		c.fail(ctx, "get", err)
		c.misses.Add(1)
		return load(ctx)
	}
	c.misses.Add(1)
	var lease string
	if errors.Is(err, redis.Nil) {
		var b [16]byte
		_, _ = rand.Read(b[:])
		lease = leasePrefix + hex.EncodeToString(b[:])
		ok, serr := c.rdb.SetNX(ctx, key, lease, LeaseTTL).Result()
		if serr != nil {
			c.fail(ctx, "setnx", serr)
		}
		if !ok {
			lease = ""
		}
	}
	c.loads.Add(1)
	v, err := load(ctx)
	if err != nil || lease == "" {
		if err != nil && lease != "" {
			// Leave no lease behind a failed load: the next caller takes its own at once.
			c.dropLease(context.WithoutCancel(ctx), key, lease)
		}
		return v, err
	}
	if enc, jerr := json.Marshal(v); jerr == nil && c.available() {
		sctx := context.WithoutCancel(ctx)
		if serr := storeIfLeased.Run(sctx, c.rdb, []string{key}, lease, enc, ttl.Milliseconds()).Err(); serr != nil && !errors.Is(serr, redis.Nil) {
			c.fail(sctx, "set", serr)
		}
	}
	return v, nil
}

// dropLease deletes key if it still holds lease.
var dropLeaseScript = redis.NewScript(`if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`)

func (c *Cache) dropLease(ctx context.Context, key, lease string) {
	if err := dropLeaseScript.Run(ctx, c.rdb, []string{key}, lease).Err(); err != nil && !errors.Is(err, redis.Nil) {
		c.fail(ctx, "del", err)
	}
}
