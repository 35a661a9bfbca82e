package tenants

import (
	"context"
	"errors"
	"strings"
	"testing"

	"spine/shared/events"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
	"spine/shared/testenv"
)

func TestPostgresStore_Conformance(t *testing.T) {
	runStoreConformance(t, func(t *testing.T) Store {
		truncate(t)
		return NewPostgresStore(openRuntime(t))
	})
}

// seedTwo creates tenants A and B with platform scope and returns them.
func seedTwo(t *testing.T, s Store) (a, b Tenant) {
	t.Helper()
	ctx := context.Background()
	for i, slug := range []string{"rls-a", "rls-b"} {
		tn := Tenant{ID: tenancy.NewTenantID(), Name: slug, Slug: Slug(slug), Status: tenancy.StatusProvisioning,
			EditionCode: "standard", OwnerEmail: "o@x.example", Version: 1}
		ev, _ := events.New("tenants", "TenantRegistered", tn.ID.String(), tn.ID.String(), nil, events.Meta{})
		if err := s.Create(ctx, sqlstore.TenantScope(tn.ID), tn, []Step{{Seq: 1, Name: "edition", Status: StepPending}}, []events.Event{ev}); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			a = tn
		} else {
			b = tn
		}
	}
	return a, b
}

// A query that forgets its tenant_id filter still returns only the current tenant's rows.
func TestRLS_UnfilteredQueryReturnsOnlyCurrentTenant(t *testing.T) {
	truncate(t)
	db := openRuntime(t)
	a, _ := seedTwo(t, NewPostgresStore(db))
	ctx := context.Background()
	for _, table := range []string{"tenants", "tenant_provisioning_steps", "outbox"} {
		var ids []string
		err := db.InReadTx(ctx, sqlstore.TenantScope(a.ID), func(tx *sqlstore.Tx) error {
			var err error
			ids, err = testenv.QueryStrings(ctx, tx, `SELECT tenant_id::text FROM `+table) // no WHERE on purpose
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(ids) != 1 || ids[0] != a.ID.String() {
			t.Errorf("%s without a filter as A: %v, want only %s", table, ids, a.ID)
		}
	}
}

// The runtime role cannot UPDATE or DELETE across tenants, nor insert into another tenant.
func TestRLS_RuntimeRoleCannotWriteAcrossTenants(t *testing.T) {
	truncate(t)
	db := openRuntime(t)
	a, b := seedTwo(t, NewPostgresStore(db))
	ctx := context.Background()
	sa := sqlstore.TenantScope(a.ID)

	var n int64
	err := db.InTx(ctx, sa, func(tx *sqlstore.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE tenants SET name = 'pwned'`) // every row, as A
		if err != nil {
			return err
		}
		n, _ = res.RowsAffected()
		return nil
	})
	if err != nil || n != 1 {
		t.Fatalf("unfiltered UPDATE as A touched %d rows (err %v), want 1 (A's own)", n, err)
	}
	err = db.InTx(ctx, sa, func(tx *sqlstore.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM outbox WHERE tenant_id = $1`, b.ID.String())
		if err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatalf("DELETE of B's outbox rows as A should affect nothing, got %v", err)
	}
	var bOutbox int
	_ = db.InReadTx(ctx, sqlstore.TenantScope(b.ID), func(tx *sqlstore.Tx) error {
		return tx.QueryRowContext(ctx, `SELECT count(*) FROM outbox`).Scan(&bOutbox)
	})
	if bOutbox != 1 {
		t.Fatalf("B's outbox rows = %d after A's DELETE, want 1", bOutbox)
	}
	bv, err := NewPostgresStore(db).Get(ctx, sqlstore.PlatformScope(), b.ID)
	if err != nil || bv.Tenant.Name != "rls-b" {
		t.Fatalf("B after A's unfiltered UPDATE: %+v, %v", bv.Tenant, err)
	}
	err = db.InTx(ctx, sa, func(tx *sqlstore.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO tenant_provisioning_steps (tenant_id, seq, name, status, updated_at)
			VALUES ($1, 9, 'x', 'Pending', now())`, b.ID.String())
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "row-level security") {
		t.Fatalf("inserting a row for B as A: err = %v, want a row-level security violation", err)
	}
	err = db.InTx(ctx, sa, func(tx *sqlstore.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM tenants`)
		return err
	})
	if !errors.Is(err, sqlstore.ErrPermission) {
		t.Fatalf("DELETE on tenants: err = %v, want permission denied (runtime role has no DELETE)", err)
	}
}

// The runtime role can neither switch row-level security off nor escape it.
func TestRLS_RuntimeRoleCannotDisableRLS(t *testing.T) {
	db := openRuntime(t)
	ctx := context.Background()
	for _, q := range []string{
		`ALTER TABLE tenants DISABLE ROW LEVEL SECURITY`,
		`ALTER TABLE tenants NO FORCE ROW LEVEL SECURITY`,
		`DROP POLICY tenant_isolation ON tenants`,
		`SET ROLE tenants_owner`,
	} {
		err := db.InTx(ctx, sqlstore.Scope{}, func(tx *sqlstore.Tx) error { _, err := tx.ExecContext(ctx, q); return err })
		if err == nil {
			t.Errorf("%s succeeded for the runtime role", q)
		}
	}
	// row_security = off makes a query fail rather than bypass the policies.
	err := db.InTx(ctx, sqlstore.Scope{}, func(tx *sqlstore.Tx) error {
		if _, err := tx.ExecContext(ctx, `SET LOCAL row_security = off`); err != nil {
			return err
		}
		var n int
		return tx.QueryRowContext(ctx, `SELECT count(*) FROM tenants`).Scan(&n)
	})
	if err == nil || !strings.Contains(err.Error(), "row-level security") {
		t.Fatalf("row_security=off: err = %v, want the query refused", err)
	}
	var bypass, super bool
	if err := db.QueryRowContext(ctx, `SELECT rolbypassrls, rolsuper FROM pg_roles WHERE rolname = current_user`).Scan(&bypass, &super); err != nil {
		t.Fatal(err)
	}
	if bypass || super {
		t.Fatalf("runtime role: bypassrls=%v superuser=%v, want neither", bypass, super)
	}
}

// Create runs in the scope its caller passes: the service passes the new tenant's own, which
// row-level security lets write the tenant's rows; another tenant's scope may not.
func TestRLS_CreateInAnotherTenantsScopeIsRefused(t *testing.T) {
	truncate(t)
	s := NewPostgresStore(openRuntime(t))
	ctx := context.Background()
	tn := Tenant{ID: tenancy.NewTenantID(), Name: "scoped", Slug: "scoped", Status: tenancy.StatusProvisioning,
		EditionCode: "standard", OwnerEmail: "o@x.example", Version: 1}
	steps := []Step{{Seq: 1, Name: "edition", Status: StepPending}}
	if err := s.Create(ctx, sqlstore.TenantScope(tenancy.NewTenantID()), tn, steps, nil); !errors.Is(err, sqlstore.ErrPermission) ||
		!strings.Contains(err.Error(), "row-level security") {
		t.Fatalf("Create in another tenant's scope: err = %v, want a row-level security violation", err)
	}
	if err := s.Create(ctx, sqlstore.TenantScope(tn.ID), tn, steps, nil); err != nil {
		t.Fatalf("Create in the tenant's own scope: %v", err)
	}
	if v, err := s.Get(ctx, sqlstore.TenantScope(tn.ID), tn.ID); err != nil || len(v.Steps) != 1 {
		t.Fatalf("the tenant in its own scope: %+v, %v", v, err)
	}
}

// A registration's store work is three round trips: BEGIN with the tenant's scope, one statement
// inserting the tenant, its steps and its event's outbox row, COMMIT.
func TestPostgresStore_CreateTakesThreeRoundTrips(t *testing.T) {
	truncate(t)
	db, rt := testDB.OpenRuntimeCounted(t, sqlstore.PoolConfig{MaxOpen: 1})
	s := NewPostgresStore(db)
	ctx := context.Background()
	for i := 0; i < 2; i++ { // the first connects and prepares
		tn, steps, evs := registration(t, i)
		before := rt.Count()
		if err := s.Create(ctx, sqlstore.TenantScope(tn.ID), tn, steps, evs); err != nil {
			t.Fatal(err)
		}
		if got := rt.Count() - before; i == 1 && got != 3 {
			t.Fatalf("Create took %d round trips, want 3", got)
		}
		v, err := s.Get(ctx, sqlstore.TenantScope(tn.ID), tn.ID)
		if err != nil || len(v.Steps) != len(steps) {
			t.Fatalf("Get after Create = %+v, %v; want the tenant and its %d steps", v, err, len(steps))
		}
	}
}
