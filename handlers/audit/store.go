package audit

import (
	"context"
	"time"

	"spine/shared/events"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
)

// EmitFunc builds the events that announce entries just chained. Append calls it inside its
// transaction, after the entries are inserted, and writes what it returns to the outbox; it must
// not call out. A returned error rolls the whole append back.
type EmitFunc func(recorded []Entry) ([]events.Event, error)

// GroupItem is one entry of a group append (Store.AppendGroup): the tenant it belongs to and the
// entry.
type GroupItem struct {
	Tenant tenancy.TenantID
	Entry  NewEntry
}

// Store is the audit service's persistence. Every method that works on one tenant's entries
// takes the row-level-security scope it runs in as its second parameter, the same way as every
// service's store, and runs in its own transaction in that scope: the scope of the one tenant
// whose entries it touches (sqlstore.TenantScope), platform callers included. The reads (Get,
// Query, SeqRange, Range) in sqlstore.PlatformScope() read the platform chain: the entries of
// platform events (events without a tenant), stored under tenant id outbox.PlatformTenant (the
// nil UUID), with seq and hashes of their own, and in Go the zero TenantID. Any other scope (zero,
// or platform with a tenant) is refused, so no method can reach another tenant's rows; every
// statement names its tenant as well. AppendGroup and AppendGroupTx, whose items span tenants, run
// in the set scope of exactly those tenants. Implementations are safe for concurrent use.
//
// Append-only: no method changes or removes an entry, and the runtime role the store connects as
// may not either (INSERT and SELECT only).
type Store interface {
	// Append chains entries, in order, after the scope's tenant's last entry and inserts them,
	// in one transaction:
	//   1. when claim is not nil, it records claim's event in the inbox first; if the event was
	//      recorded before (a redelivery) nothing else is written and Append returns duplicate=true
	//      with no entries;
	//   2. it takes the tenant's append lock, a transaction-scoped lock keyed by the tenant, so
	//      appends for one tenant queue while appends for different tenants never wait on each
	//      other;
	//   3. it reads the tenant's last (seq, hash), assigns seq+1, seq+2, ... and the hashes (see
	//      chain.go) with RecordedAt = now, and inserts the entries;
	//   4. when emit is not nil, it writes emit's events to the outbox.
	// An entry whose SourceEventID the tenant already has (the inbox row was lost) is also a
	// duplicate: nothing is written and duplicate=true. entries must be valid (the service checks
	// them); their IDs are new UUIDs.
	Append(ctx context.Context, s sqlstore.Scope, entries []NewEntry, emit EmitFunc, claim *InboxClaim) (recorded []Entry, duplicate bool, err error)
	// AppendGroupTx chains and inserts entries of several tenants inside tx, an open transaction
	// of the store's database (DB) whose scope admits every item's tenant (the events consumer's,
	// which claimed the events in its inbox), with one statement per kind for the whole group:
	// the tenants' append locks (taken in one global order, so groups that share tenants cannot
	// deadlock), their last links, and the entries. Each tenant's entries are chained in items'
	// order; entries come back in items' order. An entry whose SourceEventID its tenant already
	// has fails it with the store's unique-violation error (a duplicate, for the caller to judge).
	// Items with the zero Tenant go to the platform chain; tx must then be in platform scope.
	AppendGroupTx(ctx context.Context, tx *sqlstore.Tx, items []GroupItem) ([]Entry, error)
	// AppendGroup chains and inserts entries of several tenants in ONE transaction, as Append does
	// for one tenant, in the set scope of the items' tenants, with AppendGroupTx's statements:
	// each tenant's entries are chained in items' order. When emit is not nil, it writes emit's
	// events (for the entries in items' order) to the outbox in the same transaction. Entries come
	// back in items' order. All or nothing. The platform chain is not written here (errScope):
	// it records consumed platform events only (AppendGroupTx).
	AppendGroup(ctx context.Context, items []GroupItem, emit EmitFunc) ([]Entry, error)
	// DB is the database the store works in.
	DB() *sqlstore.DB
	// Get returns the tenant's entry with this id (canonical UUID text), or ErrNotFound.
	Get(ctx context.Context, s sqlstore.Scope, id string) (Entry, error)
	// Query returns up to f.Limit of the tenant's entries that match f and have seq > f.AfterSeq,
	// in seq order.
	Query(ctx context.Context, s sqlstore.Scope, f Filter) ([]Entry, error)
	// SeqRange returns the lowest and highest seq among the tenant's entries whose occurredAt is
	// in [from, to) (a zero time leaves that side open), or 0, 0 when there are none.
	SeqRange(ctx context.Context, s sqlstore.Scope, from, to time.Time) (first, last int64, err error)
	// Range returns up to limit of the tenant's entries with afterSeq < seq <= throughSeq, in seq
	// order, whatever their occurredAt: Verify pages through a chain with it.
	Range(ctx context.Context, s sqlstore.Scope, afterSeq, throughSeq int64, limit int) ([]Entry, error)

	// ArchiveStore: the retention sweeps' reads and writes (store_archive.go).
	ArchiveStore
}
