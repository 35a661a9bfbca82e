package reporting

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"spine/shared/auth"
	"spine/shared/httpx"
	"spine/shared/idempotency"
	"spine/shared/ids"
	"spine/shared/problem"
	"spine/shared/retention"
	"spine/shared/sqlstore"
)

// Scopes of the reporting API: reading definitions, runs and downloading artifacts, and managing
// definitions and requesting runs.
const (
	ScopeReportRead   = "report.read"
	ScopeReportManage = "report.manage"
)

// API serves the reporting routes and functions.
type API struct {
	svc *Service
	db  *sqlstore.DB // the idempotency records' database (the service's own)
	// retention runs the ReportArtifactLifecycle sweep (nil on Module.Declare's value).
	retention *retention.Engine
}

// NewAPI returns the HTTP API over svc; db is the service's database.
func NewAPI(svc *Service, db *sqlstore.DB) *API { return &API{svc: svc, db: db} }

// Routes implements kit.Service. Tenant-level routes: a tenant token works on its own tenant, a
// platform admin names the tenant with ?tenantId= (httpx.Target). Another tenant's ids are 404.
func (a *API) Routes(g *echo.Group) {
	read, manage := auth.RequireScope(ScopeReportRead), auth.RequireScope(ScopeReportManage)
	idem := idempotency.Middleware(a.db)
	g.POST("/reports", a.createReport, manage, idem)
	g.GET("/reports", a.listReports, read)
	g.GET("/reports/:id", a.getReport, read)
	g.PATCH("/reports/:id", a.patchReport, manage)
	g.DELETE("/reports/:id", a.deleteReport, manage)
	g.POST("/reports/:id/runs", a.generate, manage, idem)
	g.GET("/reports/:id/runs", a.listRuns, read)
	g.GET("/report-runs/:id", a.getRun, read)
	g.GET("/report-runs/:id/download", a.download, read)
}

// ---- JSON shapes ----

type reportJSON struct {
	ID         string            `json:"id"`
	TenantID   string            `json:"tenantId"`
	Name       string            `json:"name"`
	Source     string            `json:"source"`
	Parameters map[string]string `json:"parameters"`
	Format     string            `json:"format"`
	Version    int64             `json:"version"`
	CreatedBy  string            `json:"createdBy"`
	CreatedAt  time.Time         `json:"createdAt"`
	UpdatedAt  time.Time         `json:"updatedAt"`
}

func toReportJSON(tenant string, r Report) reportJSON {
	p := r.Parameters
	if p == nil {
		p = map[string]string{}
	}
	return reportJSON{ID: r.ID, TenantID: tenant, Name: r.Name, Source: r.Source, Parameters: p, Format: string(r.Format),
		Version: r.Version, CreatedBy: r.CreatedBy, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
}

type artifactJSON struct {
	Name        string `json:"name"`
	ContentType string `json:"contentType"`
	Size        int64  `json:"size"`
	SHA256      string `json:"sha256"`
}

type runJSON struct {
	ID          string            `json:"id"`
	TenantID    string            `json:"tenantId"`
	ReportID    string            `json:"reportId"`
	Status      string            `json:"status"`
	Source      string            `json:"source"`
	Format      string            `json:"format"`
	Parameters  map[string]string `json:"parameters"`
	RequestedBy string            `json:"requestedBy"`
	Attempts    int               `json:"attempts"`
	RowCount    *int64            `json:"rowCount,omitempty"`
	Artifact    *artifactJSON     `json:"artifact,omitempty"`
	ErrorClass  string            `json:"errorClass,omitempty"`
	CreatedAt   time.Time         `json:"createdAt"`
	StartedAt   *time.Time        `json:"startedAt,omitempty"`
	FinishedAt  *time.Time        `json:"finishedAt,omitempty"`
	ExpiresAt   *time.Time        `json:"expiresAt,omitempty"`
	ExpiredAt   *time.Time        `json:"expiredAt,omitempty"`
}

func toRunJSON(tenant string, r Run) runJSON {
	p := r.Parameters
	if p == nil {
		p = map[string]string{}
	}
	out := runJSON{ID: r.ID, TenantID: tenant, ReportID: r.ReportID, Status: string(r.Status), Source: r.Source, Format: string(r.Format),
		Parameters: p, RequestedBy: r.RequestedBy, Attempts: r.Attempts, RowCount: r.RowCount, ErrorClass: r.ErrorClass,
		CreatedAt: r.CreatedAt, StartedAt: r.StartedAt, FinishedAt: r.FinishedAt, ExpiresAt: r.ExpiresAt,
		ExpiredAt: r.ExpiredAt}
	if r.Status == RunSucceeded && r.Size != nil {
		out.Artifact = &artifactJSON{Name: r.BlobName, ContentType: r.Format.ContentType(), Size: *r.Size, SHA256: r.SHA256}
	}
	return out
}

// pathID is the :id path parameter, or notFound when it is not a canonical UUID (no such id).
func pathID(c echo.Context, notFound error) (string, error) {
	id, ok := ids.Parse(c.Param("id"))
	if !ok {
		return "", notFound
	}
	return id, nil
}

// cursorID decodes the cursor query parameter into an id ("" when absent).
func cursorID(c echo.Context) (string, error) {
	cur := c.QueryParam("cursor")
	if cur == "" {
		return "", nil
	}
	k, err := httpx.DecodeCursor(cur)
	if err != nil {
		return "", err
	}
	id, ok := ids.Parse(k)
	if !ok {
		return "", problem.New(http.StatusBadRequest, "invalid-cursor", "The cursor is not one this API issued.")
	}
	return id, nil
}

// ---- handlers ----

func (a *API) createReport(c echo.Context) error {
	cl, tenant, err := httpx.Target(c)
	if err != nil {
		return err
	}
	var req struct {
		Name       string         `json:"name"`
		Source     string         `json:"source"`
		Parameters map[string]any `json:"parameters"`
		Format     string         `json:"format"`
	}
	if err := httpx.DecodeJSON(c, &req); err != nil {
		return err
	}
	r, err := a.svc.CreateReport(c.Request().Context(), cl, tenant, ReportInput{Name: req.Name, Source: req.Source,
		Parameters: req.Parameters, Format: req.Format})
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation, httpx.Location(cl, tenant, "/api/reports/"+r.ID))
	httpx.SetETag(c, r.Version)
	return c.JSON(http.StatusCreated, toReportJSON(tenant.String(), r))
}

func (a *API) listReports(c echo.Context) error {
	_, tenant, err := httpx.Target(c)
	if err != nil {
		return err
	}
	limit, err := httpx.Limit(c, 50, 200)
	if err != nil {
		return err
	}
	after, err := cursorID(c)
	if err != nil {
		return err
	}
	rs, err := a.svc.Reports(c.Request().Context(), tenant, after, limit+1)
	if err != nil {
		return err
	}
	return writePage(c, rs, limit, func(r Report) string { return r.ID }, func(r Report) reportJSON { return toReportJSON(tenant.String(), r) })
}

// writePage answers one page of items (fetched with limit+1, so a next page is known to exist)
// with the next page's link, keyed on the last item's id.
func writePage[T, J any](c echo.Context, items []T, limit int, id func(T) string, toJSON func(T) J) error {
	page := httpx.Page[J]{Value: make([]J, 0, min(len(items), limit))}
	if len(items) > limit {
		items = items[:limit]
		page.NextLink = httpx.NextLink(c, httpx.EncodeCursor(id(items[len(items)-1])))
	}
	for _, it := range items {
		page.Value = append(page.Value, toJSON(it))
	}
	return c.JSON(http.StatusOK, page)
}

func (a *API) getReport(c echo.Context) error {
	_, tenant, err := httpx.Target(c)
	if err != nil {
		return err
	}
	id, err := pathID(c, ErrReportNotFound)
	if err != nil {
		return err
	}
	r, err := a.svc.Report(c.Request().Context(), tenant, id)
	if err != nil {
		return err
	}
	httpx.SetETag(c, r.Version)
	return c.JSON(http.StatusOK, toReportJSON(tenant.String(), r))
}

func (a *API) patchReport(c echo.Context) error {
	cl, tenant, err := httpx.Target(c)
	if err != nil {
		return err
	}
	id, err := pathID(c, ErrReportNotFound)
	if err != nil {
		return err
	}
	im, err := httpx.IfMatchVersion(c)
	if err != nil {
		return err
	}
	// A JSON merge patch of name, parameters (the whole set) and format; none can be removed.
	var req struct {
		Name       json.RawMessage `json:"name"`
		Parameters json.RawMessage `json:"parameters"`
		Format     json.RawMessage `json:"format"`
	}
	if err := httpx.DecodeJSON(c, &req); err != nil {
		return err
	}
	var p ReportPatch
	if p.Name, err = httpx.RequiredPatchString("name", req.Name); err != nil {
		return err
	}
	if p.Format, err = httpx.RequiredPatchString("format", req.Format); err != nil {
		return err
	}
	if raw := strings.TrimSpace(string(req.Parameters)); raw != "" {
		if raw == "null" {
			p.Parameters = map[string]any{} // the defaults removed
		} else if err := json.Unmarshal(req.Parameters, &p.Parameters); err != nil || p.Parameters == nil {
			return problem.New(http.StatusBadRequest, "invalid-parameters", "parameters must be an object.").
				WithFields(problem.FieldError{Field: "parameters", Detail: "must be an object"})
		}
	}
	r, err := a.svc.UpdateReport(c.Request().Context(), cl, tenant, id, p, im)
	if err != nil {
		return err
	}
	httpx.SetETag(c, r.Version)
	return c.JSON(http.StatusOK, toReportJSON(tenant.String(), r))
}

func (a *API) deleteReport(c echo.Context) error {
	cl, tenant, err := httpx.Target(c)
	if err != nil {
		return err
	}
	id, err := pathID(c, ErrReportNotFound)
	if err != nil {
		return err
	}
	if err := a.svc.DeleteReport(c.Request().Context(), cl, tenant, id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (a *API) generate(c echo.Context) error {
	cl, tenant, err := httpx.Target(c)
	if err != nil {
		return err
	}
	id, err := pathID(c, ErrReportNotFound)
	if err != nil {
		return err
	}
	var req struct {
		Parameters map[string]any `json:"parameters"`
	}
	if c.Request().ContentLength != 0 {
		if err := httpx.DecodeJSON(c, &req); err != nil {
			return err
		}
	}
	run, err := a.svc.GenerateReport(c.Request().Context(), cl, tenant, id, req.Parameters)
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation, httpx.Location(cl, tenant, "/api/report-runs/"+run.ID))
	return c.JSON(http.StatusAccepted, toRunJSON(tenant.String(), run))
}

func (a *API) listRuns(c echo.Context) error {
	_, tenant, err := httpx.Target(c)
	if err != nil {
		return err
	}
	id, err := pathID(c, ErrReportNotFound)
	if err != nil {
		return err
	}
	limit, err := httpx.Limit(c, 50, 200)
	if err != nil {
		return err
	}
	before, err := cursorID(c)
	if err != nil {
		return err
	}
	rs, err := a.svc.Runs(c.Request().Context(), tenant, id, before, limit+1)
	if err != nil {
		return err
	}
	return writePage(c, rs, limit, func(r Run) string { return r.ID }, func(r Run) runJSON { return toRunJSON(tenant.String(), r) })
}

func (a *API) getRun(c echo.Context) error {
	_, tenant, err := httpx.Target(c)
	if err != nil {
		return err
	}
	id, err := pathID(c, ErrRunNotFound)
	if err != nil {
		return err
	}
	r, err := a.svc.Run(c.Request().Context(), tenant, id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toRunJSON(tenant.String(), r))
}

// download answers 302 to a short-lived read-only SAS URL of exactly the run's blob (the URL is a
// bearer credential: not logged, not cached).
func (a *API) download(c echo.Context) error {
	_, tenant, err := httpx.Target(c)
	if err != nil {
		return err
	}
	id, err := pathID(c, ErrRunNotFound)
	if err != nil {
		return err
	}
	u, err := a.svc.DownloadURL(c.Request().Context(), tenant, id)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.Redirect(http.StatusFound, u)
}
