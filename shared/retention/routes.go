package retention

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"spine/shared/auth"
	"spine/shared/httpx"
	"spine/shared/problem"
	"spine/shared/tenancy"
	"spine/shared/text"
)

// Routes mounts the operator API of the retention engine on ops, the operator group
// (auth.Operators: /api/ops, platform admin with platform.ops):
//
//	GET    /ops/sweeps                       every sweep: schedule, last run, lag
//	GET    /ops/sweeps/{name}/runs           its runs, newest first (?limit=)
//	GET    /ops/sweeps/{name}/units          its watermarks: position, intent, totals, failures
//	POST   /ops/sweeps/{name}/run            one run now (the timer's work)
//	GET    /ops/evidence?tenantId=&from=&to= evidence rows (tenantId "platform" for platform sweeps),
//	                                         paged: ?limit=, nextLink with its cursor
//	POST   /ops/legal-holds                  {tenantId, scope, reason} → 201
//	GET    /ops/legal-holds?tenantId=
//	DELETE /ops/legal-holds/{id}             → 204: released (kept, with releasedBy/releasedAt)
//	GET    /ops/retention/{tenantId}         the tenant's effective retention per sweep
//	PUT    /ops/retention/{tenantId}/{kind}  {days}: a longer retention than the edition's
//	DELETE /ops/retention/{tenantId}/{kind}
func (e *Engine) Routes(ops *echo.Group) {
	ops.GET("/sweeps", e.listSweeps)
	ops.GET("/sweeps/:name/runs", e.listRuns)
	ops.GET("/sweeps/:name/units", e.listUnits)
	ops.POST("/sweeps/:name/run", e.runNow)
	ops.GET("/evidence", e.listEvidence)
	ops.POST("/legal-holds", e.createHold)
	ops.GET("/legal-holds", e.listHolds)
	ops.DELETE("/legal-holds/:id", e.deleteHold)
	ops.GET("/retention/:tenantId", e.getRetention)
	ops.PUT("/retention/:tenantId/:kind", e.putOverride)
	ops.DELETE("/retention/:tenantId/:kind", e.deleteOverride)
}

// MapError maps the engine's errors to problems (nil for errors it does not know).
func MapError(err error) *problem.Problem {
	switch {
	case errors.Is(err, ErrLedgerUnavailable):
		return problem.New(http.StatusServiceUnavailable, "ledger-unavailable",
			"The maintenance ledger (Table Storage) is unavailable; retry shortly.").WithHeader("Retry-After", "5")
	case errors.Is(err, ErrUnknownSweep):
		return problem.New(http.StatusNotFound, "sweep-not-found", "No sweep has this name.")
	}
	return nil
}

type sweepView struct {
	Name          string  `json:"name"`
	Service       string  `json:"service"`
	Schedule      string  `json:"schedule"`
	Action        Action  `json:"action"`
	DataScope     string  `json:"dataScope,omitempty"`
	RetentionKind string  `json:"retentionKind,omitempty"`
	RetentionDays float64 `json:"retentionDays"`
	Platform      bool    `json:"platform"`
	LastRun       *Run    `json:"lastRun"`
	// LastCompletedAt is the start of the latest run that left nothing due; LagSeconds the time
	// since (null when none of the last 50 runs completed).
	LastCompletedAt *time.Time `json:"lastCompletedAt"`
	LagSeconds      *float64   `json:"lagSeconds"`
}

func (e *Engine) listSweeps(c echo.Context) error {
	ctx := c.Request().Context()
	now := e.now()
	out := httpx.Page[sweepView]{Value: []sweepView{}}
	for _, s := range e.Sweeps() {
		v := sweepView{Name: s.Name, Service: s.Service, Schedule: s.Schedule, Action: s.Action, DataScope: s.DataScope,
			RetentionKind: s.RetentionKind, RetentionDays: s.Retention.Hours() / 24, Platform: s.Platform}
		runs, err := e.cfg.Ledger.Runs(ctx, s.Name, 50)
		if err != nil {
			return err
		}
		if len(runs) > 0 {
			v.LastRun = &runs[0]
		}
		for _, r := range runs {
			if r.Status == StatusCompleted {
				at := r.StartedAt
				lag := now.Sub(at).Seconds()
				v.LastCompletedAt, v.LagSeconds = &at, &lag
				break
			}
		}
		out.Value = append(out.Value, v)
	}
	return c.JSON(http.StatusOK, out)
}

func (e *Engine) sweepParam(c echo.Context) (*Sweep, error) {
	s, ok := e.sweep(c.Param("name"))
	if !ok {
		return nil, ErrUnknownSweep // MapError: 404 sweep-not-found
	}
	return s, nil
}

func (e *Engine) listRuns(c echo.Context) error {
	s, err := e.sweepParam(c)
	if err != nil {
		return err
	}
	limit, err := httpx.Limit(c, 50, 1000)
	if err != nil {
		return err
	}
	runs, err := e.cfg.Ledger.Runs(c.Request().Context(), s.Name, limit)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, httpx.Page[Run]{Value: runs})
}

// listUnits answers the sweep's watermarks, failing units and units with an intent first, then
// by unit (?limit=, default 1000).
func (e *Engine) listUnits(c echo.Context) error {
	s, err := e.sweepParam(c)
	if err != nil {
		return err
	}
	limit, err := httpx.Limit(c, 1000, 5000)
	if err != nil {
		return err
	}
	marks, err := e.cfg.Ledger.Watermarks(c.Request().Context(), s.Name)
	if err != nil {
		return err
	}
	out := make([]Watermark, 0, len(marks))
	for _, w := range marks {
		out = append(out, *w)
	}
	slices.SortFunc(out, func(a, b Watermark) int {
		if a.Failures != b.Failures {
			return int(b.Failures - a.Failures)
		}
		if (a.Pending != nil) != (b.Pending != nil) {
			if a.Pending != nil {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Unit, b.Unit)
	})
	if len(out) > limit {
		out = out[:limit]
	}
	return c.JSON(http.StatusOK, httpx.Page[Watermark]{Value: out})
}

// runNow runs the sweep once, as its timer would, and answers the run (200; a run that failed is
// still its record: its status says so).
func (e *Engine) runNow(c echo.Context) error {
	s, err := e.sweepParam(c)
	if err != nil {
		return err
	}
	r, err := e.Run(c.Request().Context(), s.Name)
	if err != nil && r.RunID == "" {
		return err
	}
	return c.JSON(http.StatusOK, r)
}

// tenantParam parses a tenant id from outside: a UUID, or "platform" when allowPlatform.
func tenantParam(v, field string, allowPlatform bool) (string, error) {
	if allowPlatform && v == PlatformPartition {
		return v, nil
	}
	id, err := tenancy.ParseTenantID(v)
	if err != nil {
		return "", problem.Newf(http.StatusBadRequest, "invalid-tenant-id", "%s must be a tenant id (a UUID).", field).
			WithFields(problem.FieldError{Field: field, Detail: "not a UUID"})
	}
	return id.String(), nil
}

func (e *Engine) listEvidence(c echo.Context) error {
	if c.QueryParam("tenantId") == "" {
		return problem.New(http.StatusBadRequest, "tenant-id-required", "tenantId is required (a tenant id, or \"platform\").").
			WithFields(problem.FieldError{Field: "tenantId", Detail: "required"})
	}
	tenant, err := tenantParam(c.QueryParam("tenantId"), "tenantId", true)
	if err != nil {
		return err
	}
	from, err := httpx.TimeParam(c, "from")
	if err != nil {
		return err
	}
	to, err := httpx.TimeParam(c, "to")
	if err != nil {
		return err
	}
	if !from.IsZero() && !to.IsZero() && !from.Before(to) {
		return problem.New(http.StatusBadRequest, "invalid-time-range", "from must be before to.").
			WithFields(problem.FieldError{Field: "from", Detail: "not before to"})
	}
	limit, err := httpx.Limit(c, 1000, 5000)
	if err != nil {
		return err
	}
	after := ""
	if v := c.QueryParam("cursor"); v != "" {
		if after, err = httpx.DecodeCursor(v); err != nil {
			return err
		}
		if !evidenceKeyRE.MatchString(after) {
			return problem.New(http.StatusBadRequest, "invalid-cursor", "The cursor is not one this API issued.")
		}
	}
	evs, more, err := e.cfg.Ledger.EvidencePage(c.Request().Context(), tenant, from, to, after, limit)
	if err != nil {
		return err
	}
	page := httpx.Page[Evidence]{Value: evs}
	if more {
		page.NextLink = httpx.NextLink(c, httpx.EncodeCursor(EvidenceKey(evs[len(evs)-1])))
	}
	return c.JSON(http.StatusOK, page)
}

// evidenceKeyRE is the shape of an evidence row's key (timeKey + "_" + UUID): a cursor holds one.
var evidenceKeyRE = regexp.MustCompile(`^[0-9]{8}T[0-9]{6}\.[0-9]{9}Z_[0-9a-f-]{36}$`)

// scopes are the legal-hold scopes: "all" and every registered sweep's data scope.
func (e *Engine) scopes() []string {
	out := []string{ScopeAll}
	for _, s := range e.Sweeps() {
		if s.DataScope != "" && !slices.Contains(out, s.DataScope) {
			out = append(out, s.DataScope)
		}
	}
	return out
}

type holdRequest struct {
	TenantID string `json:"tenantId"`
	Scope    string `json:"scope"`
	Reason   string `json:"reason"`
}

// maxReason bounds a hold's reason (characters).
const maxReason = 1000

func (e *Engine) createHold(c echo.Context) error {
	var req holdRequest
	if err := httpx.DecodeJSON(c, &req); err != nil {
		return err
	}
	tenant, err := tenantParam(req.TenantID, "tenantId", false)
	if err != nil {
		return err
	}
	if !slices.Contains(e.scopes(), req.Scope) {
		return problem.Newf(http.StatusBadRequest, "invalid-scope", "scope must be one of %s.", strings.Join(e.scopes(), ", ")).
			WithFields(problem.FieldError{Field: "scope", Detail: "unknown scope"})
	}
	reason := strings.TrimSpace(req.Reason)
	if reason == "" || utf8.RuneCountInString(reason) > maxReason {
		return problem.Newf(http.StatusBadRequest, "invalid-reason", "reason is required, at most %d characters.", maxReason).
			WithFields(problem.FieldError{Field: "reason", Detail: "empty or too long"})
	}
	if err := text.Check(reason); err != nil {
		return httpx.InvalidText("reason", err)
	}
	ctx := c.Request().Context()
	if err := e.knownTenant(ctx, tenant); err != nil {
		return err
	}
	p, _ := auth.FromContext(ctx)
	h := Hold{ID: uuid.Must(uuid.NewV7()).String(), TenantID: tenant, Scope: req.Scope, Reason: reason,
		CreatedBy: p.Subject, CreatedAt: time.Now().UTC().Truncate(time.Microsecond)}
	if err := e.cfg.Ledger.PutHold(ctx, h); err != nil {
		return err
	}
	c.Response().Header().Set("Location", "/api/ops/legal-holds/"+h.ID)
	return c.JSON(http.StatusCreated, h)
}

// knownTenant answers 404 tenant-not-found for a tenant the directory does not know (when the
// engine has one).
func (e *Engine) knownTenant(ctx context.Context, tenant string) error {
	if e.cfg.Directory == nil {
		return nil
	}
	id, err := tenancy.ParseTenantID(tenant)
	if err != nil {
		return err
	}
	if _, err := e.cfg.Directory.TenantStatus(ctx, id); err != nil {
		if errors.Is(err, tenancy.ErrTenantNotFound) {
			return problem.New(http.StatusNotFound, "tenant-not-found", "No tenant has this id.")
		}
		return err
	}
	return nil
}

func (e *Engine) listHolds(c echo.Context) error {
	tenant := ""
	if v := c.QueryParam("tenantId"); v != "" {
		var err error
		if tenant, err = tenantParam(v, "tenantId", false); err != nil {
			return err
		}
	}
	hs, err := e.cfg.Ledger.Holds(c.Request().Context(), tenant)
	if err != nil {
		return err
	}
	slices.SortFunc(hs, func(a, b Hold) int { return strings.Compare(a.ID, b.ID) })
	return c.JSON(http.StatusOK, httpx.Page[Hold]{Value: hs})
}

func (e *Engine) deleteHold(c echo.Context) error {
	id, err := uuid.Parse(c.Param("id"))
	if err != nil {
		return problem.New(http.StatusNotFound, "legal-hold-not-found", "No legal hold has this id.")
	}
	p, _ := auth.FromContext(c.Request().Context())
	if _, err := e.cfg.Ledger.ReleaseHold(c.Request().Context(), id.String(), p.Subject, time.Now().Truncate(time.Microsecond)); err != nil {
		if errors.Is(err, ErrNotFound) {
			return problem.New(http.StatusNotFound, "legal-hold-not-found", "No legal hold has this id.")
		}
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

type retentionView struct {
	Sweep         string   `json:"sweep"`
	RetentionKind string   `json:"retentionKind"`
	DefaultDays   float64  `json:"defaultDays"`
	EditionDays   *float64 `json:"editionDays"`
	OverrideDays  *float64 `json:"overrideDays"`
	EffectiveDays float64  `json:"effectiveDays"`
	Held          bool     `json:"held"`
}

func days(d time.Duration) float64 { return d.Hours() / 24 }

func (e *Engine) getRetention(c echo.Context) error {
	tenant, err := tenantParam(c.Param("tenantId"), "tenantId", false)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	if err := e.knownTenant(ctx, tenant); err != nil {
		return err
	}
	holds, err := e.holdsByTenant(ctx)
	if err != nil {
		return err
	}
	out := httpx.Page[retentionView]{Value: []retentionView{}}
	for _, s := range e.Sweeps() {
		if s.Platform {
			continue
		}
		eff, ed, ov, err := e.Retention(ctx, s, tenant)
		if err != nil {
			return err
		}
		v := retentionView{Sweep: s.Name, RetentionKind: s.RetentionKind, DefaultDays: days(s.Retention),
			EffectiveDays: days(eff), Held: isHeld(holds[tenant], s.DataScope)}
		if ed > 0 {
			d := days(ed)
			v.EditionDays = &d
		}
		if ov > 0 {
			d := days(ov)
			v.OverrideDays = &d
		}
		out.Value = append(out.Value, v)
	}
	return c.JSON(http.StatusOK, out)
}

// kinds are the retention kinds a tenant override may name: the registered sweeps'.
func (e *Engine) kinds() []string {
	var out []string
	for _, s := range e.Sweeps() {
		if s.RetentionKind != "" && !slices.Contains(out, s.RetentionKind) {
			out = append(out, s.RetentionKind)
		}
	}
	return out
}

type overrideRequest struct {
	Days *int `json:"days"`
}

// maxOverrideDays is the longest override (100 years, billing's limit for editions).
const maxOverrideDays = 36500

func (e *Engine) putOverride(c echo.Context) error {
	tenant, err := tenantParam(c.Param("tenantId"), "tenantId", false)
	if err != nil {
		return err
	}
	kind := c.Param("kind")
	if !slices.Contains(e.kinds(), kind) {
		return problem.Newf(http.StatusNotFound, "retention-kind-not-found", "No sweep has this retention kind (%s).", strings.Join(e.kinds(), ", "))
	}
	var req overrideRequest
	if err := httpx.DecodeJSON(c, &req); err != nil {
		return err
	}
	if req.Days == nil || *req.Days < 1 || *req.Days > maxOverrideDays {
		return problem.Newf(http.StatusBadRequest, "invalid-days", "days must be a whole number from 1 to %d.", maxOverrideDays).
			WithFields(problem.FieldError{Field: "days", Detail: "out of range"})
	}
	ctx := c.Request().Context()
	if err := e.knownTenant(ctx, tenant); err != nil {
		return err
	}
	// Only upward: an override shorter than what the tenant has without it is refused.
	for _, s := range e.Sweeps() {
		if s.RetentionKind != kind || s.Platform {
			continue
		}
		base, _, err := e.editionRetention(ctx, s, tenant)
		if err != nil {
			return err
		}
		if time.Duration(*req.Days)*24*time.Hour < base {
			return problem.Newf(http.StatusConflict, "retention-shorter-than-edition",
				"A tenant's retention can only be longer than what it has without the override: its edition's or the default (%g days).", days(base)).
				WithFields(problem.FieldError{Field: "days", Detail: "below the edition's retention"})
		}
	}
	p, _ := auth.FromContext(ctx)
	o := Override{TenantID: tenant, Kind: kind, Days: *req.Days, SetBy: p.Subject, UpdatedAt: time.Now().UTC().Truncate(time.Microsecond)}
	if err := e.cfg.Ledger.PutOverride(ctx, o); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, o)
}

func (e *Engine) deleteOverride(c echo.Context) error {
	tenant, err := tenantParam(c.Param("tenantId"), "tenantId", false)
	if err != nil {
		return err
	}
	if !slices.Contains(e.kinds(), c.Param("kind")) {
		return problem.New(http.StatusNotFound, "retention-override-not-found", "This tenant has no override of this kind.")
	}
	if err := e.cfg.Ledger.DeleteOverride(c.Request().Context(), tenant, c.Param("kind")); err != nil {
		if errors.Is(err, ErrNotFound) {
			return problem.New(http.StatusNotFound, "retention-override-not-found", "This tenant has no override of this kind.")
		}
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
