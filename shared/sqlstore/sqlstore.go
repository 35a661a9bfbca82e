// Package sqlstore opens a service's database through database/sql for either engine Spine
// supports (PostgreSQL through pgx, Azure SQL through go-mssqldb), runs transactions with the
// tenant scope that row-level security reads, and translates driver errors into sentinels.
//
// Each service keeps its SQL in its own store files, one per engine; this package shares only the
// mechanics (open, scope, retry, error translation), never query bodies.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"  // registers the "pgx" driver
	_ "github.com/microsoft/go-mssqldb" // registers the "sqlserver" driver
)

// Dialect names a SQL engine.
type Dialect string

// The supported engines.
const (
	Postgres  Dialect = "postgres"
	SQLServer Dialect = "sqlserver"
)

// ParseDialect accepts "postgres" or "sqlserver" (the values of SPINE_<SERVICE>_DB_DIALECT).
func ParseDialect(s string) (Dialect, error) {
	switch Dialect(s) {
	case Postgres, SQLServer:
		return Dialect(s), nil
	}
	return "", fmt.Errorf("sqlstore: unknown dialect %q (want postgres or sqlserver)", s)
}

// driverName maps a dialect to its database/sql driver.
func (d Dialect) driverName() string {
	if d == SQLServer {
		return "sqlserver"
	}
	return "pgx"
}

// PoolConfig bounds a service's connection pool. Zero fields take the documented defaults.
type PoolConfig struct {
	MaxOpen     int           // default 32
	MaxIdle     int           // default MaxOpen: a pool that closes idle connections under load re-dials (fork + SCRAM) per burst
	MaxLifetime time.Duration // default 30m (rotated credentials and failovers are picked up)
	MaxIdleTime time.Duration // default 5m
}

func (p PoolConfig) withDefaults() PoolConfig {
	if p.MaxOpen == 0 {
		p.MaxOpen = 32
	}
	if p.MaxIdle == 0 {
		p.MaxIdle = p.MaxOpen
	}
	if p.MaxLifetime == 0 {
		p.MaxLifetime = 30 * time.Minute
	}
	if p.MaxIdleTime == 0 {
		p.MaxIdleTime = 5 * time.Minute
	}
	return p
}

// DB is a service's database handle. It is safe for concurrent use.
type DB struct {
	*sql.DB
	Dialect Dialect
}

// Open opens and pings a database. The DSN is never included in errors (it holds a password).
func Open(ctx context.Context, d Dialect, dsn string, pc PoolConfig) (*DB, error) {
	db, err := sql.Open(d.driverName(), dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: open %s: %w", d, ErrUnavailable)
	}
	pc = pc.withDefaults()
	db.SetMaxOpenConns(pc.MaxOpen)
	db.SetMaxIdleConns(pc.MaxIdle)
	db.SetConnMaxLifetime(pc.MaxLifetime)
	db.SetConnMaxIdleTime(pc.MaxIdleTime)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("sqlstore: ping %s: %w", d, Translate(d, err))
	}
	return &DB{DB: db, Dialect: d}, nil
}

// Scope is what row-level security sees for one transaction: the tenant whose rows are visible,
// or platform access (all tenants) for platform-admin and maintenance work. A zero Scope sees no
// tenant-owned rows at all.
type Scope struct {
	Tenant   string // canonical tenant id, or ""
	Platform bool
}

// TenantScope is the scope of one tenant.
func TenantScope(id fmt.Stringer) Scope { return Scope{Tenant: id.String()} }

// PlatformScope sees every tenant's rows. Use it only for platform-admin requests and
// maintenance; never derive it from request input other than a verified platform-admin token.
func PlatformScope() Scope { return Scope{Platform: true} }

// InTx runs fn in a transaction whose row-level-security scope is s. It commits when fn returns
// nil and rolls back otherwise. Serialization failures and deadlocks are retried (up to 3 times),
// so fn must have no effects outside the transaction. Errors are translated (see Translate).
func (db *DB) InTx(ctx context.Context, s Scope, fn func(*sql.Tx) error) error {
	return db.inTx(ctx, s, nil, fn)
}

// InReadTx is InTx in a read-only transaction.
func (db *DB) InReadTx(ctx context.Context, s Scope, fn func(*sql.Tx) error) error {
	return db.inTx(ctx, s, &sql.TxOptions{ReadOnly: db.Dialect == Postgres}, fn)
}

func (db *DB) inTx(ctx context.Context, s Scope, opts *sql.TxOptions, fn func(*sql.Tx) error) error {
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		err = db.tryTx(ctx, s, opts, fn)
		if !errors.Is(err, ErrRetryable) || ctx.Err() != nil {
			return err
		}
		time.Sleep(time.Duration(attempt+1) * 10 * time.Millisecond)
	}
	return err
}

func (db *DB) tryTx(ctx context.Context, s Scope, opts *sql.TxOptions, fn func(*sql.Tx) error) (err error) {
	tx, err := db.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("sqlstore: begin: %w", Translate(db.Dialect, err))
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if err = SetScope(ctx, db.Dialect, tx, s); err != nil {
		return err
	}
	if err = fn(tx); err != nil {
		return Translate(db.Dialect, err)
	}
	if err = tx.Commit(); err != nil {
		return fmt.Errorf("sqlstore: commit: %w", Translate(db.Dialect, err))
	}
	return nil
}

// SetScope writes the settings the row-level-security policies read. InTx calls it first; a
// transaction that works tenant by tenant (a consumer committing a group of events) calls it again
// before each tenant's statements, so every statement still runs in exactly one tenant's scope. PostgreSQL: transaction-local
// GUCs (set_config(..., true)), gone at commit. SQL Server: SESSION_CONTEXT, which lives as long as
// the pooled connection, so both keys are written at the start of every transaction and a previous
// request's scope can never linger.
func SetScope(ctx context.Context, d Dialect, tx *sql.Tx, s Scope) error {
	platform := "off"
	if s.Platform {
		platform = "on"
	}
	var err error
	switch d {
	case Postgres:
		_, err = tx.ExecContext(ctx,
			`SELECT set_config('spine.tenant_id', $1, true), set_config('spine.platform', $2, true)`,
			s.Tenant, platform)
	case SQLServer:
		_, err = tx.ExecContext(ctx,
			// Typed variables: go-mssqldb sends strings as nvarchar(max), which sp_set_session_context's
			// sql_variant parameter refuses.
			`DECLARE @tenant nvarchar(36) = @p1, @platform nvarchar(8) = @p2;
			 EXEC sp_set_session_context @key = N'tenant_id', @value = @tenant;
			 EXEC sp_set_session_context @key = N'platform', @value = @platform;`,
			s.Tenant, platform)
	}
	if err != nil {
		return fmt.Errorf("sqlstore: set scope: %w", Translate(d, err))
	}
	return nil
}

// Now is the current time in UTC at the precision every engine stores (microseconds): a time a
// write returns equals the time every later read returns.
func Now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }
