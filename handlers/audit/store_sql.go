package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"spine/shared/inbox"
	"spine/shared/outbox"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
)

// sqlStore is the Store on either engine: each method is written once, here, and sends its
// engine's statements (statements.go; pgStatements or msStatements). Whatever differs between
// the engines is statement text or the placeholder hook; the Go below never asks which engine it
// talks to. Times travel in UTC, ids as canonical text, the payload as JSON text.
type sqlStore struct {
	db *sqlstore.DB
	q  *statements
}

var _ Store = (*sqlStore)(nil)

// NewPostgresStore returns the store over a PostgreSQL db (the runtime role's connection).
func NewPostgresStore(db *sqlstore.DB) Store { return &sqlStore{db: db, q: &pgStatements} }

// NewSQLServerStore returns the store over an Azure SQL db (the runtime user's connection).
func NewSQLServerStore(db *sqlstore.DB) Store { return &sqlStore{db: db, q: &msStatements} }

// errScope is the error of a store call whose scope is not one tenant's.
var errScope = errors.New("audit: the store works in one tenant's scope only")

// tenantOf returns the one tenant whose entries a call in scope sc touches.
func tenantOf(sc sqlstore.Scope) (tenancy.TenantID, error) {
	if sc.Platform || sc.Tenant == "" {
		return tenancy.TenantID{}, fmt.Errorf("%w (platform %v, tenant %q)", errScope, sc.Platform, sc.Tenant)
	}
	id, err := tenancy.ParseTenantID(sc.Tenant)
	if err != nil {
		return tenancy.TenantID{}, fmt.Errorf("%w: %w", errScope, err)
	}
	return id, nil
}

// Append implements Store: appendTx in one transaction in the tenant's scope. An entry whose
// source event the tenant already has (its inbox row was lost) makes the insert fail on the
// unique source event id; that is a duplicate, not an error.
func (s *sqlStore) Append(ctx context.Context, sc sqlstore.Scope, entries []NewEntry, emit EmitFunc, claim *InboxClaim) ([]Entry, bool, error) {
	tenant, err := tenantOf(sc)
	if err != nil {
		return nil, false, err
	}
	var out []Entry
	var dup bool
	err = s.db.InTx(ctx, sc, func(tx *sqlstore.Tx) error {
		var err error
		out, dup, err = s.appendTx(ctx, tx, tenant, entries, emit, claim)
		return err
	})
	if isDuplicateSourceEvent(err) {
		return nil, true, nil
	}
	if err != nil || dup {
		return nil, dup, err
	}
	return out, false, nil
}

// AppendEvents implements Store: one transaction that switches to each tenant's scope in turn
// and runs appendTx for each of its items.
func (s *sqlStore) AppendEvents(ctx context.Context, items []EventItem) ([]EventOutcome, error) {
	order := make([]int, len(items))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool {
		return items[order[a]].Tenant.String() < items[order[b]].Tenant.String()
	})
	out := make([]EventOutcome, len(items))
	if len(items) == 0 {
		return out, nil
	}
	err := s.db.InTx(ctx, sqlstore.TenantScope(items[order[0]].Tenant), func(tx *sqlstore.Tx) error {
		var current tenancy.TenantID
		for n, i := range order {
			it := items[i]
			if n > 0 && it.Tenant != current {
				if err := tx.SetScope(ctx, sqlstore.TenantScope(it.Tenant)); err != nil {
					return err
				}
			}
			current = it.Tenant
			claim := it.Claim
			rec, dup, err := s.appendTx(ctx, tx, it.Tenant, []NewEntry{it.Entry}, nil, &claim)
			if err != nil {
				return err
			}
			out[i] = EventOutcome{Duplicate: dup}
			if !dup {
				out[i].Entry = rec[0]
			}
		}
		return nil
	})
	if isDuplicateSourceEvent(err) {
		// An entry exists for one of the events while its inbox row does not: the caller records
		// item by item, where Append reports that item as a duplicate.
		return nil, fmt.Errorf("audit: a group held an already recorded event: %w", err)
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// appendTx is Append's body inside a transaction already in tenant's scope.
func (s *sqlStore) appendTx(ctx context.Context, tx *sqlstore.Tx, tenant tenancy.TenantID, entries []NewEntry, emit EmitFunc, claim *InboxClaim) ([]Entry, bool, error) {
	if claim != nil {
		first, err := inbox.Claim(ctx, tx, claim.Consumer, claim.EventID, claim.EventType)
		if err != nil {
			return nil, false, err
		}
		if !first {
			return nil, true, nil
		}
	}
	if _, err := tx.ExecContext(ctx, s.q.lockTenant, tenant.String()); err != nil {
		return nil, false, err
	}
	var lastSeq int64
	var lastHash []byte
	err := tx.QueryRowContext(ctx, s.q.lastLink, tenant.String()).Scan(&lastSeq, &lastHash)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, false, err
	}
	out := link(tenant, lastSeq, lastHash, entries, time.Now())
	for i := range out {
		e := &out[i]
		if _, err := tx.ExecContext(ctx, s.q.insertEntry,
			tenant.String(), e.Seq, e.ID, e.OccurredAt.UTC(), e.RecordedAt.UTC(), e.Actor.Type, e.Actor.ID, e.Action,
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

// Get implements Store.
func (s *sqlStore) Get(ctx context.Context, sc sqlstore.Scope, id string) (Entry, error) {
	tenant, err := tenantOf(sc)
	if err != nil {
		return Entry{}, err
	}
	var e Entry
	err = s.db.InReadTx(ctx, sc, func(tx *sqlstore.Tx) error {
		var err error
		e, err = scanEntry(tenant, tx.QueryRowContext(ctx, s.q.getEntry, tenant.String(), id))
		return err
	})
	return e, notFound(err)
}

// Query implements Store.
func (s *sqlStore) Query(ctx context.Context, sc sqlstore.Scope, f Filter) ([]Entry, error) {
	tenant, err := tenantOf(sc)
	if err != nil {
		return nil, err
	}
	query, args := s.q.queryStatement(tenant, f)
	var out []Entry
	err = s.db.InReadTx(ctx, sc, func(tx *sqlstore.Tx) error {
		rows, err := tx.QueryContext(ctx, query, args...)
		if err != nil {
			return err
		}
		out, err = scanEntries(tenant, rows)
		return err
	})
	return out, err
}

// SeqRange implements Store.
func (s *sqlStore) SeqRange(ctx context.Context, sc sqlstore.Scope, from, to time.Time) (int64, int64, error) {
	tenant, err := tenantOf(sc)
	if err != nil {
		return 0, 0, err
	}
	query, args := s.q.seqRangeStatement(tenant, from, to)
	var first, last int64
	err = s.db.InReadTx(ctx, sc, func(tx *sqlstore.Tx) error {
		return tx.QueryRowContext(ctx, query, args...).Scan(&first, &last)
	})
	return first, last, err
}

// Range implements Store.
func (s *sqlStore) Range(ctx context.Context, sc sqlstore.Scope, afterSeq, throughSeq int64, limit int) ([]Entry, error) {
	tenant, err := tenantOf(sc)
	if err != nil {
		return nil, err
	}
	var out []Entry
	err = s.db.InReadTx(ctx, sc, func(tx *sqlstore.Tx) error {
		rows, err := tx.QueryContext(ctx, s.q.rangeEntries, tenant.String(), afterSeq, throughSeq, limit)
		if err != nil {
			return err
		}
		out, err = scanEntries(tenant, rows)
		return err
	})
	return out, err
}

// queryStatement is Query's statement for tenant and f, and its arguments: the tenant, the
// filter members that are set, f.AfterSeq and f.Limit.
func (q *statements) queryStatement(tenant tenancy.TenantID, f Filter) (string, []any) {
	w := q.where(tenant)
	w.timeRange(f.From, f.To)
	for _, c := range []struct {
		cond fragment
		v    string
	}{
		{q.actorIs, f.ActorID}, {q.actionIs, f.Action}, {q.resourceTypeIs, f.ResourceType},
		{q.resourceIDIs, f.ResourceID}, {q.traceIs, f.TraceID},
	} {
		if c.v != "" {
			w.and(c.cond, c.v)
		}
	}
	w.and(q.seqAfter, f.AfterSeq)
	conds := w.String()
	limit := w.param(f.Limit)
	return strings.NewReplacer("{where}", conds, "{rows}", limit).Replace(string(q.query)), w.args
}

// seqRangeStatement is SeqRange's statement for tenant and [from, to), and its arguments.
func (q *statements) seqRangeStatement(tenant tenancy.TenantID, from, to time.Time) (string, []any) {
	w := q.where(tenant)
	w.timeRange(from, to)
	return strings.ReplaceAll(string(q.seqRange), "{where}", w.String()), w.args
}

// where assembles the conditions of a WHERE clause from the statement set's fragments, numbering
// the placeholders as it goes, and collects their arguments.
type where struct {
	q     *statements
	conds []string
	args  []any
}

// where starts the conditions with the tenant's.
func (q *statements) where(tenant tenancy.TenantID) *where {
	w := &where{q: q}
	w.and(q.isTenant, tenant.String())
	return w
}

// param adds an argument and returns its placeholder.
func (w *where) param(v any) string {
	w.args = append(w.args, v)
	return w.q.param(len(w.args))
}

// and adds the condition cond on the value v.
func (w *where) and(cond fragment, v any) {
	w.conds = append(w.conds, strings.ReplaceAll(string(cond), "{p}", w.param(v)))
}

// timeRange adds occurredAt in [from, to); a zero time leaves that side open.
func (w *where) timeRange(from, to time.Time) {
	if !from.IsZero() {
		w.and(w.q.occurredFrom, from.UTC())
	}
	if !to.IsZero() {
		w.and(w.q.occurredBefore, to.UTC())
	}
}

// String is the conditions joined with AND.
func (w *where) String() string { return strings.Join(w.conds, " AND ") }
