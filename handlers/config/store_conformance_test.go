package config

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"spine/shared/flags"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
)

func TestPostgresStore_Conformance(t *testing.T) {
	rt := testDB.OpenRuntime(t, sqlstore.PoolConfig{})
	runStoreConformance(t, func(*testing.T) *Store { return NewStore(rt) })
}

func testDefinition(key string) FlagDefinition {
	return FlagDefinition{Definition: flags.Definition{Key: key, Type: flags.Boolean, DefaultVariant: "off",
		Variants: map[string]json.RawMessage{"on": json.RawMessage("true"), "off": json.RawMessage("false")},
		Rules:    []flags.Rule{{When: []flags.Condition{{Attribute: "plan", Op: flags.OpIn, Values: []any{"gold"}}}, Variant: "on"}}},
		Version: 1, UpdatedAt: time.Date(2026, 5, 1, 12, 0, 0, 123456000, time.UTC), UpdatedBy: "admin:test"}
}

// runStoreConformance is the store's behaviour the service relies on, against either engine.
// Each subtest uses keys and tenants of its own.
func runStoreConformance(t *testing.T, newStore func(*testing.T) *Store) {
	ctx := context.Background()
	platform := func(t *testing.T, s *Store, fn func(*Tx) error) {
		t.Helper()
		if err := s.Write(ctx, sqlstore.PlatformScope(), tenancy.TenantID{}, fn); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("definitions: insert, read back exactly in any scope, update, delete with overrides", func(t *testing.T) {
		s := newStore(t)
		key := "conf." + tenancy.NewTenantID().String()[:8]
		d := testDefinition(key)
		var gen0, gen1 int64
		platform(t, s, func(tx *Tx) error {
			var err error
			if gen0, err = tx.Generation(ctx); err != nil {
				return err
			}
			if err := tx.InsertDefinition(ctx, d); err != nil {
				return err
			}
			gen1, err = tx.BumpGeneration(ctx)
			return err
		})
		if gen1 != gen0+1 {
			t.Fatalf("generation %d → %d, want +1", gen0, gen1)
		}
		tenant := tenancy.NewTenantID()
		if err := s.Read(ctx, sqlstore.TenantScope(tenant), tenant, func(tx *Tx) error {
			got, err := tx.Definition(ctx, key)
			if err != nil {
				return err
			}
			if got.Version != 1 || !got.UpdatedAt.Equal(d.UpdatedAt) || got.Type != flags.Boolean || len(got.Rules) != 1 || got.Rules[0].When[0].Values[0] != "gold" {
				t.Errorf("read back in a tenant scope: %+v", got)
			}
			all, err := tx.Definitions(ctx)
			found := false
			for _, a := range all {
				found = found || a.Key == key
			}
			if !found {
				t.Errorf("Definitions lacks %s", key)
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		platform(t, s, func(tx *Tx) error {
			d.Disabled, d.Version = true, 2
			return tx.UpdateDefinition(ctx, d)
		})
		// Two tenants' overrides, written in their own scopes: the definition's delete in the
		// platform scope removes both (the foreign key's cascade, under the runtime role and
		// row-level security).
		other := tenancy.NewTenantID()
		for _, tn := range []tenancy.TenantID{tenant, other} {
			if err := s.Write(ctx, sqlstore.TenantScope(tn), tn, func(tx *Tx) error {
				return tx.InsertOverride(ctx, FlagOverride{FlagKey: key, Override: flags.Override{Variant: "on"}, Version: 1, UpdatedAt: d.UpdatedAt, UpdatedBy: "u"})
			}); err != nil {
				t.Fatal(err)
			}
		}
		platform(t, s, func(tx *Tx) error { return tx.DeleteDefinition(ctx, key) })
		for _, tn := range []tenancy.TenantID{tenant, other} {
			if err := s.Read(ctx, sqlstore.TenantScope(tn), tn, func(tx *Tx) error {
				if _, err := tx.Definition(ctx, key); !errors.Is(err, ErrFlagNotFound) {
					t.Errorf("after delete: %v", err)
				}
				os, err := tx.Overrides(ctx)
				if len(os) != 0 {
					t.Errorf("overrides survived their definition: %+v", os)
				}
				return err
			}); err != nil {
				t.Fatal(err)
			}
		}
		err := s.Write(ctx, sqlstore.PlatformScope(), tenancy.TenantID{}, func(tx *Tx) error { return tx.DeleteDefinition(ctx, key) })
		if !errors.Is(err, ErrFlagNotFound) {
			t.Fatalf("delete twice: %v", err)
		}
	})

	t.Run("definitions: a tenant scope cannot write them", func(t *testing.T) {
		s := newStore(t)
		if s.db.Dialect != sqlstore.Postgres {
			t.Skip("PostgreSQL only: on Azure SQL a security policy cannot police a table without a tenant; the grants and the service's platform-admin check guard it (see the migration)")
		}
		tenant := tenancy.NewTenantID()
		key := "conf." + tenancy.NewTenantID().String()[:8]
		err := s.Write(ctx, sqlstore.TenantScope(tenant), tenant, func(tx *Tx) error { return tx.InsertDefinition(ctx, testDefinition(key)) })
		if err == nil {
			t.Fatal("a tenant scope inserted a platform definition")
		}
	})

	t.Run("overrides: upsert, read back, tenant isolation, delete", func(t *testing.T) {
		s := newStore(t)
		a, b := tenancy.NewTenantID(), tenancy.NewTenantID()
		key := "conf." + tenancy.NewTenantID().String() // a whole UUIDv7: its first 8 characters are a timestamp
		platform(t, s, func(tx *Tx) error { return tx.InsertDefinition(ctx, testDefinition(key)) })
		at := time.Date(2026, 5, 2, 8, 0, 0, 0, time.UTC)
		write := func(tn tenancy.TenantID, fn func(*Tx) error) {
			t.Helper()
			if err := s.Write(ctx, sqlstore.TenantScope(tn), tn, fn); err != nil {
				t.Fatal(err)
			}
		}
		write(a, func(tx *Tx) error {
			return tx.InsertOverride(ctx, FlagOverride{FlagKey: key, Override: flags.Override{Variant: "on"}, Version: 1, UpdatedAt: at, UpdatedBy: "u"})
		})
		write(a, func(tx *Tx) error {
			o, err := tx.LockOverride(ctx, key)
			if err != nil {
				return err
			}
			o.Variant, o.Disabled, o.Version = "", true, 2
			return tx.UpdateOverride(ctx, o)
		})
		write(b, func(tx *Tx) error {
			if os, err := tx.Overrides(ctx); err != nil || len(os) != 0 {
				t.Errorf("B sees %+v %v", os, err)
			}
			if err := tx.DeleteOverride(ctx, key); !errors.Is(err, ErrOverrideNotFound) {
				t.Errorf("B deleted A's override: %v", err)
			}
			return nil
		})
		write(a, func(tx *Tx) error {
			os, err := tx.Overrides(ctx)
			if err != nil || len(os) != 1 || os[0].Variant != "" || !os[0].Disabled || os[0].Version != 2 || !os[0].UpdatedAt.Equal(at) {
				t.Errorf("A reads %+v %v", os, err)
			}
			return tx.DeleteOverride(ctx, key)
		})
	})

	// PutOverride reads the definition without locking it: a definition deleted between that read
	// and the override's insert must refuse the insert, or the override would survive (orphaned)
	// and come back when the key is defined again.
	t.Run("overrides: an insert racing its definition's delete is refused, no orphan", func(t *testing.T) {
		s := newStore(t)
		key := "conf." + tenancy.NewTenantID().String() // a whole UUIDv7: its first 8 characters are a timestamp
		tenant := tenancy.NewTenantID()
		platform(t, s, func(tx *Tx) error { return tx.InsertDefinition(ctx, testDefinition(key)) })
		deleted := false
		err := s.Write(ctx, sqlstore.TenantScope(tenant), tenant, func(tx *Tx) error {
			if _, err := tx.Definition(ctx, key); err != nil {
				return err
			}
			if !deleted { // the delete commits on another connection while this transaction is open
				deleted = true
				platform(t, s, func(ptx *Tx) error { return ptx.DeleteDefinition(ctx, key) })
			}
			return tx.InsertOverride(ctx, FlagOverride{FlagKey: key, Override: flags.Override{Variant: "on"}, Version: 1,
				UpdatedAt: time.Date(2026, 5, 2, 8, 0, 0, 0, time.UTC), UpdatedBy: "u"})
		})
		if !errors.Is(err, sqlstore.ErrForeignKey) && !errors.Is(err, ErrFlagNotFound) {
			t.Fatalf("the override's insert after its definition's delete: %v, want a foreign key violation", err)
		}
		platform(t, s, func(tx *Tx) error { return tx.InsertDefinition(ctx, testDefinition(key)) })
		if err := s.Read(ctx, sqlstore.TenantScope(tenant), tenant, func(tx *Tx) error {
			os, err := tx.Overrides(ctx)
			if len(os) != 0 {
				t.Errorf("an orphaned override came back with the key's new definition: %+v", os)
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if err := s.Write(ctx, sqlstore.TenantScope(tenant), tenant, func(tx *Tx) error {
			return tx.InsertOverride(ctx, FlagOverride{FlagKey: "conf.undefined-" + key, Override: flags.Override{Disabled: true}, Version: 1,
				UpdatedAt: time.Date(2026, 5, 2, 8, 0, 0, 0, time.UTC), UpdatedBy: "u"})
		}); !errors.Is(err, sqlstore.ErrForeignKey) {
			t.Fatalf("an override of an undefined key: %v, want a foreign key violation", err)
		}
	})

	t.Run("settings: definition and tenant values", func(t *testing.T) {
		s := newStore(t)
		key := "conf." + tenancy.NewTenantID().String()[:8]
		at := time.Date(2026, 5, 3, 8, 0, 0, 0, time.UTC)
		platform(t, s, func(tx *Tx) error {
			return tx.UpsertSettingDefinition(ctx, SettingDefinition{Key: key, Type: flags.Number, Default: json.RawMessage("5"), Version: 1, UpdatedAt: at, UpdatedBy: "p"})
		})
		a, b := tenancy.NewTenantID(), tenancy.NewTenantID()
		if err := s.Write(ctx, sqlstore.TenantScope(a), a, func(tx *Tx) error {
			d, err := tx.SettingDefinition(ctx, key)
			if err != nil || d.Type != flags.Number || string(d.Default) != "5" {
				t.Errorf("definition %+v %v", d, err)
			}
			if _, err := tx.LockSetting(ctx, key); !errors.Is(err, ErrSettingNotFound) {
				t.Errorf("unset value: %v", err)
			}
			return tx.UpsertSetting(ctx, Setting{Key: key, Value: json.RawMessage("7"), Version: 1, UpdatedAt: at, UpdatedBy: "u"}, flags.Number)
		}); err != nil {
			t.Fatal(err)
		}
		// A's value pins the type: the same type may be written again, another is refused.
		platform(t, s, func(tx *Tx) error {
			return tx.UpsertSettingDefinition(ctx, SettingDefinition{Key: key, Type: flags.Number, Default: json.RawMessage("6"), Version: 2, UpdatedAt: at, UpdatedBy: "p"})
		})
		if err := s.Write(ctx, sqlstore.PlatformScope(), tenancy.TenantID{}, func(tx *Tx) error {
			return tx.UpsertSettingDefinition(ctx, SettingDefinition{Key: key, Type: flags.String, Default: json.RawMessage(`"x"`), Version: 3, UpdatedAt: at, UpdatedBy: "p"})
		}); !errors.Is(err, ErrSettingTypeInUse) {
			t.Fatalf("type change under a tenant's value: %v, want ErrSettingTypeInUse", err)
		}
		// A value written as of a type the definition no longer has is refused by the store.
		if err := s.Write(ctx, sqlstore.TenantScope(b), b, func(tx *Tx) error {
			return tx.UpsertSetting(ctx, Setting{Key: key, Value: json.RawMessage(`"x"`), Version: 1, UpdatedAt: at, UpdatedBy: "u"}, flags.String)
		}); !errors.Is(err, sqlstore.ErrForeignKey) {
			t.Fatalf("a value of a stale type: %v, want a foreign key violation", err)
		}
		if err := s.Read(ctx, sqlstore.TenantScope(b), b, func(tx *Tx) error {
			ss, err := tx.Settings(ctx)
			if len(ss) != 0 {
				t.Errorf("B sees A's settings: %+v", ss)
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if err := s.Read(ctx, sqlstore.TenantScope(a), a, func(tx *Tx) error {
			v, err := tx.Setting(ctx, key)
			if err != nil || string(v.Value) != "7" || v.Version != 1 {
				t.Errorf("A's value %+v %v", v, err)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	})
}
