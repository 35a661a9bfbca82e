package tenancy

import (
	"errors"

	"spine/shared/sqlstore"
)

// Caller is who asks, as every service sees it: a tenant-scoped principal (Tenant set) or a
// platform admin (Platform). httpx.CallerOf builds it from the verified token; timers and
// consumers build their own (a platform caller named "system:<what>").
type Caller struct {
	// Subject is the token's subject (or "system:<what>" for the platform's own work).
	Subject string
	// Tenant is the caller's tenant; zero for platform admins.
	Tenant TenantID
	// Platform marks a platform admin: every tenant is visible.
	Platform bool
}

// Errors of the caller checks; httpx.MapError renders them.
var (
	// ErrPlatformAdminRequired: the operation is platform-level and the caller is a tenant.
	ErrPlatformAdminRequired = errors.New("tenancy: platform admin required")
	// ErrTenantRequired: a platform admin must name the tenant a tenant-level operation is for.
	ErrTenantRequired = errors.New("tenancy: a platform-admin request must name its tenant")
	// ErrTenantMismatch: a tenant token named another tenant.
	ErrTenantMismatch = errors.New("tenancy: a tenant token reaches its own tenant only")
)

// Scope is the row-level-security scope of the caller's reads: its tenant, or every tenant for a
// platform admin.
func (c Caller) Scope() sqlstore.Scope {
	if c.Platform {
		return sqlstore.PlatformScope()
	}
	return sqlstore.TenantScope(c.Tenant)
}

// Sees reports whether the caller may see tenant id at all. Callers who may not get a not-found
// answer, so a tenant cannot probe for other tenants' ids.
func (c Caller) Sees(id TenantID) bool { return c.Platform || c.Tenant == id }

// Reaches checks that the caller may work on tenant's data: platform admins reach every tenant, a
// tenant token only its own (ErrTenantMismatch). A zero tenant is ErrTenantRequired.
func (c Caller) Reaches(tenant TenantID) error {
	if tenant.IsZero() {
		return ErrTenantRequired
	}
	if !c.Platform && c.Tenant != tenant {
		return ErrTenantMismatch
	}
	return nil
}

// RequirePlatform is ErrPlatformAdminRequired unless the caller is a platform admin.
func (c Caller) RequirePlatform() error {
	if !c.Platform {
		return ErrPlatformAdminRequired
	}
	return nil
}
