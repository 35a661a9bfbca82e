package identity

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"

	"github.com/google/uuid"

	"spine/shared/tenancy"
)

// An invitation token is the invitee's credential for POST /api/users/invitations/{token}/accept,
// a public route. It is 64 random-looking bytes, base64url without padding (86 characters):
//
//	tenant id (16 bytes) ‖ invitation id (16 bytes) ‖ secret (32 bytes from crypto/rand)
//
// The ids make the lookup a primary-key read in the tenant's own row-level-security scope (no
// platform scope for an anonymous request, no scan); the secret is the credential. Only
// SHA-256(secret) is stored, and the accept compares it in constant time (crypto/subtle), so
// neither the stored hash nor the timing of a wrong guess tells anything about the secret. The
// token is returned once, in the 201 answer of the invitation (the inviter delivers it); no other
// API, event, log or idempotency record holds it.
const (
	tokenSecretBytes = 32
	tokenBytes       = 16 + 16 + tokenSecretBytes
)

// invitationToken is a parsed token.
type invitationToken struct {
	tenant     tenancy.TenantID
	invitation InvitationID
	secret     []byte
}

// newInvitationToken returns a fresh token for the invitation and the hash to store.
func newInvitationToken(tenant tenancy.TenantID, id InvitationID) (token string, hash []byte) {
	raw := make([]byte, 0, tokenBytes)
	t, i := tenant.UUID(), uuid.MustParse(string(id))
	raw = append(raw, t[:]...)
	raw = append(raw, i[:]...)
	secret := make([]byte, tokenSecretBytes)
	_, _ = rand.Read(secret) // crypto/rand.Read never fails (Go 1.24+)
	raw = append(raw, secret...)
	sum := sha256.Sum256(secret)
	return base64.RawURLEncoding.EncodeToString(raw), sum[:]
}

// parseInvitationToken decodes a token; any malformed token is ErrInvitationNotFound, like a
// token whose secret does not match, so a caller learns nothing from the difference.
func parseInvitationToken(s string) (invitationToken, error) {
	if base64.RawURLEncoding.EncodedLen(tokenBytes) != len(s) {
		return invitationToken{}, ErrInvitationNotFound
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(raw) != tokenBytes {
		return invitationToken{}, ErrInvitationNotFound
	}
	tu, _ := uuid.FromBytes(raw[:16])
	iu, _ := uuid.FromBytes(raw[16:32])
	tenant, err := tenancy.ParseTenantID(tu.String())
	if err != nil || iu == uuid.Nil {
		return invitationToken{}, ErrInvitationNotFound
	}
	return invitationToken{tenant: tenant, invitation: InvitationID(iu.String()), secret: raw[32:]}, nil
}

// matches reports, in constant time, whether the token's secret is the one whose hash is stored.
func (t invitationToken) matches(storedHash []byte) bool {
	sum := sha256.Sum256(t.secret)
	return subtle.ConstantTimeCompare(sum[:], storedHash) == 1
}
