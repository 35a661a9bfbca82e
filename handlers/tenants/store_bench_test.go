package tenants

import (
	"context"
	"fmt"
	"testing"

	"spine/shared/contracts"
	"spine/shared/events"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
)

// registration is what Service.Register hands the store for a new tenant: the tenant, its two
// steps (edition, storage) and its TenantRegistered event.
func registration(tb testing.TB, n int) (Tenant, []Step, []events.Event) {
	tb.Helper()
	now := sqlstore.Now()
	slug := Slug(fmt.Sprintf("bench-%s", tenancy.NewTenantID().String()[24:]))
	t := Tenant{ID: tenancy.NewTenantID(), Name: fmt.Sprintf("Tenant %d", n), Slug: slug, Status: tenancy.StatusProvisioning,
		EditionCode: "standard", OwnerEmail: "owner@x.example", Version: 1, CreatedAt: now, UpdatedAt: now}
	steps := []Step{{Seq: 1, Name: "edition", Status: StepPending, UpdatedAt: now}, {Seq: 2, Name: "storage", Status: StepPending, UpdatedAt: now}}
	ev, err := events.New(service, contracts.TenantRegistered, t.ID.String(), t.ID.String(), contracts.TenantRegisteredData{
		TenantID: t.ID.String(), Name: t.Name, Slug: string(t.Slug), EditionCode: string(t.EditionCode), OwnerEmail: t.OwnerEmail,
	}, events.Meta{})
	if err != nil {
		tb.Fatal(err)
	}
	return t, steps, []events.Event{ev}
}

// BenchmarkPostgresStore_Create is one registration's store work (Service.Register's Create) on
// the local PostgreSQL, one connection, one registration after another.
func BenchmarkPostgresStore_Create(b *testing.B) {
	s := NewPostgresStore(testDB.OpenRuntime(b, sqlstore.PoolConfig{MaxOpen: 1}))
	ctx := context.Background()
	create := func(i int) {
		t, steps, evs := registration(b, i)
		if err := s.Create(ctx, sqlstore.TenantScope(t.ID), t, steps, evs); err != nil {
			b.Fatal(err)
		}
	}
	create(-1) // prepares the statements on the connection
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		create(i)
	}
}
