package audit

import (
	"context"
	"fmt"
	"sync"
	"time"

	"spine/shared/events"
	"spine/shared/tenancy"
)

// maxGroup bounds how many API appends share a transaction (and so the tenants of its set scope).
const maxGroup = 64

// maxLeaders is how many API groups are written at once: one would serialize every append behind
// one transaction; a few keep the database busy while each group stays large.
const maxLeaders = 4

// minGroupToFork is how many appends must wait per running leader before another leader starts.
const minGroupToFork = 16

// groupTimeout bounds one group's transaction; it is detached from any single caller's context,
// because it carries the entries of every caller in the group.
const groupTimeout = 30 * time.Second

// appendReq is one RecordAuditEntry waiting for its group's commit.
type appendReq struct {
	tenant tenancy.TenantID
	entry  NewEntry
	meta   events.Meta
	done   chan appendRes
}

type appendRes struct {
	entry Entry
	err   error
}

// grouper commits concurrent API appends together (group commit), whatever their tenants: the
// appends that arrive while groups are being written join the next group, and a group is one
// transaction in the set scope of its tenants with one statement per kind (Store.AppendGroup), so
// it costs one commit and one fsync instead of one per entry — for many tenants as for one. Each
// tenant's entries are chained in arrival order within a group; across processes the store's
// per-tenant locks order the groups. If a group fails, each of its appends is written on its own,
// so one bad append never fails the others. Safe for concurrent use.
type grouper struct {
	mu      sync.Mutex
	pending []*appendReq
	leaders int           // groups being written now, at most maxLeaders
	wake    chan struct{} // wakes a lingering leader (see linger)
	write   func(ctx context.Context, reqs []*appendReq) ([]Entry, error)
}

// append queues r and waits for its group's outcome. A caller that finds fewer than maxLeaders
// groups being written becomes a leader and writes groups until the queue is empty.
func (g *grouper) append(ctx context.Context, r *appendReq) (Entry, error) {
	r.done = make(chan appendRes, 1)
	g.mu.Lock()
	g.pending = append(g.pending, r)
	// As bus.GroupConsumer does: the first append of an idle grouper writes at once; while groups
	// are being written, another leader starts only when enough appends wait for a group of its own.
	lead := g.leaders == 0 || (g.leaders < maxLeaders && len(g.pending) >= g.leaders*minGroupToFork)
	if lead {
		g.leaders++
	}
	g.mu.Unlock()
	if !lead {
		select { // a leader may be lingering: it takes this append at once
		case g.wake <- struct{}{}:
		default:
		}
	}
	if lead {
		// Detached: the leader writes other callers' groups too, and its own caller is answered
		// as soon as its own append is done, not when the queue is empty.
		go g.lead(context.Background()) // not the leader's context: its trace and values are its own
	}
	select {
	case res := <-r.done:
		return res.entry, res.err
	case <-ctx.Done():
		// The entry may still be committed by the group; the caller only stops waiting.
		return Entry{}, ctx.Err()
	}
}

func (g *grouper) lead(ctx context.Context) {
	for {
		g.mu.Lock()
		n := min(len(g.pending), maxGroup)
		if n == 0 {
			g.mu.Unlock()
			if g.linger() {
				continue
			}
			return
		}
		batch := g.pending[:n:n]
		g.pending = g.pending[n:]
		g.mu.Unlock()
		g.writeGroup(ctx, batch)
	}
}

// linger waits up to lingerFor for another append after a group was written, so that under a
// steady load one leader keeps writing groups as they fill instead of leaving, and the next
// append starting a leader of its own for a group of one. It reports whether appends wait (lead
// on); if not, it hands the leader's slot back.
func (g *grouper) linger() bool {
	t := time.NewTimer(lingerFor)
	defer t.Stop()
	select {
	case <-g.wake:
	case <-t.C:
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.pending) > 0 {
		return true
	}
	g.leaders--
	return false
}

// lingerFor is how long a leader that has written a group waits for the next append before it
// leaves. It adds no latency: an append that finds a lingering leader is written by it at once.
const lingerFor = 2 * time.Millisecond

// writeGroup writes batch as one group and answers each append; if the group fails, each append
// is written on its own. Every write has a deadline of its own. A panic fails the group's appends,
// never the grouper.
func (g *grouper) writeGroup(ctx context.Context, batch []*appendReq) {
	answered := false
	defer func() {
		if p := recover(); p != nil && !answered {
			for _, r := range batch {
				r.done <- appendRes{err: fmt.Errorf("audit: the group's write panicked: %v", p)}
			}
		}
	}()
	write := func(reqs []*appendReq) ([]Entry, error) {
		wctx, cancel := context.WithTimeout(ctx, groupTimeout)
		defer cancel()
		return g.write(wctx, reqs)
	}
	res := make([]appendRes, len(batch))
	recorded, err := write(batch)
	for i, r := range batch {
		switch {
		case err == nil:
			res[i] = appendRes{entry: recorded[i]}
		case len(batch) == 1:
			res[i] = appendRes{err: err}
		default: // the group failed as a whole: write this append alone, isolating the failure
			one, aerr := write([]*appendReq{r})
			res[i] = appendRes{err: aerr}
			if aerr == nil {
				res[i].entry = one[0]
			}
		}
	}
	answered = true
	for i, r := range batch {
		r.done <- res[i]
	}
}
