package tenants

import (
	"context"
	"time"

	"spine/shared/events"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
)

// ListQuery selects a page of tenants, ordered by id (UUIDv7, so by creation time).
type ListQuery struct {
	After  tenancy.TenantID // exclusive; zero for the first page
	Status tenancy.Status   // "" for every status
	Limit  int
}

// Store is the tenants service's persistence. Every method takes the row-level-security scope
// it runs in as its second parameter, the same way, and runs in its own transaction under it, so
// a tenant-scoped caller can only ever reach its own rows even if a query forgot its filter. The
// caller picks the scope: the tenant's own for Create, PlatformScope for the platform-level work
// (RetryDue, Idempotency) and for platform admins. Implementations are safe for concurrent use.
type Store interface {
	// Create inserts the tenant, its steps in order (each with UpdatedAt = t.CreatedAt) and the
	// events (into the outbox), and claims the request's Idempotency-Key (idempotency.Claim),
	// atomically. A taken slug yields ErrSlugTaken; a key a concurrent request claimed first yields
	// idempotency.ErrRace. s must see the new tenant's rows (its own scope or platform).
	Create(ctx context.Context, s sqlstore.Scope, t Tenant, steps []Step, evs []events.Event) error
	// Get returns the tenant and its steps, or ErrNotFound when it is not visible in s.
	Get(ctx context.Context, s sqlstore.Scope, id tenancy.TenantID) (View, error)
	// GetBySlug is Get by slug.
	GetBySlug(ctx context.Context, s sqlstore.Scope, slug Slug) (View, error)
	// List returns up to q.Limit tenants after q.After, in id order (steps not loaded).
	List(ctx context.Context, s sqlstore.Scope, q ListQuery) ([]Tenant, error)
	// Update locks the tenant row, calls fn with it and its steps, and, if fn succeeds, stores
	// the tenant with Version+1 and UpdatedAt=now together with the events fn returned. fn runs
	// inside the transaction: it must not call out. If fn returns an error nothing is written.
	Update(ctx context.Context, s sqlstore.Scope, id tenancy.TenantID, fn func(v *View) ([]events.Event, error)) (View, error)
	// RecordStep stores one step's outcome (attempts+1) and bumps the tenant's version, so an
	// ETag taken before the step no longer matches.
	RecordStep(ctx context.Context, s sqlstore.Scope, id tenancy.TenantID, seq int, ok bool, code string) error
	// RetryDue returns the Provisioning tenants visible in s with a failed step last tried
	// before `before` and fewer than maxAttempts attempts, oldest first (the sweep passes
	// PlatformScope).
	RetryDue(ctx context.Context, s sqlstore.Scope, before time.Time, maxAttempts, limit int) ([]tenancy.TenantID, error)
}
