package auth

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"spine/shared/problem"
)

// Realm is the realm named in WWW-Authenticate challenges.
const Realm = "spine"

// Stable problem codes returned by the middleware.
const (
	// CodeUnauthorized: no bearer token was presented (401).
	CodeUnauthorized = "unauthorized"
	// CodeInvalidToken: the bearer token was rejected: malformed, unverifiable or expired (401).
	CodeInvalidToken = "invalid-token"
	// CodeInsufficientScope: the token lacks a scope the operation requires (403).
	CodeInsufficientScope = "insufficient-scope"
)

// ProblemFor maps an error from [Verifier.Verify] to the 401 problem the HTTP edge returns, with the
// RFC 6750 challenge in WWW-Authenticate; it returns nil for other errors, so it can serve as a
// problem.Mapper. The problem's detail never says why a token was rejected beyond "expired"; the
// cause is attached for logs only.
func ProblemFor(err error) *problem.Problem {
	switch {
	case errors.Is(err, ErrMissingToken):
		return problem.New(http.StatusUnauthorized, CodeUnauthorized, "A bearer access token is required.").
			WithHeader(echo.HeaderWWWAuthenticate, `Bearer realm="`+Realm+`"`).WithCause(err)
	case errors.Is(err, ErrInvalidToken):
		detail := "The bearer access token is not valid."
		if errors.Is(err, ErrExpired) {
			detail = "The bearer access token has expired."
		}
		return problem.New(http.StatusUnauthorized, CodeInvalidToken, detail).
			WithHeader(echo.HeaderWWWAuthenticate, `Bearer realm="`+Realm+`", error="invalid_token"`).WithCause(err)
	}
	return nil
}

// Middleware authenticates every request with v: it reads "Authorization: Bearer <token>" (scheme
// matched case-insensitively), verifies the token, and stores the [Principal] in the request context
// (read it with [FromContext]). A request without a bearer token gets a 401 "unauthorized" problem
// with WWW-Authenticate: Bearer realm="spine"; a rejected token (or several Authorization headers)
// gets a 401 "invalid-token" problem with WWW-Authenticate: Bearer realm="spine", error="invalid_token".
// It panics if v is nil. The returned middleware is safe for concurrent use.
func Middleware(v *Verifier) echo.MiddlewareFunc { return Authenticate(v, nil) }

// Authenticate is [Middleware] that also lets with add what the caller's identity implies to the
// request context (the events' actor, the telemetry tenant) in the same step: the request is
// replaced once, not once per middleware. with receives the context that already holds the
// Principal; nil adds nothing.
func Authenticate(v *Verifier, with func(ctx context.Context, p Principal) context.Context) echo.MiddlewareFunc {
	if v == nil {
		panic("auth.Middleware: nil *Verifier")
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			values := req.Header.Values(echo.HeaderAuthorization)
			if len(values) > 1 {
				return ProblemFor(invalid(ErrMalformedToken, "more than one Authorization header"))
			}
			raw := ""
			if len(values) == 1 {
				raw = bearerToken(values[0])
			}
			p, err := v.Verify(req.Context(), raw)
			if err != nil {
				return ProblemFor(err)
			}
			ctx := WithPrincipal(req.Context(), p)
			if with != nil {
				ctx = with(ctx, p)
			}
			c.SetRequest(req.WithContext(ctx))
			return next(c)
		}
	}
}

// bearerToken returns the credentials of an RFC 6750 "Bearer" Authorization value, or "" when the
// scheme is another one or the credentials are empty.
func bearerToken(h string) string {
	const scheme = "bearer"
	h = strings.TrimLeft(h, " \t")
	if len(h) <= len(scheme) || !strings.EqualFold(h[:len(scheme)], scheme) || (h[len(scheme)] != ' ' && h[len(scheme)] != '\t') {
		return ""
	}
	return strings.Trim(h[len(scheme):], " \t")
}

// RequireScope returns middleware that lets a request through only when the [Principal] placed by
// [Middleware] holds every listed scope; platform admins are not exempt. Otherwise it returns a 403
// "insufficient-scope" problem with WWW-Authenticate: Bearer error="insufficient_scope", scope="<all
// listed scopes>". Without a Principal in the context (Middleware not installed before it) it returns
// the 401 "unauthorized" problem. It panics at wiring time if no scope is given or a scope is not a
// valid RFC 6749 scope token.
func RequireScope(scopes ...string) echo.MiddlewareFunc {
	if len(scopes) == 0 {
		panic("auth.RequireScope: no scope given")
	}
	for _, s := range scopes {
		if !validScopeToken(s) {
			panic("auth.RequireScope: invalid scope token " + `"` + s + `"`)
		}
	}
	scopes = append([]string(nil), scopes...)
	listed := strings.Join(scopes, " ")
	challenge := `Bearer error="insufficient_scope", scope="` + listed + `"`
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			p, ok := FromContext(c.Request().Context())
			if !ok {
				return ProblemFor(ErrMissingToken)
			}
			for _, s := range scopes {
				if !p.HasScope(s) {
					return problem.New(http.StatusForbidden, CodeInsufficientScope,
						"The access token lacks a required scope; required: "+listed+".").
						WithHeader(echo.HeaderWWWAuthenticate, challenge)
				}
			}
			return next(c)
		}
	}
}

// validScopeToken reports whether s is an RFC 6749 §3.3 scope-token: 1*( %x21 / %x23-5B / %x5D-7E ).
func validScopeToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// ScopeOps is the scope of the operator endpoints under /api/ops (platform-admin tokens only).
const ScopeOps = "platform.ops"

// Operators is the operator group /ops on g (the authenticated /api group): a platform-admin token
// with ScopeOps. The outbox's and the retention engine's operator routes mount on it. (Not /admin:
// the Functions host reserves routes that start with "admin" or "runtime".)
func Operators(g *echo.Group) *echo.Group {
	return g.Group("/ops", RequirePlatformAdmin, RequireScope(ScopeOps))
}

// RequirePlatformAdmin refuses (403 platform-admin-required) a request whose token is not a
// platform admin's; the operator endpoints (/api/ops) put it before their scope check.
func RequirePlatformAdmin(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if p, ok := FromContext(c.Request().Context()); !ok || !p.PlatformAdmin {
			return problem.New(http.StatusForbidden, "platform-admin-required", "This operation needs a platform-admin token.")
		}
		return next(c)
	}
}
