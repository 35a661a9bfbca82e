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

// KeySourceFunc adapts a function to [KeySource].
type KeySourceFunc func(ctx context.Context) ([]PublicKey, error)

// VerificationKeys implements KeySource.
func (f KeySourceFunc) VerificationKeys(ctx context.Context) ([]PublicKey, error) { return f(ctx) }

// sourceStore is a keyStore over a KeySource, read on every lookup.
type sourceStore struct{ src KeySource }

// key implements keyStore.
func (s sourceStore) key(ctx context.Context, kid string) (verKey, error) {
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
