package authz

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"spine/shared/authn"
	"spine/shared/tenancy"
)

// Introspection (RFC 7662), revocation (RFC 7009) and userinfo are served here, not by op: each
// needs the token's tenant (the revoked-token table and the profile are per tenant) and op's
// storage calls pass only its jti and subject; op's introspection knows no refresh tokens.

// accessToken is a verified access token of this server. verifyAccess hands out entries of its
// cache (verifiedTokens), shared by every request presenting the same token: read-only, but for
// answer, which is set once.
type accessToken struct {
	claims   *oidc.AccessTokenClaims
	tenant   string // canonical tenant id, or PlatformTenant for a platform token
	platform bool
	scopes   []string
	kid      string // the key that signed it
	family   string // its fam claim: the family a user's token was issued from ("" for client_credentials)
	deadline int64  // exp, in Unix nanoseconds: the token is invalid from then on
	// answer is the token's active introspection answer, rendered once (the same for every
	// client allowed to see it).
	answer atomic.Pointer[[]byte]
}

// verifyAccess verifies raw as an access token of this server: signature (the ring's published
// keys), issuer and expiry (op's verifier), and the claims every access token has — tenant_id or
// platform_admin, which ID tokens (same key, same issuer) never carry. A token verified before is
// answered from the verified-token cache while it is unexpired and its key still published.
func (p *Provider) verifyAccess(ctx context.Context, raw string) (*accessToken, bool) {
	if raw == "" || len(raw) > 8<<10 {
		return nil, false
	}
	key := sha256.Sum256([]byte(raw))
	now := unixNano()
	if at, ok := p.verified.get(&key, now, p.keyPublished); ok {
		return at, true
	}
	claims, err := op.VerifyAccessToken[*oidc.AccessTokenClaims](ctx, raw, p.op.AccessTokenVerifier(ctx))
	if err != nil || claims.JWTID == "" || claims.Subject == "" || !slices.Contains(claims.Audience, p.cfg.Audience) {
		return nil, false
	}
	t := &accessToken{claims: claims, kid: tokenKeyID(raw), deadline: claims.Expiration.AsTime().UnixNano()}
	if s, ok := claims.Claims["scope"].(string); ok {
		t.scopes = strings.Fields(s)
	}
	t.family, _ = claims.Claims[famClaim].(string)
	if admin, _ := claims.Claims["platform_admin"].(bool); admin {
		t.platform, t.tenant = true, PlatformTenant
	} else {
		ts, _ := claims.Claims["tenant_id"].(string)
		if _, err := tenancy.ParseTenantID(ts); err != nil {
			return nil, false
		}
		t.tenant = ts
	}
	claims.Claims = nil // read above; the cache keeps what the callers use (about half the entry)
	p.verified.put(&key, t, now)
	return t, true
}

// keyPublished reports whether kid is among the ring's published keys.
func (p *Provider) keyPublished(kid string) bool {
	for _, k := range p.storage.keys.Published() {
		if k.ID == kid {
			return true
		}
	}
	return false
}

// tokenKeyID is the kid of a JWS compact token's header ("" when it has none); called on tokens
// that verified, whose header is well-formed.
func tokenKeyID(raw string) string {
	h, _, _ := strings.Cut(raw, ".")
	b, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		return ""
	}
	var hdr struct {
		Kid string `json:"kid"`
	}
	_ = json.Unmarshal(b, &hdr)
	return hdr.Kid
}

// clientFromRequest authenticates the calling client: HTTP Basic or client_id/client_secret in
// the form (not both); with allowPublic, a public client's bare client_id. Every failure is
// invalid_client.
func (p *Provider) clientFromRequest(r *http.Request, allowPublic bool) (Client, *oidc.Error) {
	if err := r.ParseForm(); err != nil {
		return Client{}, oidc.ErrInvalidRequest().WithDescription("The request body is not a form.")
	}
	id, secret, basic := r.BasicAuth()
	if basic {
		if r.PostForm.Has("client_secret") {
			return Client{}, oidc.ErrInvalidRequest().WithDescription("Use one client authentication method.")
		}
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil {
			return Client{}, oidc.ErrInvalidClient().WithDescription("Client authentication failed.")
		}
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if secret != "" {
		return p.storage.authenticate(r.Context(), id, secret)
	}
	if !allowPublic || id == "" {
		return Client{}, oidc.ErrInvalidClient().WithDescription("Client authentication failed.")
	}
	c, err := p.storage.client(r.Context(), id)
	if err != nil {
		return Client{}, err
	}
	if c.Type != ClientPublic {
		return Client{}, oidc.ErrInvalidClient().WithDescription("Client authentication failed.")
	}
	return c, nil
}

// clientError writes a client-authentication or request error (with the Basic challenge when the
// client used Basic).
func clientError(w http.ResponseWriter, r *http.Request, e *oidc.Error) {
	if _, _, basic := r.BasicAuth(); basic && e.ErrorType == oidc.InvalidClient {
		w.Header().Set("WWW-Authenticate", `Basic realm="spine"`)
	}
	writeOAuthError(w, 0, e)
}

// tokenRequest reads what introspection and revocation both take: a POST, the calling client
// (with allowPublic, a public client by its client_id) and the token parameter. On failure it has
// answered, and ok is false.
func (p *Provider) tokenRequest(w http.ResponseWriter, r *http.Request, endpoint string, allowPublic bool) (c Client, token string, ok bool) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeOAuthError(w, http.StatusMethodNotAllowed, oidc.ErrInvalidRequest().WithDescription("The %s endpoint takes POST.", endpoint))
		return Client{}, "", false
	}
	c, oerr := p.clientFromRequest(r, allowPublic)
	if oerr != nil {
		clientError(w, r, oerr)
		return Client{}, "", false
	}
	token = r.PostForm.Get("token")
	if token == "" {
		writeOAuthError(w, 0, oidc.ErrInvalidRequest().WithDescription("token is required."))
		return Client{}, "", false
	}
	return c, token, true
}

// introspect is RFC 7662 for confidential clients. An access token is active when it verifies,
// is not revoked, its client still exists, the family it was issued from (a user's token) is not
// revoked, and it belongs to the caller's tenant (a platform client may introspect any); a
// refresh token when the store holds it usable and it is the caller's own. Everything else is
// {"active":false}.
func (p *Provider) introspect(w http.ResponseWriter, r *http.Request) {
	c, token, ok := p.tokenRequest(w, r, "introspection", false)
	if !ok {
		return
	}
	body, err := p.introspection(r.Context(), c, token)
	if err != nil {
		writeOAuthError(w, 0, p.storage.serverError(r.Context(), "introspecting a token", err))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// inactiveAnswer is RFC 7662's answer for anything not active, as writeJSON encodes it.
var inactiveAnswer = mustEncode(&oidc.IntrospectionResponse{})

// mustEncode is v as writeJSON writes it (json.Encoder: the JSON and a newline).
func mustEncode(v any) []byte {
	b, err := encodeJSON(v)
	if err != nil {
		panic(err)
	}
	return b
}

// encodeJSON is v as writeJSON writes it.
func encodeJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// introspection is the encoded answer about token for client c.
func (p *Provider) introspection(ctx context.Context, c Client, token string) ([]byte, error) {
	if at, ok := p.verifyAccess(ctx, token); ok {
		if !c.Platform() && (at.platform || at.tenant != c.Tenant) {
			return inactiveAnswer, nil
		}
		live, err := p.accessLive(ctx, at)
		if err != nil {
			return nil, err
		}
		if !live {
			return inactiveAnswer, nil
		}
		// Every check above runs on every introspection: the rendered answer is only its bytes.
		if b := at.answer.Load(); b != nil {
			return *b, nil
		}
		b, err := encodeJSON(activeAccess(at))
		if err != nil {
			return nil, err
		}
		at.answer.Store(&b)
		return b, nil
	}
	rt, err := p.store.RefreshTokenByValue(ctx, token)
	if errors.Is(err, ErrRefreshTokenNotFound) || errors.Is(err, ErrRefreshTokenReused) {
		return inactiveAnswer, nil
	}
	if err != nil {
		return nil, err
	}
	if rt.ClientID != c.ID {
		return inactiveAnswer, nil
	}
	return encodeJSON(&oidc.IntrospectionResponse{Active: true, Scope: rt.Scopes, ClientID: string(rt.ClientID), TokenType: "refresh_token",
		Expiration: oidc.FromTime(rt.ExpiresAt), AuthTime: oidc.FromTime(rt.AuthTime), Subject: rt.Subject,
		Audience: rt.Audience, Issuer: p.issuer, Claims: map[string]any{"tenant_id": rt.TenantID}})
}

// accessLive reports whether the verified access token at is still live: its jti not revoked
// (Redis, or the store), its client not deleted (the client's local copy, which DeleteClient
// invalidates) and — for a user's token, which names its family — the family not revoked (Redis,
// or the store). A client_credentials token costs no SQL once its answers are cached.
func (p *Provider) accessLive(ctx context.Context, at *accessToken) (bool, error) {
	exp := at.claims.Expiration.AsTime()
	revoked, err := p.store.AccessTokenRevoked(ctx, at.tenant, at.claims.JWTID, exp)
	if err != nil || revoked {
		return false, err
	}
	if _, err := p.store.ClientByID(ctx, at.claims.ClientID); err != nil {
		if errors.Is(err, ErrClientNotFound) {
			return false, nil
		}
		return false, err
	}
	if at.family == "" {
		return true, nil
	}
	revoked, err = p.store.FamilyRevoked(ctx, at.tenant, at.family, exp)
	return !revoked && err == nil, err
}

// activeAccess is the active introspection answer about an access token.
func activeAccess(at *accessToken) *oidc.IntrospectionResponse {
	cl := at.claims
	resp := &oidc.IntrospectionResponse{Active: true, Scope: at.scopes, ClientID: cl.ClientID, TokenType: oidc.BearerToken,
		Expiration: cl.Expiration, IssuedAt: cl.IssuedAt, NotBefore: cl.NotBefore, Subject: cl.Subject,
		Audience: cl.Audience, Issuer: cl.Issuer, JWTID: cl.JWTID}
	if at.platform {
		resp.Claims = map[string]any{"platform_admin": true}
	} else {
		resp.Claims = map[string]any{"tenant_id": at.tenant}
	}
	return resp
}

// revoke is RFC 7009 for every client (a public one by its client_id). A refresh token revokes
// its whole family; an access token goes to the revoked list (its jti, until it expires), which
// introspection consults — the API itself honours revocation only through the access tokens'
// short lifetime. An unknown or invalid token is answered 200 and nothing happens; another
// client's is refused (unauthorized_client). An access token's revocation whose cache
// invalidation Redis did not take is recorded but answered 503 (ErrRevocationUnconfirmed).
func (p *Provider) revoke(w http.ResponseWriter, r *http.Request) {
	c, token, ok := p.tokenRequest(w, r, "revocation", true)
	if !ok {
		return
	}
	ctx := r.Context()
	var err error
	if at, ok := p.verifyAccess(ctx, token); ok {
		if at.claims.ClientID != string(c.ID) {
			err = ErrTokenClientMismatch
		} else {
			err = p.store.RevokeAccessToken(ctx, at.tenant, at.claims.JWTID, string(c.ID), at.claims.Expiration.AsTime())
		}
	} else {
		err = p.store.RevokeRefreshFamily(ctx, token, string(c.ID))
	}
	if errors.Is(err, ErrTokenClientMismatch) {
		// RFC 7009 §2.1: a token of another client is refused.
		writeOAuthError(w, 0, oidc.ErrUnauthorizedClient().WithDescription("The token was not issued to this client."))
		return
	}
	if errors.Is(err, ErrRevocationUnconfirmed) {
		// RFC 7009 §2.2.1: the client must assume the token is still valid and retry; the retry
		// (the row is recorded already) confirms once Redis takes the invalidation.
		p.log.WarnContext(ctx, "authz: an access token's revocation is recorded but its cache invalidation has not reached Redis; answered 503")
		w.Header().Set("Retry-After", "1")
		writeOAuthError(w, http.StatusServiceUnavailable, &oidc.Error{ErrorType: "temporarily_unavailable",
			Description: "The revocation could not be confirmed; try again."})
		return
	}
	if err != nil {
		writeOAuthError(w, 0, p.storage.serverError(ctx, "revoking a token", err))
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// userinfo is OpenID Connect's UserInfo endpoint: a user's access token with scope openid (not a
// client's own token), live (accessLive: not revoked, its client and family not either), of a
// user who is still Active; email and name per its scopes.
func (p *Provider) userinfo(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	raw := ""
	if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "Bearer ") {
		raw = h[7:]
	} else if r.Method == http.MethodPost && r.ParseForm() == nil {
		raw = r.PostForm.Get("access_token")
	}
	ctx := r.Context()
	at, ok := p.verifyAccess(ctx, raw)
	if !ok {
		bearerError(w, http.StatusUnauthorized, "invalid_token", "The access token is invalid or expired.")
		return
	}
	if at.platform || at.claims.Subject == at.claims.ClientID || !slices.Contains(at.scopes, oidc.ScopeOpenID) {
		bearerError(w, http.StatusForbidden, "insufficient_scope", "Userinfo needs a user's access token with scope openid.")
		return
	}
	live, err := p.accessLive(ctx, at)
	if err != nil {
		writeOAuthError(w, 0, p.storage.serverError(ctx, "checking a revoked token", err))
		return
	}
	if !live {
		bearerError(w, http.StatusUnauthorized, "invalid_token", "The access token is revoked.")
		return
	}
	prof, err := p.users.Profile(ctx, tenancy.MustParseTenantID(at.tenant), at.claims.Subject)
	if errors.Is(err, authn.ErrUnknownUser) {
		bearerError(w, http.StatusUnauthorized, "invalid_token", "The user of this token can no longer sign in.")
		return
	}
	if err != nil {
		writeOAuthError(w, 0, p.storage.serverError(ctx, "reading a profile", err))
		return
	}
	info := &oidc.UserInfo{Subject: at.claims.Subject}
	setProfile(info, prof, at.scopes)
	writeJSON(w, http.StatusOK, info)
}

// bearerError is RFC 6750 §3's answer.
func bearerError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("WWW-Authenticate", `Bearer error="`+code+`", error_description="`+desc+`"`)
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}
