package testenv

import (
	"context"
	"fmt"
	"os"
	"testing"

	"spine/shared/sqlstore"
)

var testDB *Database

func TestMain(m *testing.M) { os.Exit(Main(m, "tenants", &testDB)) }

// The pools connect to the package's fresh, migrated database as the service's two roles, and
// QueryStrings reads one column in row order.
func TestOpenRuntimeAndOwner_QueryStrings(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		db   *sqlstore.DB
		role string
	}{
		{testDB.OpenRuntime(t, sqlstore.PoolConfig{}), "tenants_app"},
		{testDB.OpenOwner(t, sqlstore.PoolConfig{MaxOpen: 1}), "tenants_owner"},
	} {
		got, err := QueryStrings(ctx, tc.db, `SELECT current_user || ' ' || current_database() || ' ' || COALESCE(to_regclass('tenants')::text, 'unmigrated')`)
		if err != nil || fmt.Sprint(got) != fmt.Sprintf("[%s %s tenants]", tc.role, testDB.Name) {
			t.Errorf("%s: %v, %v", tc.role, got, err)
		}
	}
	got, err := QueryStrings(ctx, testDB.OpenRuntime(t, sqlstore.PoolConfig{}), `SELECT x FROM (VALUES ('b', 1), ('a', 2), ('c', 3)) v(x, n) ORDER BY n`)
	if err != nil || fmt.Sprint(got) != "[b a c]" {
		t.Fatalf("rows %v, %v", got, err)
	}
	if got, err := QueryStrings(ctx, testDB.OpenRuntime(t, sqlstore.PoolConfig{}), `SELECT 1 WHERE false`); err != nil || got != nil {
		t.Fatalf("no rows: %v, %v", got, err)
	}
	if _, err := QueryStrings(ctx, testDB.OpenRuntime(t, sqlstore.PoolConfig{}), `SELECT nonsense FROM nowhere`); err == nil {
		t.Fatal("a failing query returned no error")
	}
}
