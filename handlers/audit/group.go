package audit

import (
	"context"
	"sync"
	"time"

	"spine/shared/events"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
)

// maxGroup bounds how many API appends of one tenant share a transaction.
const maxGroup = 64

// groupTimeout bounds one group's transaction; it is detached from any single caller's context,
// because it carries the entries of every caller in the group.
const groupTimeout = 30 * time.Second

// appendReq is one RecordAuditEntry waiting for its group's commit.
type appendReq struct {
	entry NewEntry
	meta  events.Meta
	done  chan appendRes
}

type appendRes struct {
	entry Entry
	err   error
}

// grouper commits one tenant's concurrent API appends together (group commit). Appends of one
// tenant are serialized by the chain anyway (each holds the tenant's lock until its commit), so
// taking every append that arrived while the previous transaction ran and writing them in one
// transaction costs one lock wait, one commit and one fsync instead of one per entry. Entries are
// chained in arrival order. Other tenants are untouched: each tenant has its own queue. Across
// processes the store's per-tenant lock still orders the groups. Safe for concurrent use.
type grouper struct {
	mu     sync.Mutex
	queues map[tenancy.TenantID]*tenantQueue
	write  func(ctx context.Context, tenant tenancy.TenantID, reqs []*appendReq) ([]Entry, error)
}

type tenantQueue struct {
	pending []*appendReq
	running bool
}

// append queues r and waits for its group's outcome. The first caller of an idle tenant becomes
// the group's leader and writes groups until the queue is empty; the others wait.
func (g *grouper) append(ctx context.Context, tenant tenancy.TenantID, r *appendReq) (Entry, error) {
	r.done = make(chan appendRes, 1)
	g.mu.Lock()
	q := g.queues[tenant]
	if q == nil {
		q = &tenantQueue{}
		g.queues[tenant] = q
	}
	q.pending = append(q.pending, r)
	lead := !q.running
	q.running = true
	g.mu.Unlock()
	if lead {
		g.lead(context.WithoutCancel(ctx), tenant, q)
	}
	select {
	case res := <-r.done:
		return res.entry, res.err
	case <-ctx.Done():
		// The entry may still be committed by the group; the caller only stops waiting.
		return Entry{}, ctx.Err()
	}
}

func (g *grouper) lead(ctx context.Context, tenant tenancy.TenantID, q *tenantQueue) {
	for {
		g.mu.Lock()
		n := min(len(q.pending), maxGroup)
		if n == 0 {
			q.running = false
			delete(g.queues, tenant)
			g.mu.Unlock()
			return
		}
		batch := q.pending[:n:n]
		q.pending = q.pending[n:]
		g.mu.Unlock()

		wctx, cancel := context.WithTimeout(ctx, groupTimeout)
		recorded, err := g.write(wctx, tenant, batch)
		cancel()
		for i, r := range batch {
			res := appendRes{err: err}
			if err == nil {
				res.entry = recorded[i]
			}
			r.done <- res
		}
	}
}

// eventReq is one consumed event waiting for its group's commit.
type eventReq struct {
	item EventItem
	done chan eventRes
}

type eventRes struct {
	out EventOutcome
	err error
}

// eventGrouper commits concurrently delivered events together: invocations that arrive while
// groups are being written join the next group, whatever their tenant, and a group is one
// transaction (Store.AppendEvents) instead of one per event; up to maxEventLeaders groups are
// written at once. If a group fails, each of its events
// is recorded on its own (Store.Append), so one bad event never fails the others. Safe for
// concurrent use.
type eventGrouper struct {
	mu      sync.Mutex
	pending []*eventReq
	leaders int // groups being written now, at most maxEventLeaders
	store   Store
}

// maxEventLeaders is how many event groups are written at once. One would serialize every
// consumer behind one transaction; a few keep the database busy while each group stays small
// (it holds its tenants' chain locks until it commits).
const maxEventLeaders = 8

// maxEventGroup bounds one event group.
const maxEventGroup = 16

func (g *eventGrouper) record(ctx context.Context, it EventItem) (EventOutcome, error) {
	r := &eventReq{item: it, done: make(chan eventRes, 1)}
	g.mu.Lock()
	g.pending = append(g.pending, r)
	lead := g.leaders < maxEventLeaders
	if lead {
		g.leaders++
	}
	g.mu.Unlock()
	if lead {
		g.lead(context.WithoutCancel(ctx))
	}
	select {
	case res := <-r.done:
		return res.out, res.err
	case <-ctx.Done():
		return EventOutcome{}, ctx.Err()
	}
}

func (g *eventGrouper) lead(ctx context.Context) {
	for {
		g.mu.Lock()
		n := min(len(g.pending), maxEventGroup)
		if n == 0 {
			g.leaders--
			g.mu.Unlock()
			return
		}
		batch := g.pending[:n:n]
		g.pending = g.pending[n:]
		g.mu.Unlock()

		wctx, cancel := context.WithTimeout(ctx, groupTimeout)
		items := make([]EventItem, len(batch))
		for i, r := range batch {
			items[i] = r.item
		}
		outs, err := g.store.AppendEvents(wctx, items)
		for i, r := range batch {
			if err == nil {
				r.done <- eventRes{out: outs[i]}
				continue
			}
			// The group failed as a whole: record this event alone, isolating the failure.
			claim := r.item.Claim
			rec, dup, aerr := g.store.Append(wctx, sqlstore.TenantScope(r.item.Tenant), []NewEntry{r.item.Entry}, nil, &claim)
			res := eventRes{out: EventOutcome{Duplicate: dup}, err: aerr}
			if aerr == nil && !dup {
				res.out.Entry = rec[0]
			}
			r.done <- res
		}
		cancel()
	}
}
