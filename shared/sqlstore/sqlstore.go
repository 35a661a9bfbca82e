// Package sqlstore opens a service's database through database/sql for either engine Spine
// supports (PostgreSQL through pgx, Azure SQL through go-mssqldb), runs transactions with the
// tenant scope that row-level security reads, and translates driver errors into sentinels.
//
// Each service keeps its SQL in its own per-engine statement sets, run by one store body; this package shares only the
// mechanics (open, scope, retry, error translation, telemetry), never query bodies.
//
// Telemetry: every transaction is one store operation (telemetry.StoreSQL, op "read" for InReadTx
// and "write" for InTx, retries included) recorded for the DB's service and the scope's tenant
// (for a platform scope: the tenant of the request it serves, else telemetry.TenantNone), with
// outcome notfound when it ends in ErrNotFound.
// When telemetry is enabled at Open, the connection is also wrapped by otelsql: a span per
// statement under the caller's span (never a root span of its own), the
// db.client.operation.duration histogram and the pool's statistics, all with the service attribute.
package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/XSAM/otelsql"
	"github.com/google/uuid"
	_ "github.com/jackc/pgx/v5/stdlib"  // registers the "pgx" driver
	_ "github.com/microsoft/go-mssqldb" // registers the "sqlserver" driver
	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"spine/shared/telemetry"
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
	// Service is the owning service, the service attribute of the DB's telemetry.
	Service string

	stats interface{ Unregister() error } // otelsql's pool statistics, when instrumented

	mu        sync.RWMutex
	listeners map[string][]func() // by signal name; see OnCommit
}

// OnCommit registers f to run after every transaction of db that called Tx.Notify(signal) has
// committed (once per transaction, however often it notified). The outbox drainer registers its
// Kick for SignalOutbox, so a service's writes never wire the drainer themselves. f must be
// cheap and must not block (it runs on the committing goroutine). Safe for concurrent use.
func (db *DB) OnCommit(signal string, f func()) {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.listeners == nil {
		db.listeners = map[string][]func(){}
	}
	db.listeners[signal] = append(db.listeners[signal], f)
}

// SignalOutbox is the signal a transaction that wrote outbox rows notifies (outbox.Emit does).
const SignalOutbox = "outbox"

// Open opens and pings service's database. The DSN is never included in errors (it holds a
// password). When telemetry is enabled (telemetry.Enabled) the connection is instrumented (see
// the package doc).
func Open(ctx context.Context, service string, d Dialect, dsn string, pc PoolConfig) (*DB, error) {
	var db *sql.DB
	var err error
	instrumented := telemetry.Enabled()
	switch {
	case d == Postgres: // connections whose BEGIN can carry the scope (pgbegin.go)
		var c driver.Connector
		if c, err = pgConnector(dsn); err == nil && instrumented {
			db = otelsql.OpenDB(c, otelOptions(service, d)...)
		} else if err == nil {
			db = sql.OpenDB(c)
		}
	case instrumented:
		db, err = otelsql.Open(d.driverName(), dsn, otelOptions(service, d)...)
	default:
		db, err = sql.Open(d.driverName(), dsn)
	}
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
	out := &DB{DB: db, Dialect: d, Service: service}
	if instrumented {
		if reg, err := otelsql.RegisterDBStatsMetrics(db, otelOptions(service, d)...); err == nil {
			out.stats = reg
		}
	}
	return out, nil
}

// Close closes the database and stops reporting its pool statistics.
func (db *DB) Close() error {
	if db.stats != nil {
		_ = db.stats.Unregister()
	}
	return db.DB.Close()
}

// otelOptions are otelsql's settings: the service and engine as attributes, spans only under a
// caller's span (a background poll must not start a trace per statement), no spans for session
// resets and row iteration (one per statement is enough), and driver.ErrSkip not counted as an
// error.
func otelOptions(service string, d Dialect) []otelsql.Option {
	system := semconv.DBSystemNamePostgreSQL
	if d == SQLServer {
		system = semconv.DBSystemNameMicrosoftSQLServer
	}
	return []otelsql.Option{
		otelsql.WithAttributes(system, attribute.String(telemetry.AttrService, service)),
		otelsql.WithSpanOptions(otelsql.SpanOptions{
			DisableErrSkip:       true,
			OmitConnResetSession: true,
			OmitRows:             true,
			OmitConnPrepare:      true,
			SpanFilter: func(ctx context.Context, _ otelsql.Method, _ string, _ []driver.NamedValue) bool {
				return trace.SpanContextFromContext(ctx).IsValid()
			},
		}),
		otelsql.WithDisableSkipErrMeasurement(true),
	}
}

// Scope is what row-level security sees for one transaction: the tenant whose rows are visible,
// a set of tenants (a consumer writing a group of events of several tenants with one statement per
// kind), or platform access (all tenants) for platform-admin and maintenance work. A zero Scope
// sees no tenant-owned rows at all.
type Scope struct {
	Tenant   string   // canonical tenant id, or ""
	Tenants  []string // canonical tenant ids of a set scope (TenantSetScope), or nil
	Platform bool
}

// TenantScope is the scope of one tenant.
func TenantScope(id fmt.Stringer) Scope { return Scope{Tenant: id.String()} }

// TenantSetScope is the scope of exactly the tenants ids (canonical tenant ids): a row is visible,
// and may be written, when it belongs to one of them, and to no other. It is for work that writes
// several tenants' rows with one statement (a consumer's group commit); everything addressed to one
// tenant uses TenantScope. An id that is not a UUID fails the transaction's start.
func TenantSetScope(ids []string) Scope {
	set := slices.Clone(ids)
	for i, id := range set {
		set[i] = strings.ToLower(id) // SQL Server finds an id in the set by its lowercase text
	}
	return Scope{Tenants: set}
}

// MaxSetScope bounds a set scope's tenants: SQL Server keeps the set in one SESSION_CONTEXT value
// of at most 4,000 characters (100 ids and their commas).
const MaxSetScope = 100

// PlatformScope sees every tenant's rows. Use it only for platform-admin requests and
// maintenance; never derive it from request input other than a verified platform-admin token.
func PlatformScope() Scope { return Scope{Platform: true} }

// Tx is one transaction of a service's database: the driver's transaction, the engine's dialect,
// the row-level-security scope its statements run in, and the signals to deliver once it has
// committed. Statements run through the embedded *sql.Tx. A Tx is used by one goroutine.
type Tx struct {
	*sql.Tx
	// Dialect is the engine: store code picks its statement set with it.
	Dialect Dialect
	db      *DB
	scope   Scope
	signals []string
	after   []func()
}

// Scope is the row-level-security scope the transaction's statements run in now.
func (tx *Tx) Scope() Scope { return tx.scope }

// SetScope switches the scope for the statements that follow. A transaction that works tenant by
// tenant (a consumer committing a group of events) calls it before each tenant's statements, so
// every statement still runs in exactly one tenant's scope.
func (tx *Tx) SetScope(ctx context.Context, s Scope) error {
	if err := setScope(ctx, tx.Dialect, tx.Tx, s); err != nil {
		return err
	}
	tx.scope = s
	return nil
}

// Notify asks for the listeners of signal (see DB.OnCommit) to run once this transaction has
// committed; nothing runs if it rolls back. Repeated notifications of one signal run it once.
func (tx *Tx) Notify(signal string) {
	for _, s := range tx.signals {
		if s == signal {
			return
		}
	}
	tx.signals = append(tx.signals, signal)
}

// AfterCommit registers f to run once this transaction has committed, after the signals'
// listeners, in registration order, on the committing goroutine; nothing runs if it rolls back (or
// is retried: a retry is a fresh Tx, whose own calls register again). It is how work inside a
// transaction says what must follow its commit, such as a cache invalidation of what it changed
// (a value invalidated before the commit could be reloaded stale in between).
func (tx *Tx) AfterCommit(f func()) { tx.after = append(tx.after, f) }

// committed runs the listeners of every signal the transaction notified, then its AfterCommit
// functions.
func (tx *Tx) committed() {
	defer func() {
		for _, f := range tx.after {
			f()
		}
	}()
	if len(tx.signals) == 0 {
		return
	}
	tx.db.mu.RLock()
	var fs []func()
	for _, s := range tx.signals {
		fs = append(fs, tx.db.listeners[s]...)
	}
	tx.db.mu.RUnlock()
	for _, f := range fs {
		f()
	}
}

// InTx runs fn in a transaction whose row-level-security scope is s. It commits when fn returns
// nil and rolls back otherwise; after the commit it delivers the signals fn notified.
// Serialization failures and deadlocks are retried (up to 3 times, each with a fresh Tx), so fn
// must have no effects outside the transaction. Errors are translated (see Translate).
func (db *DB) InTx(ctx context.Context, s Scope, fn func(*Tx) error) error {
	op := telemetry.Start(ctx, db.Service, telemetry.StoreSQL, "write", s.Tenant)
	err := db.inTx(ctx, s, nil, fn)
	op.EndWith(ctx, outcome(err), telemetry.NoSize, telemetry.NoSize)
	return err
}

// InReadTx is InTx in a read-only transaction.
func (db *DB) InReadTx(ctx context.Context, s Scope, fn func(*Tx) error) error {
	op := telemetry.Start(ctx, db.Service, telemetry.StoreSQL, "read", s.Tenant)
	err := db.inTx(ctx, s, &sql.TxOptions{ReadOnly: db.Dialect == Postgres}, fn)
	op.EndWith(ctx, outcome(err), telemetry.NoSize, telemetry.NoSize)
	return err
}

// outcome is the telemetry outcome of a transaction's error.
func outcome(err error) string {
	if errors.Is(err, ErrNotFound) {
		return telemetry.OutcomeNotFound
	}
	return telemetry.OutcomeOf(err)
}

func (db *DB) inTx(ctx context.Context, s Scope, opts *sql.TxOptions, fn func(*Tx) error) error {
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

func (db *DB) tryTx(ctx context.Context, s Scope, opts *sql.TxOptions, fn func(*Tx) error) error {
	if err := checkScope(s); err != nil {
		return err
	}
	// On PostgreSQL the BEGIN writes the scope too, in its one round trip (scopedConn.BeginTx).
	begin := &scopedBegin{scope: s}
	stx, err := db.BeginTx(context.WithValue(ctx, scopedBeginKey{}, begin), opts)
	if err != nil {
		return fmt.Errorf("sqlstore: begin: %w", Translate(db.Dialect, err))
	}
	committed := false
	defer func() {
		if !committed { // an error, or fn panicked: the transaction must not outlive tryTx
			_ = stx.Rollback()
		}
	}()
	tx := &Tx{Tx: stx, Dialect: db.Dialect, db: db, scope: s}
	if !begin.done {
		if err = setScope(ctx, db.Dialect, stx, s); err != nil {
			return err
		}
	}
	if err = fn(tx); err != nil {
		return Translate(db.Dialect, err)
	}
	if err = stx.Commit(); err != nil {
		if errors.Is(err, sql.ErrTxDone) && ctx.Err() != nil {
			// database/sql rolled the transaction back when ctx ended (the caller went away):
			// report the cancellation, not an internal failure.
			return fmt.Errorf("sqlstore: commit: %w", ctx.Err())
		}
		return fmt.Errorf("sqlstore: commit: %w", Translate(db.Dialect, err))
	}
	committed = true
	tx.committed()
	return nil
}

// checkScope refuses a scope no transaction may run in: a set scope of more than MaxSetScope
// tenants, or naming something other than a tenant id.
func checkScope(s Scope) error {
	if len(s.Tenants) > MaxSetScope {
		return fmt.Errorf("sqlstore: set scope of %d tenants (at most %d)", len(s.Tenants), MaxSetScope)
	}
	for _, id := range s.Tenants {
		if _, err := uuid.Parse(id); err != nil || len(id) != 36 {
			return fmt.Errorf("sqlstore: set scope: %q is not a tenant id", id)
		}
	}
	return nil
}

// setScope writes the settings the row-level-security policies read: for Tx.SetScope, at the
// start of every SQL Server transaction, and at the start of a PostgreSQL one whose BEGIN did not
// carry them (pgBegin). PostgreSQL: transaction-local GUCs (set_config(..., true)), gone at
// commit. SQL Server: SESSION_CONTEXT, which lives as long as the pooled connection, so every key
// is written at the start of every transaction and a previous request's scope can never linger.
func setScope(ctx context.Context, d Dialect, tx *sql.Tx, s Scope) error {
	if err := checkScope(s); err != nil {
		return err
	}
	var err error
	switch d {
	case Postgres:
		tenant, platform, set := pgScopeValues(s)
		_, err = tx.ExecContext(ctx,
			`SELECT set_config('spine.tenant_id', $1, true), set_config('spine.platform', $2, true),
			        set_config('spine.tenant_set', $3, true)`,
			tenant, platform, set)
	case SQLServer:
		platform := "off"
		if s.Platform {
			platform = "on"
		}
		_, err = tx.ExecContext(ctx,
			// Typed variables: go-mssqldb sends strings as nvarchar(max), which sp_set_session_context's
			// sql_variant parameter refuses.
			`DECLARE @tenant nvarchar(36) = @p1, @platform nvarchar(8) = @p2, @set nvarchar(4000) = @p3;
			 EXEC sp_set_session_context @key = N'tenant_id', @value = @tenant;
			 EXEC sp_set_session_context @key = N'platform', @value = @platform;
			 EXEC sp_set_session_context @key = N'tenant_set', @value = @set;`,
			s.Tenant, platform, strings.Join(s.Tenants, ","))
	}
	if err != nil {
		return fmt.Errorf("sqlstore: set scope: %w", Translate(d, err))
	}
	return nil
}

// Now is the current time in UTC at the precision every engine stores (microseconds): a time a
// write returns equals the time every later read returns.
func Now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// UTC is t in UTC, as every time parameter is passed: go-mssqldb sends a datetimeoffset, and a
// datetime2 column keeps its clock reading, so a non-UTC time would be stored shifted.
func UTC(t time.Time) time.Time { return t.UTC() }

// PtrUTC is a nullable time column read back: nil for NULL, else the time in UTC.
func PtrUTC(t sql.NullTime) *time.Time {
	if !t.Valid {
		return nil
	}
	u := t.Time.UTC()
	return &u
}

// NullString is s for a nullable text column: NULL for "".
func NullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

// NullUTC is UTC for a nullable time (NULL for nil).
func NullUTC(t *time.Time) sql.NullTime {
	if t == nil {
		return sql.NullTime{}
	}
	return sql.NullTime{Time: t.UTC(), Valid: true}
}
