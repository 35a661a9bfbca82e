package testenv

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"testing"

	"spine/shared/events"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
)

// Main is the TestMain of a service's test package: it creates the service's fresh database
// (FreshDatabase), stores it in *db, runs the package's tests, drops the database and returns the
// exit code, for os.Exit. When the database cannot be created it says why on stderr and returns 1
// without running any test.
func Main(m *testing.M, service string, db **Database) int {
	d, err := FreshDatabase(context.Background(), service)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s tests: %v\n", service, err)
		return 1
	}
	*db = d
	defer d.Drop()
	return m.Run()
}

// OpenRuntime opens a pool on the database as the service's runtime role, closed when tb ends.
func (d *Database) OpenRuntime(tb testing.TB, cfg sqlstore.PoolConfig) *sqlstore.DB {
	tb.Helper()
	return openPool(tb, d.Service, d.RuntimeURL, cfg)
}

// OpenOwner opens a pool on the database as the service's owner role, closed when tb ends.
func (d *Database) OpenOwner(tb testing.TB, cfg sqlstore.PoolConfig) *sqlstore.DB {
	tb.Helper()
	return openPool(tb, d.Service, d.OwnerURL, cfg)
}

func openPool(tb testing.TB, service, url string, cfg sqlstore.PoolConfig) *sqlstore.DB {
	tb.Helper()
	db, err := sqlstore.Open(context.Background(), service, sqlstore.Postgres, url, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = db.Close() })
	return db
}

// Querier runs a query: *sql.DB, *sql.Conn and *sql.Tx are Queriers.
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// QueryStrings runs a query of one column and returns its values as strings, a row each, in the
// order the rows come.
func QueryStrings(ctx context.Context, q Querier, query string, args ...any) ([]string, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// Outbox returns tenant's outbox rows of db (PostgreSQL) as events, in order: what a change wrote
// for the drainer (nothing drains them in a package test).
func Outbox(tb testing.TB, db *sqlstore.DB, tenant tenancy.TenantID) []events.Event {
	tb.Helper()
	ctx := context.Background()
	var out []events.Event
	if err := db.InReadTx(ctx, sqlstore.TenantScope(tenant), func(tx *sqlstore.Tx) error {
		raws, err := QueryStrings(ctx, tx, `SELECT envelope::text FROM outbox WHERE tenant_id = $1 ORDER BY seq`, tenant.String())
		for _, raw := range raws {
			var ev events.Event
			if err := json.Unmarshal([]byte(raw), &ev); err != nil {
				return err
			}
			out = append(out, ev)
		}
		return err
	}); err != nil {
		tb.Fatal(err)
	}
	return out
}
