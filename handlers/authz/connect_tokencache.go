package authz

import (
	"crypto/sha256"
	"sync"
	"time"
)

// verifiedTokens remembers the access tokens verifyAccess accepted, by the SHA-256 of the raw
// token, so a token presented again (a resource server introspecting it per request, say) skips
// the ES256 signature check and the claims' decoding, as the API's own verifier does
// (shared/auth). An entry is served only
//
//   - before the token's exp (what op's verifier checks: valid while now < exp), and
//   - while the key that signed it (its kid) is still among the ring's published keys: a key
//     withdrawn from the ring takes its tokens with it at once, as a fresh verification would.
//
// Everything else verifyAccess checks depends on the token's bytes only (issuer, audience, the
// claims), so a hit answers what a fresh verification would. Revocation is not part of it: the
// callers ask the store every time. Bounded: at most max entries, in shards; a full shard drops
// its expired entries, or a sampled one closest to expiry.
type verifiedTokens struct {
	shards   [tokenShards]tokenShard
	perShard int
}

const (
	tokenShards = 16
	// maxVerifiedTokens bounds the cache (as shared/auth's): ~530 bytes per entry with its
	// rendered answer (measured), so at most ~5 MB.
	maxVerifiedTokens = 10000
	tokenEvictSample  = 8
)

type tokenShard struct {
	mu sync.RWMutex
	m  map[[sha256.Size]byte]*accessToken
}

func newVerifiedTokens(max int) *verifiedTokens {
	c := &verifiedTokens{perShard: max / tokenShards}
	if c.perShard < 1 {
		c.perShard = 1
	}
	for i := range c.shards {
		c.shards[i].m = map[[sha256.Size]byte]*accessToken{}
	}
	return c
}

// get returns the entry for key if it is still live at now and its signing key is still
// published (kids: the ring's published key ids).
func (c *verifiedTokens) get(key *[sha256.Size]byte, now int64, published func(kid string) bool) (*accessToken, bool) {
	s := &c.shards[key[0]%tokenShards]
	s.mu.RLock()
	at, ok := s.m[*key]
	s.mu.RUnlock()
	if !ok {
		return nil, false
	}
	if now >= at.deadline || !published(at.kid) {
		s.mu.Lock()
		if s.m[*key] == at {
			delete(s.m, *key)
		}
		s.mu.Unlock()
		return nil, false
	}
	return at, true
}

// put stores at under key, making room in a full shard first.
func (c *verifiedTokens) put(key *[sha256.Size]byte, at *accessToken, now int64) {
	s := &c.shards[key[0]%tokenShards]
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, exists := s.m[*key]; !exists && len(s.m) >= c.perShard {
		var victim [sha256.Size]byte
		var victimDL int64
		removed, seen := false, 0
		for k, e := range s.m { // Go's map order is random: a sample
			if e.deadline <= now {
				delete(s.m, k)
				removed = true
			} else if seen == 0 || e.deadline < victimDL {
				victim, victimDL = k, e.deadline
			}
			if seen++; seen >= tokenEvictSample {
				break
			}
		}
		if !removed {
			delete(s.m, victim)
		}
	}
	s.m[*key] = at
}

// len counts the entries (tests).
func (c *verifiedTokens) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}

// unixNano is the verified-token cache's clock: op checks exp against the wall clock.
func unixNano() int64 { return time.Now().UnixNano() }
