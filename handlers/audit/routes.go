package audit

import (
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"spine/shared/auth"
	"spine/shared/httpx"
	"spine/shared/problem"
	"spine/shared/retention"
	"spine/shared/tenancy"
)

// Scopes of the audit API.
const (
	ScopeRead  = "audit.read"
	ScopeWrite = "audit.write"
)

// entryJSON is the API shape of an entry. Hashes are lowercase hex.
type entryJSON struct {
	ID            string          `json:"id"`
	TenantID      string          `json:"tenantId"`
	Seq           int64           `json:"seq"`
	OccurredAt    time.Time       `json:"occurredAt"`
	RecordedAt    time.Time       `json:"recordedAt"`
	Actor         actorJSON       `json:"actor"`
	Action        string          `json:"action"`
	Resource      resourceJSON    `json:"resource"`
	TraceID       string          `json:"traceId,omitempty"`
	CorrelationID string          `json:"correlationId,omitempty"`
	SourceEventID string          `json:"sourceEventId,omitempty"`
	Payload       json.RawMessage `json:"payload"`
	PrevHash      string          `json:"prevHash"`
	Hash          string          `json:"hash"`
}

type actorJSON struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

type resourceJSON struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

func toJSON(e Entry) entryJSON {
	return entryJSON{ID: e.ID, TenantID: tenantText(e.TenantID), Seq: e.Seq, OccurredAt: e.OccurredAt,
		RecordedAt: e.RecordedAt, Actor: actorJSON{Type: e.Actor.Type, ID: e.Actor.ID}, Action: e.Action,
		Resource: resourceJSON{Type: e.Resource.Type, ID: e.Resource.ID}, TraceID: e.TraceID,
		CorrelationID: e.CorrelationID, SourceEventID: e.SourceEventID, Payload: e.Payload,
		PrevHash: hex.EncodeToString(e.PrevHash), Hash: hex.EncodeToString(e.Hash)}
}

// recordRequest is the body of POST /audit-entries. occurredAt is a string so that a malformed
// time gets a precise 400 rather than a generic JSON error.
type recordRequest struct {
	OccurredAt    *string         `json:"occurredAt"`
	Actor         actorJSON       `json:"actor"`
	Action        string          `json:"action"`
	Resource      resourceJSON    `json:"resource"`
	TraceID       string          `json:"traceId"`
	CorrelationID string          `json:"correlationId"`
	Payload       json.RawMessage `json:"payload"`
}

type brokenJSON struct {
	ID     string `json:"id"`
	Seq    int64  `json:"seq"`
	Reason string `json:"reason"`
}

type verifyJSON struct {
	TenantID       string      `json:"tenantId"`
	From           *time.Time  `json:"from"`
	To             *time.Time  `json:"to"`
	EntriesChecked int64       `json:"entriesChecked"`
	FirstSeq       int64       `json:"firstSeq,omitempty"`
	LastSeq        int64       `json:"lastSeq,omitempty"`
	OK             bool        `json:"ok"`
	FirstBroken    *brokenJSON `json:"firstBroken"`
	// AnchoredAt: the export the chain was verified from (its first entries were purged).
	AnchoredAt *anchorJSON `json:"anchoredAt,omitempty"`
}

type anchorJSON struct {
	Seq  int64  `json:"seq"`
	Blob string `json:"blob"`
}

type exportProblemJSON struct {
	Blob string `json:"blob"`
	Seq  int64  `json:"seq,omitempty"`
	Code string `json:"code"`
}

type exportsVerifyJSON struct {
	TenantID string              `json:"tenantId"`
	OK       bool                `json:"ok"`
	Exports  int                 `json:"exports"`
	Entries  int64               `json:"entries"`
	FirstSeq int64               `json:"firstSeq"`
	LastSeq  int64               `json:"lastSeq"`
	Problems []exportProblemJSON `json:"problems"`
	// NextFromSeq: more exports follow; ask again with fromSeq=nextFromSeq (null on the last page).
	NextFromSeq *int64 `json:"nextFromSeq"`
}

// exportsPerCall and maxExportsPerCall bound one call of the export verifier (limit): each export
// is two blob reads, so a tenant with years of hourly exports pages through them.
const (
	exportsPerCall    = 500
	maxExportsPerCall = 5000
)

// API serves the audit routes and functions.
type API struct {
	svc *Service
	// retention runs the sweeps' timers (nil on Module.Declare's value, which only declares).
	retention *retention.Engine
}

// NewAPI returns the HTTP API over svc. svc may be nil when only the function declarations are
// needed (Functions), as when function.json files are generated.
func NewAPI(svc *Service) *API { return &API{svc: svc} }

// Routes mounts the API on g (the /api group, which already authenticates the bearer token).
func (a *API) Routes(g *echo.Group) {
	read, write := auth.RequireScope(ScopeRead), auth.RequireScope(ScopeWrite)
	g.POST("/audit-entries", a.record, write)
	g.GET("/audit-entries", a.query, read)
	g.GET("/audit-entries/verify", a.verify, read)
	g.GET("/audit-entries/exports/verify", a.verifyExports, read)
	g.GET("/audit-entries/:id", a.get, read)
}

// target is who asks and whose audit trail (httpx.Target): the token's tenant, or for platform
// admins the tenantId query parameter. platform=true names the platform chain (the entries of
// platform events), which only platform admins reach and which names no tenant: the zero TenantID.
func target(c echo.Context) (Caller, tenancy.TenantID, error) {
	switch c.QueryParam("platform") {
	case "", "false":
		return httpx.Target(c)
	case "true":
		cl, err := httpx.CallerOf(c)
		if err != nil {
			return Caller{}, tenancy.TenantID{}, err
		}
		if err := cl.RequirePlatform(); err != nil {
			return Caller{}, tenancy.TenantID{}, err
		}
		if c.QueryParam("tenantId") != "" {
			return Caller{}, tenancy.TenantID{}, problem.New(http.StatusBadRequest, "invalid-input",
				"Name either a tenant (tenantId) or the platform (platform=true), not both.")
		}
		return cl, tenancy.TenantID{}, nil
	}
	return Caller{}, tenancy.TenantID{}, problem.New(http.StatusBadRequest, "invalid-platform", "platform must be true or false.").
		WithFields(problem.FieldError{Field: "platform", Detail: "must be true or false"})
}

// setEntryHeaders sets ETag (the entry's hash: an entry never changes) on a single-entry response.
func setEntryHeaders(c echo.Context, e Entry) {
	c.Response().Header().Set("ETag", `"`+hex.EncodeToString(e.Hash)+`"`)
}

// location is the URL of an entry; platform admins need the tenant in it to read it back.
func location(cl Caller, e Entry) string {
	return httpx.Location(cl, e.TenantID, "/api/audit-entries/"+e.ID)
}

func (a *API) record(c echo.Context) error {
	if p := c.QueryParam("platform"); p != "" && p != "false" {
		return problem.New(http.StatusBadRequest, "invalid-platform",
			"The platform's audit trail records platform events only; entries are recorded for a tenant.").
			WithFields(problem.FieldError{Field: "platform", Detail: "not accepted when recording"})
	}
	cl, tenant, err := httpx.Target(c)
	if err != nil {
		return err
	}
	var req recordRequest
	if err := httpx.DecodeJSON(c, &req); err != nil {
		return err
	}
	in := RecordInput{Actor: Actor{Type: req.Actor.Type, ID: req.Actor.ID}, Action: req.Action,
		Resource: Resource{Type: req.Resource.Type, ID: req.Resource.ID}, TraceID: req.TraceID,
		CorrelationID: req.CorrelationID, Payload: req.Payload}
	if req.OccurredAt != nil {
		t, err := httpx.ParseTime(*req.OccurredAt)
		if err != nil {
			return problem.New(http.StatusBadRequest, "invalid-input", "occurredAt must be an RFC 3339 time in years 0001–9999 (UTC).").
				WithFields(problem.FieldError{Field: "occurredAt", Detail: "not an RFC 3339 time in years 0001–9999 (UTC)"})
		}
		in.OccurredAt = &t
	}
	e, err := a.svc.Record(c.Request().Context(), cl, tenant, in)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Location", location(cl, e))
	setEntryHeaders(c, e)
	return c.JSON(http.StatusCreated, toJSON(e))
}

func (a *API) get(c echo.Context) error {
	cl, tenant, err := target(c)
	if err != nil {
		return err
	}
	e, err := a.svc.Get(c.Request().Context(), cl, tenant, c.Param("id"))
	if err != nil {
		return err
	}
	setEntryHeaders(c, e)
	return c.JSON(http.StatusOK, toJSON(e))
}

// timeRange reads from and to; from must precede to when both are given.
func timeRange(c echo.Context) (from, to time.Time, err error) {
	if from, err = httpx.TimeParam(c, "from"); err != nil {
		return
	}
	if to, err = httpx.TimeParam(c, "to"); err != nil {
		return
	}
	if to.IsZero() && c.QueryParam("to") != "" {
		// The earliest time there is: a zero time means "no bound" below, so an exclusive bound
		// at 0001-01-01T00:00:00Z is kept one microsecond later, which no entry precedes either.
		to = to.Add(time.Microsecond)
	}
	if !from.IsZero() && !to.IsZero() && !from.Before(to) {
		err = problem.New(http.StatusBadRequest, "invalid-time-range", "from must be before to.")
	}
	return
}

func (a *API) query(c echo.Context) error {
	cl, tenant, err := target(c)
	if err != nil {
		return err
	}
	limit, err := httpx.Limit(c, 50, 200)
	if err != nil {
		return err
	}
	f := Filter{Limit: limit + 1, ActorID: c.QueryParam("actorId"), Action: c.QueryParam("action"),
		ResourceType: c.QueryParam("resourceType"), ResourceID: c.QueryParam("resourceId"), TraceID: c.QueryParam("traceId")}
	if f.From, f.To, err = timeRange(c); err != nil {
		return err
	}
	if cur := c.QueryParam("cursor"); cur != "" {
		key, err := httpx.DecodeCursor(cur)
		if err != nil {
			return err
		}
		if f.AfterSeq, err = strconv.ParseInt(key, 10, 64); err != nil || f.AfterSeq < 1 {
			return problem.New(http.StatusBadRequest, "invalid-cursor", "The cursor is not one this API issued.")
		}
	}
	es, err := a.svc.Query(c.Request().Context(), cl, tenant, f)
	if err != nil {
		return err
	}
	page := httpx.Page[entryJSON]{Value: make([]entryJSON, 0, len(es))}
	if len(es) > limit {
		es = es[:limit]
		page.NextLink = httpx.NextLink(c, httpx.EncodeCursor(strconv.FormatInt(es[len(es)-1].Seq, 10)))
	}
	for _, e := range es {
		page.Value = append(page.Value, toJSON(e))
	}
	return c.JSON(http.StatusOK, page)
}

func (a *API) verify(c echo.Context) error {
	cl, tenant, err := target(c)
	if err != nil {
		return err
	}
	from, to, err := timeRange(c)
	if err != nil {
		return err
	}
	r, err := a.svc.Verify(c.Request().Context(), cl, tenant, from, to)
	if err != nil {
		return err
	}
	out := verifyJSON{TenantID: tenantText(r.TenantID), EntriesChecked: r.EntriesChecked,
		FirstSeq: r.FirstSeq, LastSeq: r.LastSeq, OK: r.OK()}
	if !r.From.IsZero() {
		out.From = &r.From
	}
	if !r.To.IsZero() {
		out.To = &r.To
	}
	if b := r.FirstBroken; b != nil {
		out.FirstBroken = &brokenJSON{ID: b.ID, Seq: b.Seq, Reason: b.Reason}
	}
	if an := r.AnchoredAt; an != nil {
		out.AnchoredAt = &anchorJSON{Seq: an.Seq, Blob: ArchiveContainer + "/" + an.Blob}
	}
	return c.JSON(http.StatusOK, out)
}

// verifyExports serves GET /audit-entries/exports/verify: the tenant's exports in the archive
// against the chain (Service.VerifyExports); who may ask whose is as for /audit-entries/verify.
func (a *API) verifyExports(c echo.Context) error {
	cl, tenant, err := target(c)
	if err != nil {
		return err
	}
	fromSeq := int64(1)
	if v := c.QueryParam("fromSeq"); v != "" {
		if fromSeq, err = strconv.ParseInt(v, 10, 64); err != nil || fromSeq < 1 {
			return problem.New(http.StatusBadRequest, "invalid-from-seq", "fromSeq must be a whole number from 1: where an export starts (a page's nextFromSeq).").
				WithFields(problem.FieldError{Field: "fromSeq", Detail: "not a sequence number"})
		}
	}
	limit, err := httpx.Limit(c, exportsPerCall, maxExportsPerCall)
	if err != nil {
		return err
	}
	r, err := a.svc.VerifyExportsFrom(c.Request().Context(), cl, tenant, fromSeq, limit)
	if err != nil {
		return err
	}
	out := exportsVerifyJSON{TenantID: tenantText(r.TenantID), OK: r.OK(), Exports: r.Exports, Entries: r.Entries,
		FirstSeq: r.FirstSeq, LastSeq: r.LastSeq, Problems: make([]exportProblemJSON, 0, len(r.Problems))}
	if r.NextFromSeq > 0 {
		out.NextFromSeq = &r.NextFromSeq
	}
	for _, p := range r.Problems {
		out.Problems = append(out.Problems, exportProblemJSON{Blob: ArchiveContainer + "/" + p.Blob, Seq: p.Seq, Code: p.Code})
	}
	return c.JSON(http.StatusOK, out)
}
