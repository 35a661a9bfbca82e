package ratelimit

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"spine/shared/auth"
	"spine/shared/problem"
	"spine/shared/tenancy"
)

// Header names of draft-ietf-httpapi-ratelimit-headers.
const (
	HeaderPolicy = "RateLimit-Policy"
	HeaderState  = "RateLimit"
)

// Middleware enforces the limits on the group it is mounted on; mount it on the authenticated
// /api group (after authentication: the tenant is the token's). Every response of a request a
// limit applies to carries, per enforced limit ("tenant", and "route" when the route has its own),
//
//	RateLimit-Policy: "tenant";q=<burst>;w=<period in seconds>
//	RateLimit: "tenant";r=<remaining>;t=<seconds>
//
// where t is, on a request that passes, the seconds until the limit is back to its full burst. A
// refused request is 429 problem+json rate-limited; its fields name only the limits that refused it,
// each with t the seconds until it lets a request pass again, and Retry-After is the largest t. Shadow
// limits are counted, never refused and never shown. Platform admins and requests without a
// principal pass untouched, and so does a token whose tenant_id is not a tenant id (the routes
// answer it).
func (l *Limiter) Middleware() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			p, ok := auth.FromContext(c.Request().Context())
			if !ok || p.PlatformAdmin {
				return next(c)
			}
			tenant, err := tenancy.ParseTenantID(p.TenantID)
			if err != nil {
				return next(c)
			}
			d := l.Decide(c.Request().Context(), tenant, c.Path())
			if len(d.Policies) == 0 {
				return next(c)
			}
			retry := setHeaders(c.Response().Header(), d)
			if !d.Allowed {
				return problem.New(http.StatusTooManyRequests, "rate-limited",
					"Too many requests for this tenant's limits; retry after the time in Retry-After.").
					WithHeader("Retry-After", strconv.FormatInt(retry, 10))
			}
			return next(c)
		}
	}
}

// Header map keys of the draft's fields, canonical once (http.Header.Set canonicalizes them, with
// an allocation, on every call).
var (
	policyKey = http.CanonicalHeaderKey(HeaderPolicy)
	stateKey  = http.CanonicalHeaderKey(HeaderState)
)

// setHeaders writes the draft's fields for d's enforced policies and returns the Retry-After of a
// refusal: the largest t of the policies that refused.
func setHeaders(h http.Header, d Decision) (retry int64) {
	var polBuf, stBuf [160]byte
	pol, st := polBuf[:0], stBuf[:0]
	onlyPolicy, items := "", 0
	for _, p := range d.Policies {
		if p.Shadow || (!d.Allowed && p.Allowed) {
			continue
		}
		t := ceilSeconds(p.Reset)
		if !p.Allowed {
			t = max(ceilSeconds(p.RetryAfter), 1)
			retry = max(retry, t)
		}
		if items > 0 {
			pol = append(pol, ", "...)
			st = append(st, ", "...)
		}
		items++
		onlyPolicy = p.header
		pol = append(pol, p.header...)
		st = append(append(append(st, '"'), p.Name...), `";r=`...)
		st = strconv.AppendInt(st, int64(p.Remaining), 10)
		st = strconv.AppendInt(append(st, ";t="...), t, 10)
	}
	if items > 0 {
		if items == 1 {
			h[policyKey] = []string{onlyPolicy} // the policy item is built once per limit
		} else {
			h[policyKey] = []string{string(pol)}
		}
		h[stateKey] = []string{string(st)}
	}
	return retry
}
