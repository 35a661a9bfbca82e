package audit

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
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
	a  *archiveStatements // the retention sweeps' (store_archive.go)
}

var _ Store = (*sqlStore)(nil)

// NewPostgresStore returns the store over a PostgreSQL db (the runtime role's connection).
func NewPostgresStore(db *sqlstore.DB) Store {
	return &sqlStore{db: db, q: &pgStatements, a: &pgArchive}
}

// NewSQLServerStore returns the store over an Azure SQL db (the runtime user's connection).
func NewSQLServerStore(db *sqlstore.DB) Store {
	return &sqlStore{db: db, q: &msStatements, a: &msArchive}
}

// errScope is the error of a store call whose scope is not one tenant's (or, for reads, the
// platform's).
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

// chainRead returns the chain a read in scope sc reads: the scope's tenant's, or in platform scope
// (and nothing else) the platform chain (the zero TenantID).
func chainRead(sc sqlstore.Scope) (tenancy.TenantID, error) {
	if sc.Platform && sc.Tenant == "" && len(sc.Tenants) == 0 {
		return tenancy.TenantID{}, nil
	}
	return tenantOf(sc)
}

// tenantText is the tenant id a chain is stored and hashed under: the tenant's canonical id, or
// outbox.PlatformTenant (the nil UUID) for the platform chain (the zero TenantID).
func tenantText(t tenancy.TenantID) string {
	if t.IsZero() {
		return outbox.PlatformTenant
	}
	return t.String()
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

// AppendGroupTx implements Store.
func (s *sqlStore) AppendGroupTx(ctx context.Context, tx *sqlstore.Tx, items []GroupItem) ([]Entry, error) {
	return s.appendGroupTx(ctx, tx, items, time.Now())
}

// DB implements Store.
func (s *sqlStore) DB() *sqlstore.DB { return s.db }

// AppendGroup implements Store: appendGroupTx and emit's events in one transaction in the set
// scope of the items' tenants.
func (s *sqlStore) AppendGroup(ctx context.Context, items []GroupItem, emit EmitFunc) ([]Entry, error) {
	if len(items) == 0 {
		return nil, nil
	}
	tenants := make([]tenancy.TenantID, len(items))
	for i, it := range items {
		if it.Tenant.IsZero() {
			return nil, fmt.Errorf("%w: the platform chain records consumed platform events only", errScope)
		}
		tenants[i] = it.Tenant
	}
	var out []Entry
	err := s.db.InTx(ctx, groupScope(tenants), func(tx *sqlstore.Tx) error {
		var err error
		if out, err = s.appendGroupTx(ctx, tx, items, time.Now()); err != nil || emit == nil {
			return err
		}
		evs, err := emit(out)
		if err != nil {
			return err
		}
		return outbox.Emit(ctx, tx, evs...)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// groupScope is the scope of a group's tenants: the tenant's own when there is one, else the set.
func groupScope(tenants []tenancy.TenantID) sqlstore.Scope {
	ids := distinctTenants(tenants)
	if len(ids) == 1 {
		return sqlstore.Scope{Tenant: ids[0]}
	}
	return sqlstore.TenantSetScope(ids)
}

// distinctTenants is tenants' canonical ids, each once, sorted.
func distinctTenants(tenants []tenancy.TenantID) []string {
	ids := make([]string, 0, len(tenants))
	for _, t := range tenants {
		ids = append(ids, tenantText(t))
	}
	sort.Strings(ids)
	return slices.Compact(ids)
}

// groupRow is one entry as insertEntries reads it (see statements.insertEntries).
type groupRow struct {
	TenantID      string `json:"tenant_id"`
	Seq           int64  `json:"seq"`
	EntryID       string `json:"entry_id"`
	OccurredAt    string `json:"occurred_at"`
	RecordedAt    string `json:"recorded_at"`
	ActorType     string `json:"actor_type"`
	ActorID       string `json:"actor_id"`
	Action        string `json:"action"`
	ResourceType  string `json:"resource_type"`
	ResourceID    string `json:"resource_id"`
	TraceID       string `json:"trace_id"`
	CorrelationID string `json:"correlation_id"`
	SourceEventID string `json:"source_event_id"`
	Payload       string `json:"payload"`
	PrevHash      string `json:"prev_hash"`
	Hash          string `json:"hash"`
}

// utcText is t as insertEntries reads times: UTC, microseconds, no offset.
func utcText(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.999999") }

// appendGroupTx chains items after their tenants' last entries and inserts them inside tx, whose
// scope admits every item's tenant, with three statements whatever the group's size: the
// tenants' append locks (in one global order), their last links, and one insert of every entry.
// Each tenant's items are chained in items' order, with RecordedAt = recordedAt. The entries
// come back in items' order.
func (s *sqlStore) appendGroupTx(ctx context.Context, tx *sqlstore.Tx, items []GroupItem, recordedAt time.Time) ([]Entry, error) {
	if len(items) == 0 {
		return nil, nil
	}
	tenants := make([]tenancy.TenantID, len(items))
	for i, it := range items {
		tenants[i] = it.Tenant
	}
	ids, err := json.Marshal(distinctTenants(tenants))
	if err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, s.q.lockTenants, string(ids)); err != nil {
		return nil, fmt.Errorf("audit: lock the tenants' chains: %w", err)
	}
	type lastLink struct {
		seq  int64
		hash []byte
	}
	last := map[string]lastLink{}
	rows, err := tx.QueryContext(ctx, s.q.lastLinks, string(ids))
	if err != nil {
		return nil, fmt.Errorf("audit: read the tenants' last links: %w", err)
	}
	for rows.Next() {
		var tenant string
		var seq sql.NullInt64
		var hash []byte
		if err := rows.Scan(&tenant, &seq, &hash); err != nil {
			rows.Close()
			return nil, err
		}
		last[tenant] = lastLink{seq: seq.Int64, hash: hash}
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	byTenant := map[tenancy.TenantID][]int{}
	for i, it := range items {
		byTenant[it.Tenant] = append(byTenant[it.Tenant], i)
	}
	out := make([]Entry, len(items))
	for tenant, at := range byTenant {
		entries := make([]NewEntry, len(at))
		for j, i := range at {
			entries[j] = items[i].Entry
		}
		l := last[tenantText(tenant)]
		for j, e := range link(tenant, l.seq, l.hash, entries, recordedAt) {
			out[at[j]] = e
		}
	}
	doc := make([]groupRow, len(out))
	for i, e := range out {
		doc[i] = groupRow{TenantID: tenantText(e.TenantID), Seq: e.Seq, EntryID: e.ID, OccurredAt: utcText(e.OccurredAt),
			RecordedAt: utcText(e.RecordedAt), ActorType: e.Actor.Type, ActorID: e.Actor.ID, Action: e.Action,
			ResourceType: e.Resource.Type, ResourceID: e.Resource.ID, TraceID: e.TraceID, CorrelationID: e.CorrelationID,
			SourceEventID: e.SourceEventID, Payload: string(e.Payload), PrevHash: hex.EncodeToString(e.PrevHash),
			Hash: hex.EncodeToString(e.Hash)}
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, s.q.insertEntries, string(b)); err != nil {
		return nil, fmt.Errorf("audit: insert %d entries: %w", len(doc), err)
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
	items := make([]GroupItem, len(entries))
	for i, e := range entries {
		items[i] = GroupItem{Tenant: tenant, Entry: e}
	}
	out, err := s.appendGroupTx(ctx, tx, items, time.Now())
	if err != nil || emit == nil {
		return out, false, err
	}
	evs, err := emit(out)
	if err != nil {
		return nil, false, err
	}
	return out, false, outbox.Emit(ctx, tx, evs...)
}

// Get implements Store.
func (s *sqlStore) Get(ctx context.Context, sc sqlstore.Scope, id string) (Entry, error) {
	tenant, err := chainRead(sc)
	if err != nil {
		return Entry{}, err
	}
	var e Entry
	err = s.db.InReadTx(ctx, sc, func(tx *sqlstore.Tx) error {
		var err error
		e, err = scanEntry(tenant, tx.QueryRowContext(ctx, s.q.getEntry, tenantText(tenant), id))
		return err
	})
	return e, notFound(err)
}

// Query implements Store.
func (s *sqlStore) Query(ctx context.Context, sc sqlstore.Scope, f Filter) ([]Entry, error) {
	tenant, err := chainRead(sc)
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
	tenant, err := chainRead(sc)
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
	tenant, err := chainRead(sc)
	if err != nil {
		return nil, err
	}
	var out []Entry
	err = s.db.InReadTx(ctx, sc, func(tx *sqlstore.Tx) error {
		rows, err := tx.QueryContext(ctx, s.q.rangeEntries, tenantText(tenant), afterSeq, throughSeq, limit)
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
	w.and(q.isTenant, tenantText(tenant))
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
