// Package authz declares the platform's in-process authorization question — "may this user do
// this in this tenant?" — which the identity service answers over its roles, role permissions and
// assignments (HTTP: POST /api/authz/check). Other services ask it through this interface, wired
// by the binary (kit.Deps.Permissions); split across Function Apps, the same interface is served
// over HTTP.
package authz

import (
	"context"

	"spine/shared/tenancy"
)

// Permissions answers authorization checks. Implementations are safe for concurrent use, answer
// from a cache that every change that can alter the answer invalidates after its commit, and fall
// back to their store when the cache is down: slower, never wrong.
type Permissions interface {
	// Allowed reports whether user (an identity user id) of tenant holds permission (a catalog
	// code such as "user.invite") through any role assigned to it. An unknown user, a disabled
	// user or an unknown permission is false, not an error.
	Allowed(ctx context.Context, tenant tenancy.TenantID, user, permission string) (bool, error)
	// Effective returns every permission code user holds in tenant, sorted; empty for an unknown
	// or disabled user.
	Effective(ctx context.Context, tenant tenancy.TenantID, user string) ([]string, error)
}
