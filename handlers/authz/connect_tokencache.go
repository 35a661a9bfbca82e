package authz

import (
	"crypto/sha256"
	"time"

	"spine/shared/auth"
)

// verifiedTokens remembers the access tokens verifyAccess accepted, by the SHA-256 of the raw
// token, so a token presented again (a resource server introspecting it per request, say) skips
// the ES256 signature check and the claims' decoding — in the API verifier's own bounded cache
// (auth.TokenCache). An entry is served only
//
//   - before the token's exp (what op's verifier checks: valid while now < exp), and
//   - while the key that signed it (its kid) is still among the ring's published keys: a key
//     withdrawn from the ring takes its tokens with it at once, as a fresh verification would.
//
// Everything else verifyAccess checks depends on the token's bytes only (issuer, audience, the
// claims), so a hit answers what a fresh verification would. Revocation is not part of it: the
// callers ask the store every time.
type verifiedTokens struct {
	c *auth.TokenCache[*accessToken]
}

// maxVerifiedTokens bounds the cache (as shared/auth's): ~530 bytes per entry with its rendered
// answer (measured), so at most ~5 MB.
const maxVerifiedTokens = 10000

func newVerifiedTokens(bound int) *verifiedTokens {
	return &verifiedTokens{c: auth.NewTokenCache[*accessToken](max(bound, 1))}
}

// get returns the entry for key if it is still live at now and its signing key is still
// published.
func (v *verifiedTokens) get(key *[sha256.Size]byte, now int64, published func(kid string) bool) (*accessToken, bool) {
	at, _, live := v.c.Get(key, now)
	if !live {
		return nil, false
	}
	if !published(at.kid) {
		v.c.Delete(key)
		return nil, false
	}
	return at, true
}

// put stores at under key until its deadline.
func (v *verifiedTokens) put(key *[sha256.Size]byte, at *accessToken, now int64) {
	v.c.Put(key, at, at.deadline, now)
}

// len counts the entries (tests).
func (v *verifiedTokens) len() int { return v.c.Len() }

// unixNano is the verified-token cache's clock: op checks exp against the wall clock.
func unixNano() int64 { return time.Now().UnixNano() }
