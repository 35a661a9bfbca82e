package auth

import (
	"sync"
)

// cacheKey is the SHA-256 of a raw token.
type cacheKey = [32]byte

type cacheEntry[V any] struct {
	v V
	// deadline is the UnixNano instant from which the token is rejected as expired (exp + skew).
	deadline int64
}

// Cache tuning: maxShards bounds lock contention; evictSample entries are examined per eviction.
const (
	maxShards   = 32
	evictSample = 8
)

// TokenCache is a bounded, concurrency-safe map from a raw token's SHA-256 to what verifying it
// established (the API verifier's Principal, the authorization server's introspection answer). It is split
// into a power-of-two number of shards, each a map under its own RWMutex with a fixed capacity; the
// total capacity never exceeds the configured size. When a shard is full, an insert samples up to
// evictSample entries (Go's randomized map iteration order), deletes every expired one among them,
// and if none had expired deletes the one closest to expiry. Entries are never returned past their
// deadline: get re-checks it on every hit.
type TokenCache[V any] struct {
	shards   []cacheShard[V]
	mask     uint32
	perShard int
}

type cacheShard[V any] struct {
	mu sync.RWMutex
	m  map[cacheKey]cacheEntry[V]
	_  [32]byte // pads the 32-byte lock+map to a 64-byte cache line, so shards do not share one
}

// tokenCache is the verifier's cache of principals.
type tokenCache = TokenCache[Principal]

// newTokenCache returns the verifier's cache of at most size principals, or nil when size <= 0.
func newTokenCache(size int) *tokenCache { return NewTokenCache[Principal](size) }

// NewTokenCache returns a cache holding at most size entries, or nil when size <= 0.
func NewTokenCache[V any](size int) *TokenCache[V] {
	if size <= 0 {
		return nil
	}
	n := 1
	for n*2 <= maxShards && n*2 <= size {
		n *= 2
	}
	c := &TokenCache[V]{shards: make([]cacheShard[V], n), mask: uint32(n - 1), perShard: size / n}
	for i := range c.shards {
		c.shards[i].m = make(map[cacheKey]cacheEntry[V])
	}
	return c
}

func (c *TokenCache[V]) shard(k *cacheKey) *cacheShard[V] {
	// The key is a SHA-256 digest, so any byte is uniformly distributed.
	return &c.shards[uint32(k[0])&c.mask]
}

// Get returns the entry for k. found reports whether k was present; live reports whether it is
// still before its deadline at now (Unix nanoseconds). An entry found past its deadline is removed.
func (c *TokenCache[V]) Get(k *[32]byte, now int64) (v V, found, live bool) {
	s := c.shard(k)
	s.mu.RLock()
	e, ok := s.m[*k]
	s.mu.RUnlock()
	if !ok {
		return v, false, false
	}
	if now >= e.deadline {
		s.mu.Lock()
		if cur, still := s.m[*k]; still && cur.deadline == e.deadline {
			delete(s.m, *k)
		}
		s.mu.Unlock()
		return v, true, false
	}
	return e.v, true, true
}

// Put stores v under k until deadline (Unix nanoseconds), evicting if the shard is full.
func (c *TokenCache[V]) Put(k *[32]byte, v V, deadline, now int64) {
	s := c.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, exists := s.m[*k]; !exists && len(s.m) >= c.perShard {
		s.evict(now)
	}
	s.m[*k] = cacheEntry[V]{v: v, deadline: deadline}
}

// Delete removes the entry for k (one that no longer holds for another reason than its
// deadline, such as a withdrawn signing key).
func (c *TokenCache[V]) Delete(k *[32]byte) {
	s := c.shard(k)
	s.mu.Lock()
	delete(s.m, *k)
	s.mu.Unlock()
}

// evict removes at least one entry; the caller holds s.mu for writing and len(s.m) > 0.
func (s *cacheShard[V]) evict(now int64) {
	var (
		victim    cacheKey
		victimDL  int64
		haveVict  bool
		removed   bool
		inspected int
	)
	for k, e := range s.m {
		if e.deadline <= now {
			delete(s.m, k) // deleting during range is allowed
			removed = true
		} else if !haveVict || e.deadline < victimDL {
			victim, victimDL, haveVict = k, e.deadline, true
		}
		inspected++
		if inspected >= evictSample {
			break
		}
	}
	if !removed && haveVict {
		delete(s.m, victim)
	}
}

// Len returns the number of entries.
func (c *TokenCache[V]) Len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}

// capacity returns the maximum number of entries.
func (c *TokenCache[V]) capacity() int { return c.perShard * len(c.shards) }
