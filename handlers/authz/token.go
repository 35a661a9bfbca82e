package authz

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"strings"

	"github.com/google/uuid"
)

// The store's token formats. None is ever stored: only its SHA-256, so a dump of the authz
// database (or of Redis, where clients are cached with their secret's hash) holds nothing a client
// could present. Values are high-entropy random (256 bits), so a fast hash is enough: a slow one
// (argon2 per token request) would bound the token endpoint, not an attacker.
//
//	refresh token  "rt1." + base64url(tenant uuid 16 bytes ‖ 32 random bytes), no padding. The
//	               tenant (the nil UUID for PlatformTenant) gives the row-level-security scope of
//	               the lookup; a tampered value is only "not found". Stored: SHA-256 of the whole
//	               string.
//	client secret  "cs1." + base64url(32 random bytes). Stored: SHA-256 of the whole string,
//	               compared in constant time.
//	code           produced by the protocol (op encrypts the auth request id); the store keeps
//	               HashCode of it.
const (
	refreshTokenPrefix = "rt1."
	clientSecretPrefix = "cs1."
	randomBytes        = 32
)

// refreshTokenLen is the length of a refresh token's value.
var refreshTokenLen = len(refreshTokenPrefix) + base64.RawURLEncoding.EncodedLen(16+randomBytes)

// hashOf is the SHA-256 of s, the form every token and secret is stored in.
func hashOf(s string) []byte {
	sum := sha256.Sum256([]byte(s))
	return sum[:]
}

// HashCode returns what the store keeps of an authorization code: its SHA-256. CreateCode and
// RedeemCode take it.
func HashCode(code string) []byte { return hashOf(code) }

// newRefreshToken returns a fresh refresh token of tenant (a canonical id or PlatformTenant) and
// its hash.
func newRefreshToken(tenant string) (value string, hash []byte) {
	raw := make([]byte, 16+randomBytes)
	t := uuid.MustParse(tenant) // the caller checked it (scopeOf)
	copy(raw, t[:])
	_, _ = rand.Read(raw[16:]) // crypto/rand.Read never fails (Go 1.24+)
	value = refreshTokenPrefix + base64.RawURLEncoding.EncodeToString(raw)
	return value, hashOf(value)
}

// parseRefreshToken returns the tenant a refresh token's value names (PlatformTenant for the nil
// UUID) and the value's hash; a value of any other shape is ErrRefreshTokenNotFound.
func parseRefreshToken(value string) (tenant string, hash []byte, err error) {
	if len(value) != refreshTokenLen || !strings.HasPrefix(value, refreshTokenPrefix) {
		return "", nil, ErrRefreshTokenNotFound
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(value[len(refreshTokenPrefix):])
	if err != nil || len(raw) != 16+randomBytes {
		return "", nil, ErrRefreshTokenNotFound
	}
	t, _ := uuid.FromBytes(raw[:16])
	return t.String(), hashOf(value), nil // the nil UUID's text is PlatformTenant
}

// newClientSecret returns a fresh client secret and its hash.
func newClientSecret() (secret string, hash []byte) {
	raw := make([]byte, randomBytes)
	_, _ = rand.Read(raw)
	secret = clientSecretPrefix + base64.RawURLEncoding.EncodeToString(raw)
	return secret, hashOf(secret)
}

// secretMatches reports, in constant time, whether secret is the one whose hash is stored. Any
// string is hashed, well-formed or not, so the time taken says nothing about the secret.
func secretMatches(secret string, storedHash []byte) bool {
	return subtle.ConstantTimeCompare(hashOf(secret), storedHash) == 1
}

// unmatchableHash is compared against when there is no stored hash (an unknown, deleted or public
// client), so AuthenticateClient does the same work whatever the client: no string hashes to it
// (it is random, drawn at start-up).
var unmatchableHash = func() []byte {
	b := make([]byte, sha256.Size)
	_, _ = rand.Read(b)
	return b
}()
