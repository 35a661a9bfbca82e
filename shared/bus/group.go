package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"spine/shared/functions"
	"spine/shared/httpx"
	"spine/shared/inbox"
	"spine/shared/sqlstore"
)

// GroupEffect is what a group consumer does with a group of events at once, inside the transaction
// that claimed them in the consumer's inbox (inbox.ClaimAll): ds are the group's first deliveries
// (duplicates are already left out), in arrival order, and tx's row-level-security scope is exactly
// their tenants (sqlstore.TenantSetScope; the tenant's own scope when there is one), so every row
// the effect writes belongs to one of them. Platform deliveries (a consumer with PlatformEvents
// only) never share a group with tenants' deliveries: a group is either tenants' deliveries in
// their set scope or platform deliveries in sqlstore.PlatformScope(). Write with one statement per
// kind for the whole group: that is the point. notes[i], when the effect returns notes, describes
// ds[i]'s effect for the log (an entry's id, say). The effect must not call out (it may run again
// after a failed commit). An error fails the group; the consumer then applies each event of the
// group on its own, so an event that cannot be applied fails only its own delivery. An error
// wrapping ErrSkip for a group of one acknowledges that event without an effect (the transaction
// rolls back, claim included), as Consumer does.
type GroupEffect func(ctx context.Context, tx *sqlstore.Tx, ds []Delivery) (notes []string, err error)

// GroupConsumer is a Service Bus consumer that commits concurrently delivered events together
// (group commit): deliveries that arrive while groups are being written join the next group,
// whatever their tenants, and a group is one transaction — one inbox claim statement, the
// effect's set-based statements, one commit — instead of one transaction per event. It keeps
// Consumer's guarantees: at least once in, exactly one effect per event (the inbox claim commits
// with the effect), and per-aggregate order as far as the transport gives it (a delivery's answer
// waits for its group's commit; the in-process transport delivers an aggregate's next event only
// after that answer; Service Bus without sessions orders only within what it hands over at once,
// and a batch's events are applied in their order). On the Functions host an instance hands a
// batch-taking function one batch at a time, so there a group is mostly one batch; the in-process
// transport runs one batch per lane at once. Use it for
// consumers with a high event rate and an effect that can be written for a whole group; Consumer
// stays the simple form. Configure it before its first Consume; it must not be copied after.
// Safe for concurrent use.
type GroupConsumer struct {
	// Name is the consumer's name in the inbox (the consuming service's subscription name).
	Name string
	// DB is the consuming service's database.
	DB *sqlstore.DB
	// Effect is applied to each group's first deliveries.
	Effect GroupEffect
	// Log receives one line per event at INFO (applied, duplicate or skipped), with its trace id.
	Log *slog.Logger
	// PlatformEvents has Effect applied to platform deliveries too (Delivery.Platform: events
	// without a tenant), as groups of their own in sqlstore.PlatformScope(), claimed in the inbox
	// under outbox.PlatformTenant: when a batch mixes platform and tenants' events, each kind is
	// written in its own transaction (different aggregates, so no order between them is lost), and
	// no tenant's delivery ever runs in platform scope. Without it a platform delivery is
	// acknowledged as "skipped" (no claim, no effect) and the batch's other events are applied.
	PlatformEvents bool
	// Message is the message of an event's log line for its outcome ("applied", "duplicate",
	// "skipped"). Default: "event consumed" for every outcome.
	Message func(outcome string) string
	// MaxGroup bounds one group's events. Default 64; at most sqlstore.MaxSetScope.
	MaxGroup int
	// MaxWriters bounds how many groups are written at once. One would serialize every delivery
	// behind one transaction; a few keep the database busy while each group stays large (a writer
	// beyond the first starts only when 16 deliveries per running writer wait). Default 4.
	MaxWriters int

	mu       sync.Mutex
	pending  []*unit
	waiting  int // deliveries in pending
	writers  int
	wakeOnce sync.Once
	wake     chan struct{} // wakes a lingering writer (see linger)
}

// unit is one invocation's deliveries (one message, or a batch in the order received) waiting for
// their group's commit. A unit is never split across groups written at once: its deliveries are
// applied in order, so an aggregate's events in a batch keep their order.
type unit struct {
	ds   []Delivery
	done chan unitRes
}

type unitRes struct {
	res []groupRes // one per delivery; outcome "" for a delivery not applied (err says why)
	err error      // the first failure among the unit's deliveries, or nil
}

type groupRes struct {
	outcome, note string // outcome: "applied", "duplicate" or "skipped"
}

// minGroupToFork is how many deliveries must wait per running writer before another writer starts.
const minGroupToFork = 16

// groupTimeout bounds one group's transaction; it is detached from any single delivery's
// context, because it carries the events of every delivery in the group.
const groupTimeout = 30 * time.Second

// Consume is a Service Bus-triggered function's whole body for c: it decodes the CloudEvents of
// the invocation (one message, or a batch from a trigger with functions.CardinalityMany; see
// DecodeEvents), queues them as one unit for the next group, waits for that group's commit and
// answers the host: 200 when every event was applied or was a duplicate, a non-2xx problem
// otherwise, so the host retries and finally dead-letters. A batch is settled as a whole: a message
// that cannot be decoded is left out and the others are applied; when an event's effect fails, the
// batch's other events are applied all the same except the later events of the failed event's
// aggregate (tenant and subject), which must not overtake it; either way the batch answers the
// failure, and its redelivery finds the applied events' claims (duplicates).
func (c *GroupConsumer) Consume(ctx context.Context, inv *functions.Invocation) (*functions.Result, error) {
	if c.Effect == nil || c.DB == nil {
		return nil, errNoEffect
	}
	all, bad, err := DecodeEvents(inv)
	if err != nil {
		return nil, err
	}
	ds, skipped := all, []Delivery(nil)
	if !c.PlatformEvents {
		ds = nil
		for _, d := range all {
			if d.Platform {
				skipped = append(skipped, d) // acknowledged without effect: c takes no platform events
			} else {
				ds = append(ds, d)
			}
		}
	}
	u := &unit{ds: ds, done: make(chan unitRes, 1)}
	if len(ds) > 0 {
		c.mu.Lock()
		c.pending = append(c.pending, u)
		c.waiting += len(ds)
		// The first delivery of an idle consumer writes at once (no wait when the rate is low);
		// while groups are being written, another writer starts only when enough deliveries wait
		// for it to write a group of its own, so under load groups grow instead of splitting into
		// many small transactions (each a commit and its WAL flush).
		lead := c.writers == 0 || (c.writers < c.maxWriters() && c.waiting >= c.writers*minGroupToFork)
		if lead {
			c.writers++
		}
		c.mu.Unlock()
		if !lead {
			select { // a writer may be lingering: it takes this unit at once
			case c.wakeCh() <- struct{}{}:
			default:
			}
		}
		if lead {
			// Detached: the leader writes other deliveries' groups too, and its own invocation
			// answers as soon as its own unit is done, not when the queue is empty.
			go c.lead(context.Background()) // not the leader's context: its trace and values are its own
		}
	} else {
		u.done <- unitRes{}
	}
	var ur unitRes
	select {
	case ur = <-u.done:
	case <-ctx.Done():
		return nil, ctx.Err() // the group may still commit the events; the redelivery finds their claims
	}
	lines := make([]string, 0, len(all))
	for _, d := range skipped {
		lines = append(lines, c.logConsumed(ctx, inv, d, groupRes{outcome: "skipped", note: "no platform events"}))
	}
	for i, d := range ds {
		if i < len(ur.res) && ur.res[i].outcome != "" {
			lines = append(lines, c.logConsumed(ctx, inv, d, ur.res[i]))
		}
	}
	if ur.err != nil {
		return nil, ur.err
	}
	if bad != nil {
		return nil, bad
	}
	return &functions.Result{Logs: lines}, nil
}

// logConsumed writes an event's log line and returns its line for the invocation's result.
func (c *GroupConsumer) logConsumed(ctx context.Context, inv *functions.Invocation, d Delivery, res groupRes) string {
	if c.Log != nil {
		trace := ""
		if tp, ok := httpx.ParseTraceParent(d.Event.TraceParent); ok {
			trace = tp.TraceID
		}
		attrs := []any{"eventId", d.Event.ID, "type", d.Event.Type, "tenantId", d.Tenant(), "traceId", trace,
			"invocationId", inv.InvocationID, "function", inv.FunctionName, "consumer", c.Name, "outcome", res.outcome}
		if res.note != "" {
			attrs = append(attrs, "effect", res.note)
		}
		msg := "event consumed"
		if c.Message != nil {
			msg = c.Message(res.outcome)
		}
		c.Log.InfoContext(ctx, msg, attrs...)
	}
	line := fmt.Sprintf("%s: %s event %s %s", c.Name, d.Event.Type, d.Event.ID, res.outcome)
	if res.note != "" {
		line += ": " + res.note
	}
	return line
}

func (c *GroupConsumer) maxWriters() int {
	if c.MaxWriters > 0 {
		return c.MaxWriters
	}
	return 4
}

func (c *GroupConsumer) maxGroup() int {
	if c.MaxGroup > 0 {
		return min(c.MaxGroup, sqlstore.MaxSetScope)
	}
	return 64
}

// lead writes groups until the queue is empty. A group takes whole units, at least one, up to
// maxGroup deliveries. A panic in a write (an Effect's) fails the units of its group, never the
// consumer: the writer's slot is handed back and the units are answered.
func (c *GroupConsumer) lead(ctx context.Context) {
	for {
		c.mu.Lock()
		n, size := 0, 0
		for n < len(c.pending) && (n == 0 || size+len(c.pending[n].ds) <= c.maxGroup()) {
			size += len(c.pending[n].ds)
			n++
		}
		if n == 0 {
			c.mu.Unlock()
			if c.linger() {
				continue
			}
			return
		}
		batch := c.pending[:n:n]
		c.pending = c.pending[n:]
		c.waiting -= size
		c.mu.Unlock()
		c.writeUnits(ctx, batch)
	}
}

// linger waits up to lingerFor for another delivery after a group was written, so that under a
// steady load one writer keeps writing groups as they fill instead of leaving, and the next
// delivery starting a writer of its own for a group of one. It reports whether deliveries wait
// (write on); if not, it hands the writer's slot back. A delivery that finds a lingering writer
// is written by it at once: lingering adds no latency.
func (c *GroupConsumer) linger() bool {
	t := time.NewTimer(lingerFor)
	defer t.Stop()
	select {
	case <-c.wakeCh():
	case <-t.C:
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.pending) > 0 {
		return true
	}
	c.writers--
	return false
}

// lingerFor is how long a writer that has written a group waits for the next delivery.
const lingerFor = 2 * time.Millisecond

// wakeCh is the channel that wakes a lingering writer, made on first use (a GroupConsumer is
// configured as a struct literal).
func (c *GroupConsumer) wakeCh() chan struct{} {
	c.wakeOnce.Do(func() { c.wake = make(chan struct{}, 1) })
	return c.wake
}

// writeUnits applies the units' deliveries as one group (in chunks of maxGroup, in order, when one
// unit is larger) and answers each unit. If the group fails, each event is applied on its own, in
// order; an event whose aggregate (tenant and subject) already failed in its unit is held back, so
// it never overtakes the failed one.
func (c *GroupConsumer) writeUnits(ctx context.Context, units []*unit) {
	answered := false
	defer func() {
		if p := recover(); p != nil && !answered {
			err := fmt.Errorf("bus: %s: the group's effect panicked: %v", c.Name, p)
			for _, u := range units {
				u.done <- unitRes{err: err}
			}
		}
	}()
	var ds []Delivery
	for _, u := range units {
		ds = append(ds, u.ds...)
	}
	res, err := c.writeChunks(ctx, ds)
	if err == nil {
		answered = true
		at := 0
		for _, u := range units {
			u.done <- unitRes{res: res[at : at+len(u.ds)]}
			at += len(u.ds)
		}
		return
	}
	if len(ds) == 1 {
		answered = true
		units[0].done <- unitRes{res: make([]groupRes, 1), err: err}
		return
	}
	// The group failed as a whole (chunks already committed find their claims: duplicates): apply
	// each event alone, isolating the failure.
	out := make([]unitRes, len(units))
	for k, u := range units {
		ur := unitRes{res: make([]groupRes, len(u.ds))}
		failed := map[string]bool{}
		for i, d := range u.ds {
			key := d.Tenant() + "/" + d.Event.Subject
			if failed[key] {
				continue // held back behind its aggregate's failed event; redelivered with the unit
			}
			one, err := c.writeChunks(ctx, []Delivery{d})
			if err != nil {
				failed[key] = true
				if ur.err == nil {
					ur.err = err
				}
				continue
			}
			ur.res[i] = one[0]
		}
		out[k] = ur
	}
	answered = true
	for k, u := range units {
		u.done <- out[k]
	}
}

// writeChunks writes ds in chunks of at most maxGroup, in order, each in its own transaction with a
// deadline of its own (detached from any one delivery's context: a group carries many). Tenants'
// deliveries and platform deliveries are chunked apart, tenants' first: a transaction's scope is
// then either the set of its tenants or platform scope, never platform scope for a tenant's event.
// Each kind keeps its order; they are different aggregates, so no order between them is owed.
func (c *GroupConsumer) writeChunks(ctx context.Context, ds []Delivery) ([]groupRes, error) {
	var tenants, platform []int
	for i, d := range ds {
		if d.Platform {
			platform = append(platform, i)
		} else {
			tenants = append(tenants, i)
		}
	}
	res := make([]groupRes, len(ds))
	for _, kind := range [][]int{tenants, platform} {
		for from := 0; from < len(kind); from += c.maxGroup() {
			at := kind[from:min(from+c.maxGroup(), len(kind))]
			part := make([]Delivery, len(at))
			for j, i := range at {
				part[j] = ds[i]
			}
			wctx, cancel := context.WithTimeout(ctx, groupTimeout)
			got, err := c.write(wctx, part)
			cancel()
			if err != nil {
				return nil, err
			}
			for j, i := range at {
				res[i] = got[j]
			}
		}
	}
	return res, nil
}

// write applies ds in one transaction: the inbox claims, then the effect for the first
// deliveries. ds are all tenants' deliveries (the set scope of their tenants) or all platform
// deliveries (platform scope); writeChunks keeps them apart. The outcomes are in ds's order.
func (c *GroupConsumer) write(ctx context.Context, ds []Delivery) ([]groupRes, error) {
	tenants := make([]string, len(ds))
	items := make([]inbox.Item, len(ds))
	for i, d := range ds {
		if d.Platform != ds[0].Platform {
			return nil, fmt.Errorf("bus: %s: a group mixes platform and tenants' events", c.Name)
		}
		tenants[i] = d.Tenant()
		items[i] = inbox.Item{Tenant: d.Tenant(), EventID: d.Event.ID, EventType: d.Event.Type}
	}
	slices.Sort(tenants)
	tenants = slices.Compact(tenants)
	scope := sqlstore.TenantSetScope(tenants)
	switch {
	case ds[0].Platform:
		scope = sqlstore.PlatformScope()
	case len(tenants) == 1:
		scope = sqlstore.Scope{Tenant: tenants[0]}
	}
	res := make([]groupRes, len(ds))
	err := c.DB.InTx(ctx, scope, func(tx *sqlstore.Tx) error {
		first, err := inbox.ClaimAll(ctx, tx, c.Name, items)
		if err != nil {
			return err
		}
		var fresh []Delivery
		var at []int
		for i := range ds {
			if first[i] {
				res[i] = groupRes{outcome: "applied"}
				fresh = append(fresh, ds[i])
				at = append(at, i)
			} else {
				res[i] = groupRes{outcome: "duplicate"}
			}
		}
		if len(fresh) == 0 {
			return nil
		}
		notes, err := c.Effect(ctx, tx, fresh)
		if err != nil {
			return err
		}
		if notes != nil && len(notes) != len(fresh) {
			return fmt.Errorf("bus: %s's effect returned %d notes for %d events", c.Name, len(notes), len(fresh))
		}
		for j, i := range at {
			if notes != nil {
				res[i].note = notes[j]
			}
		}
		return nil
	})
	if errors.Is(err, ErrSkip) && len(ds) == 1 {
		// Acknowledged without an effect, as Consumer does: the transaction rolled back, so not
		// even the claim is kept. In a larger group the skip fails the group, and the fallback
		// applies each event alone.
		return []groupRes{{outcome: "skipped"}}, nil
	}
	if err != nil {
		return nil, err
	}
	return res, nil
}

// errNoEffect is returned by a GroupConsumer without an Effect or a DB.
var errNoEffect = errors.New("bus: GroupConsumer needs an Effect and a DB")
