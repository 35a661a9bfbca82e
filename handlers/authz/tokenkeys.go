package authz

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"spine/shared/auth"
	"spine/shared/secrets"
)

// errNoPublishedKey: the key ring publishes no key (it never loaded one).
var errNoPublishedKey = errors.New("authz: the key ring publishes no signing key")

// unknownKidRefreshGap is the least time between two refreshes of the key ring asked by tokens
// naming a kid the ring does not publish (auth.KeyRefresher): a key another instance rotated in is
// learnt within it even when the periodic refresh keeps failing, and made-up kids reach the vault
// at most once per gap.
const unknownKidRefreshGap = time.Minute

// unknownKidRefreshTimeout bounds one such refresh (the token's check waits for it).
const unknownKidRefreshTimeout = 10 * time.Second

// keyRing is the key ring surface the verifier's key source reads (secrets.KeyRing).
type keyRing interface {
	Published() []secrets.SigningKey
	Refresh(ctx context.Context) error
}

// ringKeys is the API verifier's in-process view of the key ring (kit.KeysProvider): the public
// halves of the published keys — the current one and the previous one during a rotation — read
// from the ring's memory on every call, so a rotation or refresh is seen at once. The conversion
// is kept for as long as the ring's snapshot is the same one. A token naming a kid the ring does
// not publish refreshes the ring (RefreshKeys), at most once per unknownKidRefreshGap.
type ringKeys struct {
	ring keyRing
	last atomic.Pointer[ringKeysSnapshot]
	log  *slog.Logger
	now  func() time.Time // the clock; tests move it
	// lastRefresh is when the latest unknown-kid refresh started (UnixNano; 0: never).
	lastRefresh atomic.Int64
}

type ringKeysSnapshot struct {
	from *secrets.SigningKey // the first element of the ring's Published slice it was made from
	n    int
	keys []auth.PublicKey
}

// newRingKeys returns the verifier's key source over ring; log receives the failures of the
// refreshes an unknown kid asks for (nil: slog.Default()).
func newRingKeys(ring keyRing, log *slog.Logger) *ringKeys {
	if log == nil {
		log = slog.Default()
	}
	return &ringKeys{ring: ring, log: log, now: time.Now}
}

// RefreshKeys implements auth.KeyRefresher: the verifier met a kid no key set holds. Unless a
// refresh started less than unknownKidRefreshGap ago, the ring re-reads its versions from the
// vault (bounded by unknownKidRefreshTimeout, and not cancelled with the request, so the one
// refresh of the gap completes) and true is returned so the verifier reads the keys again.
// Concurrent callers in the same gap answer false at once, without waiting.
func (r *ringKeys) RefreshKeys(ctx context.Context, kid string) bool {
	now := r.now().UnixNano()
	prev := r.lastRefresh.Load()
	if prev != 0 && now-prev < int64(unknownKidRefreshGap) {
		return false
	}
	if !r.lastRefresh.CompareAndSwap(prev, now) {
		return false // another request claimed this gap's refresh
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), unknownKidRefreshTimeout)
	defer cancel()
	if err := r.ring.Refresh(rctx); err != nil {
		r.log.WarnContext(ctx, "authz: a token names a signing key this instance does not know, and refreshing the key ring failed; the keys in memory stay",
			"kid", kid, "err", err)
		return false
	}
	return true
}

// The verifier's key source may be asked to refresh.
var _ auth.KeyRefresher = (*ringKeys)(nil)

// VerificationKeys implements auth.KeySource.
func (r *ringKeys) VerificationKeys(context.Context) ([]auth.PublicKey, error) {
	pub := r.ring.Published()
	if len(pub) == 0 {
		return nil, errNoPublishedKey
	}
	if s := r.last.Load(); s != nil && s.from == &pub[0] && s.n == len(pub) {
		return s.keys, nil
	}
	keys := make([]auth.PublicKey, 0, len(pub))
	for _, k := range pub {
		if p := k.Public(); p != nil {
			keys = append(keys, auth.PublicKey{ID: k.ID, Algorithm: k.Algorithm, Key: p})
		}
	}
	r.last.Store(&ringKeysSnapshot{from: &pub[0], n: len(pub), keys: keys})
	return keys, nil
}
