package authz

import (
	"context"
	"errors"
	"sync/atomic"

	"spine/shared/auth"
	"spine/shared/secrets"
)

// errNoPublishedKey: the key ring publishes no key (it never loaded one).
var errNoPublishedKey = errors.New("authz: the key ring publishes no signing key")

// ringKeys is the API verifier's in-process view of the key ring (kit.KeysProvider): the public
// halves of the published keys — the current one and the previous one during a rotation — read
// from the ring's memory on every call, so a rotation or refresh is seen at once. The conversion
// is kept for as long as the ring's snapshot is the same one.
type ringKeys struct {
	ring interface{ Published() []secrets.SigningKey }
	last atomic.Pointer[ringKeysSnapshot]
}

type ringKeysSnapshot struct {
	from *secrets.SigningKey // the first element of the ring's Published slice it was made from
	n    int
	keys []auth.PublicKey
}

// newRingKeys returns the verifier's key source over ring.
func newRingKeys(ring interface{ Published() []secrets.SigningKey }) *ringKeys {
	return &ringKeys{ring: ring}
}

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
