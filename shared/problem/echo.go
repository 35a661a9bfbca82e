package problem

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"sync"

	"github.com/labstack/echo/v4"
)

// Mapper turns a service's sentinel errors into problems. Each service registers one; the first
// mapper that returns non-nil wins. Mappers must use errors.Is/As, never string matching.
type Mapper func(error) *Problem

// Handler is the echo HTTPErrorHandler: it maps err once, logs the cause, and writes problem+json
// (or, on a route named OAuthRoute, OAuth error JSON). Use it by pointer; do not copy it.
type Handler struct {
	Logger  *slog.Logger
	Mappers []Mapper

	// oauth caches, per route (method and path template), whether it is named OAuthRoute.
	oauth sync.Map
}

// OAuthRoute is the echo route name (echo.Route.Name) of the routes of an OAuth 2.0 / OpenID
// Connect endpoint family, whose clients read RFC 6749 §5.2 error JSON, not problem+json. The
// Handler writes every problem of a request routed to one — the /api edge's own included (a body
// over the limit: 413, a control character in the query: 400) — as {"error", "error_description"}
// with the problem's status and headers: error is invalid_request for a 4xx, temporarily_unavailable
// for a 503, server_error for any other 5xx.
const OAuthRoute = "oauth2-errors"

// Resolve maps err to the problem that would be written for it.
func (h *Handler) Resolve(err error) *Problem {
	if p, ok := As(err); ok {
		return p
	}
	for _, m := range h.Mappers {
		if p := m(err); p != nil {
			return p.WithCause(err)
		}
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		return fromEcho(he)
	}
	return Internal().WithCause(err)
}

// ServeError implements echo.HTTPErrorHandler.
func (h *Handler) ServeError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	if errors.Is(err, context.Canceled) && c.Request().Context().Err() != nil {
		// The client went away; nobody reads an answer and nothing failed on our side.
		if h.Logger != nil {
			h.Logger.DebugContext(c.Request().Context(), "request abandoned by the client",
				"method", c.Request().Method, "route", route(c))
		}
		c.Response().WriteHeader(499)
		return
	}
	p := h.Resolve(err)
	if p.Status >= 500 && h.Logger != nil {
		h.Logger.ErrorContext(c.Request().Context(), "request failed",
			"status", p.Status, "code", p.Code, "method", c.Request().Method,
			"route", route(c), "error", err)
	}
	if h.oauthRoute(c) {
		WriteOAuth(c.Response(), c.Request(), p)
		return
	}
	Write(c.Response(), c.Request(), p)
}

type routeKey struct{ method, path string }

// oauthRoute reports whether the request was routed to a route named OAuthRoute. The answer is
// kept per route: the route table is read once per route that fails, not per error.
func (h *Handler) oauthRoute(c echo.Context) bool {
	path := c.Path()
	if path == "" || c.Echo() == nil {
		return false
	}
	k := routeKey{c.Request().Method, path}
	if v, ok := h.oauth.Load(k); ok {
		return v.(bool)
	}
	named := false
	for _, r := range c.Echo().Routes() {
		if r.Path == path && r.Method == k.method && r.Name == OAuthRoute {
			named = true
			break
		}
	}
	h.oauth.Store(k, named)
	return named
}

// WriteOAuth renders p as OAuth 2.0 error JSON (RFC 6749 §5.2) with p's status and headers (see
// OAuthRoute): never cached, the detail as error_description.
func WriteOAuth(w http.ResponseWriter, r *http.Request, p *Problem) {
	code := "invalid_request"
	switch {
	case p.Status == http.StatusServiceUnavailable:
		code = "temporarily_unavailable"
	case p.Status >= 500:
		code = "server_error"
	}
	for k, v := range p.Headers {
		w.Header().Set(k, v)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	if r != nil && r.Method == http.MethodHead {
		return
	}
	_ = json.NewEncoder(w).Encode(struct {
		Error       string `json:"error"`
		Description string `json:"error_description,omitempty"`
	}{code, p.Detail})
}

// route is what logs name a request by: its route template, never the raw path (a path segment
// may be a credential); "unrouted" when no route matched.
func route(c echo.Context) string {
	if r := c.Path(); r != "" {
		return r
	}
	return "unrouted"
}

// Write renders p on w. The instance member defaults to the request path; p itself is left as it
// is, since a problem may be a shared value (a package-level error) answered to many requests.
func Write(w http.ResponseWriter, r *http.Request, p *Problem) {
	if p.Instance == "" && r != nil {
		cp := *p
		cp.Instance = r.URL.Path
		p = &cp
	}
	for k, v := range p.Headers {
		w.Header().Set(k, v)
	}
	w.Header().Set("Content-Type", ContentType)
	w.WriteHeader(p.Status)
	if r != nil && r.Method == http.MethodHead {
		return
	}
	_ = json.NewEncoder(w).Encode(p)
}

func fromEcho(he *echo.HTTPError) *Problem {
	switch he.Code {
	case http.StatusNotFound:
		return New(he.Code, "not-found", "No resource at this path.")
	case http.StatusMethodNotAllowed:
		return New(he.Code, "method-not-allowed", "This method is not allowed on this resource.")
	case http.StatusRequestEntityTooLarge:
		return New(he.Code, "body-too-large", "The request body is larger than this endpoint accepts.")
	case http.StatusUnsupportedMediaType:
		return New(he.Code, "unsupported-media-type", "Send application/json.")
	case http.StatusUnauthorized:
		return New(he.Code, "unauthorized", "A valid bearer token is required.")
	case http.StatusBadRequest:
		return New(he.Code, "bad-request", "The request is malformed.")
	}
	if he.Code >= 500 {
		return Internal().WithCause(he)
	}
	return New(he.Code, "http-"+http.StatusText(he.Code), http.StatusText(he.Code))
}
