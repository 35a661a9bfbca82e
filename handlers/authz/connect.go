package authz

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"spine/shared/functions"
	"spine/shared/problem"
)

// ConnectFunction is the Azure Functions declaration of the provider: one anonymous catch-all
// under the route prefix (api), so the host forwards every /api/connect/... request to echo, which
// hands it to the Provider. Its methods include OPTIONS for the CORS preflights of browser clients.
func ConnectFunction() functions.Function {
	return functions.Function{Name: "AuthzConnect", HTTP: &functions.HTTPTrigger{Route: "connect/{*rest}",
		Methods: []string{"get", "post", "options"}, AuthLevel: functions.AuthAnonymous}}
}

// Mount serves the provider on g, the anonymous /api group (kit.PublicRouter: the edge applies —
// trace, query text check, body limit — and no bearer token is asked). The issuer's path is
// ConnectPath, so the paths op and the pages see are the ones under it. The routes are named
// problem.OAuthRoute: what the edge refuses (a body over SPINE_MAX_BODY_BYTES, a control character
// in the query) is answered as OAuth error JSON (invalid_request, same status), as the endpoints'
// own errors are.
func (p *Provider) Mount(g *echo.Group) {
	h := echo.WrapHandler(p)
	for _, path := range []string{"/connect", "/connect/*"} {
		for _, r := range g.Any(path, h) {
			r.Name = problem.OAuthRoute
		}
	}
}

// routes is the mux under ConnectPath: op's endpoints where op can serve them, ours where it
// cannot, nothing else (op's health, readiness and device endpoints are not mounted).
func (p *Provider) routes() http.Handler {
	mux := http.NewServeMux()
	// Public documents: any origin may read them (no credentials).
	mux.Handle("/.well-known/openid-configuration", p.publicCORS(http.HandlerFunc(p.discovery)))
	mux.Handle("/jwks", p.publicCORS(p.op))
	// Client endpoints: CORS for the origins of the calling client's redirect URIs.
	mux.Handle("/token", p.clientCORS(p.tokenGuard(p.op)))
	mux.Handle("/introspect", p.clientCORS(http.HandlerFunc(p.introspect)))
	mux.Handle("/revoke", p.clientCORS(http.HandlerFunc(p.revoke)))
	mux.Handle("/userinfo", p.clientCORS(http.HandlerFunc(p.userinfo)))
	// Browser navigations: bound to the browser that called /authorize; checked first
	// (connect_guard.go).
	mux.Handle("/authorize", p.authorizeGuard(p.withBrowser(p.op, true)))
	mux.Handle("/authorize/callback", p.callbackGuard(p.withBrowser(p.op, false)))
	mux.Handle("/login", p.withBrowser(http.HandlerFunc(p.login), false))
	mux.Handle("/consent", p.withBrowser(http.HandlerFunc(p.consent), false))
	mux.Handle("/endsession", p.withEndSession(p.op))
	return http.StripPrefix(ConnectPath, op.NewIssuerInterceptor(p.op.IssuerFromRequest).Handler(mux))
}

// ---- cookies ----

// Cookie names. With an https issuer they carry the __Secure- prefix and the Secure attribute
// (not __Host-, which requires Path=/; these are scoped to ConnectPath). Both are HttpOnly,
// SameSite=Lax (sent on the top-level navigations of the flow, not on cross-site subrequests),
// host-only (no Domain).
const (
	// browserCookie binds auth requests to the browser that called /authorize (a browser-session
	// cookie): the sign-in page, the consent page and the callback serve only that browser, so a
	// sign-in link sent to someone else cannot complete another browser's request.
	browserCookie = "spine-browser"
	// sessionCookie is the sign-in session: <tenant>.<32 random bytes> (Redis holds its SHA-256).
	sessionCookie = "spine-signin"
)

func (p *Provider) cookieName(base string) string {
	if p.secure {
		return "__Secure-" + base
	}
	return base
}

// setCookie sets (maxAge > 0: persistent; 0: browser session; < 0: delete) a provider cookie.
func (p *Provider) setCookie(w http.ResponseWriter, base, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: p.cookieName(base), Value: value, Path: ConnectPath, MaxAge: maxAge,
		Secure: p.secure, HttpOnly: true, SameSite: http.SameSiteLaxMode})
}

// cookie returns the value of a provider cookie, or "".
func (p *Provider) cookie(r *http.Request, base string) string {
	c, err := r.Cookie(p.cookieName(base))
	if err != nil {
		return ""
	}
	return c.Value
}

type browserKey struct{}

// withBrowser puts the browser-binding cookie's value in the request context (browserFrom); with
// create, a browser without one gets a new one.
func (p *Provider) withBrowser(next http.Handler, create bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := p.cookie(r, browserCookie)
		if len(v) != 43 {
			v = ""
		}
		if v == "" && create {
			v = randomToken()
			p.setCookie(w, browserCookie, v, 0)
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), browserKey{}, v)))
	})
}

// browserFrom is the request's browser binding ("" when the browser has none).
func browserFrom(ctx context.Context) string {
	v, _ := ctx.Value(browserKey{}).(string)
	return v
}

type endSessionKey struct{}

// sessionEnder ends this browser's sign-in session when owns accepts it (signin.go).
type sessionEnder func(ctx context.Context, owns func(signInSession) bool) error

// withEndSession hands op's end-session handler (through TerminateSessionFromRequest, once op has
// validated the request) the means to end this browser's sign-in session and clear its cookie.
func (p *Provider) withEndSession(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var end sessionEnder = func(ctx context.Context, owns func(signInSession) bool) error {
			return p.endSignInSession(ctx, w, r, owns)
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), endSessionKey{}, end)))
	})
}

// endSessionFrom is the request's session ender (one that ends nothing outside /endsession).
func endSessionFrom(ctx context.Context) sessionEnder {
	if f, ok := ctx.Value(endSessionKey{}).(sessionEnder); ok {
		return f
	}
	return func(context.Context, func(signInSession) bool) error { return nil }
}

// ---- /token ----

// tokenGuard lets only POSTs of the three supported grants reach op (op would also serve the JWT
// bearer grant, with an error, and a GET), with bounded parameters given once and one client
// authentication method (checkTokenParams); a 401 to a client that authenticated with HTTP Basic
// carries the Basic challenge (RFC 6749 §5.2).
func (p *Provider) tokenGuard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeOAuthError(w, http.StatusMethodNotAllowed, oidc.ErrInvalidRequest().WithDescription("The token endpoint takes POST."))
			return
		}
		if !checkTokenParams(w, r) {
			return
		}
		switch g := oidc.GrantType(r.PostForm.Get("grant_type")); g {
		case oidc.GrantTypeCode, oidc.GrantTypeRefreshToken, oidc.GrantTypeClientCredentials:
		case "":
			writeOAuthError(w, 0, oidc.ErrInvalidRequest().WithDescription("grant_type is required in the form body."))
			return
		default:
			writeOAuthError(w, 0, oidc.ErrUnsupportedGrantType().WithDescription("Supported grants: authorization_code, refresh_token, client_credentials."))
			return
		}
		if _, _, basic := r.BasicAuth(); basic {
			w = &basicChallenge{ResponseWriter: w}
		}
		w.Header().Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// basicChallenge adds the Basic challenge to a 401.
type basicChallenge struct{ http.ResponseWriter }

func (b *basicChallenge) WriteHeader(code int) {
	if code == http.StatusUnauthorized {
		b.Header().Set("WWW-Authenticate", `Basic realm="spine"`)
	}
	b.ResponseWriter.WriteHeader(code)
}

func (b *basicChallenge) Unwrap() http.ResponseWriter { return b.ResponseWriter }

// writeOAuthError writes e as RFC 6749 §5.2 JSON: status (0: 401 for invalid_client, 500 for
// server_error, else 400).
func writeOAuthError(w http.ResponseWriter, status int, e *oidc.Error) {
	if status == 0 {
		switch e.ErrorType {
		case oidc.InvalidClient:
			status = http.StatusUnauthorized
		case oidc.ServerError:
			status = http.StatusInternalServerError
		default:
			status = http.StatusBadRequest
		}
	}
	writeJSON(w, status, map[string]string{"error": string(e.ErrorType), "error_description": e.Description})
}

// writeJSON writes v with status, never cached.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// ---- discovery ----

// discovery is op's discovery document narrowed to what this server does: the code flow only
// (no implicit, hybrid, device, token exchange or JWT bearer grant), S256 only, client secrets
// (Basic or form) or none, ES256.
func (p *Provider) discovery(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	d := op.CreateDiscoveryConfig(r.Context(), p.op, p.storage)
	d.ResponseTypesSupported = []string{string(oidc.ResponseTypeCode)}
	d.ResponseModesSupported = []string{string(oidc.ResponseModeQuery), string(oidc.ResponseModeFragment), string(oidc.ResponseModeFormPost)}
	d.GrantTypesSupported = []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken, oidc.GrantTypeClientCredentials}
	d.DeviceAuthorizationEndpoint, d.CheckSessionIframe = "", ""
	d.TokenEndpointAuthMethodsSupported = []oidc.AuthMethod{oidc.AuthMethodBasic, oidc.AuthMethodPost, oidc.AuthMethodNone}
	d.RevocationEndpointAuthMethodsSupported = []oidc.AuthMethod{oidc.AuthMethodBasic, oidc.AuthMethodPost, oidc.AuthMethodNone}
	d.IntrospectionEndpointAuthMethodsSupported = []oidc.AuthMethod{oidc.AuthMethodBasic, oidc.AuthMethodPost}
	d.TokenEndpointAuthSigningAlgValuesSupported = nil
	d.RevocationEndpointAuthSigningAlgValuesSupported = nil
	d.IntrospectionEndpointAuthSigningAlgValuesSupported = nil
	d.RequestObjectSigningAlgValuesSupported, d.RequestParameterSupported = nil, false
	d.CodeChallengeMethodsSupported = []oidc.CodeChallengeMethod{oidc.CodeChallengeMethodS256}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_ = json.NewEncoder(w).Encode(d)
}

// callbackURL is op's callback for auth request id (absolute, from the issuer).
func (p *Provider) callbackURL(ctx context.Context, id string) string { return p.callback(ctx, id) }

// loginURL is the sign-in page of auth request id.
func (p *Provider) pageURL(page, id string) string {
	return p.issuer + "/" + page + "?authRequestID=" + url.QueryEscape(id)
}
