package httpx

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"spine/shared/auth"
	"spine/shared/idempotency"
	"spine/shared/problem"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
	"spine/shared/text"
)

// CallerOf builds the caller from the request's verified token: a platform admin, or the token's
// tenant. No token is 401; a tenant token whose tenant_id is not a tenant id is 403.
func CallerOf(c echo.Context) (tenancy.Caller, error) {
	p, ok := auth.FromContext(c.Request().Context())
	if !ok {
		return tenancy.Caller{}, problem.New(http.StatusUnauthorized, "unauthorized", "A valid bearer token is required.")
	}
	if p.PlatformAdmin {
		return tenancy.Caller{Subject: p.Subject, Platform: true}, nil
	}
	id, err := tenancy.ParseTenantID(p.TenantID)
	if err != nil {
		return tenancy.Caller{}, problem.New(http.StatusForbidden, "invalid-tenant-claim", "The token's tenant_id is not a tenant id.")
	}
	return tenancy.Caller{Subject: p.Subject, Tenant: id}, nil
}

// Target is who asks and whose data a tenant-level route works on: the token's tenant, or for
// platform admins the tenantId query parameter (required: tenancy.ErrTenantRequired). A tenant
// token may repeat its own tenant in tenantId; any other tenant is tenancy.ErrTenantMismatch,
// whether or not that tenant exists.
func Target(c echo.Context) (tenancy.Caller, tenancy.TenantID, error) {
	cl, err := CallerOf(c)
	if err != nil {
		return tenancy.Caller{}, tenancy.TenantID{}, err
	}
	var requested tenancy.TenantID
	if c.Request().URL.RawQuery == "" {
		// no query: nothing to parse (echo's QueryParam would build an empty map per request)
	} else if s := c.QueryParam("tenantId"); s != "" {
		if requested, err = tenancy.ParseTenantID(s); err != nil {
			return tenancy.Caller{}, tenancy.TenantID{}, problem.New(http.StatusBadRequest, "invalid-tenant-id",
				"tenantId must be a tenant id (a UUID in canonical form).").
				WithFields(problem.FieldError{Field: "tenantId", Detail: "not a tenant id"})
		}
	}
	if cl.Platform {
		if requested.IsZero() {
			return tenancy.Caller{}, tenancy.TenantID{}, tenancy.ErrTenantRequired
		}
		return cl, requested, nil
	}
	if requested.IsZero() {
		return cl, cl.Tenant, nil
	}
	return cl, requested, cl.Reaches(requested)
}

// Location is the URL of a tenant-level resource at path as its caller reaches it: a platform
// admin must name the tenant (Target), so its Location carries ?tenantId=.
func Location(cl tenancy.Caller, tenant tenancy.TenantID, path string) string {
	if cl.Platform {
		return path + "?tenantId=" + tenant.String()
	}
	return path
}

// MapError maps the errors every service shares — the caller checks and the write fence
// (tenancy), an unreachable store (sqlstore), refused text — to problems; it returns nil for
// anything else. Services map their own sentinels first (kit.Service.MapError).
func MapError(err error) *problem.Problem {
	switch {
	case errors.Is(err, tenancy.ErrTenantNotFound):
		return problem.New(http.StatusNotFound, "tenant-not-found", "No tenant with this id is visible to the caller.")
	case errors.Is(err, tenancy.ErrTenantSuspended):
		return problem.New(http.StatusForbidden, "tenant-suspended", "The tenant is suspended; writes are refused.")
	case errors.Is(err, tenancy.ErrPlatformAdminRequired):
		return problem.New(http.StatusForbidden, "platform-admin-required", "This operation needs a platform-admin token.")
	case errors.Is(err, tenancy.ErrTenantRequired):
		return problem.New(http.StatusBadRequest, "tenant-required",
			"A platform-admin token must name the tenant: add the tenantId query parameter.").
			WithFields(problem.FieldError{Field: "tenantId", Detail: "required"})
	case errors.Is(err, tenancy.ErrTenantMismatch):
		return problem.New(http.StatusForbidden, "tenant-mismatch", "A tenant token can only reach its own tenant's data.")
	case errors.Is(err, text.ErrInvalid):
		return InvalidText("text", err)
	case errors.Is(err, sqlstore.ErrUnavailable):
		return problem.Unavailable()
	case errors.Is(err, context.DeadlineExceeded):
		return timeoutProblem()
	}
	return idempotency.Problem(err)
}

// APIConfig is what NewAPI needs.
type APIConfig struct {
	// Verifier checks bearer tokens on the authenticated group.
	Verifier *auth.Verifier
	// MaxBodyBytes caps request bodies (Edge).
	MaxBodyBytes int64
	// Mappers map the services' own errors to problems, tried in order before MapError and
	// auth's.
	Mappers []problem.Mapper
	// Logger receives the error handler's lines (the causes of 5xx answers); nil discards them.
	Logger *slog.Logger
	// RequestTimeout bounds every /api request (Timeout); zero is DefaultRequestTimeout.
	RequestTimeout time.Duration
}

// NewAPI wires e as the binary serves its API, and as every API test harness builds it: the
// problem+json error handler (cfg.Mappers, then MapError, then auth's), panic recovery, the /api
// group behind Edge, and the authenticated group the services mount their routes on (bearer token
// verified, the caller recorded as the actor of the events the request writes). It returns both
// groups: anonymous routes (health) go on api.
func NewAPI(e *echo.Echo, cfg APIConfig) (api, secured *echo.Group) {
	mappers := append(append([]problem.Mapper{}, cfg.Mappers...), MapError, auth.ProblemFor)
	e.HTTPErrorHandler = (&problem.Handler{Logger: cfg.Logger, Mappers: mappers}).ServeError
	e.Use(middleware.Recover())
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	api = e.Group("/api", append(Edge(cfg.MaxBodyBytes), Timeout(cfg.RequestTimeout))...)
	return api, api.Group("", auth.Authenticate(cfg.Verifier, ActorContext))
}
