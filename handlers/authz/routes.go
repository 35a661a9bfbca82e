package authz

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
	"spine/shared/tenancy"
)

// API serves the authz routes: the client admin API here (the OpenID provider's endpoints are
// mounted by the protocol's files).
type API struct {
	svc     *Service
	db      *sqlstore.DB // the idempotency records' database (the service's own)
	connect *connect     // the OpenID provider and its key ring (connect_module.go); nil when declared only
	// retention runs the AuthzTokenPrune sweep (prune.go); nil when declared only.
	retention *retention.Engine
}

// NewAPI returns the HTTP API over svc; db is the service's database, where Idempotency-Key
// records are kept.
func NewAPI(svc *Service, db *sqlstore.DB) *API { return &API{svc: svc, db: db} }

// Routes implements kit.Service: the client admin API on the authenticated /api group, scope
// client.manage. Tenant-level: a tenant token works on its own tenant's clients, a platform admin
// names the tenant with ?tenantId= (httpx.Target), or the platform's own clients with
// ?platform=true.
func (a *API) Routes(g *echo.Group) {
	manage := auth.RequireScope(ScopeClientManage)
	idem := idempotency.Middleware(a.db)
	g.GET("/clients", a.listClients, manage)
	g.POST("/clients", a.createClient, manage, idem)
	g.GET("/clients/:id", a.getClient, manage)
	g.PATCH("/clients/:id", a.patchClient, manage)
	g.DELETE("/clients/:id", a.deleteClient, manage)
	g.POST("/clients/:id/secret", a.rotateSecret, manage, idem)
}

// ---- JSON shapes ----

type clientJSON struct {
	ID                     string     `json:"id"`
	TenantID               string     `json:"tenantId,omitempty"`
	Platform               bool       `json:"platform"`
	Name                   string     `json:"name"`
	ClientType             string     `json:"clientType"`
	RedirectURIs           []string   `json:"redirectUris"`
	PostLogoutRedirectURIs []string   `json:"postLogoutRedirectUris"`
	GrantTypes             []string   `json:"grantTypes"`
	Scopes                 []string   `json:"scopes"`
	FirstParty             bool       `json:"firstParty"`
	PlatformAdmin          bool       `json:"platformAdmin"`
	SecretRotatedAt        *time.Time `json:"secretRotatedAt,omitempty"`
	CreatedAt              time.Time  `json:"createdAt"`
	UpdatedAt              time.Time  `json:"updatedAt"`
	// ClientSecret is the client's secret, in the answers of its creation and of a rotation only
	// (never in a replay, a read or a list).
	ClientSecret string `json:"clientSecret,omitempty"`
}

func toClientJSON(c Client) clientJSON {
	out := clientJSON{ID: string(c.ID), TenantID: eventTenant(c.Tenant), Platform: c.Platform(), Name: c.Name,
		ClientType: string(c.Type), RedirectURIs: nonNil(c.RedirectURIs), PostLogoutRedirectURIs: nonNil(c.PostLogoutRedirectURIs),
		GrantTypes: make([]string, len(c.GrantTypes)), Scopes: make([]string, len(c.Scopes)), FirstParty: c.FirstParty,
		PlatformAdmin: c.PlatformAdmin, SecretRotatedAt: c.SecretRotatedAt, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt}
	for i, g := range c.GrantTypes {
		out.GrantTypes[i] = string(g)
	}
	for i, s := range c.Scopes {
		out.Scopes[i] = string(s)
	}
	return out
}

func nonNil(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

// ---- request helpers ----

// target is who asks and whose clients the route works on: the platform's (PlatformTenant) for
// ?platform=true, which only a platform admin may ask and which names no tenant, otherwise the
// tenant httpx.Target says.
func target(c echo.Context) (Caller, string, error) {
	switch c.QueryParam("platform") {
	case "", "false":
		cl, tenant, err := httpx.Target(c)
		if err != nil {
			return Caller{}, "", err
		}
		return cl, tenant.String(), nil
	case "true":
		cl, err := httpx.CallerOf(c)
		if err != nil {
			return Caller{}, "", err
		}
		if err := cl.RequirePlatform(); err != nil {
			return Caller{}, "", err
		}
		if c.QueryParam("tenantId") != "" {
			return Caller{}, "", invalid("name either a tenant (tenantId) or the platform (platform=true), not both")
		}
		return cl, PlatformTenant, nil
	}
	return Caller{}, "", problem.New(http.StatusBadRequest, "invalid-platform", "platform must be true or false.").
		WithFields(problem.FieldError{Field: "platform", Detail: "must be true or false"})
}

// location is the URL of a client as its caller reaches it.
func location(cl Caller, tenant string, path string) string {
	if tenant == PlatformTenant {
		return path + "?platform=true"
	}
	return httpx.Location(cl, tenancy.MustParseTenantID(tenant), path)
}

// held is the scopes of the request's verified token (the authenticated group put it there).
func held(c echo.Context) Held {
	p, _ := auth.FromContext(c.Request().Context())
	return Held(p.Scopes)
}

// pathClient parses the :id path parameter; a malformed id is a client that does not exist.
func pathClient(c echo.Context) (ClientID, error) { return ParseClientID(c.Param("id")) }

// cursorID decodes the cursor parameter into a client id, or "" without one.
func cursorID(c echo.Context) (ClientID, error) {
	cur := c.QueryParam("cursor")
	if cur == "" {
		return "", nil
	}
	key, err := httpx.DecodeCursor(cur)
	if err != nil {
		return "", err
	}
	if id, ok := ids.Parse(key); ok {
		return ClientID(id), nil
	}
	return "", problem.New(http.StatusBadRequest, "invalid-cursor", "The cursor is not one this API issued.")
}

// parseEach parses every element of a request's list with parse, stopping at the first error.
func parseEach[T any](ss []string, parse func(string) (T, error)) ([]T, error) {
	out := make([]T, 0, len(ss))
	for _, s := range ss {
		v, err := parse(s)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// grantTypes parses a request's grant types.
func grantTypes(ss []string) ([]GrantType, error) { return parseEach(ss, ParseGrantType) }

// scopes parses a request's scopes.
func scopes(ss []string) ([]Scope, error) { return parseEach(ss, ParseScope) }

// writeClient answers a client with its version as ETag; secret, when set, is shown in this
// answer only: the Idempotency-Key's replay answers the same without it, and no cache keeps it.
func writeClient(c echo.Context, status int, cl Client, secret string) error {
	httpx.SetETag(c, cl.Version)
	body := toClientJSON(cl)
	if secret != "" {
		if replay, err := json.Marshal(body); err == nil {
			idempotency.ReplayBody(c.Request().Context(), replay)
		}
		body.ClientSecret = secret
		c.Response().Header().Set("Cache-Control", "no-store")
	}
	return c.JSON(status, body)
}

// ---- routes ----

func (a *API) listClients(c echo.Context) error {
	cl, tenant, err := target(c)
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
	cs, err := a.svc.ListClients(c.Request().Context(), cl, tenant, after, limit+1)
	if err != nil {
		return err
	}
	page := httpx.Page[clientJSON]{Value: make([]clientJSON, 0, len(cs))}
	if len(cs) > limit {
		cs = cs[:limit]
		page.NextLink = httpx.NextLink(c, httpx.EncodeCursor(string(cs[len(cs)-1].ID)))
	}
	for _, x := range cs {
		page.Value = append(page.Value, toClientJSON(x))
	}
	return c.JSON(http.StatusOK, page)
}

type createClientRequest struct {
	Name                   string   `json:"name"`
	ClientType             string   `json:"clientType"`
	RedirectURIs           []string `json:"redirectUris"`
	PostLogoutRedirectURIs []string `json:"postLogoutRedirectUris"`
	GrantTypes             []string `json:"grantTypes"`
	Scopes                 []string `json:"scopes"`
	FirstParty             bool     `json:"firstParty"`
	PlatformAdmin          bool     `json:"platformAdmin"`
}

func (a *API) createClient(c echo.Context) error {
	cl, tenant, err := target(c)
	if err != nil {
		return err
	}
	var req createClientRequest
	if err := httpx.DecodeJSON(c, &req); err != nil {
		return err
	}
	typ, err := ParseClientType(req.ClientType)
	if err != nil {
		return err
	}
	in := ClientInput{Name: req.Name, Type: typ, RedirectURIs: req.RedirectURIs, PostLogoutRedirectURIs: req.PostLogoutRedirectURIs,
		FirstParty: req.FirstParty, PlatformAdmin: req.PlatformAdmin}
	if in.GrantTypes, err = grantTypes(req.GrantTypes); err != nil {
		return err
	}
	if in.Scopes, err = scopes(req.Scopes); err != nil {
		return err
	}
	created, secret, err := a.svc.CreateClient(c.Request().Context(), cl, held(c), tenant, in)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Location", location(cl, tenant, "/api/clients/"+string(created.ID)))
	return writeClient(c, http.StatusCreated, created, secret)
}

func (a *API) getClient(c echo.Context) error {
	cl, tenant, err := target(c)
	if err != nil {
		return err
	}
	id, err := pathClient(c)
	if err != nil {
		return err
	}
	got, err := a.svc.GetClient(c.Request().Context(), cl, tenant, id)
	if err != nil {
		return err
	}
	return writeClient(c, http.StatusOK, got, "")
}

// clientTarget is what the changing routes start from.
func clientTarget(c echo.Context) (Caller, string, ClientID, *int64, error) {
	cl, tenant, err := target(c)
	if err != nil {
		return Caller{}, "", "", nil, err
	}
	id, err := pathClient(c)
	if err != nil {
		return Caller{}, "", "", nil, err
	}
	im, err := httpx.IfMatchVersion(c)
	return cl, tenant, id, im, err
}

// patchClient is PATCH /clients/{id}, a JSON merge patch (RFC 7396): members absent are left as
// they are; null empties a list; name and the flags cannot be removed; clientType cannot change.
func (a *API) patchClient(c echo.Context) error {
	cl, tenant, id, im, err := clientTarget(c)
	if err != nil {
		return err
	}
	var req struct {
		Name                   json.RawMessage `json:"name"`
		ClientType             json.RawMessage `json:"clientType"`
		RedirectURIs           json.RawMessage `json:"redirectUris"`
		PostLogoutRedirectURIs json.RawMessage `json:"postLogoutRedirectUris"`
		GrantTypes             json.RawMessage `json:"grantTypes"`
		Scopes                 json.RawMessage `json:"scopes"`
		FirstParty             json.RawMessage `json:"firstParty"`
		PlatformAdmin          json.RawMessage `json:"platformAdmin"`
	}
	if err := httpx.DecodeJSON(c, &req); err != nil {
		return err
	}
	if len(req.ClientType) > 0 {
		return invalid("clientType cannot change: create another client")
	}
	var p ClientPatch
	if p.Name, err = httpx.RequiredPatchString("name", req.Name); err != nil {
		return err
	}
	if p.RedirectURIs, err = patchList("redirectUris", req.RedirectURIs); err != nil {
		return err
	}
	if p.PostLogoutRedirectURIs, err = patchList("postLogoutRedirectUris", req.PostLogoutRedirectURIs); err != nil {
		return err
	}
	if gs, err := patchList("grantTypes", req.GrantTypes); err != nil {
		return err
	} else if gs != nil {
		g, err := grantTypes(*gs)
		if err != nil {
			return err
		}
		p.GrantTypes = &g
	}
	if ss, err := patchList("scopes", req.Scopes); err != nil {
		return err
	} else if ss != nil {
		s, err := scopes(*ss)
		if err != nil {
			return err
		}
		p.Scopes = &s
	}
	if p.FirstParty, err = patchBool("firstParty", req.FirstParty); err != nil {
		return err
	}
	if p.PlatformAdmin, err = patchBool("platformAdmin", req.PlatformAdmin); err != nil {
		return err
	}
	up, err := a.svc.UpdateClient(c.Request().Context(), cl, held(c), tenant, id, im, p)
	if err != nil {
		return err
	}
	return writeClient(c, http.StatusOK, up, "")
}

// patchList reads a list member of a merge patch: absent is nil, null an empty list, an array of
// strings the list; anything else is 400 invalid-json naming the member.
func patchList(field string, raw json.RawMessage) (*[]string, error) {
	switch strings.TrimSpace(string(raw)) {
	case "":
		return nil, nil
	case "null":
		return &[]string{}, nil
	}
	var l []string
	if err := json.Unmarshal(raw, &l); err != nil {
		return nil, problem.Newf(http.StatusBadRequest, "invalid-json", "Member %q must be an array of strings.", field).
			WithFields(problem.FieldError{Field: field, Detail: "must be an array of strings"})
	}
	if l == nil {
		l = []string{}
	}
	return &l, nil
}

// patchBool reads a boolean member of a merge patch: absent is nil; null, which would remove a
// flag every client has, is refused like any other non-boolean.
func patchBool(field string, raw json.RawMessage) (*bool, error) {
	if strings.TrimSpace(string(raw)) == "" {
		return nil, nil
	}
	var b *bool
	if err := json.Unmarshal(raw, &b); err != nil || b == nil {
		return nil, problem.Newf(http.StatusBadRequest, "invalid-json", "Member %q must be true or false.", field).
			WithFields(problem.FieldError{Field: field, Detail: "must be true or false"})
	}
	return b, nil
}

func (a *API) deleteClient(c echo.Context) error {
	cl, tenant, id, im, err := clientTarget(c)
	if err != nil {
		return err
	}
	if err := a.svc.DeleteClient(c.Request().Context(), cl, held(c), tenant, id, im); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (a *API) rotateSecret(c echo.Context) error {
	cl, tenant, id, im, err := clientTarget(c)
	if err != nil {
		return err
	}
	up, secret, err := a.svc.RotateSecret(c.Request().Context(), cl, held(c), tenant, id, im)
	if err != nil {
		return err
	}
	return writeClient(c, http.StatusOK, up, secret)
}
