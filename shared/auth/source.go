package auth

import (
	"context"
	"crypto"
	"errors"
)

// PublicKey is one verification key handed to the Verifier in process.
type PublicKey struct {
	// ID is the key id (kid) tokens signed with the key name in their header.
	ID string
	// Algorithm is "ES256" or "RS256"; a token naming another alg is refused with this key. Empty
	// accepts whichever of the two fits the key's type.
	Algorithm string
	// Key is an *ecdsa.PublicKey (P-256) or an *rsa.PublicKey (at least 2048 bits); a private key
	// is accepted too, and only its public half is used.
	Key crypto.PublicKey
}

// KeySource supplies verification keys in process: the authorization server's key ring, when it
// runs in the same binary, so the API sees a rotation at once and never fetches its own JWKS over
// HTTP. VerificationKeys is called for every token the verified-token cache does not hold, so it
// must be an in-memory read; it returns every key a valid token may name (the current and the
// previous signing key). An error makes that token's check fail as an invalid token (401), never
// a server error. Implementations are safe for concurrent use.
type KeySource interface {
	VerificationKeys(ctx context.Context) ([]PublicKey, error)
}

// KeyRefresher is implemented by a [KeySource] that can look for keys it does not hold yet (the
// authorization server's key ring re-reading its vault, so an instance whose periodic refresh keeps
// failing still learns a key another instance rotated in). When a token names a kid that no key
// source or set of the Verifier holds, the Verifier calls RefreshKeys and, when it reports true,
// reads VerificationKeys once more. The source bounds how often it really refreshes — a token
// with a made-up kid must not reach the vault on every request — and answers false at once when
// it did not refresh (or the refresh failed). Never called for a kid already known, so the
// signature path of a known key stays an in-memory read.
type KeyRefresher interface {
	RefreshKeys(ctx context.Context, kid string) bool
}

// KeySourceFunc adapts a function to [KeySource].
type KeySourceFunc func(ctx context.Context) ([]PublicKey, error)

// VerificationKeys implements KeySource.
func (f KeySourceFunc) VerificationKeys(ctx context.Context) ([]PublicKey, error) { return f(ctx) }

// sourceStore is a keyStore over a KeySource, read on every lookup. With refresh, a kid the
// source does not hold makes it look further when it is a KeyRefresher (see NewVerifier: that
// lookup comes after every other key set's, so a kid another set knows never refreshes the source).
type sourceStore struct {
	src     KeySource
	refresh bool
}

// key implements keyStore.
func (s sourceStore) key(ctx context.Context, kid string) (verKey, error) {
	k, err := s.lookup(ctx, kid)
	if !errors.Is(err, errKeyNotFound) || !s.refresh {
		return k, err
	}
	if r, ok := s.src.(KeyRefresher); ok && r.RefreshKeys(ctx, kid) {
		return s.lookup(ctx, kid)
	}
	return verKey{}, errKeyNotFound
}

func (s sourceStore) lookup(ctx context.Context, kid string) (verKey, error) {
	keys, err := s.src.VerificationKeys(ctx)
	if err != nil {
		return verKey{}, errKeysUnavailable
	}
	for _, k := range keys {
		if k.ID == kid && k.Key != nil {
			return verKey{pub: publicOf(k.Key), alg: k.Algorithm}, nil
		}
	}
	return verKey{}, errKeyNotFound
}

// multiStore asks each store in turn and answers the first key found.
type multiStore []keyStore

// key implements keyStore: not found when every store says so, unavailable when one could not
// answer and none had the key.
func (m multiStore) key(ctx context.Context, kid string) (verKey, error) {
	result := errKeyNotFound
	for _, s := range m {
		k, err := s.key(ctx, kid)
		if err == nil {
			return k, nil
		}
		if !errors.Is(err, errKeyNotFound) {
			result = err
		}
	}
	return verKey{}, result
}
