package auth

import (
	"sync"
)

// cacheKey is the SHA-256 of a raw token.
type cacheKey = [32]byte

type cacheEntry struct {
	p Principal
	// deadline is the UnixNano instant from which the token is rejected as expired (exp + skew).
	deadline int64
}

// Cache tuning: maxShards bounds lock contention; evictSample entries are examined per eviction.
const (
	maxShards   = 32
	evictSample = 8
)

// tokenCache is a bounded, concurrency-safe map from token hash to verified Principal. It is split
// into a power-of-two number of shards, each a map under its own RWMutex with a fixed capacity; the
// total capacity never exceeds the configured size. When a shard is full, an insert samples up to
// evictSample entries (Go's randomized map iteration order), deletes every expired one among them,
// and if none had expired deletes the one closest to expiry. Entries are never returned past their
// deadline: get re-checks it on every hit.
type tokenCache struct {
	shards   []cacheShard
	mask     uint32
	perShard int
}

type cacheShard struct {
	mu sync.RWMutex
	m  map[cacheKey]cacheEntry
	_  [32]byte // pads the 32-byte lock+map to a 64-byte cache line, so shards do not share one
}

// newTokenCache returns a cache holding at most size entries, or nil when size <= 0.
func newTokenCache(size int) *tokenCache {
	if size <= 0 {
		return nil
	}
	n := 1
	for n*2 <= maxShards && n*2 <= size {
		n *= 2
	}
	c := &tokenCache{shards: make([]cacheShard, n), mask: uint32(n - 1), perShard: size / n}
	for i := range c.shards {
		c.shards[i].m = make(map[cacheKey]cacheEntry)
	}
	return c
}

func (c *tokenCache) shard(k *cacheKey) *cacheShard {
	// The key is a SHA-256 digest, so any byte is uniformly distributed.
	return &c.shards[uint32(k[0])&c.mask]
}

// get returns the entry for k. found reports whether k was present; live reports whether it is still
// before its deadline at now. An entry found past its deadline is removed.
func (c *tokenCache) get(k *cacheKey, now int64) (p Principal, found, live bool) {
	s := c.shard(k)
	s.mu.RLock()
	e, ok := s.m[*k]
	s.mu.RUnlock()
	if !ok {
		return Principal{}, false, false
	}
	if now >= e.deadline {
		s.mu.Lock()
		if cur, still := s.m[*k]; still && cur.deadline == e.deadline {
			delete(s.m, *k)
		}
		s.mu.Unlock()
		return Principal{}, true, false
	}
	return e.p, true, true
}

// put stores p under k until deadline, evicting if the shard is full.
func (c *tokenCache) put(k *cacheKey, p Principal, deadline, now int64) {
	s := c.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, exists := s.m[*k]; !exists && len(s.m) >= c.perShard {
		s.evict(now)
	}
	s.m[*k] = cacheEntry{p: p, deadline: deadline}
}

// evict removes at least one entry; the caller holds s.mu for writing and len(s.m) > 0.
func (s *cacheShard) evict(now int64) {
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

// len returns the number of entries (for tests).
func (c *tokenCache) len() int {
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
func (c *tokenCache) capacity() int { return c.perShard * len(c.shards) }
