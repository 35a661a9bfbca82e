package telemetry

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// The store attribute's values: one per kind of store in the storage map.
const (
	StoreSQL      = "sql"
	StoreRedis    = "redis"
	StoreBlob     = "blob"
	StoreTable    = "table"
	StoreKeyVault = "keyvault"
	StoreBus      = "bus"
)

// The outcome attribute's values.
const (
	OutcomeOK       = "ok"
	OutcomeError    = "error"
	OutcomeNotFound = "notfound" // a read that found nothing: no row, a cache miss, no blob
)

// Tenant attribute values that are not tenant ids.
const (
	// TenantNone is recorded for platform-level operations: no tenant, a platform scope, a {p}
	// cache key, a platform event.
	TenantNone = "none"
	// TenantOther is recorded for every tenant beyond the Recorder's tenant limit.
	TenantOther = "other"
)

// platformTenant is the nil UUID the outbox records for platform-level events.
const platformTenant = "00000000-0000-0000-0000-000000000000"

// NoSize passed as items or bytes means the operation's size is not measured.
const NoSize = -1

// Attribute keys of the store instruments.
const (
	AttrService = "service"
	AttrStore   = "store"
	AttrOp      = "op"
	AttrOutcome = "outcome"
	AttrTenant  = "tenant"
)

// Recorder records store operations on the store instruments (see the package doc). It is safe
// for concurrent use. Attribute sets are built once per distinct combination and reused, so a
// recording costs two map lookups and the SDK's own work.
type Recorder struct {
	duration metric.Float64Histogram
	ops      metric.Int64Counter
	size     metric.Int64Histogram
	items    metric.Int64Histogram
	tenants  *TenantLimiter
	sets     sync.Map // attrKey → *attrOpts
}

type attrKey struct{ service, store, op, outcome, tenant string }

// attrOpts are the precomputed options of one attribute set, as slices so that passing them to
// the instruments allocates nothing.
type attrOpts struct {
	add []metric.AddOption
	rec []metric.RecordOption
}

// NewRecorder creates the store instruments on mp. tenantLimit bounds the distinct tenant values
// (see TenantLimiter); values below 1 take DefaultTenantLimit.
func NewRecorder(mp metric.MeterProvider, tenantLimit int) (*Recorder, error) {
	if tenantLimit < 1 {
		tenantLimit = DefaultTenantLimit
	}
	m := mp.Meter(scope)
	r := &Recorder{tenants: NewTenantLimiter(tenantLimit)}
	var err error
	if r.duration, err = m.Float64Histogram("spine.store.duration", metric.WithUnit("s"),
		metric.WithDescription("Latency of store operations (SQL transactions, Redis commands, blob calls, bus publishes)."),
		metric.WithExplicitBucketBoundaries(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)); err != nil {
		return nil, err
	}
	if r.ops, err = m.Int64Counter("spine.store.operations", metric.WithUnit("{operation}"),
		metric.WithDescription("Store operations, by service, store, op, outcome and tenant.")); err != nil {
		return nil, err
	}
	if r.size, err = m.Int64Histogram("spine.store.size", metric.WithUnit("By"),
		metric.WithDescription("Payload bytes a store operation moved (Redis values, blobs, published messages)."),
		metric.WithExplicitBucketBoundaries(64, 256, 1024, 4096, 16384, 65536, 262144, 1<<20, 4<<20, 16<<20)); err != nil {
		return nil, err
	}
	if r.items, err = m.Int64Histogram("spine.store.items", metric.WithUnit("{item}"),
		metric.WithDescription("Items a store operation touched (keys, messages)."),
		metric.WithExplicitBucketBoundaries(0, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 5000)); err != nil {
		return nil, err
	}
	return r, nil
}

// Record records one store operation: its duration and count always, items and bytes unless
// negative (NoSize). tenant is a tenant id, or "" / the nil UUID for platform-level operations
// (recorded as TenantNone); tenants beyond the limit are recorded as TenantOther.
func (r *Recorder) Record(ctx context.Context, service, store, op, tenant, outcome string, d time.Duration, items, bytes int64) {
	o := r.opts(attrKey{service, store, op, outcome, r.tenants.Fold(tenant)})
	r.duration.Record(ctx, d.Seconds(), o.rec...)
	r.ops.Add(ctx, 1, o.add...)
	if bytes >= 0 {
		r.size.Record(ctx, bytes, o.rec...)
	}
	if items >= 0 {
		r.items.Record(ctx, items, o.rec...)
	}
}

func (r *Recorder) opts(k attrKey) *attrOpts {
	if v, ok := r.sets.Load(k); ok {
		return v.(*attrOpts)
	}
	// A new combination: keep copies, since the strings may be slices of longer ones (keys).
	k = attrKey{strings.Clone(k.service), strings.Clone(k.store), strings.Clone(k.op), strings.Clone(k.outcome), strings.Clone(k.tenant)}
	set := attribute.NewSet(
		attribute.String(AttrService, k.service),
		attribute.String(AttrStore, k.store),
		attribute.String(AttrOp, k.op),
		attribute.String(AttrOutcome, k.outcome),
		attribute.String(AttrTenant, k.tenant),
	)
	opt := metric.WithAttributeSet(set)
	v, _ := r.sets.LoadOrStore(k, &attrOpts{add: []metric.AddOption{opt}, rec: []metric.RecordOption{opt}})
	return v.(*attrOpts)
}

// TenantLimiter bounds the tenant attribute: the first Limit distinct tenants it is asked about
// keep their id, every later one folds into TenantOther. Admitted tenants stay admitted for its
// lifetime. "" and the nil UUID fold into TenantNone, which like TenantOther is not counted. Safe
// for concurrent use; an admitted tenant's lookup takes no lock.
type TenantLimiter struct {
	limit int64
	n     atomic.Int64
	seen  sync.Map // tenant id → struct{}
	mu    sync.Mutex
}

// NewTenantLimiter admits up to limit distinct tenants.
func NewTenantLimiter(limit int) *TenantLimiter { return &TenantLimiter{limit: int64(limit)} }

// Fold returns the value to record for tenant.
func (l *TenantLimiter) Fold(tenant string) string {
	switch tenant {
	case "", platformTenant, TenantNone:
		return TenantNone
	case TenantOther:
		return TenantOther
	}
	if _, ok := l.seen.Load(tenant); ok {
		return tenant
	}
	if l.n.Load() >= l.limit {
		return TenantOther
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.seen.Load(tenant); ok {
		return tenant
	}
	if l.n.Load() >= l.limit {
		return TenantOther
	}
	tenant = strings.Clone(tenant) // it may be a slice of a longer string (a cache key)
	l.seen.Store(tenant, struct{}{})
	l.n.Add(1)
	return tenant
}

// Admitted is how many distinct tenants keep their id.
func (l *TenantLimiter) Admitted() int { return int(l.n.Load()) }

var def atomic.Pointer[Recorder]

// Default is the process's Recorder (installed by Provider.Install), or nil when nothing is
// recorded.
func Default() *Recorder { return def.Load() }

// SetDefault installs r as the process's Recorder (nil: record nothing). Tests use it with a
// Recorder over a ManualReader.
func SetDefault(r *Recorder) { def.Store(r) }

// Op measures one store operation from Start to End. The zero Op records nothing.
type Op struct {
	rec                        *Recorder
	service, store, op, tenant string
	start                      time.Time
}

// Start begins measuring an operation of store (StoreSQL, …) named op, for service and tenant,
// on the Default recorder. An empty tenant means the tenant ctx names (WithTenant), if any: the
// operation is platform-level (a shared cache load, a platform-scope transaction) but done for
// that tenant's request. When nothing is recorded Start returns the zero Op without reading the
// clock.
func Start(ctx context.Context, service, store, op, tenant string) Op {
	r := def.Load()
	if r == nil {
		return Op{}
	}
	if tenant == "" {
		tenant = TenantFrom(ctx)
	}
	return Op{rec: r, service: service, store: store, op: op, tenant: tenant, start: time.Now()}
}

type tenantKey struct{}

// WithTenant returns ctx naming tenant as the tenant the work in it is done for (an authenticated
// request's tenant). Store operations without a tenant of their own are recorded for it.
func WithTenant(ctx context.Context, tenant string) context.Context {
	if tenant == "" {
		return ctx
	}
	return context.WithValue(ctx, tenantKey{}, tenant)
}

// TenantFrom returns the tenant WithTenant put into ctx, or "".
func TenantFrom(ctx context.Context) string {
	t, _ := ctx.Value(tenantKey{}).(string)
	return t
}

// Active reports whether o records anything: callers skip work that only feeds the metrics.
func (o Op) Active() bool { return o.rec != nil }

// End records the operation with outcome OutcomeOf(err) and no size.
func (o Op) End(ctx context.Context, err error) {
	if o.rec == nil {
		return
	}
	o.rec.Record(ctx, o.service, o.store, o.op, o.tenant, OutcomeOf(err), time.Since(o.start), NoSize, NoSize)
}

// EndWith records the operation with an explicit outcome, items and bytes (NoSize: not measured).
func (o Op) EndWith(ctx context.Context, outcome string, items, bytes int64) {
	if o.rec == nil {
		return
	}
	o.rec.Record(ctx, o.service, o.store, o.op, o.tenant, outcome, time.Since(o.start), items, bytes)
}

// OutcomeOf is OutcomeOK for a nil error and OutcomeError otherwise.
func OutcomeOf(err error) string {
	if err == nil {
		return OutcomeOK
	}
	return OutcomeError
}
