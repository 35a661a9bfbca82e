package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// PostgreSQL transactions begin with their scope in one round trip: Open wraps pgx's database/sql
// connections in scopedConn, whose BeginTx sends "BEGIN; SELECT set_config(...)" as one
// simple-protocol query when tryTx asks for it (a scopedBegin in the context). Everything else is
// database/sql's and pgx's own: the *sql.Tx, its statements, its context handling (a cancelled
// context rolls back), the pool, and pgx's Commit, which reports a failed transaction's COMMIT
// (answered ROLLBACK) as an error.

// pgConnector opens dsn's connections as sql.Open("pgx", dsn) does, each wrapped in a scopedConn.
func pgConnector(dsn string) (driver.Connector, error) {
	c, err := stdlib.GetDefaultDriver().(driver.DriverContext).OpenConnector(dsn)
	if err != nil {
		return nil, err
	}
	return scopedConnector{c}, nil
}

// scopedConnector is a pgx connector whose connections are scopedConns.
type scopedConnector struct{ driver.Connector }

// Connect implements driver.Connector.
func (c scopedConnector) Connect(ctx context.Context) (driver.Conn, error) {
	dc, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	if sc, ok := dc.(*stdlib.Conn); ok {
		return &scopedConn{Conn: sc}, nil
	}
	return dc, nil // not pgx's: tryTx sets the scope with a statement of its own
}

// scopedConn is pgx's database/sql connection (every method of it) with a BeginTx that can write
// the transaction's scope in the BEGIN's own round trip.
type scopedConn struct{ *stdlib.Conn }

// scopedBegin is tryTx's request, in the context of BeginTx, to begin in scope; BeginTx sets done
// when the BEGIN carried the scope.
type scopedBegin struct {
	scope Scope
	done  bool
}

type scopedBeginKey struct{}

// rollbackTimeout bounds the ROLLBACK of a BEGIN whose scope failed.
const rollbackTimeout = 5 * time.Second

// BeginTx implements driver.ConnBeginTx: with a scopedBegin in ctx whose values can be inlined
// (pgBegin), it begins the transaction and writes the scope with one query; otherwise it is
// pgx's own BeginTx.
func (c *scopedConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	b, ok := ctx.Value(scopedBeginKey{}).(*scopedBegin)
	if !ok || sql.IsolationLevel(opts.Isolation) != sql.LevelDefault {
		return c.Conn.BeginTx(ctx, opts)
	}
	query, inlined := pgBegin(b.scope, opts.ReadOnly)
	if !inlined {
		return c.Conn.BeginTx(ctx, opts)
	}
	conn := c.Conn.Conn()
	if conn.IsClosed() {
		return nil, driver.ErrBadConn
	}
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{BeginQuery: query})
	if err != nil {
		// The BEGIN may have run and the SELECT failed: database/sql releases the connection
		// after a failed BeginTx, so it must not stay inside that transaction.
		if !conn.IsClosed() && conn.PgConn().TxStatus() != 'I' {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
			defer cancel()
			if _, rerr := conn.Exec(rctx, "ROLLBACK"); rerr != nil || conn.PgConn().TxStatus() != 'I' {
				_ = conn.Close(rctx) // database/sql then discards it (IsValid)
			}
		}
		return nil, err
	}
	b.done = true
	return pgTx{ctx: ctx, tx: tx}, nil
}

// pgTx is a pgx transaction as a driver.Tx (as pgx's stdlib wraps its own).
type pgTx struct {
	ctx context.Context
	tx  pgx.Tx
}

func (t pgTx) Commit() error { return t.tx.Commit(t.ctx) }

// Rollback sends ROLLBACK even when the transaction's context is done (database/sql rolls back on
// cancellation): with the cancelled context pgx would close the connection instead, and the
// server would release the transaction's locks only once it noticed, so a retry right after a
// cancelled attempt could find its rows still locked (SKIP LOCKED: skipped).
func (t pgTx) Rollback() error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(t.ctx), rollbackTimeout)
	defer cancel()
	return t.tx.Rollback(ctx)
}

// pgBegin is the PostgreSQL query that begins a transaction (read only when readOnly) and writes
// s's settings, and true; or "", false when a value could not be inlined safely (literalSafe),
// and the settings must be written with parameters (setScope).
func pgBegin(s Scope, readOnly bool) (string, bool) {
	tenant, platform, set := pgScopeValues(s)
	if !literalSafe(tenant) || !literalSafe(set) {
		return "", false
	}
	var q strings.Builder
	q.Grow(192 + len(set))
	q.WriteString("BEGIN")
	if readOnly {
		q.WriteString(" READ ONLY")
	}
	q.WriteString("; SELECT set_config('spine.tenant_id', '")
	q.WriteString(tenant)
	q.WriteString("', true), set_config('spine.platform', '")
	q.WriteString(platform)
	q.WriteString("', true), set_config('spine.tenant_set', '")
	q.WriteString(set)
	q.WriteString("', true)")
	return q.String(), true
}

// literalSafe reports whether v can stand inside a SQL string literal as it is: it holds only hex
// digits, hyphens, commas and braces (tenant ids and a uuid[] literal of them), so nothing in it
// can end the literal, whatever the server's settings.
func literalSafe(v string) bool {
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f', c >= 'A' && c <= 'F', c == '-', c == ',', c == '{', c == '}':
		default:
			return false
		}
	}
	return true
}

// pgScopeValues are s's values of spine.tenant_id, spine.platform and spine.tenant_set.
func pgScopeValues(s Scope) (tenant, platform, set string) {
	platform = "off"
	if s.Platform {
		platform = "on"
	}
	if len(s.Tenants) > 0 {
		set = "{" + strings.Join(s.Tenants, ",") + "}" // a uuid[] literal
	}
	return s.Tenant, platform, set
}
