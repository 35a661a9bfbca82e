// Package secrets: TEMPORARY mirror of the i11-secrets contract (design: shared/secrets KeyRing and
// SigningKey), so that the protocol branch builds before i11-secrets is merged. Deleted at the
// merge; nothing here is used by the binary.
package secrets

import (
	"context"
	"crypto/ecdsa"
	"time"
)

// SigningKey is one version of the signing key (design contract).
type SigningKey struct {
	ID        string
	Algorithm string
	Private   *ecdsa.PrivateKey
	Version   string
	Created   time.Time
}

// KeyRing is the signing key ring (design contract).
type KeyRing struct{ keys []SigningKey }

// NewStaticKeyRing is a ring over fixed keys (temporary, for the protocol branch's tests).
func NewStaticKeyRing(keys ...SigningKey) *KeyRing { return &KeyRing{keys: keys} }

// Current returns the signing key.
func (r *KeyRing) Current() (SigningKey, error) { return r.keys[0], nil }

// Published returns the keys of the JWKS.
func (r *KeyRing) Published() []SigningKey { return r.keys }

// Refresh re-reads the versions.
func (r *KeyRing) Refresh(context.Context) error { return nil }
