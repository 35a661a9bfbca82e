package integrations

import (
	"context"
	"errors"
	"testing"
	"time"

	"spine/shared/ids"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
)

// runStoreConformance is the store's behaviour on either engine: insert and read back, lock,
// list pages by id, update, soft delete (the row no longer read anywhere), and another tenant's
// rows never read.
func runStoreConformance(t *testing.T, newStore func(t *testing.T) *Store) {
	ctx := context.Background()
	at := time.Date(2026, 5, 1, 12, 0, 0, 123456000, time.UTC)
	s := newStore(t)
	tenant, other := tenancy.NewTenantID(), tenancy.NewTenantID()
	write := func(tn tenancy.TenantID, fn func(*Tx) error) error { return s.Write(ctx, tn, fn) }
	var made []Connection
	for i := range 3 {
		c := Connection{ID: ids.New(), Type: "http", Name: "c" + string(rune('0'+i)), Settings: []byte(`{"baseUrl":"https://x.example","authScheme":"bearer"}`),
			Secret: SecretRef{Vault: "https://v.example", Name: "integration-x-" + string(rune('a'+i)), Version: "abc123"},
			Status: StatusUntested, Version: 1, CreatedAt: at, UpdatedAt: at}
		if err := write(tenant, func(tx *Tx) error { return tx.Insert(ctx, c) }); err != nil {
			t.Fatal(err)
		}
		made = append(made, c)
	}
	if err := write(other, func(tx *Tx) error {
		return tx.Insert(ctx, Connection{ID: ids.New(), Type: "http", Name: "o", Settings: []byte(`{}`),
			Secret: SecretRef{Vault: "https://v.example", Name: "o", Version: "v1"}, Status: StatusUntested, Version: 1, CreatedAt: at, UpdatedAt: at})
	}); err != nil {
		t.Fatal(err)
	}
	t.Run("ReadBack", func(t *testing.T) {
		err := s.Read(ctx, tenant, func(tx *Tx) error {
			got, err := tx.Connection(ctx, made[0].ID)
			if err != nil {
				return err
			}
			if got.ID != made[0].ID || got.Name != "c0" || got.Secret != made[0].Secret || got.Status != StatusUntested ||
				!got.CreatedAt.Equal(at) || got.LastTestedAt != nil || got.LastErrorClass != "" {
				t.Errorf("read %+v", got)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
	t.Run("ListPagesByID", func(t *testing.T) {
		_ = s.Read(ctx, tenant, func(tx *Tx) error {
			p1, err := tx.List(ctx, "", 2)
			if err != nil || len(p1) != 2 || p1[0].ID != made[0].ID || p1[1].ID != made[1].ID {
				t.Errorf("first page %v %v", p1, err)
				return nil
			}
			p2, err := tx.List(ctx, p1[1].ID, 2)
			if err != nil || len(p2) != 1 || p2[0].ID != made[2].ID {
				t.Errorf("second page %v %v", p2, err)
			}
			return nil
		})
	})
	t.Run("UpdateAndSoftDelete", func(t *testing.T) {
		tested := at.Add(time.Minute)
		err := write(tenant, func(tx *Tx) error {
			c, err := tx.Lock(ctx, made[1].ID)
			if err != nil {
				return err
			}
			c.Status, c.LastTestedAt, c.LastErrorClass, c.Version, c.UpdatedAt = StatusFailing, &tested, ClassHTTP5xx, 2, tested
			return tx.Update(ctx, c, nil)
		})
		if err != nil {
			t.Fatal(err)
		}
		_ = s.Read(ctx, tenant, func(tx *Tx) error {
			c, err := tx.Connection(ctx, made[1].ID)
			if err != nil || c.Status != StatusFailing || c.LastTestedAt == nil || !c.LastTestedAt.Equal(tested) || c.LastErrorClass != ClassHTTP5xx || c.Version != 2 {
				t.Errorf("updated %+v %v", c, err)
			}
			return nil
		})
		if err := write(tenant, func(tx *Tx) error {
			c, err := tx.Lock(ctx, made[1].ID)
			if err != nil {
				return err
			}
			return tx.Update(ctx, c, &tested)
		}); err != nil {
			t.Fatal(err)
		}
		_ = s.Read(ctx, tenant, func(tx *Tx) error {
			if _, err := tx.Connection(ctx, made[1].ID); !errors.Is(err, ErrNotFound) {
				t.Errorf("a deleted connection reads: %v", err)
			}
			if list, err := tx.List(ctx, "", 10); err != nil || len(list) != 2 {
				t.Errorf("list after delete %d %v", len(list), err)
			}
			return nil
		})
		_ = write(tenant, func(tx *Tx) error {
			if _, err := tx.Lock(ctx, made[1].ID); !errors.Is(err, ErrNotFound) {
				t.Errorf("a deleted connection locks: %v", err)
			}
			return nil
		})
	})
	t.Run("OtherTenantNeverRead", func(t *testing.T) {
		_ = write(other, func(tx *Tx) error {
			if _, err := tx.Connection(ctx, made[0].ID); !errors.Is(err, ErrNotFound) {
				t.Errorf("another tenant reads it: %v", err)
			}
			if err := tx.Update(ctx, made[0], nil); !errors.Is(err, ErrNotFound) {
				t.Errorf("another tenant updates it: %v", err)
			}
			return nil
		})
	})
}

func TestPostgresStore_Conformance(t *testing.T) {
	rt := testDB.OpenRuntime(t, sqlstore.PoolConfig{})
	runStoreConformance(t, func(*testing.T) *Store { return NewStore(rt) })
}
