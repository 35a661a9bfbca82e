package tenants

import (
	"bytes"
	"encoding/json"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"spine/shared/auth"
	"spine/shared/httpx"
	"spine/shared/idempotency"
	"spine/shared/problem"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
)

// Scopes of the tenants API.
const (
	ScopeRead   = "tenant.read"
	ScopeManage = "tenant.manage"
)

// tenantJSON is the API shape of a tenant.
type tenantJSON struct {
	ID                string     `json:"id"`
	Name              string     `json:"name"`
	Slug              string     `json:"slug"`
	Status            string     `json:"status"`
	EditionCode       string     `json:"editionCode"`
	OwnerEmail        string     `json:"ownerEmail"`
	CreatedAt         time.Time  `json:"createdAt"`
	UpdatedAt         time.Time  `json:"updatedAt"`
	ProvisionedAt     *time.Time `json:"provisionedAt,omitempty"`
	ProvisioningSteps []stepJSON `json:"provisioningSteps,omitempty"`
}

type stepJSON struct {
	Name      string    `json:"name"`
	Status    string    `json:"status"`
	Attempts  int       `json:"attempts"`
	LastError string    `json:"lastError,omitempty"`
	UpdatedAt time.Time `json:"updatedAt"`
}

func toJSON(t Tenant, steps []Step) tenantJSON {
	out := tenantJSON{ID: t.ID.String(), Name: t.Name, Slug: string(t.Slug), Status: string(t.Status),
		EditionCode: string(t.EditionCode), OwnerEmail: t.OwnerEmail, CreatedAt: t.CreatedAt,
		UpdatedAt: t.UpdatedAt, ProvisionedAt: t.ProvisionedAt}
	for _, s := range steps {
		out.ProvisioningSteps = append(out.ProvisioningSteps, stepJSON{Name: s.Name, Status: string(s.Status),
			Attempts: s.Attempts, LastError: s.LastError, UpdatedAt: s.UpdatedAt})
	}
	return out
}

type registerRequest struct {
	Name        string `json:"name"`
	Slug        string `json:"slug"`
	EditionCode string `json:"editionCode"`
	OwnerEmail  string `json:"ownerEmail"`
}

// patchRequest is a JSON merge patch (RFC 7396): a member absent is left as it is, null would
// remove it (every one of these is required, so null is refused), a string replaces it.
type patchRequest struct {
	Name        json.RawMessage `json:"name"`
	Slug        json.RawMessage `json:"slug"`
	EditionCode json.RawMessage `json:"editionCode"`
	OwnerEmail  json.RawMessage `json:"ownerEmail"`
}

// patchMember reads one member of a merge patch: nil when absent, a 400 when null (the member
// cannot be removed: every tenant has one) or not a string.
func patchMember(field string, raw json.RawMessage) (*string, error) {
	return httpx.RequiredPatchString(field, raw)
}

type transitionRequest struct {
	Reason string `json:"reason"`
}

// API serves the tenants routes.
type API struct {
	svc *Service
	db  *sqlstore.DB // the tenants database, where Idempotency-Key records live
}

// NewAPI returns the HTTP API over svc, whose database is db.
func NewAPI(svc *Service, db *sqlstore.DB) *API { return &API{svc: svc, db: db} }

// Routes mounts the API on g (the /api group, which already authenticates the bearer token).
func (a *API) Routes(g *echo.Group) {
	read, manage := auth.RequireScope(ScopeRead), auth.RequireScope(ScopeManage)
	g.GET("/tenants", a.list, read)
	g.POST("/tenants", a.register, manage, idempotency.Middleware(a.db))
	g.GET("/tenants/by-slug/:slug", a.getBySlug, read)
	g.GET("/tenants/:id", a.get, read)
	g.PATCH("/tenants/:id", a.patch, manage)
	g.POST("/tenants/:id/provision", a.provision, manage)
	g.POST("/tenants/:id/suspend", a.transition(ActionSuspend), manage)
	g.POST("/tenants/:id/reactivate", a.transition(ActionReactivate), manage)
	g.POST("/tenants/:id/decommission", a.transition(ActionDecommission), manage)
}

// caller builds the Caller from the verified token.
func caller(c echo.Context) (Caller, error) { return httpx.CallerOf(c) }

// pathID parses the :id path parameter; a malformed id is simply a tenant that does not exist.
func pathID(c echo.Context) (tenancy.TenantID, error) {
	id, err := tenancy.ParseTenantID(c.Param("id"))
	if err != nil {
		return tenancy.TenantID{}, ErrNotFound
	}
	return id, nil
}

// target is what every route on /tenants/{id} starts from: who asks, which tenant, and the
// If-Match version if one was sent.
type target struct {
	caller  Caller
	id      tenancy.TenantID
	ifMatch *int64
}

func resolve(c echo.Context) (target, error) {
	cl, err := caller(c)
	if err != nil {
		return target{}, err
	}
	id, err := pathID(c)
	if err != nil {
		return target{}, err
	}
	im, err := httpx.IfMatchVersion(c)
	if err != nil {
		return target{}, err
	}
	return target{caller: cl, id: id, ifMatch: im}, nil
}

func writeView(c echo.Context, status int, v View) error {
	httpx.SetETag(c, v.Tenant.Version)
	return c.JSON(status, toJSON(v.Tenant, v.Steps))
}

// writeRendered answers 200 with a rendered tenant: the same headers and bytes writeView writes
// for its view, ?pretty (and echo's Debug) included, without encoding anything on the way.
func writeRendered(c echo.Context, r Rendered) error {
	httpx.SetETag(c, r.Version)
	if c.Echo().Debug || (c.Request().URL.RawQuery != "" && c.QueryParams().Has("pretty")) {
		var buf bytes.Buffer
		if err := json.Indent(&buf, r.Body, "", "  "); err != nil {
			return err
		}
		return c.JSONBlob(http.StatusOK, buf.Bytes())
	}
	return c.JSONBlob(http.StatusOK, r.Body)
}

func (a *API) register(c echo.Context) error {
	cl, err := caller(c)
	if err != nil {
		return err
	}
	var req registerRequest
	if err := httpx.DecodeJSON(c, &req); err != nil {
		return err
	}
	slug, err := ParseSlug(req.Slug)
	if err != nil {
		return err
	}
	in := RegisterInput{Name: req.Name, Slug: slug, EditionCode: EditionCode(req.EditionCode), OwnerEmail: req.OwnerEmail}
	v, err := a.svc.Register(c.Request().Context(), cl, in)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Location", "/api/tenants/"+v.Tenant.ID.String())
	return writeView(c, http.StatusCreated, v)
}

func (a *API) get(c echo.Context) error {
	tg, err := resolve(c)
	if err != nil {
		return err
	}
	r, err := a.svc.Get(c.Request().Context(), tg.caller, tg.id)
	if err != nil {
		return err
	}
	return writeRendered(c, r)
}

func (a *API) getBySlug(c echo.Context) error {
	cl, err := caller(c)
	if err != nil {
		return err
	}
	slug, err := ParseSlug(c.Param("slug"))
	if err != nil {
		return ErrNotFound
	}
	r, err := a.svc.GetBySlug(c.Request().Context(), cl, slug)
	if err != nil {
		return err
	}
	return writeRendered(c, r)
}

func (a *API) list(c echo.Context) error {
	cl, err := caller(c)
	if err != nil {
		return err
	}
	limit, err := httpx.Limit(c, 50, 200)
	if err != nil {
		return err
	}
	q := ListQuery{Limit: limit + 1}
	if s := c.QueryParam("status"); s != "" {
		if !tenancy.Status(s).Valid() {
			return problem.New(http.StatusBadRequest, "invalid-status", "status must be Provisioning, Active, Suspended or Decommissioned.")
		}
		q.Status = tenancy.Status(s)
	}
	if cur := c.QueryParam("cursor"); cur != "" {
		key, err := httpx.DecodeCursor(cur)
		if err != nil {
			return err
		}
		if q.After, err = tenancy.ParseTenantID(key); err != nil {
			return problem.New(http.StatusBadRequest, "invalid-cursor", "The cursor is not one this API issued.")
		}
	}
	ts, err := a.svc.List(c.Request().Context(), cl, q)
	if err != nil {
		return err
	}
	page := httpx.Page[tenantJSON]{Value: make([]tenantJSON, 0, len(ts))}
	if len(ts) > limit {
		ts = ts[:limit]
		page.NextLink = httpx.NextLink(c, httpx.EncodeCursor(ts[len(ts)-1].ID.String()))
	}
	for _, t := range ts {
		page.Value = append(page.Value, toJSON(t, nil))
	}
	return c.JSON(http.StatusOK, page)
}

func (a *API) patch(c echo.Context) error {
	tg, err := resolve(c)
	if err != nil {
		return err
	}
	var req patchRequest
	if err := httpx.DecodeJSON(c, &req); err != nil {
		return err
	}
	var p Patch
	var slug, edition *string
	for _, m := range []struct {
		field string
		raw   json.RawMessage
		to    **string
	}{{"name", req.Name, &p.Name}, {"slug", req.Slug, &slug}, {"editionCode", req.EditionCode, &edition}, {"ownerEmail", req.OwnerEmail, &p.OwnerEmail}} {
		if *m.to, err = patchMember(m.field, m.raw); err != nil {
			return err
		}
	}
	if slug != nil {
		s, err := ParseSlug(*slug)
		if err != nil {
			return err
		}
		p.Slug = &s
	}
	if edition != nil {
		e := EditionCode(*edition)
		p.EditionCode = &e
	}
	v, err := a.svc.Update(c.Request().Context(), tg.caller, tg.id, tg.ifMatch, p)
	if err != nil {
		return err
	}
	return writeView(c, http.StatusOK, v)
}

func (a *API) provision(c echo.Context) error {
	tg, err := resolve(c)
	if err != nil {
		return err
	}
	v, err := a.svc.Provision(c.Request().Context(), tg.caller, tg.id, tg.ifMatch)
	if err != nil {
		return err
	}
	return writeView(c, http.StatusOK, v)
}

func (a *API) transition(act Action) echo.HandlerFunc {
	return func(c echo.Context) error {
		tg, err := resolve(c)
		if err != nil {
			return err
		}
		var req transitionRequest // the body is optional: decode it only when one was sent
		if r := c.Request(); r.ContentLength > 0 || (r.ContentLength < 0 && r.Header.Get("Content-Type") != "") {
			if err := httpx.DecodeJSON(c, &req); err != nil {
				return err
			}
		}
		v, err := a.svc.Transition(c.Request().Context(), tg.caller, tg.id, tg.ifMatch, act, req.Reason)
		if err != nil {
			return err
		}
		return writeView(c, http.StatusOK, v)
	}
}
