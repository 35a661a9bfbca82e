package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"spine/shared/inbox"
	"spine/shared/outbox"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
)

// pgStore is the PostgreSQL Store. Its SQL is the whole of what the audit service asks of
// PostgreSQL; the SQL Server twin is in store_sqlserver.go.
type pgStore struct{ db *sqlstore.DB }

var _ Store = (*pgStore)(nil)

// NewPostgresStore returns the PostgreSQL store over db (the runtime role's connection).
func NewPostgresStore(db *sqlstore.DB) Store { return &pgStore{db: db} }

// pgEntryCols is the column list scanEntry reads, in its order.
const pgEntryCols = `seq, entry_id::text, occurred_at, recorded_at, actor_type, actor_id, action,
	resource_type, resource_id, trace_id, correlation_id, COALESCE(source_event_id::text, ''), payload::text,
	prev_hash, hash`

// pgAppendLockClass namespaces the append lock in PostgreSQL's advisory-lock key space, which the
// whole database shares: the two-int form (class, hashtext(tenant)) cannot meet a one-bigint key
// such as goose's migration lock. Two tenants whose ids hash alike merely share a queue.
const pgAppendLockClass int32 = 0x41554454 // "AUDT"

// Append implements Store; see appendOne.
func (s *pgStore) Append(ctx context.Context, tenant tenancy.TenantID, entries []NewEntry, emit EmitFunc, claim *InboxClaim) ([]Entry, bool, error) {
	return appendOne(ctx, s.db, tenant, entries, emit, claim, s.appendTx)
}

// AppendEvents implements Store; see appendEvents.
func (s *pgStore) AppendEvents(ctx context.Context, items []EventItem) ([]EventOutcome, error) {
	return appendEvents(ctx, s.db, items, s.appendTx)
}

// appendTx is Append's body inside a transaction already in tenant's scope.
func (s *pgStore) appendTx(ctx context.Context, tx *sqlstore.Tx, tenant tenancy.TenantID, entries []NewEntry, emit EmitFunc, claim *InboxClaim) ([]Entry, bool, error) {
	if claim != nil {
		first, err := inbox.Claim(ctx, tx, claim.Consumer, claim.EventID, claim.EventType)
		if err != nil {
			return nil, false, err
		}
		if !first {
			return nil, true, nil
		}
	}
	// Held until commit or rollback. Under READ COMMITTED (PostgreSQL's default, which
	// sqlstore keeps) every later statement takes a fresh snapshot, so the read below sees the
	// previous holder's committed entries; that is also why the lock and the read are two
	// statements, not one. The primary key (tenant_id, seq) is the backstop: a lock that failed
	// to serialize could fail an append, never fork the chain.
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, pgAppendLockClass, tenant.String()); err != nil {
		return nil, false, err
	}
	var lastSeq int64
	var lastHash []byte
	err := tx.QueryRowContext(ctx, `SELECT seq, hash FROM audit_entries WHERE tenant_id = $1 ORDER BY seq DESC LIMIT 1`,
		tenant.String()).Scan(&lastSeq, &lastHash)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, false, err
	}
	out := link(tenant, lastSeq, lastHash, entries, time.Now())
	for i := range out {
		e := &out[i]
		if _, err := tx.ExecContext(ctx, `INSERT INTO audit_entries (tenant_id, seq, entry_id, occurred_at, recorded_at,
			actor_type, actor_id, action, resource_type, resource_id, trace_id, correlation_id, source_event_id,
			payload, prev_hash, hash)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14::json, $15, $16)`,
			tenant.String(), e.Seq, e.ID, e.OccurredAt, e.RecordedAt, e.Actor.Type, e.Actor.ID, e.Action,
			e.Resource.Type, e.Resource.ID, e.TraceID, e.CorrelationID, nullUUID(e.SourceEventID),
			string(e.Payload), e.PrevHash, e.Hash); err != nil {
			return nil, false, err
		}
	}
	if emit == nil {
		return out, false, nil
	}
	evs, err := emit(out)
	if err != nil {
		return nil, false, err
	}
	return out, false, outbox.Emit(ctx, tx, evs...)
}

// nullUUID is NULL for "" (no source event) and the id otherwise.
func nullUUID(id string) sql.NullString { return sql.NullString{String: id, Valid: id != ""} }

func (s *pgStore) Get(ctx context.Context, tenant tenancy.TenantID, id string) (Entry, error) {
	var e Entry
	err := s.db.InReadTx(ctx, sqlstore.TenantScope(tenant), func(tx *sqlstore.Tx) error {
		var err error
		e, err = scanEntry(tenant, tx.QueryRowContext(ctx, `SELECT `+pgEntryCols+` FROM audit_entries
			WHERE tenant_id = $1 AND entry_id = $2`, tenant.String(), id))
		return err
	})
	return e, notFound(err)
}

// pgWhere builds "tenant_id = $1 AND ..." from the filter's set members only, so that each
// combination gets its own plan over the index that fits it. Only fixed fragments are joined;
// values always travel as parameters.
type pgWhere struct {
	sql  strings.Builder
	args []any
}

func newPGWhere(tenant tenancy.TenantID) *pgWhere {
	w := &pgWhere{args: []any{tenant.String()}}
	w.sql.WriteString(`tenant_id = $1`)
	return w
}

// and adds "AND <cond>" where cond holds one %d for the value's placeholder number.
func (w *pgWhere) and(cond string, v any) {
	w.args = append(w.args, v)
	w.sql.WriteString(" AND ")
	fmt.Fprintf(&w.sql, cond, len(w.args))
}

func (w *pgWhere) timeRange(from, to time.Time) {
	if !from.IsZero() {
		w.and(`occurred_at >= $%d`, from)
	}
	if !to.IsZero() {
		w.and(`occurred_at < $%d`, to)
	}
}

func (s *pgStore) Query(ctx context.Context, tenant tenancy.TenantID, f Filter) ([]Entry, error) {
	w := newPGWhere(tenant)
	w.timeRange(f.From, f.To)
	for _, c := range []struct{ col, v string }{
		{"actor_id", f.ActorID}, {"action", f.Action}, {"resource_type", f.ResourceType},
		{"resource_id", f.ResourceID}, {"trace_id", f.TraceID},
	} {
		if c.v != "" {
			w.and(c.col+` = $%d`, c.v)
		}
	}
	w.and(`seq > $%d`, f.AfterSeq)
	w.args = append(w.args, f.Limit)
	q := `SELECT ` + pgEntryCols + ` FROM audit_entries WHERE ` + w.sql.String() +
		fmt.Sprintf(` ORDER BY seq LIMIT $%d`, len(w.args))
	var out []Entry
	err := s.db.InReadTx(ctx, sqlstore.TenantScope(tenant), func(tx *sqlstore.Tx) error {
		rows, err := tx.QueryContext(ctx, q, w.args...)
		if err != nil {
			return err
		}
		out, err = scanEntries(tenant, rows)
		return err
	})
	return out, err
}

func (s *pgStore) SeqRange(ctx context.Context, tenant tenancy.TenantID, from, to time.Time) (int64, int64, error) {
	w := newPGWhere(tenant)
	w.timeRange(from, to)
	var first, last int64
	err := s.db.InReadTx(ctx, sqlstore.TenantScope(tenant), func(tx *sqlstore.Tx) error {
		return tx.QueryRowContext(ctx, `SELECT COALESCE(min(seq), 0), COALESCE(max(seq), 0) FROM audit_entries WHERE `+
			w.sql.String(), w.args...).Scan(&first, &last)
	})
	return first, last, err
}

func (s *pgStore) Range(ctx context.Context, tenant tenancy.TenantID, afterSeq, throughSeq int64, limit int) ([]Entry, error) {
	var out []Entry
	err := s.db.InReadTx(ctx, sqlstore.TenantScope(tenant), func(tx *sqlstore.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT `+pgEntryCols+` FROM audit_entries
			WHERE tenant_id = $1 AND seq > $2 AND seq <= $3 ORDER BY seq LIMIT $4`,
			tenant.String(), afterSeq, throughSeq, limit)
		if err != nil {
			return err
		}
		out, err = scanEntries(tenant, rows)
		return err
	})
	return out, err
}
