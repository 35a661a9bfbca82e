package retention

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"spine/shared/telemetry"
)

// The ledger's tables (Table Storage). infra provisions them; Ledger.EnsureTables creates them on
// local stacks and in tests.
const (
	TableRuns       = "sweepruns"          // PartitionKey = sweep, RowKey = inverted start time + "_" + run id
	TableWatermarks = "watermarks"         // PartitionKey = sweep, RowKey = unit (tenant id or platform unit)
	TableEvidence   = "evidence"           // PartitionKey = tenant ("platform"), RowKey = time + "_" + evidence id
	TableHolds      = "legalholds"         // PartitionKey = tenant, RowKey = hold id
	TableOverrides  = "retentionoverrides" // PartitionKey = tenant, RowKey = retention kind
)

// Tables lists the ledger's tables.
var Tables = []string{TableRuns, TableWatermarks, TableEvidence, TableHolds, TableOverrides}

// Errors of the ledger; SDK text (which names URLs) never leaves this package.
var (
	ErrLedgerUnavailable = errors.New("retention: the ledger (Table Storage) is unavailable")
	ErrConflict          = errors.New("retention: the ledger entity changed meanwhile")
	ErrNotFound          = errors.New("retention: not found")
)

// Ledger is the maintenance ledger in Azure Table Storage (Azurite locally). Every write touches
// one entity or one partition (single-partition batches only: Azure refuses cross-partition
// batches, which Azurite accepts). Safe for concurrent use.
type Ledger struct {
	svc *aztables.ServiceClient
	t   map[string]*aztables.Client
}

// OpenLedger connects with a storage connection string (its TableEndpoint; Azurite) or, when
// connString is empty, with the table service URL and the managed identity.
func OpenLedger(connString, tableURL string) (*Ledger, error) {
	opts := &aztables.ClientOptions{ClientOptions: azcore.ClientOptions{
		Retry: policy.RetryOptions{MaxRetries: 2, TryTimeout: 10 * time.Second},
	}}
	var svc *aztables.ServiceClient
	var err error
	if connString != "" {
		if svc, err = aztables.NewServiceClientFromConnectionString(connString, opts); err != nil {
			return nil, errors.New("retention: the storage connection string has no usable TableEndpoint or account key")
		}
	} else {
		if tableURL == "" {
			return nil, errors.New("retention: no table service URL")
		}
		cred, cerr := azidentity.NewDefaultAzureCredential(nil)
		if cerr != nil {
			return nil, fmt.Errorf("retention: credential: %w", cerr)
		}
		if svc, err = aztables.NewServiceClient(tableURL, cred, opts); err != nil {
			return nil, errors.New("retention: the table service URL is malformed")
		}
	}
	l := &Ledger{svc: svc, t: map[string]*aztables.Client{}}
	for _, name := range Tables {
		l.t[name] = svc.NewClient(name)
	}
	return l, nil
}

// TableURL derives the table service URL from a blob service URL
// (https://<account>.blob.core.windows.net/ → https://<account>.table.core.windows.net/).
func TableURL(blobURL string) string {
	return strings.Replace(blobURL, ".blob.", ".table.", 1)
}

// EnsureTables creates the ledger's tables that do not exist. Deployments create them with Pulumi;
// this is for local stacks and tests.
func (l *Ledger) EnsureTables(ctx context.Context) error {
	for _, name := range Tables {
		if _, err := l.svc.CreateTable(ctx, name, nil); err != nil && !hasCode(err, aztables.TableAlreadyExists) {
			return translate(err)
		}
	}
	return nil
}

// Ping reports whether the table service answers and the ledger's watermarks table exists (a
// one-entity query).
func (l *Ledger) Ping(ctx context.Context) error {
	top := int32(1)
	p := l.t[TableWatermarks].NewListEntitiesPager(&aztables.ListEntitiesOptions{Top: &top})
	if _, err := p.NextPage(ctx); err != nil {
		return translate(err) // a missing table too: every sweep would fail on it
	}
	return nil
}

// op measures one Table Storage call (telemetry.StoreTable, service "maintenance", op "<verb>_<table>")
// for tenant ("" for platform rows); the returned func records its outcome (not found counts as
// notfound, not as an error).
func op(ctx context.Context, verb, table, tenant string) func(error) {
	if tenant == PlatformPartition {
		tenant = ""
	}
	o := telemetry.Start(ctx, "maintenance", telemetry.StoreTable, verb+"_"+table, tenant)
	return func(err error) {
		outcome := telemetry.OutcomeOf(err)
		if hasCode(err, aztables.EntityNotFound) || hasCode(err, aztables.ResourceNotFound) {
			outcome = telemetry.OutcomeNotFound
		}
		o.EndWith(ctx, outcome, telemetry.NoSize, telemetry.NoSize)
	}
}

func hasCode(err error, code aztables.TableErrorCode) bool {
	var re *azcore.ResponseError
	return errors.As(err, &re) && re.ErrorCode == string(code)
}

// translate maps SDK errors to the package's sentinels (never their text, which names URLs).
func translate(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		switch {
		case re.ErrorCode == string(aztables.TableNotFound):
			// The ledger itself is missing (infra creates its tables; local stacks at start-up).
			return fmt.Errorf("%w (table not found)", ErrLedgerUnavailable)
		case re.StatusCode == http.StatusNotFound:
			return ErrNotFound
		case re.StatusCode == http.StatusConflict, re.StatusCode == http.StatusPreconditionFailed:
			return ErrConflict
		}
		return fmt.Errorf("%w (status %d, %s)", ErrLedgerUnavailable, re.StatusCode, re.ErrorCode)
	}
	return ErrLedgerUnavailable
}

// invertedKey orders newest first: RowKeys sort ascending.
func invertedKey(t time.Time) string {
	return fmt.Sprintf("%019d", math.MaxInt64-t.UnixNano())
}

// timeKey orders oldest first, fixed width (RFC 3339 with nanoseconds, UTC).
func timeKey(t time.Time) string { return t.UTC().Format("20060102T150405.000000000Z") }

// odata quotes a string literal for an OData filter.
func odata(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// entity is the stored form of every ledger row: the keys, and the row's content as one JSON
// string property (Data; at most 64 KiB), so the Go types stay the one description of each row.
type entity struct {
	PartitionKey string `json:"PartitionKey"`
	RowKey       string `json:"RowKey"`
	Data         string `json:"Data"`
}

func marshalEntity(pk, rk string, v any) ([]byte, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return json.Marshal(entity{PartitionKey: pk, RowKey: rk, Data: string(data)})
}

func unmarshalEntity(raw []byte, v any) (entity, error) {
	var e entity
	if err := json.Unmarshal(raw, &e); err != nil {
		return e, fmt.Errorf("retention: ledger entity: %w", err)
	}
	if err := json.Unmarshal([]byte(e.Data), v); err != nil {
		return e, fmt.Errorf("retention: ledger entity %s/%s: %w", e.PartitionKey, e.RowKey, err)
	}
	return e, nil
}

// scan pages through table's entities matching opts (its filter, select), in key order, calling
// fn with each entity's raw JSON until fn answers stop or an error, or the entities end. Every
// page is one measured Table Storage call.
func (l *Ledger) scan(ctx context.Context, table string, opts *aztables.ListEntitiesOptions, fn func(raw []byte) (stop bool, err error)) error {
	p := l.t[table].NewListEntitiesPager(opts)
	for p.More() {
		end := op(ctx, "query", table, "")
		page, err := p.NextPage(ctx)
		end(err)
		if err != nil {
			return translate(err)
		}
		for _, raw := range page.Entities {
			if stop, err := fn(raw); err != nil || stop {
				return err
			}
		}
	}
	return nil
}

// etagOf is the ETag of an entity as a list answers it (its odata.etag member).
func etagOf(raw []byte) azcore.ETag {
	var meta struct {
		ETag string `json:"odata.etag"`
	}
	_ = json.Unmarshal(raw, &meta)
	return azcore.ETag(meta.ETag)
}

// query lists the entities of table matching filter, at most limit (0 = all), in key order.
func query[T any](ctx context.Context, l *Ledger, table, filter string, limit int) ([]T, error) {
	opts := &aztables.ListEntitiesOptions{}
	if filter != "" {
		opts.Filter = &filter
	}
	if limit > 0 && limit < 1000 {
		top := int32(limit)
		opts.Top = &top
	}
	var out []T
	err := l.scan(ctx, table, opts, func(raw []byte) (bool, error) {
		var v T
		if _, err := unmarshalEntity(raw, &v); err != nil {
			return true, err
		}
		out = append(out, v)
		return limit > 0 && len(out) >= limit, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Watermark is a unit's state in one sweep: where the sweep got to, the intent of the batch
// under way (Pending; nil between batches) and running totals.
type Watermark struct {
	Sweep    string    `json:"sweep"`
	Unit     string    `json:"unit"`
	Position string    `json:"position"` // the last completed range's To
	Pending  *Evidence `json:"pending,omitempty"`
	// ServedAt is when a batch of this unit last completed (fairness: least recently served first).
	ServedAt time.Time `json:"servedAt,omitzero"`
	// Totals over the unit's life in this sweep.
	Batches   int64 `json:"batches"`
	Affected  int64 `json:"affected"`
	Exported  int64 `json:"exported"`
	HeldSkips int64 `json:"heldSkips"`
	// Failures counts the unit's consecutive failed batches (0 after a batch completes), with the
	// last one's class and time: an intent that fails every run shows here.
	Failures       int64      `json:"failures"`
	LastErrorClass string     `json:"lastErrorClass,omitempty"`
	LastFailedAt   *time.Time `json:"lastFailedAt,omitempty"`
	etag           azcore.ETag
	exists         bool
}

// Watermarks returns every unit's watermark of sweep, by unit.
func (l *Ledger) Watermarks(ctx context.Context, sweep string) (map[string]*Watermark, error) {
	out := map[string]*Watermark{}
	filter := "PartitionKey eq " + odata(sweep)
	err := l.scan(ctx, TableWatermarks, &aztables.ListEntitiesOptions{Filter: &filter}, func(raw []byte) (bool, error) {
		var w Watermark
		if _, err := unmarshalEntity(raw, &w); err != nil {
			return true, err
		}
		w.etag, w.exists = etagOf(raw), true
		out[w.Unit] = &w
		return false, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Watermark returns one unit's watermark (a fresh one, not yet stored, when there is none).
func (l *Ledger) Watermark(ctx context.Context, sweep, unit string) (*Watermark, error) {
	end := op(ctx, "get", TableWatermarks, "")
	r, err := l.t[TableWatermarks].GetEntity(ctx, sweep, unit, nil)
	end(err)
	if err != nil {
		if hasCode(err, aztables.EntityNotFound) || hasCode(err, aztables.ResourceNotFound) {
			return &Watermark{Sweep: sweep, Unit: unit}, nil
		}
		return nil, translate(err)
	}
	var w Watermark
	if _, err := unmarshalEntity(r.Value, &w); err != nil {
		return nil, err
	}
	w.etag, w.exists = r.ETag, true
	return &w, nil
}

// PutWatermark stores w if nobody changed it since it was read (optimistic concurrency on its
// ETag; a new one only if none exists): ErrConflict otherwise, when another instance works on the
// unit. On success w carries the new ETag.
func (l *Ledger) PutWatermark(ctx context.Context, w *Watermark) error {
	raw, err := marshalEntity(w.Sweep, w.Unit, w)
	if err != nil {
		return err
	}
	c := l.t[TableWatermarks]
	end := op(ctx, "put", TableWatermarks, "")
	if !w.exists {
		r, err := c.AddEntity(ctx, raw, nil)
		end(err)
		if err != nil {
			return translate(err)
		}
		w.etag, w.exists = r.ETag, true
		return nil
	}
	etag := w.etag
	r, err := c.UpdateEntity(ctx, raw, &aztables.UpdateEntityOptions{IfMatch: &etag, UpdateMode: aztables.UpdateModeReplace})
	end(err)
	if err != nil {
		return translate(err)
	}
	w.etag = r.ETag
	return nil
}

// PutEvidence stores ev (upsert by its key: a rerun after a crash writes the same row again).
func (l *Ledger) PutEvidence(ctx context.Context, ev Evidence) error {
	raw, err := marshalEntity(evidencePartition(ev.Tenant), evidenceKey(ev), ev)
	if err != nil {
		return err
	}
	end := op(ctx, "put", TableEvidence, ev.Tenant)
	_, err = l.t[TableEvidence].UpsertEntity(ctx, raw, &aztables.UpsertEntityOptions{UpdateMode: aztables.UpdateModeReplace})
	end(err)
	return translate(err)
}

func evidencePartition(tenant string) string {
	if tenant == "" {
		return PlatformPartition
	}
	return tenant
}

func evidenceKey(ev Evidence) string { return timeKey(ev.At) + "_" + ev.ID }

// Evidence lists the evidence of tenant ("platform" for platform sweeps) written from from to to
// (the intents' times; zero bounds are open), oldest first, at most limit (0: all).
func (l *Ledger) Evidence(ctx context.Context, tenant string, from, to time.Time, limit int) ([]Evidence, error) {
	return query[Evidence](ctx, l, TableEvidence, evidenceFilter(tenant, from, to, ""), limit)
}

// EvidencePage is Evidence a page at a time: at most limit rows after the row keyed after (""
// from the start; a page's last row's EvidenceKey), and whether more follow.
func (l *Ledger) EvidencePage(ctx context.Context, tenant string, from, to time.Time, after string, limit int) ([]Evidence, bool, error) {
	evs, err := query[Evidence](ctx, l, TableEvidence, evidenceFilter(tenant, from, to, after), limit+1)
	if err != nil || len(evs) <= limit {
		return evs, false, err
	}
	return evs[:limit], true, nil
}

func evidenceFilter(tenant string, from, to time.Time, after string) string {
	filter := "PartitionKey eq " + odata(evidencePartition(tenant))
	if !from.IsZero() {
		filter += " and RowKey ge " + odata(timeKey(from))
	}
	if !to.IsZero() {
		filter += " and RowKey lt " + odata(timeKey(to))
	}
	if after != "" {
		filter += " and RowKey gt " + odata(after)
	}
	return filter
}

// EvidenceKey is the ledger key of an evidence row (its RowKey): a page's position.
func EvidenceKey(ev Evidence) string { return evidenceKey(ev) }

// Run is one run of a sweep as the ledger keeps it.
type Run struct {
	RunID      string    `json:"runId"`
	Sweep      string    `json:"sweep"`
	StartedAt  time.Time `json:"startedAt"`
	FinishedAt time.Time `json:"finishedAt"`
	// Status is "completed" (nothing due left), "partial" (stopped at its bounds; the next run
	// goes on) or "failed" (a unit or the ledger failed; ErrorClass says which kind).
	Status      string `json:"status"`
	ErrorClass  string `json:"errorClass,omitempty"`
	Units       int    `json:"units"`
	Batches     int    `json:"batches"`
	Selected    int    `json:"selected"`
	Exported    int    `json:"exported"`
	Affected    int    `json:"affected"`
	HeldUnits   int    `json:"heldUnits"`
	Resumed     int    `json:"resumed"`
	FailedUnits int    `json:"failedUnits"`
}

// PutRun records a finished run.
func (l *Ledger) PutRun(ctx context.Context, r Run) error {
	raw, err := marshalEntity(r.Sweep, invertedKey(r.StartedAt)+"_"+r.RunID, r)
	if err != nil {
		return err
	}
	end := op(ctx, "put", TableRuns, "")
	_, err = l.t[TableRuns].UpsertEntity(ctx, raw, &aztables.UpsertEntityOptions{UpdateMode: aztables.UpdateModeReplace})
	end(err)
	return translate(err)
}

// Runs lists sweep's runs, newest first, at most limit.
func (l *Ledger) Runs(ctx context.Context, sweep string, limit int) ([]Run, error) {
	return query[Run](ctx, l, TableRuns, "PartitionKey eq "+odata(sweep), limit)
}

// Hold is a legal hold: until it is released every sweep skips the tenant's data of its scope.
// A released hold stays in the ledger with who released it and when (the record of the release).
type Hold struct {
	ID         string     `json:"id"`
	TenantID   string     `json:"tenantId"`
	Scope      string     `json:"scope"`
	Reason     string     `json:"reason"`
	CreatedBy  string     `json:"createdBy"`
	CreatedAt  time.Time  `json:"createdAt"`
	ReleasedBy string     `json:"releasedBy,omitempty"`
	ReleasedAt *time.Time `json:"releasedAt,omitempty"`
}

// Active reports whether the hold still holds.
func (h Hold) Active() bool { return h.ReleasedAt == nil }

// PutHold stores a new hold (its id is new: AddEntity).
func (l *Ledger) PutHold(ctx context.Context, h Hold) error {
	raw, err := marshalEntity(h.TenantID, h.ID, h)
	if err != nil {
		return err
	}
	end := op(ctx, "put", TableHolds, h.TenantID)
	_, err = l.t[TableHolds].AddEntity(ctx, raw, nil)
	end(err)
	return translate(err)
}

// Holds lists every hold, released ones included, or one tenant's when tenant is not "".
func (l *Ledger) Holds(ctx context.Context, tenant string) ([]Hold, error) {
	filter := ""
	if tenant != "" {
		filter = "PartitionKey eq " + odata(tenant)
	}
	return query[Hold](ctx, l, TableHolds, filter, 0)
}

// ReleaseHold releases the active hold id, recording by and at: the hold stays in the ledger,
// released. ErrNotFound when no active hold has this id.
func (l *Ledger) ReleaseHold(ctx context.Context, id, by string, at time.Time) (Hold, error) {
	h, etag, err := l.hold(ctx, id)
	if err != nil {
		return Hold{}, err
	}
	if !h.Active() {
		return Hold{}, ErrNotFound
	}
	at = at.UTC()
	h.ReleasedBy, h.ReleasedAt = by, &at
	raw, err := marshalEntity(h.TenantID, h.ID, h)
	if err != nil {
		return Hold{}, err
	}
	end := op(ctx, "put", TableHolds, h.TenantID)
	_, err = l.t[TableHolds].UpdateEntity(ctx, raw, &aztables.UpdateEntityOptions{IfMatch: &etag, UpdateMode: aztables.UpdateModeReplace})
	end(err)
	if err != nil {
		return Hold{}, translate(err)
	}
	return h, nil
}

// DeleteHold releases hold id as "test" now (tests' shorthand for ReleaseHold).
func (l *Ledger) DeleteHold(ctx context.Context, id string) (Hold, error) {
	return l.ReleaseHold(ctx, id, "test", time.Now())
}

// hold finds hold id and its ETag (ErrNotFound).
func (l *Ledger) hold(ctx context.Context, id string) (h Hold, etag azcore.ETag, err error) {
	filter := "RowKey eq " + odata(id)
	found := false
	err = l.scan(ctx, TableHolds, &aztables.ListEntitiesOptions{Filter: &filter}, func(raw []byte) (bool, error) {
		if _, err := unmarshalEntity(raw, &h); err != nil {
			return true, err
		}
		etag, found = etagOf(raw), true
		return true, nil
	})
	if err == nil && !found {
		err = ErrNotFound
	}
	return h, etag, err
}

// Override is a tenant's own retention of one kind: only ever longer than its edition's.
type Override struct {
	TenantID  string    `json:"tenantId"`
	Kind      string    `json:"kind"`
	Days      int       `json:"days"`
	SetBy     string    `json:"setBy"`
	UpdatedAt time.Time `json:"updatedAt"`
}

func (o Override) duration() time.Duration { return time.Duration(o.Days) * 24 * time.Hour }

// PutOverride stores (replaces) a tenant's override of kind.
func (l *Ledger) PutOverride(ctx context.Context, o Override) error {
	raw, err := marshalEntity(o.TenantID, o.Kind, o)
	if err != nil {
		return err
	}
	end := op(ctx, "put", TableOverrides, o.TenantID)
	_, err = l.t[TableOverrides].UpsertEntity(ctx, raw, &aztables.UpsertEntityOptions{UpdateMode: aztables.UpdateModeReplace})
	end(err)
	return translate(err)
}

// DeleteOverride removes a tenant's override of kind (ErrNotFound when there is none).
func (l *Ledger) DeleteOverride(ctx context.Context, tenant, kind string) error {
	end := op(ctx, "delete", TableOverrides, tenant)
	_, err := l.t[TableOverrides].DeleteEntity(ctx, tenant, kind, nil)
	end(err)
	return translate(err)
}

// Overrides lists a tenant's overrides.
func (l *Ledger) Overrides(ctx context.Context, tenant string) ([]Override, error) {
	return query[Override](ctx, l, TableOverrides, "PartitionKey eq "+odata(tenant), 0)
}

// OverridesOfKind returns every tenant's override of kind, by tenant: a run reads them once, not
// once per tenant.
func (l *Ledger) OverridesOfKind(ctx context.Context, kind string) (map[string]Override, error) {
	os, err := query[Override](ctx, l, TableOverrides, "RowKey eq "+odata(kind), 0)
	if err != nil {
		return nil, err
	}
	out := make(map[string]Override, len(os))
	for _, o := range os {
		out[o.TenantID] = o
	}
	return out, nil
}
