package tenants

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"spine/shared/events"
	"spine/shared/idempotency"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
)

// runStoreConformance is the one suite every Store implementation must pass. newStore returns a
// store over an empty, migrated database reached through the runtime role.
func runStoreConformance(t *testing.T, newStore func(t *testing.T) Store) {
	ctx := context.Background()
	platform := sqlstore.PlatformScope()

	mk := func(slug string) (Tenant, []Step, []events.Event) {
		now := time.Now().UTC().Truncate(time.Microsecond)
		tn := Tenant{ID: tenancy.NewTenantID(), Name: "Name " + slug, Slug: Slug(slug), Status: tenancy.StatusProvisioning,
			EditionCode: "standard", OwnerEmail: "owner@" + slug + ".example", Version: 1, CreatedAt: now, UpdatedAt: now}
		steps := []Step{{Seq: 1, Name: "edition", Status: StepPending, UpdatedAt: now}, {Seq: 2, Name: "storage", Status: StepPending, UpdatedAt: now}}
		ev, err := events.New("tenants", "TenantRegistered", tn.ID.String(), tn.ID.String(), map[string]string{"slug": slug}, events.Meta{})
		if err != nil {
			t.Fatal(err)
		}
		return tn, steps, []events.Event{ev}
	}
	create := func(t *testing.T, s Store, slug string) Tenant {
		t.Helper()
		tn, steps, evs := mk(slug)
		if err := s.Create(ctx, sqlstore.TenantScope(tn.ID), tn, steps, evs); err != nil {
			t.Fatalf("Create(%s): %v", slug, err)
		}
		return tn
	}

	t.Run("CreateThenGet_RoundTrips", func(t *testing.T) {
		s := newStore(t)
		tn := create(t, s, "round-trip")
		v, err := s.Get(ctx, platform, tn.ID)
		if err != nil {
			t.Fatal(err)
		}
		if v.Tenant.ID != tn.ID || v.Tenant.Slug != tn.Slug || v.Tenant.Name != tn.Name || v.Tenant.Version != 1 ||
			v.Tenant.Status != tenancy.StatusProvisioning || !v.Tenant.CreatedAt.Equal(tn.CreatedAt) || v.Tenant.ProvisionedAt != nil {
			t.Fatalf("got %+v, want %+v", v.Tenant, tn)
		}
		if len(v.Steps) != 2 || v.Steps[0].Name != "edition" || v.Steps[1].Name != "storage" || v.Steps[0].Status != StepPending {
			t.Fatalf("steps = %+v", v.Steps)
		}
		bySlug, err := s.GetBySlug(ctx, platform, tn.Slug)
		if err != nil || bySlug.Tenant.ID != tn.ID {
			t.Fatalf("GetBySlug = %+v, %v", bySlug.Tenant, err)
		}
	})

	t.Run("Create_SlugTaken", func(t *testing.T) {
		s := newStore(t)
		create(t, s, "taken")
		tn, steps, evs := mk("taken")
		if err := s.Create(ctx, sqlstore.TenantScope(tn.ID), tn, steps, evs); !errors.Is(err, ErrSlugTaken) {
			t.Fatalf("err = %v, want ErrSlugTaken", err)
		}
		if _, err := s.Get(ctx, platform, tn.ID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("the losing tenant must not exist: %v", err)
		}
	})

	t.Run("Get_NotFound", func(t *testing.T) {
		s := newStore(t)
		if _, err := s.Get(ctx, platform, tenancy.NewTenantID()); !errors.Is(err, ErrNotFound) {
			t.Fatalf("err = %v", err)
		}
	})

	t.Run("TenantScope_SeesOnlyItsOwnRows", func(t *testing.T) {
		s := newStore(t)
		a, b := create(t, s, "scope-a"), create(t, s, "scope-b")
		sa := sqlstore.TenantScope(a.ID)
		if _, err := s.Get(ctx, sa, b.ID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("A reading B: err = %v, want ErrNotFound", err)
		}
		if _, err := s.GetBySlug(ctx, sa, b.Slug); !errors.Is(err, ErrNotFound) {
			t.Fatalf("A reading B by slug: err = %v, want ErrNotFound", err)
		}
		list, err := s.List(ctx, sa, ListQuery{Limit: 100})
		if err != nil || len(list) != 1 || list[0].ID != a.ID {
			t.Fatalf("A's list = %v, %v; want only A", list, err)
		}
		if _, err := s.Update(ctx, sa, b.ID, func(v *View) ([]events.Event, error) { v.Tenant.Name = "hijacked"; return nil, nil }); !errors.Is(err, ErrNotFound) {
			t.Fatalf("A updating B: err = %v, want ErrNotFound", err)
		}
		if err := s.RecordStep(ctx, sa, b.ID, 1, true, ""); !errors.Is(err, ErrNotFound) {
			t.Fatalf("A recording B's step: err = %v, want ErrNotFound", err)
		}
		if _, err := s.List(ctx, sqlstore.Scope{}, ListQuery{Limit: 10}); err != nil {
			t.Fatal(err)
		} else if l, _ := s.List(ctx, sqlstore.Scope{}, ListQuery{Limit: 10}); len(l) != 0 {
			t.Fatalf("the zero scope must see nothing, saw %d", len(l))
		}
	})

	t.Run("List_PagesInIDOrderWithStatusFilter", func(t *testing.T) {
		s := newStore(t)
		var ids []tenancy.TenantID
		for i := 0; i < 5; i++ {
			ids = append(ids, create(t, s, fmt.Sprintf("page-%d", i)).ID)
		}
		var got []tenancy.TenantID
		after := tenancy.TenantID{}
		for {
			page, err := s.List(ctx, platform, ListQuery{After: after, Limit: 2})
			if err != nil {
				t.Fatal(err)
			}
			for _, tn := range page {
				got = append(got, tn.ID)
			}
			if len(page) < 2 {
				break
			}
			after = page[len(page)-1].ID
		}
		if fmt.Sprint(got) != fmt.Sprint(ids) {
			t.Fatalf("paged ids = %v, want %v", got, ids)
		}
		act, err := s.List(ctx, platform, ListQuery{Status: tenancy.StatusActive, Limit: 10})
		if err != nil || len(act) != 0 {
			t.Fatalf("Active = %v, %v", act, err)
		}
	})

	t.Run("Update_AppliesClosureAndBumpsVersion", func(t *testing.T) {
		s := newStore(t)
		tn := create(t, s, "update-me")
		v, err := s.Update(ctx, platform, tn.ID, func(v *View) ([]events.Event, error) {
			v.Tenant.Name = "Renamed"
			ev, err := events.New("tenants", "TenantSuspended", tn.ID.String(), tn.ID.String(), nil, events.Meta{})
			return []events.Event{ev}, err
		})
		if err != nil {
			t.Fatal(err)
		}
		if v.Tenant.Name != "Renamed" || v.Tenant.Version != 2 {
			t.Fatalf("after update: %+v", v.Tenant)
		}
		again, _ := s.Get(ctx, platform, tn.ID)
		if again.Tenant.Name != "Renamed" || again.Tenant.Version != 2 {
			t.Fatalf("stored: %+v", again.Tenant)
		}
	})

	t.Run("Update_ClosureErrorWritesNothing", func(t *testing.T) {
		s := newStore(t)
		tn := create(t, s, "no-write")
		boom := errors.New("boom")
		_, err := s.Update(ctx, platform, tn.ID, func(v *View) ([]events.Event, error) {
			v.Tenant.Name = "Should not stick"
			return nil, boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("err = %v", err)
		}
		v, _ := s.Get(ctx, platform, tn.ID)
		if v.Tenant.Name != tn.Name || v.Tenant.Version != 1 {
			t.Fatalf("stored after failed closure: %+v", v.Tenant)
		}
	})

	t.Run("Update_SlugTaken", func(t *testing.T) {
		s := newStore(t)
		create(t, s, "slug-one")
		two := create(t, s, "slug-two")
		_, err := s.Update(ctx, platform, two.ID, func(v *View) ([]events.Event, error) { v.Tenant.Slug = "slug-one"; return nil, nil })
		if !errors.Is(err, ErrSlugTaken) {
			t.Fatalf("err = %v, want ErrSlugTaken", err)
		}
	})

	t.Run("Update_ConcurrentClosuresSerialize", func(t *testing.T) {
		s := newStore(t)
		tn := create(t, s, "concurrent")
		var wg sync.WaitGroup
		const n = 8
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := s.Update(ctx, platform, tn.ID, func(v *View) ([]events.Event, error) { return nil, nil }); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		v, _ := s.Get(ctx, platform, tn.ID)
		if v.Tenant.Version != 1+n {
			t.Fatalf("version = %d, want %d (a lost update)", v.Tenant.Version, 1+n)
		}
	})

	t.Run("RecordStep_CountsAttemptsAndRetryDueFindsFailures", func(t *testing.T) {
		s := newStore(t)
		tn := create(t, s, "steps")
		if err := s.RecordStep(ctx, platform, tn.ID, 1, false, "unknown-edition"); err != nil {
			t.Fatal(err)
		}
		v, _ := s.Get(ctx, platform, tn.ID)
		if v.Steps[0].Status != StepFailed || v.Steps[0].Attempts != 1 || v.Steps[0].LastError != "unknown-edition" || v.Tenant.Version != 2 {
			t.Fatalf("after failure: step %+v, version %d", v.Steps[0], v.Tenant.Version)
		}
		due, err := s.RetryDue(ctx, platform, time.Now().Add(time.Minute), 10, 10)
		if err != nil || len(due) != 1 || due[0] != tn.ID {
			t.Fatalf("RetryDue = %v, %v", due, err)
		}
		if due, _ := s.RetryDue(ctx, platform, time.Now().Add(-time.Minute), 10, 10); len(due) != 0 {
			t.Fatalf("a step that has not rested yet is not due: %v", due)
		}
		if due, _ := s.RetryDue(ctx, platform, time.Now().Add(time.Minute), 1, 10); len(due) != 0 {
			t.Fatalf("a step out of attempts is not due: %v", due)
		}
		if err := s.RecordStep(ctx, platform, tn.ID, 1, true, ""); err != nil {
			t.Fatal(err)
		}
		v, _ = s.Get(ctx, platform, tn.ID)
		if v.Steps[0].Status != StepSucceeded || v.Steps[0].Attempts != 2 || v.Steps[0].LastError != "" {
			t.Fatalf("after success: %+v", v.Steps[0])
		}
		if err := s.RecordStep(ctx, platform, tn.ID, 99, true, ""); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown step: %v", err)
		}
	})

	t.Run("IdempotencyKey_ClaimedWithCreateAndRaceDetected", func(t *testing.T) {
		s := newStore(t)
		claim := idempotency.With(ctx, "admin", "k-"+tenancy.NewTenantID().String(), "POST /api/tenants", []byte{1, 2, 3})
		tn, steps, evs := mk("idem")
		if err := s.Create(claim, sqlstore.TenantScope(tn.ID), tn, steps, evs); err != nil {
			t.Fatal(err)
		}
		tn2, steps2, evs2 := mk("idem-two")
		if err := s.Create(claim, sqlstore.TenantScope(tn2.ID), tn2, steps2, evs2); !errors.Is(err, idempotency.ErrRace) {
			t.Fatalf("second create with the same key: %v, want idempotency.ErrRace", err)
		}
		if _, err := s.Get(ctx, platform, tn2.ID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("the losing create must leave nothing: %v", err)
		}
	})
}
