package authz

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// CORS, ours instead of op's (whose default allows every origin, with credentials). Never with
// credentials: no endpoint a script may call reads a cookie.
//   - Discovery and the JWKS are public documents: any origin may read them.
//   - The client endpoints (token, introspection, revocation, userinfo) answer a preflight from
//     any origin (it grants only the right to send: the request itself carries the client's
//     credentials or a token, never a cookie), and let a script read the answer only when its
//     origin is the origin of one of the calling client's registered redirect URIs — the pages of
//     that client. The client is the form's client_id or the Basic user (token, introspection,
//     revocation) or the token's client_id (userinfo).

const corsMaxAge = "600"

// publicCORS lets any origin read a public document.
func (p *Provider) publicCORS(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Origin") != "" {
			w.Header().Set("Access-Control-Allow-Origin", "*")
			if preflight(r) {
				w.Header().Set("Access-Control-Allow-Methods", "GET, HEAD")
				w.Header().Set("Access-Control-Max-Age", corsMaxAge)
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// clientCORS answers preflights and lets the calling client's own origins read the answer.
func (p *Provider) clientCORS(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Add("Vary", "Origin")
		if preflight(r) {
			w.Header().Set("Access-Control-Allow-Origin", origin)
			w.Header().Set("Access-Control-Allow-Methods", "GET, POST")
			w.Header().Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
			w.Header().Set("Access-Control-Max-Age", corsMaxAge)
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if id := p.corsClientID(r); id != "" {
			if c, err := p.storage.client(r.Context(), id); err == nil && clientOrigin(c, origin) {
				w.Header().Set("Access-Control-Allow-Origin", origin)
			}
		}
		next.ServeHTTP(w, r)
	})
}

// preflight reports whether r is a CORS preflight.
func preflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
}

// corsClientID names the client a cross-origin request comes from: the Basic user, the form's
// client_id, or the client_id claim of a bearer token (read unverified: it only decides whether a
// script may read the answer the endpoint gives after its own checks).
func (p *Provider) corsClientID(r *http.Request) string {
	if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "Bearer ") {
		var claims oidc.AccessTokenClaims
		if _, err := oidc.ParseToken(h[7:], &claims); err == nil {
			return claims.ClientID
		}
		return ""
	}
	if id, _, ok := r.BasicAuth(); ok {
		if u, err := url.QueryUnescape(id); err == nil {
			return u
		}
		return ""
	}
	if r.Method == http.MethodPost && r.ParseForm() == nil {
		return r.PostForm.Get("client_id")
	}
	return ""
}

// clientOrigin reports whether origin is the origin of one of c's redirect URIs (for a native
// client's loopback redirect, any port of that loopback host, as op accepts the redirect).
func clientOrigin(c Client, origin string) bool {
	o, err := url.Parse(origin)
	if err != nil || o.Host == "" || o.Path != "" {
		return false
	}
	for _, ru := range c.RedirectURIs {
		u, err := url.Parse(ru)
		if err != nil || u.Host == "" {
			continue
		}
		if strings.EqualFold(u.Scheme, o.Scheme) && strings.EqualFold(u.Host, o.Host) {
			return true
		}
		if c.Type == ClientPublic {
			if _, lb := op.HTTPLoopbackOrLocalhost(ru); lb && u.Scheme == o.Scheme && strings.EqualFold(u.Hostname(), o.Hostname()) {
				return true
			}
		}
	}
	return false
}
