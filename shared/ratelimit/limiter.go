// Package ratelimit enforces the request limits of a tenant's edition (entitlements.Limit) on the
// authenticated /api group: a tenant-wide limit and per-route limits (echo route templates), each a
// GCRA cell in Redis under the tenant's hash tag ({t:<tenant>}:ratelimit:tenant and
// {t:<tenant>}:ratelimit:route:<template>), checked together in one atomic script on Redis's clock.
//
// Exempt: platform-admin tokens, requests without a principal, and host-invoked functions (their
// invocation routes are not on the /api group the middleware is mounted on).
//
// Redis unreachable: the limiter fails open to a per-instance in-memory GCRA at the same rates (so a
// tenant served by k instances may get up to k × its rate during an outage), for Config.Cooldown
// after each failure; a request never fails because of Redis, and never waits for more than two
// round trips, each bounded by the Redis client's timeouts: under load, concurrent decisions share
// round trips (batch.go), so a request may wait for the one under way before its own goes; when the
// one under way fails, the requests waiting behind it fail with it at once (then memory).
//
// Why not github.com/go-redis/redis_rate/v10: it prefixes every key with "rate:", which breaks the
// {t:<tenant>}:<service>:… key convention (the key-parsing metrics hook would attribute it to no
// tenant and no service), and it checks one key per round trip, so a tenant-wide and a route limit
// could not be checked, and consumed only together, atomically. The script here is the same GCRA
// (rwz/redis-gcra, as redis_rate uses) over several keys.
package ratelimit

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"golang.org/x/sync/singleflight"

	"spine/shared/entitlements"
	"spine/shared/telemetry"
	"spine/shared/tenancy"
)

// Config is what a Limiter needs. Zero fields take the documented defaults.
type Config struct {
	// Redis holds the shared GCRA cells; nil decides every request in memory (per instance).
	// Its timeouts bound what a request can wait for Redis (cache.ClientOptions: 250 ms dial,
	// 200 ms read).
	Redis redis.UniversalClient
	// Source answers each tenant's limits. Required.
	Source entitlements.Source
	// LimitsTTL is how long a tenant's limits are kept in process before Source is asked again.
	// For one more LimitsTTL after that, requests keep the previous copy while the reload runs in
	// the background; a copy older than that is reloaded before the request is decided (waiting at
	// most SourceTimeout). So a change of limits applies within 2 × LimitsTTL of the Source
	// answering it. Default 5s.
	LimitsTTL time.Duration
	// FallbackEdition is the edition whose limits apply to a tenant the Source knows no
	// entitlements of (entitlements.ErrUnknownTenant: no live subscription, a cancelled one, not
	// subscribed yet), so no tenant token is ever unlimited. Default "free"; when the Source does
	// not know that edition either, FallbackLimits apply.
	FallbackEdition string
	// SourceTimeout bounds how long a request waits for a tenant's first limits; past it the
	// request passes unlimited and the answer, when it comes, serves the next ones. Default 500ms.
	SourceTimeout time.Duration
	// Shadow are the route templates whose limits are counted but not enforced ("" is the
	// tenant-wide limit): a request they would refuse passes, and is counted as shadow-limited.
	// A limit whose entitlements.Limit.Shadow is set is shadow wherever it applies.
	Shadow []string
	// Cooldown is how long decisions stay in memory after a Redis failure before Redis is tried
	// again, so an outage costs one timeout per cooldown, not one per request. Default 1s.
	Cooldown time.Duration
	// MemoryCells bounds the in-memory cells. Default 100000.
	MemoryCells int
	// Meter records spine.ratelimit.decisions (attributes outcome: allowed, limited or
	// shadow-limited; policy: tenant or route; route: the template, "" for the tenant policy;
	// store: redis or memory); nil is the OpenTelemetry global provider when telemetry is
	// installed (telemetry.Enabled), else nothing is recorded.
	Meter metric.MeterProvider
	// Logger receives the Redis outage lines; nil discards them.
	Logger *slog.Logger
}

// Stats are a Limiter's counters since it was built.
type Stats struct {
	Allowed       int64 // requests let through by their limits (shadow-limited ones included)
	Limited       int64 // requests refused with 429
	ShadowLimited int64 // requests a shadow limit would have refused
	Memory        int64 // decisions taken in memory (Redis unreachable or not configured)
	RedisErrors   int64 // failed Redis calls
}

// Limiter decides requests against their tenant's limits. Safe for concurrent use.
type Limiter struct {
	cfg    Config
	shadow map[string]bool
	mem    *memory
	log    *slog.Logger
	batch  *batcher // sends the scripts to cfg.Redis (batch.go)

	limits   sync.Map // tenancy.TenantID → *limitsEntry
	nLimits  atomic.Int64
	loads    singleflight.Group
	downTill atomic.Int64 // unix nanos until which Redis is bypassed
	down     atomic.Bool  // Redis failed last time it was asked (the outage is logged once)

	allowed, limited, shadowed, inMemory, redisErrs atomic.Int64
	decisions                                       metric.Int64Counter // nil: not recorded
}

type limitsEntry struct {
	set     *limitSet
	expires time.Time
}

// limitSet is one tenant's limits, ready to use: per route, what a request checks, with its
// keys and script arguments built once (at load, not per request).
type limitSet struct {
	tenant *policy
	routes map[string]*policy
	alone  *check            // a route without its own limit: the tenant-wide one (nil: none)
	with   map[string]*check // a route with its own limit: the tenant-wide one (if any), then it
}

// check is the limits one request is decided against, tenant-wide first.
type check struct {
	ps    []*policy
	cells []cell
	keys  []string
	args  []any
}

func newCheck(prefix string, ps ...*policy) *check {
	c := &check{ps: ps}
	for _, p := range ps {
		cl := p.cell
		cl.key = prefix + p.keyTail
		c.cells = append(c.cells, cl)
		c.keys = append(c.keys, cl.key)
		c.args = append(c.args, cl.argv[:]...)
	}
	return c
}

// policy is one limit with its cell parameters and the header text that does not change.
type policy struct {
	name    string // "tenant" or "route"
	limit   entitlements.Limit
	keyTail string
	cell    cell
	header  string // RateLimit-Policy item
}

// New builds a Limiter.
func New(cfg Config) (*Limiter, error) {
	if cfg.Source == nil {
		return nil, errors.New("ratelimit: Config.Source is required")
	}
	if cfg.LimitsTTL <= 0 {
		cfg.LimitsTTL = 5 * time.Second
	}
	if cfg.FallbackEdition == "" {
		cfg.FallbackEdition = "free"
	}
	if cfg.SourceTimeout <= 0 {
		cfg.SourceTimeout = 500 * time.Millisecond
	}
	if cfg.Cooldown <= 0 {
		cfg.Cooldown = time.Second
	}
	if cfg.MemoryCells <= 0 {
		cfg.MemoryCells = 100000
	}
	mp := cfg.Meter
	if mp == nil && telemetry.Enabled() {
		mp = otel.GetMeterProvider()
	}
	l := &Limiter{cfg: cfg, shadow: map[string]bool{}, mem: newMemory(cfg.MemoryCells), log: cfg.Logger,
		batch: &batcher{rdb: cfg.Redis, max: maxPipelines}}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	for _, r := range cfg.Shadow {
		l.shadow[r] = true
	}
	if mp == nil {
		return l, nil
	}
	var err error
	l.decisions, err = mp.Meter("spine/shared/ratelimit").Int64Counter("spine.ratelimit.decisions",
		metric.WithDescription("Rate-limit decisions by outcome (allowed, limited, shadow-limited), policy and store."),
		metric.WithUnit("{request}"))
	if err != nil {
		return nil, err
	}
	return l, nil
}

// Stats returns the counters.
func (l *Limiter) Stats() Stats {
	return Stats{Allowed: l.allowed.Load(), Limited: l.limited.Load(), ShadowLimited: l.shadowed.Load(),
		Memory: l.inMemory.Load(), RedisErrors: l.redisErrs.Load()}
}

// PolicyState is one limit's answer for a request.
type PolicyState struct {
	Name       string // "tenant" or "route"
	Limit      entitlements.Limit
	Shadow     bool          // counted, not enforced
	Allowed    bool          // this limit lets the request pass
	Remaining  int           // requests that could pass at once after this one
	RetryAfter time.Duration // until this limit lets one request pass (when !Allowed)
	Reset      time.Duration // until this limit is back to its full burst
	header     string
}

// Decision is the answer for one request.
type Decision struct {
	Allowed  bool          // false: refuse with 429
	Policies []PolicyState // the limits that apply, tenant-wide first; empty: the tenant has none
	Memory   bool          // decided in memory (Redis unreachable or not configured)
}

// Decide checks one request of tenant on route (an echo route template) against the tenant's
// limits and consumes them if it passes. It never fails: with no limits known it allows.
func (l *Limiter) Decide(ctx context.Context, tenant tenancy.TenantID, route string) Decision {
	set := l.limitsOf(ctx, tenant)
	if set == nil {
		return Decision{Allowed: true}
	}
	chk := set.alone
	if c := set.with[route]; c != nil {
		chk = c
	}
	if chk == nil {
		return Decision{Allowed: true}
	}
	out, inMemory := l.run(ctx, chk)
	d := Decision{Allowed: true, Memory: inMemory, Policies: make([]PolicyState, len(chk.ps))}
	for i, p := range chk.ps {
		o := out[i]
		d.Policies[i] = PolicyState{Name: p.name, Limit: p.limit, Shadow: !p.cell.enforce, Allowed: o.allowed,
			Remaining: max(o.remaining, 0), RetryAfter: o.retryAfter, Reset: max(o.reset, 0), header: p.header}
		if !o.allowed && p.cell.enforce {
			d.Allowed = false
		}
	}
	l.count(ctx, d, route)
	return d
}

// run evaluates cells in Redis, or in memory when Redis is not configured, failing or cooling down.
func (l *Limiter) run(ctx context.Context, chk *check) ([]outcome, bool) {
	if rdb := l.cfg.Redis; rdb != nil && time.Now().UnixNano() >= l.downTill.Load() {
		v, err := l.batch.eval(ctx, chk.keys, chk.args)
		if err == nil {
			if out, ok := parseScript(v, len(chk.cells)); ok {
				if l.down.CompareAndSwap(true, false) {
					l.log.InfoContext(ctx, "rate limits: Redis is back, deciding in Redis again")
				}
				return out, false
			}
			err = errors.New("unexpected script reply")
		}
		l.redisErrs.Add(1)
		if ctx.Err() == nil { // the caller going away says nothing about Redis
			l.downTill.Store(time.Now().Add(l.cfg.Cooldown).UnixNano())
			if l.down.CompareAndSwap(false, true) {
				l.log.WarnContext(ctx, "rate limits: Redis unreachable, deciding in memory per instance (each instance allows the full rate) until it answers again",
					"retryEvery", l.cfg.Cooldown.String(), "error", err.Error())
			}
		}
	}
	l.inMemory.Add(1)
	return l.mem.allow(chk.cells), true
}

func (l *Limiter) count(ctx context.Context, d Decision, route string) {
	store := "redis"
	if d.Memory {
		store = "memory"
	}
	if d.Allowed {
		l.allowed.Add(1)
	} else {
		l.limited.Add(1)
	}
	for _, p := range d.Policies {
		outcome := "allowed"
		switch {
		case !p.Allowed && p.Shadow:
			outcome = "shadow-limited"
			l.shadowed.Add(1)
		case !p.Allowed:
			outcome = "limited"
		case !d.Allowed:
			continue // refused by another policy; this one consumed nothing
		}
		if l.decisions == nil {
			continue
		}
		r := route
		if p.Name == "tenant" {
			r = ""
		}
		l.decisions.Add(ctx, 1, metric.WithAttributes(attribute.String("outcome", outcome),
			attribute.String("policy", p.Name), attribute.String("route", r), attribute.String("store", store)))
	}
}

// limitsOf returns tenant's limits, from the in-process copy: a fresh copy at once, a stale one at
// once while a reload runs in the background, none after waiting at most SourceTimeout for the
// first load. A Source failure keeps the previous copy (or, with none, no limits) for another
// LimitsTTL: limits fail open, never into an error.
func (l *Limiter) limitsOf(ctx context.Context, tenant tenancy.TenantID) *limitSet {
	var stale *limitsEntry
	if v, ok := l.limits.Load(tenant); ok {
		e := v.(*limitsEntry)
		if time.Now().Before(e.expires) {
			return e.set
		}
		stale = e
	}
	ch := l.loads.DoChan(tenant.String(), func() (any, error) {
		// A load that finished between the lookup above and this flight already stored a fresh
		// copy: use it rather than asking the Source again.
		if v, ok := l.limits.Load(tenant); ok && time.Now().Before(v.(*limitsEntry).expires) {
			return v.(*limitsEntry).set, nil
		}
		// A load outlives the request that started it: other requests share it.
		return l.load(context.WithoutCancel(ctx), tenant, stale), nil
	})
	if stale != nil && time.Now().Before(stale.expires.Add(l.cfg.LimitsTTL)) {
		return stale.set
	}
	t := time.NewTimer(l.cfg.SourceTimeout)
	defer t.Stop()
	select {
	case r := <-ch:
		return r.Val.(*limitSet)
	case <-t.C:
	case <-ctx.Done():
	}
	if stale != nil {
		return stale.set
	}
	return nil
}

// load asks Source for tenant's limits and keeps them for LimitsTTL.
func (l *Limiter) load(ctx context.Context, tenant tenancy.TenantID, stale *limitsEntry) *limitSet {
	ctx, cancel := context.WithTimeout(ctx, l.cfg.LimitsTTL)
	defer cancel()
	ent, err := l.cfg.Source.Of(ctx, tenant)
	var set *limitSet
	switch {
	case err == nil:
		limits := ent.Limits
		if tenantWide(limits) == nil {
			// An edition without a tenant-wide limit still has one: the fallback edition's.
			limits = append([]entitlements.Limit{*tenantWide(l.fallback(ctx))}, limits...)
		}
		set = l.compile(tenant, limits)
	case errors.Is(err, entitlements.ErrUnknownTenant):
		set = l.compile(tenant, l.fallback(ctx))
	default:
		l.log.WarnContext(ctx, "rate limits: entitlements unavailable, keeping the last known limits",
			"tenant", tenant.String(), "error", err.Error())
		if stale != nil {
			set = stale.set
		}
	}
	if _, loaded := l.limits.Swap(tenant, &limitsEntry{set: set, expires: time.Now().Add(l.cfg.LimitsTTL)}); !loaded &&
		l.nLimits.Add(1) > int64(l.cfg.MemoryCells) {
		// Too many tenants in process: start over (each asks Source again once).
		l.limits.Clear()
		l.nLimits.Store(0)
	}
	return set
}

// FallbackLimits apply to a tenant without entitlements when the Source does not know
// Config.FallbackEdition either: 10 requests per second, bursts of 20.
var FallbackLimits = []entitlements.Limit{{Rate: 10, Burst: 20, Period: time.Second}}

// fallback is the limits of a tenant the Source knows no entitlements of: the fallback edition's,
// or FallbackLimits when that edition is unknown or has no tenant-wide limit. It always has a
// tenant-wide limit.
func (l *Limiter) fallback(ctx context.Context) []entitlements.Limit {
	e, err := l.cfg.Source.Edition(ctx, l.cfg.FallbackEdition)
	if err != nil && !errors.Is(err, entitlements.ErrUnknownEdition) {
		l.log.WarnContext(ctx, "rate limits: the fallback edition is unavailable, applying the built-in fallback limits",
			"edition", l.cfg.FallbackEdition, "error", err.Error())
	}
	if err == nil && tenantWide(e.Limits) != nil {
		return e.Limits
	}
	return FallbackLimits
}

// tenantWide is the usable tenant-wide limit among limits, or nil.
func tenantWide(limits []entitlements.Limit) *entitlements.Limit {
	for i, lim := range limits {
		if lim.Route == "" && lim.Rate > 0 && lim.Period > 0 {
			return &limits[i]
		}
	}
	return nil
}

// compile turns an edition's limits into policies; a limit with no rate or period is ignored, a
// burst below 1 is 1 (GCRA with no burst would refuse everything).
func (l *Limiter) compile(tenant tenancy.TenantID, limits []entitlements.Limit) *limitSet {
	set := &limitSet{}
	for _, lim := range limits {
		if lim.Rate <= 0 || lim.Period <= 0 {
			continue
		}
		if lim.Burst < 1 {
			lim.Burst = 1
		}
		interval := float64(lim.Period.Microseconds()) / float64(lim.Rate)
		p := &policy{limit: lim, cell: newCell(interval, interval*float64(lim.Burst), !lim.Shadow && !l.shadow[lim.Route])}
		if lim.Route == "" {
			p.name, p.keyTail = "tenant", "tenant"
			set.tenant = p
		} else {
			if set.routes == nil {
				set.routes = map[string]*policy{}
			}
			p.name, p.keyTail = "route", "route:"+lim.Route
			set.routes[lim.Route] = p
		}
		p.header = `"` + p.name + `";q=` + strconv.Itoa(lim.Burst) + ";w=" + strconv.FormatInt(ceilSeconds(lim.Period), 10)
	}
	if set.tenant == nil && set.routes == nil {
		return nil
	}
	prefix := "{t:" + tenant.String() + "}:ratelimit:"
	if set.tenant != nil {
		set.alone = newCheck(prefix, set.tenant)
	}
	for route, p := range set.routes {
		if set.with == nil {
			set.with = map[string]*check{}
		}
		if set.tenant != nil {
			set.with[route] = newCheck(prefix, set.tenant, p)
		} else {
			set.with[route] = newCheck(prefix, p)
		}
	}
	return set
}

// ceilSeconds is d in whole seconds, rounded up (headers carry seconds).
func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}
