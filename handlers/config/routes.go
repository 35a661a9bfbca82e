package config

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"spine/shared/auth"
	"spine/shared/flags"
	"spine/shared/httpx"
	"spine/shared/problem"
	"spine/shared/tenancy"
)

// The scopes the config routes require.
const (
	// ScopeConfigRead: read flags and settings, evaluate flags (OFREP).
	ScopeConfigRead = "config.read"
	// ScopeConfigManage: change flag definitions (platform admins), overrides and settings.
	ScopeConfigManage = "config.manage"
)

// API is the config service's HTTP surface (kit.Service).
type API struct{ svc *Service }

// NewAPI returns the API over svc.
func NewAPI(svc *Service) *API { return &API{svc: svc} }

// Routes implements kit.Service, on the authenticated /api group. Flag definitions are
// platform-level (reads: any caller; writes: platform admins); overrides and settings are
// tenant-level (a tenant token its own tenant, a platform admin names it). OFREP's evaluation
// routes take the tenant from the token (a platform admin: ?tenantId=), never from the context.
func (a *API) Routes(g *echo.Group) {
	read, manage := auth.RequireScope(ScopeConfigRead), auth.RequireScope(ScopeConfigManage)
	g.GET("/feature-flags", a.listFlags, read)
	g.GET("/feature-flags/:key", a.getFlag, read)
	g.PUT("/feature-flags/:key", a.putFlag, manage)
	g.DELETE("/feature-flags/:key", a.deleteFlag, manage)
	g.PUT("/feature-flags/:key/overrides/:tenantId", a.putOverride, manage)
	g.DELETE("/feature-flags/:key/overrides/:tenantId", a.deleteOverride, manage)
	g.GET("/settings/:key", a.getSetting, read)
	g.PUT("/settings/:key", a.putSetting, manage)
	g.POST("/ofrep/v1/evaluate/flags", a.evaluateAll, read)
	g.POST("/ofrep/v1/evaluate/flags/:key", a.evaluateFlag, read)
}

// flagBody is a flag definition as written: the evaluator's definition and whether tenants may
// override it themselves (absent: false).
type flagBody struct {
	flags.Definition
	TenantOverridable bool `json:"tenantOverridable"`
}

type flagJSON struct {
	flags.Definition
	TenantOverridable bool      `json:"tenantOverridable"`
	Version           int64     `json:"version"`
	UpdatedAt         time.Time `json:"updatedAt"`
}

// toFlagJSON is a definition as cl may see it: a tenant caller gets it without its targeting
// rules, which may name other tenants' users or attributes (evaluation applies them all the same).
func toFlagJSON(cl tenancy.Caller, d FlagDefinition) flagJSON {
	def := d.Definition
	if !cl.Platform {
		def.Rules = nil
	}
	return flagJSON{Definition: def, TenantOverridable: d.TenantOverridable, Version: d.Version, UpdatedAt: d.UpdatedAt}
}

func writeFlag(c echo.Context, cl tenancy.Caller, status int, d FlagDefinition) error {
	httpx.SetETag(c, d.Version)
	return c.JSON(status, toFlagJSON(cl, d))
}

func (a *API) listFlags(c echo.Context) error {
	cl, err := httpx.CallerOf(c)
	if err != nil {
		return err
	}
	defs, err := a.svc.ListFlags(c.Request().Context())
	if err != nil {
		return err
	}
	out := make([]flagJSON, len(defs))
	for i, d := range defs {
		out[i] = toFlagJSON(cl, d)
	}
	return c.JSON(http.StatusOK, httpx.Page[flagJSON]{Value: out})
}

func (a *API) getFlag(c echo.Context) error {
	cl, err := httpx.CallerOf(c)
	if err != nil {
		return err
	}
	d, err := a.svc.GetFlag(c.Request().Context(), c.Param("key"))
	if err != nil {
		return err
	}
	return writeFlag(c, cl, http.StatusOK, d)
}

func (a *API) putFlag(c echo.Context) error {
	cl, err := httpx.CallerOf(c)
	if err != nil {
		return err
	}
	if err := cl.RequirePlatform(); err != nil {
		return err
	}
	im, err := httpx.IfMatchVersion(c)
	if err != nil {
		return err
	}
	var body flagBody
	if err := httpx.DecodeJSON(c, &body); err != nil {
		return err
	}
	def := body.Definition
	key := c.Param("key")
	if def.Key != "" && def.Key != key {
		return problem.New(http.StatusBadRequest, "invalid-flag", "The body's key differs from the path's.").
			WithFields(problem.FieldError{Field: "key", Detail: "must equal the path's key"})
	}
	def.Key = key
	d, created, err := a.svc.PutFlag(c.Request().Context(), cl, def, body.TenantOverridable, im)
	if err != nil {
		return err
	}
	if created {
		c.Response().Header().Set("Location", "/api/feature-flags/"+key)
		return writeFlag(c, cl, http.StatusCreated, d)
	}
	return writeFlag(c, cl, http.StatusOK, d)
}

func (a *API) deleteFlag(c echo.Context) error {
	cl, err := httpx.CallerOf(c)
	if err != nil {
		return err
	}
	im, err := httpx.IfMatchVersion(c)
	if err != nil {
		return err
	}
	if err := a.svc.DeleteFlag(c.Request().Context(), cl, c.Param("key"), im); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// overrideTarget is the caller and the path's tenant; a tenant token naming another tenant is
// tenant-mismatch (Reaches, in the service).
func overrideTarget(c echo.Context) (tenancy.Caller, tenancy.TenantID, error) {
	cl, err := httpx.CallerOf(c)
	if err != nil {
		return cl, tenancy.TenantID{}, err
	}
	tenant, err := tenancy.ParseTenantID(c.Param("tenantId"))
	if err != nil {
		return cl, tenant, problem.New(http.StatusBadRequest, "invalid-tenant-id", "tenantId must be a tenant id (a UUID in canonical form).")
	}
	return cl, tenant, nil
}

type overrideJSON struct {
	TenantID string `json:"tenantId"`
	FlagKey  string `json:"flagKey"`
	Variant  string `json:"variant,omitempty"`
	Disabled bool   `json:"disabled"`
	// SetByPlatform: a platform admin wrote it (it applies even when the flag is not tenantOverridable).
	SetByPlatform bool      `json:"setByPlatform"`
	Version       int64     `json:"version"`
	UpdatedAt     time.Time `json:"updatedAt"`
}

func (a *API) putOverride(c echo.Context) error {
	cl, tenant, err := overrideTarget(c)
	if err != nil {
		return err
	}
	im, err := httpx.IfMatchVersion(c)
	if err != nil {
		return err
	}
	var req struct {
		Variant  *string `json:"variant"`
		Disabled bool    `json:"disabled"`
	}
	if err := httpx.DecodeJSON(c, &req); err != nil {
		return err
	}
	var ov flags.Override
	if req.Variant != nil {
		// present: a variant name (an empty one would read as no pin at all)
		if n := utf8.RuneCountInString(*req.Variant); n < 1 || n > MaxVariantName {
			return &InputError{"variant", fmt.Sprintf("must be a variant name of 1-%d characters", MaxVariantName)}
		}
		ov.Variant = *req.Variant
	}
	ov.Disabled = req.Disabled
	o, created, err := a.svc.PutOverride(c.Request().Context(), cl, tenant, c.Param("key"), ov, im)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	httpx.SetETag(c, o.Version)
	return c.JSON(status, overrideJSON{TenantID: tenant.String(), FlagKey: o.FlagKey, Variant: o.Variant, Disabled: o.Disabled,
		SetByPlatform: o.SetByPlatform, Version: o.Version, UpdatedAt: o.UpdatedAt})
}

func (a *API) deleteOverride(c echo.Context) error {
	cl, tenant, err := overrideTarget(c)
	if err != nil {
		return err
	}
	im, err := httpx.IfMatchVersion(c)
	if err != nil {
		return err
	}
	if err := a.svc.DeleteOverride(c.Request().Context(), cl, tenant, c.Param("key"), im); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

type settingJSON struct {
	Key            string          `json:"key"`
	Type           flags.Type      `json:"type"`
	Value          json.RawMessage `json:"value"`
	Default        bool            `json:"isDefault"`
	TenantWritable bool            `json:"tenantWritable"`
	Version        int64           `json:"version"`
}

func (a *API) getSetting(c echo.Context) error {
	cl, tenant, err := httpx.Target(c)
	if err != nil {
		return err
	}
	v, err := a.svc.GetSetting(c.Request().Context(), cl, tenant, c.Param("key"))
	if err != nil {
		return err
	}
	httpx.SetETag(c, v.Version)
	return c.JSON(http.StatusOK, settingJSON(v))
}

// putSetting: a platform admin without ?tenantId= defines the setting ({"type", "value",
// "tenantWritable"}: its platform default, and whether tenants may write their own value, absent:
// false); otherwise the target tenant's value ({"value"}).
func (a *API) putSetting(c echo.Context) error {
	cl, err := httpx.CallerOf(c)
	if err != nil {
		return err
	}
	im, err := httpx.IfMatchVersion(c)
	if err != nil {
		return err
	}
	var req struct {
		Type           flags.Type      `json:"type"`
		Value          json.RawMessage `json:"value"`
		TenantWritable *bool           `json:"tenantWritable"`
	}
	key := c.Param("key")
	if cl.Platform && c.QueryParam("tenantId") == "" {
		if err := httpx.DecodeJSON(c, &req); err != nil {
			return err
		}
		d, created, err := a.svc.PutSettingDefinition(c.Request().Context(), cl, key, req.Type, req.Value, req.TenantWritable != nil && *req.TenantWritable, im)
		if err != nil {
			return err
		}
		httpx.SetETag(c, d.Version)
		return c.JSON(createdStatus(c, created), settingJSON{Key: d.Key, Type: d.Type, Value: d.Default, Default: true, TenantWritable: d.TenantWritable, Version: d.Version})
	}
	cl, tenant, err := httpx.Target(c)
	if err != nil {
		return err
	}
	if err := httpx.DecodeJSON(c, &req); err != nil {
		return err
	}
	if req.Type != "" {
		return problem.New(http.StatusBadRequest, "invalid-setting", "A tenant's value takes no type: the setting's definition has it.").
			WithFields(problem.FieldError{Field: "type", Detail: "not allowed"})
	}
	if req.TenantWritable != nil {
		return problem.New(http.StatusBadRequest, "invalid-setting", "A tenant's value takes no tenantWritable: the setting's definition has it.").
			WithFields(problem.FieldError{Field: "tenantWritable", Detail: "not allowed"})
	}
	v, created, err := a.svc.PutSetting(c.Request().Context(), cl, tenant, key, req.Value, im)
	if err != nil {
		return err
	}
	httpx.SetETag(c, v.Version)
	return c.JSON(createdStatus(c, created), settingJSON{Key: v.Key, Type: v.Type, Value: v.Value, TenantWritable: v.TenantWritable, Version: v.Version})
}

// createdStatus is a PUT's status: 201 with a Location (the request's own URI: the setting, or
// the tenant's value of it) when it created the resource, else 200.
func createdStatus(c echo.Context, created bool) int {
	if !created {
		return http.StatusOK
	}
	c.Response().Header().Set("Location", c.Request().URL.RequestURI())
	return http.StatusCreated
}
