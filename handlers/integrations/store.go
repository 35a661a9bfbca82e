package integrations

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"spine/shared/retention"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
)

// Store is the integrations service's persistence on either engine: each method is written once,
// here, and sends its engine's statements (statements.go; pgStatements or msStatements).
//
// The service's rules run inside the store's transactions: Write and Read hand a closure a Tx, a
// transaction in the tenant's row-level-security scope whose methods are the statements for that
// tenant. Events go to the outbox through the same transaction. Deleting a connection is an
// Update that sets deleted_at, and every read sees live connections only; the IntegrationPurge
// sweep (purge.go) deletes the rows 30 days later (the runtime role's DELETE grant is for it).
type Store struct {
	db *sqlstore.DB
	q  *statements
}

// NewStore returns the store over db (the runtime role's connection), with the statements of
// db's engine.
func NewStore(db *sqlstore.DB) *Store {
	q := &pgStatements
	if db.Dialect == sqlstore.SQLServer {
		q = &msStatements
	}
	return &Store{db: db, q: q}
}

// DB is the store's database.
func (s *Store) DB() *sqlstore.DB { return s.db }

// Tx is one transaction of the store, working on one tenant's rows.
type Tx struct {
	*sqlstore.Tx
	q      *statements
	tenant string
}

// Write runs fn in a transaction in the tenant's scope; it commits when fn returns nil. fn may
// run more than once (serialization retries).
func (s *Store) Write(ctx context.Context, tenant tenancy.TenantID, fn func(*Tx) error) error {
	return s.db.InTx(ctx, sqlstore.TenantScope(tenant), func(tx *sqlstore.Tx) error {
		return fn(s.Bind(tx, tenant))
	})
}

// Read is Write in a read-only transaction.
func (s *Store) Read(ctx context.Context, tenant tenancy.TenantID, fn func(*Tx) error) error {
	return s.db.InReadTx(ctx, sqlstore.TenantScope(tenant), func(tx *sqlstore.Tx) error {
		return fn(s.Bind(tx, tenant))
	})
}

// Bind returns the store's Tx over an open transaction (a consumer's, in the tenant's scope).
func (s *Store) Bind(tx *sqlstore.Tx, tenant tenancy.TenantID) *Tx {
	return &Tx{Tx: tx, q: s.q, tenant: tenant.String()}
}

// Insert writes a new connection.
func (tx *Tx) Insert(ctx context.Context, c Connection) error {
	_, err := tx.ExecContext(ctx, tx.q.insert, tx.tenant, c.ID, c.Type, c.Name, string(c.Settings), c.Secret.Vault, c.Secret.Name,
		c.Secret.Version, string(c.Status), c.Version, c.CreatedAt.UTC())
	return err
}

// Connection returns the live connection id, or ErrNotFound.
func (tx *Tx) Connection(ctx context.Context, id string) (Connection, error) {
	return scanConnection(tx.QueryRowContext(ctx, tx.q.connection, tx.tenant, id))
}

// Lock returns the live connection id locked until the transaction ends, or ErrNotFound.
func (tx *Tx) Lock(ctx context.Context, id string) (Connection, error) {
	return scanConnection(tx.QueryRowContext(ctx, tx.q.lockConnection, tx.tenant, id))
}

// zeroID is the nil UUID, below every id: the first page's "after".
const zeroID = "00000000-0000-0000-0000-000000000000"

// List returns up to limit live connections with an id above after ("" for the first page), by id.
func (tx *Tx) List(ctx context.Context, after string, limit int) ([]Connection, error) {
	if after == "" {
		after = zeroID
	}
	rows, err := tx.QueryContext(ctx, tx.q.list, tx.tenant, after, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Connection
	for rows.Next() {
		c, err := scanConnection(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// Update writes c's mutable columns (name, settings, secret version, status, test and sync facts,
// version, updated at); deletedAt, when set, soft-deletes it. ErrNotFound when there is no such
// row.
func (tx *Tx) Update(ctx context.Context, c Connection, deletedAt *time.Time) error {
	res, err := tx.ExecContext(ctx, tx.q.update, tx.tenant, c.ID, c.Name, string(c.Settings), c.Secret.Version, string(c.Status),
		sqlstore.NullUTC(c.LastTestedAt), sqlstore.NullUTC(c.LastSyncAt), sqlstore.NullString(c.LastErrorClass), c.Version, c.UpdatedAt.UTC(), sqlstore.NullUTC(deletedAt))
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return ErrNotFound
	}
	return nil
}

// rowScanner is *sql.Row or *sql.Rows.
type rowScanner interface{ Scan(dest ...any) error }

func scanConnection(r rowScanner) (Connection, error) {
	var c Connection
	var settings, status string
	var tested, synced sql.NullTime
	err := r.Scan(&c.ID, &c.Type, &c.Name, &settings, &c.Secret.Vault, &c.Secret.Name, &c.Secret.Version, &status,
		&tested, &synced, &c.LastErrorClass, &c.Version, &c.CreatedAt, &c.UpdatedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return Connection{}, ErrNotFound
	}
	if err != nil {
		return Connection{}, err
	}
	c.Settings, c.Status = []byte(settings), Status(status)
	c.LastTestedAt, c.LastSyncAt = sqlstore.PtrUTC(tested), sqlstore.PtrUTC(synced)
	c.CreatedAt, c.UpdatedAt = c.CreatedAt.UTC(), c.UpdatedAt.UTC()
	return c, nil
}

// ---- the IntegrationPurge sweep ----

// purgeBound is k (a soft-deleted connection's position in the purge's keyset order: deleted
// at, connection id) with the zero key as the floor.
func purgeBound(k retention.Key) retention.Key {
	if k.At.IsZero() {
		return retention.Key{At: time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), ID: "00000000-0000-0000-0000-000000000000"}
	}
	return k
}

// DeletedTenants returns, in platform scope, every tenant with a connection soft-deleted before
// before (the purge's units).
func (s *Store) DeletedTenants(ctx context.Context, before time.Time) ([]string, error) {
	var out []string
	err := s.db.InReadTx(ctx, sqlstore.PlatformScope(), func(tx *sqlstore.Tx) (err error) {
		out, err = retention.UnitsOf(tx.QueryContext(ctx, s.q.purgeTenants, sqlstore.UTC(before)))
		return err
	})
	return out, err
}

// NextDeleted returns the keys of at most limit connections soft-deleted before cutoff after
// after, in keyset order.
func (tx *Tx) NextDeleted(ctx context.Context, after retention.Key, cutoff time.Time, limit int) ([]retention.Key, error) {
	after = purgeBound(after)
	return retention.KeysOf(tx.QueryContext(ctx, tx.q.purgeNext, tx.tenant, sqlstore.UTC(after.At), after.ID, sqlstore.UTC(cutoff), limit))
}

// PurgeDeleted deletes the connections soft-deleted before cutoff from..to (inclusive) and returns
// how many it deleted.
func (tx *Tx) PurgeDeleted(ctx context.Context, from, to retention.Key, cutoff time.Time) (int, error) {
	from, to = purgeBound(from), purgeBound(to)
	res, err := tx.ExecContext(ctx, tx.q.purgeRange, tx.tenant, sqlstore.UTC(from.At), from.ID, sqlstore.UTC(to.At), to.ID, sqlstore.UTC(cutoff))
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}
