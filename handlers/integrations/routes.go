package integrations

import (
	"encoding/json"
	"net/http"
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

// Scopes of the integrations API: a connection is part of the tenant's configuration, so reading
// it is tenant.read and changing it (secrets, checks and syncs included) tenant.manage.
const (
	ScopeRead   = "tenant.read"
	ScopeManage = "tenant.manage"
)

// API serves the integrations routes.
type API struct {
	svc *Service
	db  *sqlstore.DB // the idempotency records' database (the service's own)
	// retention runs the IntegrationPurge sweep (nil on Module.Declare's value).
	retention *retention.Engine
}

// NewAPI returns the HTTP API over svc; db is the service's database.
func NewAPI(svc *Service, db *sqlstore.DB) *API { return &API{svc: svc, db: db} }

// Routes implements kit.Service. Tenant-level routes: a tenant token works on its own tenant, a
// platform admin names the tenant with ?tenantId= (httpx.Target).
func (a *API) Routes(g *echo.Group) {
	scope := auth.RequireScope
	g.GET("/integrations/types", a.types, scope(ScopeRead))
	g.POST("/integrations", a.create, scope(ScopeManage), idempotency.Middleware(a.db, idempotency.WithoutMembers("secret")))
	g.GET("/integrations", a.list, scope(ScopeRead))
	g.GET("/integrations/:id", a.get, scope(ScopeRead))
	g.PATCH("/integrations/:id", a.patch, scope(ScopeManage))
	g.DELETE("/integrations/:id", a.delete, scope(ScopeManage))
	g.PUT("/integrations/:id/secret", a.rotate, scope(ScopeManage))
	g.POST("/integrations/:id/test", a.test, scope(ScopeManage))
	g.POST("/integrations/:id/sync", a.sync, scope(ScopeManage))
}

// ---- JSON shapes (none has a member for a secret value) ----

type secretRefJSON struct {
	Vault   string `json:"vault"`
	Name    string `json:"name"`
	Version string `json:"version"`
}

type connectionJSON struct {
	ID             string          `json:"id"`
	TenantID       string          `json:"tenantId"`
	Type           string          `json:"type"`
	Name           string          `json:"name"`
	Settings       json.RawMessage `json:"settings"`
	SecretRef      secretRefJSON   `json:"secretRef"`
	Status         string          `json:"status"`
	LastTestedAt   *time.Time      `json:"lastTestedAt"`
	LastSyncAt     *time.Time      `json:"lastSyncAt"`
	LastErrorClass jsonNullString  `json:"lastErrorClass"`
	Version        int64           `json:"version"`
	CreatedAt      time.Time       `json:"createdAt"`
	UpdatedAt      time.Time       `json:"updatedAt"`
}

func toJSON(tenant string, c Connection) connectionJSON {
	return connectionJSON{ID: c.ID, TenantID: tenant, Type: c.Type, Name: c.Name, Settings: c.Settings,
		SecretRef: secretRefJSON(c.Secret), Status: string(c.Status), LastTestedAt: c.LastTestedAt, LastSyncAt: c.LastSyncAt,
		LastErrorClass: jsonNullString(c.LastErrorClass), Version: c.Version, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt}
}

type testJSON struct {
	connectionJSON
	Result struct {
		OK         bool           `json:"ok"`
		ErrorClass jsonNullString `json:"errorClass"`
	} `json:"result"`
}

type typeJSON struct {
	Type   string  `json:"type"`
	Schema *Schema `json:"schema"`
}

// ---- handlers ----

func (a *API) types(c echo.Context) error {
	if _, err := httpx.CallerOf(c); err != nil {
		return err
	}
	page := httpx.Page[typeJSON]{Value: []typeJSON{}}
	for _, t := range a.svc.Registry().Types() {
		page.Value = append(page.Value, typeJSON{Type: t.Type(), Schema: t.Schema()})
	}
	return c.JSON(http.StatusOK, page)
}

func (a *API) create(c echo.Context) error {
	cl, tenant, err := httpx.Target(c)
	if err != nil {
		return err
	}
	var req struct {
		Type     string          `json:"type"`
		Name     string          `json:"name"`
		Settings json.RawMessage `json:"settings"`
		Secret   secretInput     `json:"secret"`
	}
	if err := httpx.DecodeJSON(c, &req); err != nil {
		return err
	}
	conn, err := a.svc.Create(c.Request().Context(), cl, tenant, CreateInput{Type: req.Type, Name: req.Name,
		Settings: req.Settings, Secret: req.Secret})
	if err != nil {
		return err
	}
	c.Response().Header().Set("Location", httpx.Location(cl, tenant, "/api/integrations/"+conn.ID))
	httpx.SetETag(c, conn.Version)
	return c.JSON(http.StatusCreated, toJSON(tenant.String(), conn))
}

func (a *API) list(c echo.Context) error {
	cl, tenant, err := httpx.Target(c)
	if err != nil {
		return err
	}
	limit, err := httpx.Limit(c, 50, 200)
	if err != nil {
		return err
	}
	var after string
	if cur := c.QueryParam("cursor"); cur != "" {
		k, err := httpx.DecodeCursor(cur)
		if err != nil {
			return err
		}
		id, ok := ids.Parse(k)
		if !ok {
			return problem.New(http.StatusBadRequest, "invalid-cursor", "The cursor is not one this API issued.")
		}
		after = id
	}
	cs, err := a.svc.List(c.Request().Context(), cl, tenant, after, limit+1)
	if err != nil {
		return err
	}
	page := httpx.Page[connectionJSON]{Value: make([]connectionJSON, 0, len(cs))}
	if len(cs) > limit {
		cs = cs[:limit]
		page.NextLink = httpx.NextLink(c, httpx.EncodeCursor(cs[len(cs)-1].ID))
	}
	for _, conn := range cs {
		page.Value = append(page.Value, toJSON(tenant.String(), conn))
	}
	return c.JSON(http.StatusOK, page)
}

func (a *API) get(c echo.Context) error {
	cl, tenant, err := httpx.Target(c)
	if err != nil {
		return err
	}
	conn, err := a.svc.Get(c.Request().Context(), cl, tenant, c.Param("id"))
	if err != nil {
		return err
	}
	httpx.SetETag(c, conn.Version)
	return c.JSON(http.StatusOK, toJSON(tenant.String(), conn))
}

func (a *API) patch(c echo.Context) error {
	cl, tenant, err := httpx.Target(c)
	if err != nil {
		return err
	}
	var req struct {
		Name     member[string]  `json:"name"`
		Settings json.RawMessage `json:"settings"`
		Enabled  member[bool]    `json:"enabled"`
	}
	if err := httpx.DecodeJSON(c, &req); err != nil {
		return err
	}
	// A JSON merge patch's null removes a member; a connection always has these.
	switch {
	case req.Name.null:
		return invalidInput("name", "required; null would remove it")
	case req.Enabled.null:
		return invalidInput("enabled", "required; null would remove it")
	case string(req.Settings) == "null":
		return invalidInput("settings", "required; null would remove it")
	}
	im, err := httpx.IfMatchVersion(c)
	if err != nil {
		return err
	}
	conn, err := a.svc.Update(c.Request().Context(), cl, tenant, c.Param("id"),
		PatchInput{Name: req.Name.ptr(), Settings: req.Settings, Enabled: req.Enabled.ptr()}, im)
	if err != nil {
		return err
	}
	httpx.SetETag(c, conn.Version)
	return c.JSON(http.StatusOK, toJSON(tenant.String(), conn))
}

func (a *API) delete(c echo.Context) error {
	cl, tenant, err := httpx.Target(c)
	if err != nil {
		return err
	}
	if err := a.svc.Delete(c.Request().Context(), cl, tenant, c.Param("id")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (a *API) rotate(c echo.Context) error {
	cl, tenant, err := httpx.Target(c)
	if err != nil {
		return err
	}
	var req struct {
		Secret secretInput `json:"secret"`
	}
	if err := httpx.DecodeJSON(c, &req); err != nil {
		return err
	}
	conn, err := a.svc.RotateSecret(c.Request().Context(), cl, tenant, c.Param("id"), req.Secret)
	if err != nil {
		return err
	}
	httpx.SetETag(c, conn.Version)
	return c.JSON(http.StatusOK, toJSON(tenant.String(), conn))
}

func (a *API) test(c echo.Context) error {
	cl, tenant, err := httpx.Target(c)
	if err != nil {
		return err
	}
	conn, o, err := a.svc.Test(c.Request().Context(), cl, tenant, c.Param("id"))
	if err != nil {
		return err
	}
	out := testJSON{connectionJSON: toJSON(tenant.String(), conn)}
	out.Result.OK, out.Result.ErrorClass = o.OK(), jsonNullString(o.ErrorClass)
	httpx.SetETag(c, conn.Version)
	return c.JSON(http.StatusOK, out)
}

func (a *API) sync(c echo.Context) error {
	cl, tenant, err := httpx.Target(c)
	if err != nil {
		return err
	}
	conn, err := a.svc.RequestSync(c.Request().Context(), cl, tenant, c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, map[string]string{"id": conn.ID, "status": "SyncRequested"})
}

// jsonNullString is a string member written as JSON null when empty: the shapes in the README list
// every member, set or not.
type jsonNullString string

// MarshalJSON writes null for "".
func (n jsonNullString) MarshalJSON() ([]byte, error) {
	if n == "" {
		return []byte("null"), nil
	}
	return json.Marshal(string(n))
}

// UnmarshalJSON reads null as "".
func (n *jsonNullString) UnmarshalJSON(b []byte) error {
	var s *string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	*n = ""
	if s != nil {
		*n = jsonNullString(*s)
	}
	return nil
}

// member is a PATCH member that tells absent (nothing to change), null and a value apart; a value
// of the wrong JSON kind is a type error naming the member.
type member[T any] struct {
	set, null bool
	v         T
}

// UnmarshalJSON records the member as present, null or its value.
func (m *member[T]) UnmarshalJSON(b []byte) error {
	m.set = true
	if string(b) == "null" {
		m.null = true
		return nil
	}
	return json.Unmarshal(b, &m.v)
}

// ptr is the value when one was given, else nil.
func (m member[T]) ptr() *T {
	if !m.set || m.null {
		return nil
	}
	return &m.v
}
