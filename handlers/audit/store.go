package audit

import (
	"context"
	"fmt"
	"sort"
	"time"

	"spine/shared/events"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
)

// EmitFunc builds the events that announce entries just chained. Append calls it inside its
// transaction, after the entries are inserted, and writes what it returns to the outbox; it must
// not call out. A returned error rolls the whole append back.
type EmitFunc func(recorded []Entry) ([]events.Event, error)

// Store is the audit service's persistence. Every method runs in its own transaction in the
// row-level-security scope of the one tenant it is given, so no method can reach another tenant's
// rows, platform callers included. Implementations are safe for concurrent use.
//
// Append-only: no method changes or removes an entry, and the runtime role the store connects as
// may not either (INSERT and SELECT only).
// EventItem is one consumed event to record: its tenant, its entry and its inbox claim.
type EventItem struct {
	Tenant tenancy.TenantID
	Entry  NewEntry
	Claim  InboxClaim
}

// EventOutcome is what AppendEvents did with one item.
type EventOutcome struct {
	Entry     Entry
	Duplicate bool
}

// appendTxFunc is one engine's Append body, run inside a transaction already in tenant's scope.
type appendTxFunc func(ctx context.Context, tx *sqlstore.Tx, tenant tenancy.TenantID, entries []NewEntry, emit EmitFunc, claim *InboxClaim) ([]Entry, bool, error)

// appendOne is Append for either engine: the engine's appendTx in one transaction in tenant's
// scope. An entry whose source event the tenant already has (its inbox row was lost) makes the
// insert fail on the unique source event id; that is a duplicate, not an error.
func appendOne(ctx context.Context, db *sqlstore.DB, tenant tenancy.TenantID, entries []NewEntry, emit EmitFunc, claim *InboxClaim, appendTx appendTxFunc) ([]Entry, bool, error) {
	var out []Entry
	var dup bool
	err := db.InTx(ctx, sqlstore.TenantScope(tenant), func(tx *sqlstore.Tx) error {
		var err error
		out, dup, err = appendTx(ctx, tx, tenant, entries, emit, claim)
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

// appendEvents is AppendEvents for either engine: the grouping and scope switching are the same,
// the statements are the engine's appendTx.
func appendEvents(ctx context.Context, db *sqlstore.DB, items []EventItem, appendTx appendTxFunc) ([]EventOutcome, error) {
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
	err := db.InTx(ctx, sqlstore.TenantScope(items[order[0]].Tenant), func(tx *sqlstore.Tx) error {
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
			rec, dup, err := appendTx(ctx, tx, it.Tenant, []NewEntry{it.Entry}, nil, &claim)
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

type Store interface {
	// Append chains entries, in order, after the tenant's last entry and inserts them, in one
	// transaction:
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
	Append(ctx context.Context, tenant tenancy.TenantID, entries []NewEntry, emit EmitFunc, claim *InboxClaim) (recorded []Entry, duplicate bool, err error)
	// AppendEvents records consumed events, each as Append with one entry and its inbox claim
	// would, but all in ONE transaction (one commit for the group): tenant by tenant in tenant-id
	// order (so groups that share tenants take their locks in the same order and cannot deadlock),
	// each tenant's statements in that tenant's row-level-security scope. Outcomes are in items'
	// order; an item whose event was recorded before is Duplicate. All or nothing: on error
	// nothing was written, and the caller may fall back to Append item by item.
	AppendEvents(ctx context.Context, items []EventItem) ([]EventOutcome, error)
	// Get returns the tenant's entry with this id (canonical UUID text), or ErrNotFound.
	Get(ctx context.Context, tenant tenancy.TenantID, id string) (Entry, error)
	// Query returns up to f.Limit of the tenant's entries that match f and have seq > f.AfterSeq,
	// in seq order.
	Query(ctx context.Context, tenant tenancy.TenantID, f Filter) ([]Entry, error)
	// SeqRange returns the lowest and highest seq among the tenant's entries whose occurredAt is
	// in [from, to) (a zero time leaves that side open), or 0, 0 when there are none.
	SeqRange(ctx context.Context, tenant tenancy.TenantID, from, to time.Time) (first, last int64, err error)
	// Range returns up to limit of the tenant's entries with afterSeq < seq <= throughSeq, in seq
	// order, whatever their occurredAt: Verify pages through a chain with it.
	Range(ctx context.Context, tenant tenancy.TenantID, afterSeq, throughSeq int64, limit int) ([]Entry, error)
}
