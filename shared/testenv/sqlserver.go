package testenv

import (
	"context"
	"sync"
	"testing"

	"spine/migrations"
	"spine/shared/sqlstore"
)

// The environment variables that name a SQL Server test database: the DSN of the service's
// runtime user and that of its owner. No server is named on a machine without one.
const (
	EnvSQLServerURL      = "SPINE_TEST_SQLSERVER_URL"
	EnvSQLServerOwnerURL = "SPINE_TEST_SQLSERVER_OWNER_URL"
)

// sqlServerMigrated remembers, per service and owner DSN, the result of applying the platform
// schema and the service's SQL Server migrations, so that a test process applies them once.
var sqlServerMigrated sync.Map // service + "\x00" + ownerURL → *migrateOnce

type migrateOnce struct {
	once sync.Once
	err  error
}

// SQLServer opens pools on a SQL Server test database as the service's runtime user (runtimeURL)
// and its owner (ownerURL), both closed when t ends. Before the runtime pool opens, the owner
// applies the platform schema and the service's SQL Server migrations (migrations.Apply), once per
// service and owner in this process. Whether a server is named, and what to do when it is not, is
// the caller's to decide.
func SQLServer(t testing.TB, service, runtimeURL, ownerURL string) (runtime, owner *sqlstore.DB) {
	t.Helper()
	ctx := context.Background()
	var err error
	owner, err = sqlstore.Open(ctx, service, sqlstore.SQLServer, ownerURL, sqlstore.PoolConfig{MaxOpen: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = owner.Close() })
	v, _ := sqlServerMigrated.LoadOrStore(service+"\x00"+ownerURL, &migrateOnce{})
	m := v.(*migrateOnce)
	m.once.Do(func() {
		_, m.err = migrations.Apply(ctx, owner, service, nil)
	})
	if m.err != nil {
		t.Fatal(m.err)
	}
	runtime, err = sqlstore.Open(ctx, service, sqlstore.SQLServer, runtimeURL, sqlstore.PoolConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = runtime.Close() })
	return runtime, owner
}
