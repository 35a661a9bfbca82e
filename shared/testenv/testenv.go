// Package testenv gives tests the real local stack that `make test` starts (scripts/stack.sh):
// a fresh PostgreSQL database per test package with the service's two roles and its migrations
// (the platform schema's, then its own) applied, the stack's Redis, and Azurite. Tests fail, never
// skip, when the stack is missing: run them through `make test`.
package testenv

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver

	"spine/migrations"
	"spine/shared/sqlstore"
)

// Require returns the value of an environment variable the stack sets, or an error that says how
// to get it.
func Require(name string) (string, error) {
	v := os.Getenv(name)
	if v == "" {
		return "", fmt.Errorf("%s is not set: these tests need the local stack; run `make test` "+
			"(or `scripts/stack.sh up --name test` and source .stack/test/env)", name)
	}
	return v, nil
}

// Database is a fresh PostgreSQL database of one service.
type Database struct {
	Name       string
	Service    string // the owning service (its telemetry's service attribute)
	OwnerURL   string // the service's owner role (migrations, superuser-free tampering tests)
	RuntimeURL string // the service's runtime role (DML only, bound by row-level security)
	AdminURL   string // the cluster superuser, on this database
	adminPool  string
}

// FreshDatabase is CreateDatabase followed by the platform schema and the service's migrations
// (migrations.Apply, as `handler migrate` does), applied as the owner.
func FreshDatabase(ctx context.Context, service string) (*Database, error) {
	d, err := CreateDatabase(ctx, service)
	if err != nil {
		return nil, err
	}
	owner, err := sqlstore.Open(ctx, service, sqlstore.Postgres, d.OwnerURL, sqlstore.PoolConfig{MaxOpen: 2})
	if err != nil {
		return nil, err
	}
	defer owner.Close()
	if _, err := migrations.Apply(ctx, owner, service, nil); err != nil {
		return nil, err
	}
	return d, nil
}

// CreateDatabase creates database <service>_t<random> owned by <service>_owner and grants CONNECT
// and schema USAGE to <service>_app exactly as the stack does for the real database. Drop removes it.
func CreateDatabase(ctx context.Context, service string) (*Database, error) {
	adminURL, err := Require("SPINE_PG_ADMIN_URL")
	if err != nil {
		return nil, err
	}
	up := strings.ToUpper(service)
	ownerPW, err := Require("SPINE_" + up + "_DB_OWNER_PASSWORD")
	if err != nil {
		return nil, err
	}
	appPW, err := Require("SPINE_" + up + "_DB_APP_PASSWORD")
	if err != nil {
		return nil, err
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := service + "_t" + hex.EncodeToString(b)

	admin, err := sql.Open("pgx", adminURL)
	if err != nil {
		return nil, err
	}
	defer admin.Close()
	for _, q := range []string{
		fmt.Sprintf(`CREATE DATABASE %s OWNER %s_owner`, name, service),
		fmt.Sprintf(`REVOKE ALL ON DATABASE %s FROM PUBLIC`, name),
		fmt.Sprintf(`GRANT CONNECT ON DATABASE %s TO %s_app`, name, service),
	} {
		if _, err := admin.ExecContext(ctx, q); err != nil {
			return nil, fmt.Errorf("testenv: %s: %w", q, err)
		}
	}
	d := &Database{Name: name, Service: service, adminPool: adminURL,
		AdminURL:   withDB(adminURL, name, "", ""),
		OwnerURL:   withDB(adminURL, name, service+"_owner", ownerPW),
		RuntimeURL: withDB(adminURL, name, service+"_app", appPW)}
	inDB, err := sql.Open("pgx", d.AdminURL)
	if err != nil {
		return nil, err
	}
	defer inDB.Close()
	for _, q := range []string{
		`REVOKE CREATE ON SCHEMA public FROM PUBLIC`,
		fmt.Sprintf(`GRANT USAGE ON SCHEMA public TO %s_app`, service),
		fmt.Sprintf(`ALTER SCHEMA public OWNER TO %s_owner`, service),
	} {
		if _, err := inDB.ExecContext(ctx, q); err != nil {
			return nil, fmt.Errorf("testenv: %s: %w", q, err)
		}
	}
	return d, nil
}

// Drop removes the database, disconnecting anyone still on it.
func (d *Database) Drop() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := sql.Open("pgx", d.adminPool)
	if err != nil {
		return
	}
	defer admin.Close()
	_, _ = admin.ExecContext(ctx, fmt.Sprintf(`DROP DATABASE IF EXISTS %s WITH (FORCE)`, d.Name))
}

// withDB rewrites a postgres URL's database and (when user is set) its credentials.
func withDB(raw, db, user, pw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	u.Path = "/" + db
	if user != "" {
		u.User = url.UserPassword(user, pw)
	}
	return u.String()
}
