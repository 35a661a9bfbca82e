package identity

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
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
)

// Scopes of the identity API. The permission catalog holds the same codes, so a tenant role can
// grant what a token's scope does.
const (
	ScopeUserRead   = "user.read"
	ScopeUserInvite = "user.invite"
	ScopeUserManage = "user.manage"
	ScopeRoleRead   = "role.read"
	ScopeRoleAssign = "role.assign"
	ScopeRoleManage = "role.manage"
)

// API serves the identity routes.
type API struct {
	svc *Service
	db  *sqlstore.DB // the idempotency records' database (the service's own)
}

// NewAPI returns the HTTP API over svc; db is the service's database, where Idempotency-Key
// records are kept.
func NewAPI(svc *Service, db *sqlstore.DB) *API { return &API{svc: svc, db: db} }

// Routes implements kit.Service: every route but the invitation's acceptance, on the
// authenticated /api group. Tenant-level: a tenant token works on its own tenant, a platform
// admin names the tenant with ?tenantId= (httpx.Target).
func (a *API) Routes(g *echo.Group) {
	scope := auth.RequireScope
	idem := idempotency.Middleware(a.db)
	g.GET("/users", a.listUsers, scope(ScopeUserRead))
	g.POST("/users/invitations", a.invite, scope(ScopeUserInvite), idem)
	g.DELETE("/users/invitations/:id", a.revokeInvitation, scope(ScopeUserInvite))
	g.GET("/users/:id", a.getUser, scope(ScopeUserRead))
	g.PATCH("/users/:id", a.patchUser, scope(ScopeUserManage))
	g.POST("/users/:id/disable", a.userStatus(ActionDisable), scope(ScopeUserManage))
	g.POST("/users/:id/enable", a.userStatus(ActionEnable), scope(ScopeUserManage))
	g.GET("/users/:id/permissions", a.userPermissions, scope(ScopeUserRead))
	g.GET("/roles", a.listRoles, scope(ScopeRoleRead))
	g.POST("/roles", a.createRole, scope(ScopeRoleManage), idem)
	g.GET("/roles/:id", a.getRole, scope(ScopeRoleRead))
	g.PATCH("/roles/:id", a.patchRole, scope(ScopeRoleManage))
	g.DELETE("/roles/:id", a.deleteRole, scope(ScopeRoleManage))
	g.PUT("/roles/:id/permissions", a.setRolePermissions, scope(ScopeRoleManage))
	g.POST("/roles/:id/assignments", a.assign, scope(ScopeRoleAssign))
	g.DELETE("/roles/:id/assignments/:userId", a.unassign, scope(ScopeRoleAssign))
	g.GET("/permissions", a.catalog, scope(ScopeRoleRead))
	g.POST("/authz/check", a.check, scope(ScopeUserRead))
}

// PublicRoutes implements kit.PublicRouter: the invitation's acceptance, whose credential is the
// token in its body, on the anonymous /api group. The older form with the token in the path is
// kept for compatibility and deprecated: a credential in a URL reaches whatever records URLs
// (spans, access and error logs, proxies).
func (a *API) PublicRoutes(g *echo.Group) {
	g.POST("/users/invitations/accept", a.accept)
	g.POST(acceptPathRoute, a.acceptInPath)
}

// acceptPathRoute is the deprecated acceptance route, with the token in its path.
const acceptPathRoute = "/users/invitations/:token/accept"

// ---- JSON shapes ----

type userJSON struct {
	ID          string     `json:"id"`
	Email       string     `json:"email"`
	DisplayName string     `json:"displayName"`
	Status      string     `json:"status"`
	CreatedAt   time.Time  `json:"createdAt"`
	UpdatedAt   time.Time  `json:"updatedAt"`
	ActivatedAt *time.Time `json:"activatedAt,omitempty"`
	LastLoginAt *time.Time `json:"lastLoginAt,omitempty"`
	// RoleIDs are present on single-user answers, absent in lists.
	RoleIDs *[]string `json:"roleIds,omitempty"`
}

func toUserJSON(u User, withRoles bool) userJSON {
	out := userJSON{ID: string(u.ID), Email: string(u.Email), DisplayName: u.DisplayName, Status: string(u.Status),
		CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt, ActivatedAt: u.ActivatedAt, LastLoginAt: u.LastLoginAt}
	if withRoles {
		ids := make([]string, len(u.Roles))
		for i, r := range u.Roles {
			ids[i] = string(r)
		}
		out.RoleIDs = &ids
	}
	return out
}

type invitationJSON struct {
	ID        string    `json:"id"`
	UserID    string    `json:"userId"`
	Email     string    `json:"email"`
	RoleIDs   []string  `json:"roleIds"`
	CreatedAt time.Time `json:"createdAt"`
	ExpiresAt time.Time `json:"expiresAt"`
	// Token is the invitee's credential, shown in this answer only (never in a replay).
	Token string `json:"token,omitempty"`
}

type roleJSON struct {
	ID          string    `json:"id"`
	Code        string    `json:"code"`
	Name        string    `json:"name"`
	IsSystem    bool      `json:"isSystem"`
	Permissions []string  `json:"permissions"`
	CreatedAt   time.Time `json:"createdAt"`
	UpdatedAt   time.Time `json:"updatedAt"`
}

func toRoleJSON(r Role) roleJSON {
	ps := make([]string, len(r.Permissions))
	for i, p := range r.Permissions {
		ps[i] = string(p)
	}
	return roleJSON{ID: string(r.ID), Code: string(r.Code), Name: r.Name, IsSystem: r.IsSystem, Permissions: ps,
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
}

// ---- request helpers ----

// ifMatch returns the If-Match version, if one was sent.
// pathUser parses the :id (or other) path parameter as a user id; a malformed id is a user that
// does not exist.
func pathUser(c echo.Context, name string) (UserID, error) {
	id, err := ParseUserID(c.Param(name))
	if err != nil {
		return "", ErrUserNotFound
	}
	return id, nil
}

func pathRole(c echo.Context) (RoleID, error) {
	id, err := ParseRoleID(c.Param("id"))
	if err != nil {
		return "", ErrRoleNotFound
	}
	return id, nil
}

// optionalBody decodes a JSON body into v when one was sent.
func optionalBody(c echo.Context, v any) error {
	if r := c.Request(); r.ContentLength > 0 || (r.ContentLength < 0 && r.Header.Get("Content-Type") != "") {
		return httpx.DecodeJSON(c, v)
	}
	return nil
}

// cursorID decodes the cursor parameter into an id, or "" without one.
func cursorID(c echo.Context) (string, error) {
	cur := c.QueryParam("cursor")
	if cur == "" {
		return "", nil
	}
	key, err := httpx.DecodeCursor(cur)
	if err != nil {
		return "", err
	}
	if id, ok := ids.Parse(key); ok {
		return id, nil
	}
	return "", problem.New(http.StatusBadRequest, "invalid-cursor", "The cursor is not one this API issued.")
}

func writeUser(c echo.Context, status int, u User) error {
	httpx.SetETag(c, u.Version)
	return c.JSON(status, toUserJSON(u, true))
}

func writeRole(c echo.Context, status int, r Role) error {
	httpx.SetETag(c, r.Version)
	return c.JSON(status, toRoleJSON(r))
}

// ---- users ----

func (a *API) listUsers(c echo.Context) error {
	cl, tenant, err := httpx.Target(c)
	if err != nil {
		return err
	}
	limit, err := httpx.Limit(c, 50, 200)
	if err != nil {
		return err
	}
	q := UserQuery{Limit: limit + 1}
	if s := c.QueryParam("status"); s != "" {
		if !UserStatus(s).Valid() {
			return problem.New(http.StatusBadRequest, "invalid-status", "status must be Invited, Active or Disabled.")
		}
		q.Status = UserStatus(s)
	}
	if s := c.QueryParam("email"); s != "" {
		e, err := ParseEmail(s)
		if err != nil {
			return err
		}
		q.Email = e
	}
	after, err := cursorID(c)
	if err != nil {
		return err
	}
	q.After = UserID(after)
	us, err := a.svc.ListUsers(c.Request().Context(), cl, tenant, q)
	if err != nil {
		return err
	}
	page := httpx.Page[userJSON]{Value: make([]userJSON, 0, len(us))}
	if len(us) > limit {
		us = us[:limit]
		page.NextLink = httpx.NextLink(c, httpx.EncodeCursor(string(us[len(us)-1].ID)))
	}
	for _, u := range us {
		page.Value = append(page.Value, toUserJSON(u, false))
	}
	return c.JSON(http.StatusOK, page)
}

func (a *API) getUser(c echo.Context) error {
	cl, tenant, err := httpx.Target(c)
	if err != nil {
		return err
	}
	id, err := pathUser(c, "id")
	if err != nil {
		return err
	}
	u, err := a.svc.GetUser(c.Request().Context(), cl, tenant, id)
	if err != nil {
		return err
	}
	return writeUser(c, http.StatusOK, u)
}

func (a *API) patchUser(c echo.Context) error {
	cl, tenant, err := httpx.Target(c)
	if err != nil {
		return err
	}
	id, err := pathUser(c, "id")
	if err != nil {
		return err
	}
	im, err := httpx.IfMatchVersion(c)
	if err != nil {
		return err
	}
	// A JSON merge patch: null removes the display name (a user may have none, as when invited
	// without one); it is never read as "leave it as it is".
	var req struct {
		DisplayName json.RawMessage `json:"displayName"`
	}
	if err := httpx.DecodeJSON(c, &req); err != nil {
		return err
	}
	name, null, err := httpx.PatchString("displayName", req.DisplayName)
	if err != nil {
		return err
	}
	if null {
		name = new(string)
	}
	u, err := a.svc.UpdateUser(c.Request().Context(), cl, tenant, id, im, UserPatch{DisplayName: name})
	if err != nil {
		return err
	}
	return writeUser(c, http.StatusOK, u)
}

func (a *API) userStatus(act UserAction) echo.HandlerFunc {
	return func(c echo.Context) error {
		cl, tenant, err := httpx.Target(c)
		if err != nil {
			return err
		}
		id, err := pathUser(c, "id")
		if err != nil {
			return err
		}
		im, err := httpx.IfMatchVersion(c)
		if err != nil {
			return err
		}
		var req struct {
			Reason string `json:"reason"`
		}
		if err := optionalBody(c, &req); err != nil {
			return err
		}
		u, err := a.svc.SetUserStatus(c.Request().Context(), cl, tenant, id, im, act, req.Reason)
		if err != nil {
			return err
		}
		return writeUser(c, http.StatusOK, u)
	}
}

func (a *API) userPermissions(c echo.Context) error {
	cl, tenant, err := httpx.Target(c)
	if err != nil {
		return err
	}
	id, err := pathUser(c, "id")
	if err != nil {
		return err
	}
	set, err := a.svc.UserPermissions(c.Request().Context(), cl, tenant, id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"userId": string(id), "permissions": set})
}

// ---- invitations ----

type inviteRequest struct {
	Email       string   `json:"email"`
	DisplayName string   `json:"displayName"`
	RoleIDs     []string `json:"roleIds"`
}

func (a *API) invite(c echo.Context) error {
	cl, tenant, err := httpx.Target(c)
	if err != nil {
		return err
	}
	var req inviteRequest
	if err := httpx.DecodeJSON(c, &req); err != nil {
		return err
	}
	email, err := ParseEmail(req.Email)
	if err != nil {
		return err
	}
	in := InviteInput{Email: email, DisplayName: req.DisplayName}
	for i, s := range req.RoleIDs {
		id, err := ParseRoleID(s)
		if err != nil {
			return invalid("roleIds[%d] is not a role id", i)
		}
		in.Roles = append(in.Roles, id)
	}
	// Roles given with an invitation are assignments: they need role.assign as well, or a caller
	// with user.invite alone could invite an address it controls as tenant-admin.
	if len(in.Roles) > 0 {
		if err := requireRoleAssign(c); err != nil {
			return err
		}
	}
	ctx := c.Request().Context()
	out, err := a.svc.Invite(ctx, cl, tenant, in)
	if err != nil {
		return err
	}
	roles := make([]string, len(out.User.Roles))
	for i, r := range out.User.Roles {
		roles[i] = string(r)
	}
	body := invitationJSON{ID: string(out.Invitation.ID), UserID: string(out.User.ID), Email: string(out.User.Email),
		RoleIDs: roles, CreatedAt: out.Invitation.CreatedAt, ExpiresAt: out.Invitation.ExpiresAt}
	// A replay of this request (same Idempotency-Key) answers the same, without the token: it is
	// shown once and never stored in the clear. A lost token is replaced by inviting again.
	if replay, err := json.Marshal(body); err == nil {
		idempotency.ReplayBody(ctx, replay)
	}
	body.Token = out.Token
	c.Response().Header().Set("Location", httpx.Location(cl, tenant, "/api/users/"+string(out.User.ID)))
	return c.JSON(http.StatusCreated, body)
}

// requireRoleAssign answers what auth.RequireScope(ScopeRoleAssign) answers on a route (403
// insufficient-scope with its WWW-Authenticate challenge) when the token lacks role.assign.
var requireRoleAssign = auth.RequireScope(ScopeRoleAssign)(func(echo.Context) error { return nil })

func (a *API) revokeInvitation(c echo.Context) error {
	cl, tenant, err := httpx.Target(c)
	if err != nil {
		return err
	}
	id, err := ParseInvitationID(c.Param("id"))
	if err != nil {
		return ErrInvitationNotFound
	}
	if err := a.svc.RevokeInvitation(c.Request().Context(), cl, tenant, id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// accept is POST /users/invitations/accept: {"token", "password", "displayName"}, the token
// required. No answer holds the token: problems name the member, never its value.
func (a *API) accept(c echo.Context) error {
	var req struct {
		Token       string  `json:"token"`
		Password    *string `json:"password"`
		DisplayName *string `json:"displayName"`
	}
	if err := httpx.DecodeJSON(c, &req); err != nil {
		return err
	}
	if req.Token == "" {
		return invalid("token is required: the invitation's token, as the invitation's answer gave it")
	}
	u, err := a.svc.Accept(c.Request().Context(), req.Token, AcceptInput{Password: req.Password, DisplayName: req.DisplayName})
	if err != nil {
		return err
	}
	return writeUser(c, http.StatusOK, u)
}

// acceptInPath is the deprecated POST /users/invitations/{token}/accept, with an optional
// {"password", "displayName"}. Its answers point to the successor route, and its problems name
// the route's template as their instance rather than the path, which holds the token.
func (a *API) acceptInPath(c echo.Context) error {
	c.Response().Header().Set("Link", `</api/users/invitations/accept>; rel="successor-version"`)
	var req struct {
		Password    *string `json:"password"`
		DisplayName *string `json:"displayName"`
	}
	if err := optionalBody(c, &req); err != nil {
		return withoutToken(err)
	}
	u, err := a.svc.Accept(c.Request().Context(), c.Param("token"), AcceptInput{Password: req.Password, DisplayName: req.DisplayName})
	if err != nil {
		return withoutToken(err)
	}
	return writeUser(c, http.StatusOK, u)
}

// withoutToken turns a 4xx error of the deprecated acceptance into its problem with the route's
// template as instance (the problem handler's default, the request path, holds the token). A
// 5xx is left to the problem handler, which logs its cause.
func withoutToken(err error) error {
	p, ok := problem.As(err)
	if !ok {
		if p = MapError(err); p == nil {
			p = httpx.MapError(err)
		}
		if p == nil {
			return err
		}
		p.WithCause(err)
	}
	if p.Status >= 500 {
		return err
	}
	cp := *p // p may be a shared value
	cp.Instance = "/api/users/invitations/{token}/accept"
	return &cp
}

// ---- roles ----

func (a *API) listRoles(c echo.Context) error {
	cl, tenant, err := httpx.Target(c)
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
	rs, err := a.svc.ListRoles(c.Request().Context(), cl, tenant, RoleID(after), limit+1)
	if err != nil {
		return err
	}
	page := httpx.Page[roleJSON]{Value: make([]roleJSON, 0, len(rs))}
	if len(rs) > limit {
		rs = rs[:limit]
		page.NextLink = httpx.NextLink(c, httpx.EncodeCursor(string(rs[len(rs)-1].ID)))
	}
	for _, r := range rs {
		page.Value = append(page.Value, toRoleJSON(r))
	}
	return c.JSON(http.StatusOK, page)
}

func permissionCodes(ss []string) ([]PermissionCode, error) {
	out := make([]PermissionCode, 0, len(ss))
	for _, s := range ss {
		p, err := ParsePermissionCode(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func (a *API) createRole(c echo.Context) error {
	cl, tenant, err := httpx.Target(c)
	if err != nil {
		return err
	}
	var req struct {
		Code        string   `json:"code"`
		Name        string   `json:"name"`
		Permissions []string `json:"permissions"`
	}
	if err := httpx.DecodeJSON(c, &req); err != nil {
		return err
	}
	code, err := ParseRoleCode(req.Code)
	if err != nil {
		return err
	}
	perms, err := permissionCodes(req.Permissions)
	if err != nil {
		return err
	}
	r, err := a.svc.CreateRole(c.Request().Context(), cl, tenant, RoleInput{Code: code, Name: req.Name, Permissions: perms})
	if err != nil {
		return err
	}
	c.Response().Header().Set("Location", httpx.Location(cl, tenant, "/api/roles/"+string(r.ID)))
	return writeRole(c, http.StatusCreated, r)
}

func (a *API) getRole(c echo.Context) error {
	cl, tenant, err := httpx.Target(c)
	if err != nil {
		return err
	}
	id, err := pathRole(c)
	if err != nil {
		return err
	}
	r, err := a.svc.GetRole(c.Request().Context(), cl, tenant, id)
	if err != nil {
		return err
	}
	return writeRole(c, http.StatusOK, r)
}

// roleTarget is what the changing role routes start from.
func roleTarget(c echo.Context) (Caller, tenancy.TenantID, RoleID, *int64, error) {
	cl, tenant, err := httpx.Target(c)
	if err != nil {
		return Caller{}, tenancy.TenantID{}, "", nil, err
	}
	id, err := pathRole(c)
	if err != nil {
		return Caller{}, tenancy.TenantID{}, "", nil, err
	}
	im, err := httpx.IfMatchVersion(c)
	return cl, tenant, id, im, err
}

func (a *API) patchRole(c echo.Context) error {
	cl, tenant, id, im, err := roleTarget(c)
	if err != nil {
		return err
	}
	// A JSON merge patch: every role has a name, so null (which would remove it) is refused.
	var req struct {
		Name json.RawMessage `json:"name"`
	}
	if err := httpx.DecodeJSON(c, &req); err != nil {
		return err
	}
	name, err := httpx.RequiredPatchString("name", req.Name)
	if err != nil {
		return err
	}
	r, err := a.svc.UpdateRole(c.Request().Context(), cl, tenant, id, im, RolePatch{Name: name})
	if err != nil {
		return err
	}
	return writeRole(c, http.StatusOK, r)
}

func (a *API) deleteRole(c echo.Context) error {
	cl, tenant, id, im, err := roleTarget(c)
	if err != nil {
		return err
	}
	if err := a.svc.DeleteRole(c.Request().Context(), cl, tenant, id, im); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (a *API) setRolePermissions(c echo.Context) error {
	cl, tenant, id, im, err := roleTarget(c)
	if err != nil {
		return err
	}
	var req struct {
		Permissions []string `json:"permissions"`
	}
	if err := httpx.DecodeJSON(c, &req); err != nil {
		return err
	}
	perms, err := permissionCodes(req.Permissions)
	if err != nil {
		return err
	}
	r, err := a.svc.SetRolePermissions(c.Request().Context(), cl, tenant, id, im, perms)
	if err != nil {
		return err
	}
	return writeRole(c, http.StatusOK, r)
}

func (a *API) assign(c echo.Context) error {
	cl, tenant, err := httpx.Target(c)
	if err != nil {
		return err
	}
	role, err := pathRole(c)
	if err != nil {
		return err
	}
	var req struct {
		UserID string `json:"userId"`
	}
	if err := httpx.DecodeJSON(c, &req); err != nil {
		return err
	}
	user, err := ParseUserID(req.UserID)
	if err != nil {
		return ErrUserNotFound
	}
	created, err := a.svc.Assign(c.Request().Context(), cl, tenant, role, user)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	c.Response().Header().Set("Location", httpx.Location(cl, tenant, "/api/roles/"+string(role)+"/assignments/"+string(user)))
	return c.JSON(status, map[string]string{"roleId": string(role), "userId": string(user)})
}

func (a *API) unassign(c echo.Context) error {
	cl, tenant, err := httpx.Target(c)
	if err != nil {
		return err
	}
	role, err := pathRole(c)
	if err != nil {
		return err
	}
	user, err := pathUser(c, "userId")
	if err != nil {
		return ErrAssignmentNotFound
	}
	if err := a.svc.Unassign(c.Request().Context(), cl, tenant, role, user); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// ---- the catalog and the check ----

func (a *API) catalog(c echo.Context) error {
	if _, err := httpx.CallerOf(c); err != nil {
		return err
	}
	ps, err := a.svc.Catalog(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, httpx.Page[Permission]{Value: ps})
}

func (a *API) check(c echo.Context) error {
	cl, tenant, err := httpx.Target(c)
	if err != nil {
		return err
	}
	var req struct {
		UserID     string `json:"userId"`
		Permission string `json:"permission"`
	}
	if err := httpx.DecodeJSON(c, &req); err != nil {
		return err
	}
	if _, err := ParseUserID(req.UserID); err != nil {
		return invalid("userId must be a user id (a UUID in canonical form)")
	}
	if req.Permission == "" || len(req.Permission) > 64 {
		return invalid("permission must be a permission code such as user.read")
	}
	ok, err := a.svc.Check(c.Request().Context(), cl, tenant, req.UserID, req.Permission)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, checkAnswer{Allowed: ok})
}

// checkAnswer is the body of POST /authz/check: {"allowed":true|false}. A struct, not a map: the
// same bytes without sorting map keys through reflection on every check.
type checkAnswer struct {
	Allowed bool `json:"allowed"`
}
