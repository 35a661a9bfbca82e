package retention

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"spine/shared/contracts"
	"spine/shared/entitlements"
	"spine/shared/events"
	"spine/shared/functions"
	"spine/shared/tenancy"
)

// Config configures an Engine. Zero fields take the documented defaults.
type Config struct {
	// Ledger is the maintenance ledger (required).
	Ledger *Ledger
	// Entitlements answers a tenant's edition retention (entitlements Retention[kind]); nil when no
	// module provides it (every tenant then has the sweep's default).
	Entitlements entitlements.Source
	// Directory, when set, lets the ops API answer 404 for a tenant nobody registered.
	Directory tenancy.Directory
	// Now is the engine's clock (default time.Now): cutoffs, intents and evidence are stamped with
	// it, so tests run a year of retention in seconds. Run bounds use the wall clock.
	Now func() time.Time
	// Scale multiplies every retention period (SPINE_RETENTION_SCALE; default 1, 1e-9 to 1): e2e
	// tests shrink 90 days to seconds.
	Scale float64
	// MaxRows bounds the rows one run selects over every unit (default 100,000).
	MaxRows int
	// MaxDuration bounds a run's time; the batch under way finishes (default 4 minutes: the
	// Functions timeout is 10 minutes on the plans we deploy).
	MaxDuration time.Duration
	// Log is the logger (default slog.Default()).
	Log *slog.Logger
	// Fault, when set, is called at each step of a batch with the Fault* point (crash-injection
	// tests); never set in production.
	Fault func(point string)
}

// Validate reports a configuration the engine cannot run with.
func (c Config) Validate() error {
	if c.Ledger == nil {
		return errors.New("retention: Config.Ledger is required")
	}
	if c.Scale < 0 || c.Scale > 1 || (c.Scale != 0 && c.Scale < 1e-9) {
		return fmt.Errorf("retention: Scale %g is outside 1e-9..1", c.Scale)
	}
	if c.MaxRows < 0 || c.MaxDuration < 0 {
		return errors.New("retention: MaxRows and MaxDuration cannot be negative")
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Scale == 0 {
		c.Scale = 1
	}
	if c.MaxRows == 0 {
		c.MaxRows = 100_000
	}
	if c.MaxDuration == 0 {
		c.MaxDuration = 4 * time.Minute
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	return c
}

// Engine runs the registered sweeps. Safe for concurrent use; two runs of one sweep (two
// instances) are kept apart per unit by the watermark's ETag.
type Engine struct {
	cfg    Config
	mu     sync.RWMutex
	sweeps map[string]*Sweep
	order  []string
}

// New returns an engine over cfg.Ledger with no sweeps.
func New(cfg Config) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Engine{cfg: cfg.withDefaults(), sweeps: map[string]*Sweep{}}, nil
}

// Ledger returns the engine's ledger.
func (e *Engine) Ledger() *Ledger { return e.cfg.Ledger }

var sweepNameRE = regexp.MustCompile(`^[A-Z][A-Za-z0-9]{2,62}$`)

// Register adds a sweep; its name must be unique. Called by the owning service's New.
func (e *Engine) Register(s Sweep) error {
	if e == nil {
		return errors.New("retention: no engine (SPINE_STORAGE_* configures the ledger)")
	}
	if !sweepNameRE.MatchString(s.Name) {
		return fmt.Errorf("retention: sweep name %q must be PascalCase letters and digits", s.Name)
	}
	if s.Service == "" || s.Units == nil || s.Target == nil || s.Action == "" {
		return fmt.Errorf("retention: sweep %s needs Service, Action, Units and Target", s.Name)
	}
	if !s.Platform && s.DataScope == "" {
		return fmt.Errorf("retention: tenant sweep %s needs a DataScope (legal holds)", s.Name)
	}
	if s.BatchSize <= 0 {
		s.BatchSize = 500
	}
	if s.BatchSize > 5000 {
		return fmt.Errorf("retention: sweep %s: BatchSize %d is above 5000", s.Name, s.BatchSize)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, dup := e.sweeps[s.Name]; dup {
		return fmt.Errorf("retention: sweep %s registered twice", s.Name)
	}
	e.sweeps[s.Name] = &s
	e.order = append(e.order, s.Name)
	sort.Strings(e.order)
	return nil
}

// Sweeps returns the registered sweeps by name.
func (e *Engine) Sweeps() []Sweep {
	e.mu.RLock()
	defer e.mu.RUnlock()
	out := make([]Sweep, 0, len(e.order))
	for _, n := range e.order {
		out = append(out, *e.sweeps[n])
	}
	return out
}

func (e *Engine) sweep(name string) (*Sweep, bool) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	s, ok := e.sweeps[name]
	return s, ok
}

// Function declares sweep name's timer function with schedule, its handler running the sweep on
// e. e may be nil (a module's Declare value declares without an engine); the handler then fails.
func (e *Engine) Function(name, schedule string) functions.Function {
	return functions.Function{Name: name, Timer: &functions.TimerTrigger{Schedule: schedule}, Handler: e.Timer(name)}
}

// Timer is the timer function's handler of sweep name: one bounded run. A run that found nothing
// due is Quiet; a failed run answers non-2xx so the host records it.
func (e *Engine) Timer(name string) functions.InvocationHandler {
	return func(ctx context.Context, _ *functions.Invocation) (*functions.Result, error) {
		if e == nil {
			return nil, errors.New("retention: no engine")
		}
		r, err := e.Run(ctx, name)
		if err != nil {
			return &functions.Result{Logs: []string{r.String()}}, err
		}
		if r.Batches == 0 && r.HeldUnits == 0 && r.Status == StatusCompleted {
			return &functions.Result{Quiet: true}, nil
		}
		return &functions.Result{Logs: []string{r.String()}}, nil
	}
}

// Run statuses.
const (
	StatusRunning   = "running" // started and not finished: under way, or its process died
	StatusCompleted = "completed"
	StatusPartial   = "partial"
	StatusFailed    = "failed"
)

// String is the run's log line.
func (r Run) String() string {
	s := fmt.Sprintf("sweep %s run %s: %s; %d units, %d batches, %d selected, %d exported, %d affected, %d held, %d resumed, %d failed",
		r.Sweep, r.RunID, r.Status, r.Units, r.Batches, r.Selected, r.Exported, r.Affected, r.HeldUnits, r.Resumed, r.FailedUnits)
	if r.ErrorClass != "" {
		s += " (" + r.ErrorClass + ")"
	}
	return s
}

// ErrUnknownSweep is returned by Run for a name no service registered.
var ErrUnknownSweep = errors.New("retention: unknown sweep")

// Run runs one bounded pass of sweep name: every unit with due rows (held tenants skipped and
// counted), one batch per unit per round, least recently served units first, until nothing is
// due or MaxRows / MaxDuration is reached. Intents left by a crashed run are finished first. The
// run is recorded in the ledger (sweepruns). A unit's failure is logged and counted and does not
// stop the others; the run then reports failed and returns the first error.
func (e *Engine) Run(ctx context.Context, name string) (Run, error) {
	s, ok := e.sweep(name)
	if !ok {
		return Run{Sweep: name, Status: StatusFailed}, fmt.Errorf("%w: %s", ErrUnknownSweep, name)
	}
	now := e.now()
	run := Run{RunID: uuid.Must(uuid.NewV7()).String(), Sweep: s.Name, StartedAt: now, Status: StatusRunning}
	// The run is in the ledger from its start: a process that dies mid-run leaves it "running"
	// (GET /api/ops/sweeps/{name}/runs shows it; its intent shows in /units). Best effort.
	if perr := e.cfg.Ledger.PutRun(ctx, run); perr != nil {
		e.cfg.Log.WarnContext(ctx, "retention: run start not recorded", "sweep", s.Name, "run", run.RunID, "err", perr)
	}
	run.Status = StatusCompleted
	wallStart := time.Now()
	err := e.run(ctx, s, &run, now, wallStart)
	run.FinishedAt = e.now()
	if err != nil {
		run.Status = StatusFailed
		if run.ErrorClass == "" {
			run.ErrorClass = errorClass(err)
		}
	}
	// The run row is written with a context of its own: a run cut short by its context still
	// leaves its record.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if perr := e.cfg.Ledger.PutRun(wctx, run); perr != nil {
		e.cfg.Log.ErrorContext(ctx, "retention: run not recorded", "sweep", s.Name, "run", run.RunID, "err", perr)
		err = errors.Join(err, perr)
	}
	return run, err
}

// errorClass is a run's failure kind for the ledger and the ops API (never an error's text).
func errorClass(err error) string {
	switch {
	case errors.Is(err, ErrLedgerUnavailable):
		return "ledger"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return "timeout"
	case errors.Is(err, ErrArtifactMismatch):
		return "artifact-mismatch"
	default:
		return "target"
	}
}

// ErrArtifactMismatch is what a Target's Export returns when the blob of a range already exists
// with other bytes than the range's rows produce: the range is left as it is (nothing deleted).
var ErrArtifactMismatch = errors.New("retention: the range's blob exists with other content")

type unitState struct {
	unit   string
	tenant string
	w      *Watermark
	cutoff time.Time
}

func (e *Engine) run(ctx context.Context, s *Sweep, run *Run, now time.Time, wallStart time.Time) error {
	// The run's time: MaxDuration, or less when ctx ends sooner (an operator's request under
	// SPINE_REQUEST_TIMEOUT, a host's function timeout): stop a second before, with a partial run,
	// rather than be cut off mid-batch.
	budget := e.cfg.MaxDuration
	if dl, ok := ctx.Deadline(); ok {
		budget = min(budget, time.Until(dl)-time.Second)
	}
	before := now.Add(-e.scaled(s.Retention))
	if s.RetentionKind != "" {
		// An edition may shorten the retention to anything: a row of any age before now may be
		// due. (Not the zero time: a Units filtering "rows older than before" would find none.)
		before = now
	}
	units, err := s.Units(ctx, before)
	if err != nil {
		return fmt.Errorf("retention: %s: listing units: %w", s.Name, err)
	}
	marks, err := e.cfg.Ledger.Watermarks(ctx, s.Name)
	if err != nil {
		return err
	}
	// Tenants with an intent left by a crashed run are finished even if Units no longer lists them
	// (their due rows may all be in the intent). A platform sweep's units are its configuration
	// (services, tables): one it no longer lists cannot be served by this binary, so its intent
	// waits in the ledger for the unit's return instead of failing every run.
	for u, w := range marks {
		if w.Pending == nil || slices.Contains(units, u) {
			continue
		}
		if s.Platform {
			e.cfg.Log.WarnContext(ctx, "retention: intent of a unit the sweep no longer lists, left as it is", "sweep", s.Name, "unit", u)
			continue
		}
		units = append(units, u)
	}
	var overrides map[string]Override
	if !s.Platform && s.RetentionKind != "" {
		if overrides, err = e.cfg.Ledger.OverridesOfKind(ctx, s.RetentionKind); err != nil {
			return err
		}
	}
	var held map[string][]string
	if s.holdable() {
		if held, err = e.holdsByTenant(ctx); err != nil {
			return err
		}
	}
	var states []*unitState
	for _, u := range units {
		w := marks[u]
		if w == nil {
			w = &Watermark{Sweep: s.Name, Unit: u}
		}
		st := &unitState{unit: u, w: w}
		if !s.Platform {
			st.tenant = u
		}
		if s.holdable() {
			if isHeld(held[u], s.DataScope) {
				run.HeldUnits++
				w.HeldSkips++
				if perr := e.cfg.Ledger.PutWatermark(ctx, w); perr != nil && !errors.Is(perr, ErrConflict) {
					return perr
				}
				continue
			}
		}
		if st.cutoff, err = e.cutoff(ctx, s, st.tenant, now, overrides); err != nil {
			e.cfg.Log.WarnContext(ctx, "retention: unit's retention unknown, skipped", "sweep", s.Name, "unit", u, "err", err)
			run.FailedUnits++
			continue
		}
		states = append(states, st)
	}
	run.Units = len(states)
	// Fairness: intents first (they hold a range), then the least recently served.
	sort.SliceStable(states, func(i, j int) bool {
		pi, pj := states[i].w.Pending != nil, states[j].w.Pending != nil
		if pi != pj {
			return pi
		}
		return states[i].w.ServedAt.Before(states[j].w.ServedAt)
	})
	var firstErr error
	active := states
	for len(active) > 0 {
		var next []*unitState
		for _, st := range active {
			if run.Selected >= e.cfg.MaxRows || time.Since(wallStart) >= budget {
				run.Status = StatusPartial
				return firstErr
			}
			if err := ctx.Err(); err != nil {
				run.Status = StatusPartial
				return errors.Join(firstErr, err)
			}
			more, err := e.batch(ctx, s, st, run, now)
			if err != nil {
				run.FailedUnits++
				if firstErr == nil {
					firstErr = err
					run.ErrorClass = errorClass(err)
				}
				e.cfg.Log.ErrorContext(ctx, "retention: batch failed", "sweep", s.Name, "unit", st.unit, "run", run.RunID, "err", err)
				e.recordFailure(ctx, s.Name, st.unit, err)
				continue
			}
			if more {
				next = append(next, st)
			}
		}
		active = next
	}
	return firstErr
}

// batch runs one batch of st's unit (or finishes its pending intent) and reports whether more
// may be due.
func (e *Engine) batch(ctx context.Context, s *Sweep, st *unitState, run *Run, now time.Time) (more bool, err error) {
	l, w := e.cfg.Ledger, st.w
	resumed := w.Pending != nil
	// A batch never takes the run past MaxRows: the last one of a run is cut to what is left.
	limit := max(1, min(s.BatchSize, e.cfg.MaxRows-run.Selected))
	if !resumed {
		r, ok, err := s.Target.Next(ctx, st.unit, w.Position, st.cutoff, limit)
		if err != nil {
			return false, fmt.Errorf("retention: %s/%s: next: %w", s.Name, st.unit, err)
		}
		if !ok {
			return false, nil
		}
		w.Pending = &Evidence{ID: uuid.Must(uuid.NewV7()).String(), RunID: run.RunID, Sweep: s.Name, Service: s.Service,
			Tenant: st.tenant, Unit: st.unit, Action: s.Action, Range: r, Cutoff: st.cutoff, At: now}
		if err := l.PutWatermark(ctx, w); err != nil {
			w.Pending = nil
			if errors.Is(err, ErrConflict) {
				return false, nil // another instance holds the unit
			}
			return false, err
		}
		e.fault(FaultAfterIntent)
	} else {
		// Claim the intent before working on it: the watermark was read when the run started, and
		// another instance may have finished the intent since (re-exporting a range whose rows
		// are gone would report a tampered blob) or be working on it. A conflict leaves it to that
		// instance.
		if err := l.PutWatermark(ctx, w); err != nil {
			if errors.Is(err, ErrConflict) {
				return false, nil
			}
			return false, err
		}
		run.Resumed++
	}
	ev := *w.Pending
	run.Batches++
	run.Selected += ev.Range.Count
	if ev.Artifact == nil {
		a, err := s.Target.Export(ctx, st.unit, ev.Range, ev)
		if err != nil {
			return false, fmt.Errorf("retention: %s/%s: export %s..%s: %w", s.Name, st.unit, ev.Range.From, ev.Range.To, err)
		}
		e.fault(FaultAfterExport)
		if a != nil {
			ev.Artifact = a
			w.Pending = &ev
			if err := l.PutWatermark(ctx, w); err != nil {
				return false, err
			}
		}
	}
	if s.holdable() {
		// The run read the holds when it started; a hold placed since (a run lasts minutes) must
		// stop the effect too. The intent, artifact and all, waits for the hold's release.
		held, err := e.Held(ctx, st.tenant, s.DataScope)
		if err != nil {
			return false, err
		}
		if held {
			run.HeldUnits++
			w.HeldSkips++
			if err := l.PutWatermark(ctx, w); err != nil && !errors.Is(err, ErrConflict) {
				return false, err
			}
			return false, nil
		}
	}
	n, err := s.Target.Apply(ctx, st.unit, ev.Range, ev)
	if err != nil {
		return false, fmt.Errorf("retention: %s/%s: apply %s..%s: %w", s.Name, st.unit, ev.Range.From, ev.Range.To, err)
	}
	e.fault(FaultAfterApply)
	if n == 0 && resumed {
		// A previous attempt committed the effect (the target changes exactly the range): its
		// count is the range's.
		n = ev.Range.Count
	}
	ev.Affected = n
	if err := l.PutEvidence(ctx, ev); err != nil {
		return false, err
	}
	e.fault(FaultAfterEvidence)
	w.Position, w.Pending, w.ServedAt = ev.Range.To, nil, e.now()
	w.Failures, w.LastErrorClass, w.LastFailedAt = 0, "", nil
	w.Batches++
	w.Affected += int64(n)
	if ev.Artifact != nil {
		w.Exported += int64(ev.Range.Count)
		run.Exported += ev.Range.Count
	}
	run.Affected += n
	if err := l.PutWatermark(ctx, w); err != nil {
		return false, err
	}
	return resumed || ev.Range.More || ev.Range.Count >= limit, nil
}

// recordFailure counts a unit's consecutive failure on its watermark (the ops API's units view: an
// intent that fails every run is visible there). Best effort: a conflict or an unavailable ledger
// leaves the count as it was.
func (e *Engine) recordFailure(ctx context.Context, sweep, unit string, cause error) {
	w, err := e.cfg.Ledger.Watermark(ctx, sweep, unit)
	if err != nil {
		return
	}
	at := e.now()
	w.Failures++
	w.LastErrorClass, w.LastFailedAt = errorClass(cause), &at
	_ = e.cfg.Ledger.PutWatermark(ctx, w)
}

// holdable reports whether legal holds apply to the sweep: tenant sweeps that remove or change
// data. An export removes nothing (it copies to the immutable archive, which preserves): a hold
// does not stop it.
func (s *Sweep) holdable() bool { return !s.Platform && s.Action != ActionExport }

func (e *Engine) fault(point string) {
	if e.cfg.Fault != nil {
		e.cfg.Fault(point)
	}
}

// now is the engine's clock in UTC, to the microsecond (the API's times, SQL's precision).
func (e *Engine) now() time.Time { return e.cfg.Now().UTC().Truncate(time.Microsecond) }

func (e *Engine) scaled(d time.Duration) time.Duration {
	return time.Duration(float64(d) * e.cfg.Scale)
}

// Retention returns tenant's effective retention in sweep s, unscaled: its edition's value for the
// sweep's kind when the edition names one, else the sweep's default; a tenant override counts only
// when it is longer.
func (e *Engine) Retention(ctx context.Context, s Sweep, tenant string) (effective, edition, override time.Duration, err error) {
	effective, edition, err = e.editionRetention(ctx, s, tenant)
	if err != nil || s.Platform || s.RetentionKind == "" || tenant == "" {
		return effective, edition, 0, err
	}
	ovs, err := e.cfg.Ledger.Overrides(ctx, tenant)
	if err != nil {
		return 0, 0, 0, err
	}
	for _, o := range ovs {
		if o.Kind == s.RetentionKind {
			override = o.duration()
			effective = max(effective, override)
		}
	}
	return effective, edition, override, nil
}

// editionRetention is tenant's retention in sweep s without its override: its edition's value for
// the sweep's kind when the edition names one (edition), else the sweep's default.
func (e *Engine) editionRetention(ctx context.Context, s Sweep, tenant string) (base, edition time.Duration, err error) {
	base = s.Retention
	if s.Platform || s.RetentionKind == "" || tenant == "" || e.cfg.Entitlements == nil {
		return base, 0, nil
	}
	id, err := tenancy.ParseTenantID(tenant)
	if err != nil {
		return 0, 0, err
	}
	ent, err := e.cfg.Entitlements.Of(ctx, id)
	switch {
	case err == nil:
		if d, ok := ent.Retention[s.RetentionKind]; ok && d > 0 {
			return d, d, nil
		}
	case errors.Is(err, entitlements.ErrUnknownTenant):
		// No subscription: the default applies.
	default:
		return 0, 0, err
	}
	return base, 0, nil
}

// cutoff is tenant's cutoff in sweep s at now: its edition's retention, or its override from
// overrides (the run's read of every tenant's, by tenant) when that is longer, scaled.
func (e *Engine) cutoff(ctx context.Context, s *Sweep, tenant string, now time.Time, overrides map[string]Override) (time.Time, error) {
	d, _, err := e.editionRetention(ctx, *s, tenant)
	if err != nil {
		return time.Time{}, err
	}
	if o, ok := overrides[tenant]; ok && tenant != "" {
		d = max(d, o.duration())
	}
	return now.Add(-e.scaled(d)), nil
}

func (e *Engine) holdsByTenant(ctx context.Context) (map[string][]string, error) {
	hs, err := e.cfg.Ledger.Holds(ctx, "")
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, h := range hs {
		if !h.Active() {
			continue
		}
		out[h.TenantID] = append(out[h.TenantID], h.Scope)
	}
	return out, nil
}

func isHeld(scopes []string, scope string) bool {
	return slices.Contains(scopes, ScopeAll) || slices.Contains(scopes, scope)
}

// ErrNoTenant is what Held answers for an empty tenant id.
var ErrNoTenant = errors.New("retention: a legal hold is asked for without a tenant")

// Held reports whether tenant's data of scope is under a legal hold (for a service that must
// refuse its own deletions meanwhile). An empty tenant is ErrNoTenant (the ledger would answer
// every tenant's holds).
func (e *Engine) Held(ctx context.Context, tenant, scope string) (bool, error) {
	if tenant == "" {
		return false, ErrNoTenant
	}
	hs, err := e.cfg.Ledger.Holds(ctx, tenant)
	if err != nil {
		return false, err
	}
	var scopes []string
	for _, h := range hs {
		if h.Active() {
			scopes = append(scopes, h.Scope)
		}
	}
	return isHeld(scopes, scope), nil
}

// EvidenceEvent is the RetentionApplied event of a batch's effect, for the target's Apply to
// write to its outbox in the effect's transaction: its id is the evidence id (the same after a
// crash), its subject the unit, its tenant the evidence's ("" for platform sweeps).
func EvidenceEvent(ev Evidence) (events.Event, error) {
	data := contracts.RetentionAppliedData{
		EvidenceID: ev.ID, RunID: ev.RunID, Sweep: ev.Sweep, Action: string(ev.Action), Unit: ev.Unit,
		From: ev.Range.From, To: ev.Range.To, Count: ev.Range.Count, FirstAt: ev.Range.FirstAt, LastAt: ev.Range.LastAt,
		Cutoff: ev.Cutoff,
	}
	if ev.Artifact != nil {
		data.Blob = ev.Artifact.Container + "/" + ev.Artifact.Name
		data.SHA256 = ev.Artifact.SHA256
	}
	out, err := events.New(ev.Service, contracts.RetentionApplied, ev.Unit, ev.Tenant, data, events.Meta{Actor: "system:retention-" + strings.ToLower(ev.Sweep)})
	if err != nil {
		return out, err
	}
	out.ID = ev.ID
	return out, nil
}
