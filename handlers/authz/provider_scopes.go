package authz

import (
	"context"
	"fmt"
	"slices"

	"spine/shared/tenancy"
)

// A user's token carries at most what three parties allow: the scopes the client asked for, the
// ones the client may have (clients.scopes, read again on every refresh), and — for the API
// scopes — the permissions the user holds in the tenant now (identity's catalog codes are the API
// scope names). The OpenID Connect scopes (openid profile email offline_access) are about the
// user, not an API: the user's roles do not bound them.

// clientScopes is scopes without the ones client c may not have (in their order).
func clientScopes(c Client, scopes []string) []string {
	out := make([]string, 0, len(scopes))
	for _, s := range scopes {
		if c.AllowsScope(s) && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// userScopes is scopes narrowed to what subject of tenant holds: every OpenID Connect scope
// stays, an API scope only when the user's effective permissions (identity) include its code. A
// request with no API scope asks identity nothing. An error of identity is returned as it is: the
// caller answers server_error, never a wider token.
func (p *Provider) userScopes(ctx context.Context, tenant, subject string, scopes []string) ([]string, error) {
	out := make([]string, 0, len(scopes))
	if !slices.ContainsFunc(scopes, func(s string) bool { return !IsOIDCScope(Scope(s)) }) {
		return append(out, scopes...), nil
	}
	id, err := tenancy.ParseTenantID(tenant)
	if err != nil {
		return nil, fmt.Errorf("authz: a user's scopes without its tenant: %w", err)
	}
	held, err := p.perms.Effective(ctx, id, subject)
	if err != nil {
		return nil, fmt.Errorf("authz: the user's permissions: %w", err)
	}
	for _, s := range scopes {
		if IsOIDCScope(Scope(s)) || slices.Contains(held, s) {
			out = append(out, s)
		}
	}
	return out, nil
}
