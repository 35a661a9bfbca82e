package auth

import (
	"context"
	"slices"
	"time"
)

// Principal is the verified caller named by an access token. It is a plain value: each call to
// [Verifier.Verify] returns a Principal whose Scopes slice is shared with no cache entry and no other
// caller, so mutating it cannot affect other requests. Its methods are safe for concurrent use as long
// as nobody mutates it.
type Principal struct {
	// Subject is the token's sub: the user or client the token was issued to. Never empty.
	Subject string
	// TenantID is the token's tenant_id; "" for platform admins acting at platform level.
	TenantID string
	// Scopes are the space-separated values of the token's scope claim, in token order.
	Scopes []string
	// PlatformAdmin is the token's platform_admin claim. A platform admin still needs each scope an
	// operation requires; this flag only grants access to platform-level operations.
	PlatformAdmin bool
	// ExpiresAt is the token's exp.
	ExpiresAt time.Time
	// TokenID is the token's jti; "" when the token has none.
	TokenID string
}

// HasScope reports whether the token granted scope s (exact, case-sensitive match).
func (p Principal) HasScope(s string) bool {
	return slices.Contains(p.Scopes, s)
}

// clone returns p with its own Scopes backing array.
func (p Principal) clone() Principal {
	p.Scopes = slices.Clone(p.Scopes)
	return p
}

type principalKey struct{}

// WithPrincipal returns a copy of ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the Principal stored by [WithPrincipal] (the [Middleware] does this), and
// whether there was one.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}
