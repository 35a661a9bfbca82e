package retention

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"spine/shared/sqlstore"
)

// TestSpineInboxPrune_RuntimeRole_FloorRowLevelSecurityAndNoDirectDelete checks the owner's
// SECURITY DEFINER function as the runtime role calls it: no DELETE on inbox of its own, a cutoff
// younger than seven days refused, and row-level security still applying inside the function (a
// tenant-scoped call removes only that tenant's ids).
func TestSpineInboxPrune_RuntimeRole_FloorRowLevelSecurityAndNoDirectDelete(t *testing.T) {
	ctx := context.Background()
	owner := recordsDB.OpenOwner(t, sqlstore.PoolConfig{})
	runtime := recordsDB.OpenRuntime(t, sqlstore.PoolConfig{})
	a, b := uuid.New(), uuid.New()
	old := time.Now().UTC().Add(-30 * 24 * time.Hour).Truncate(time.Microsecond)
	if err := owner.InTx(ctx, sqlstore.PlatformScope(), func(tx *sqlstore.Tx) error {
		for _, tn := range []uuid.UUID{a, a, b, b} {
			if _, err := tx.ExecContext(ctx, `INSERT INTO inbox (tenant_id, consumer, event_id, event_type, received_at)
				VALUES ($1, 'rls', $2, 'TenantRegistered', $3)`, tn, uuid.New(), old); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // the other records tests count every old inbox id of the database
		_ = owner.InTx(ctx, sqlstore.PlatformScope(), func(tx *sqlstore.Tx) error {
			_, err := tx.ExecContext(ctx, `DELETE FROM inbox WHERE consumer = 'rls'`)
			return err
		})
	})
	from, to := old.Add(-time.Second), old.Add(time.Second)
	if err := runtime.InTx(ctx, sqlstore.PlatformScope(), func(tx *sqlstore.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM inbox WHERE tenant_id = $1`, a)
		return err
	}); err == nil {
		t.Error("the runtime role deleted inbox ids directly")
	}
	if err := runtime.InTx(ctx, sqlstore.PlatformScope(), func(tx *sqlstore.Tx) error {
		var n int64
		return tx.QueryRowContext(ctx, `SELECT spine_inbox_prune($1, $2, $3)`, from, to, time.Now().Add(-24*time.Hour)).Scan(&n)
	}); err == nil {
		t.Error("spine_inbox_prune accepted a cutoff of one day")
	}
	var n int64
	if err := runtime.InTx(ctx, sqlstore.TenantScope(a), func(tx *sqlstore.Tx) error {
		return tx.QueryRowContext(ctx, `SELECT spine_inbox_prune($1, $2, $3)`, from, to, time.Now().Add(-8*24*time.Hour)).Scan(&n)
	}); err != nil {
		t.Fatal(err)
	}
	var leftA, leftB int
	_ = owner.InReadTx(ctx, sqlstore.PlatformScope(), func(tx *sqlstore.Tx) error {
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM inbox WHERE tenant_id = $1`, a).Scan(&leftA); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `SELECT count(*) FROM inbox WHERE tenant_id = $1`, b).Scan(&leftB)
	})
	if n != 2 || leftA != 0 || leftB != 2 {
		t.Errorf("tenant-scoped prune removed %d (tenant a keeps %d, b keeps %d); want 2, 0, 2", n, leftA, leftB)
	}
}
