package authz

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// Discovery lists exactly what the server does, at the exact paths under the issuer: the code
// flow (no implicit or hybrid response type, no device, token exchange or JWT bearer grant), S256
// only, ES256; the JWKS holds the ring's public key only.
func TestDiscovery_CodeFlowOnly_ExactPaths(t *testing.T) {
	e := newOIDC(t)
	r := e.get("/.well-known/openid-configuration")
	if r.code != http.StatusOK {
		t.Fatalf("%d %s", r.code, r.body)
	}
	var d map[string]any
	if err := json.Unmarshal(r.body, &d); err != nil {
		t.Fatal(err)
	}
	for k, path := range map[string]string{"authorization_endpoint": "/authorize", "token_endpoint": "/token",
		"introspection_endpoint": "/introspect", "userinfo_endpoint": "/userinfo", "revocation_endpoint": "/revoke",
		"end_session_endpoint": "/endsession", "jwks_uri": "/jwks"} {
		if d[k] != e.issuer+path {
			t.Errorf("%s = %v, want %s", k, d[k], e.issuer+path)
		}
	}
	strs := func(k string) []string {
		var out []string
		for _, v := range d[k].([]any) {
			out = append(out, v.(string))
		}
		return out
	}
	if d["issuer"] != e.issuer || d["device_authorization_endpoint"] != nil || d["check_session_iframe"] != nil ||
		!slices.Equal(strs("response_types_supported"), []string{"code"}) ||
		!slices.Equal(strs("grant_types_supported"), []string{"authorization_code", "refresh_token", "client_credentials"}) ||
		!slices.Equal(strs("code_challenge_methods_supported"), []string{"S256"}) ||
		!slices.Equal(strs("id_token_signing_alg_values_supported"), []string{"ES256"}) {
		t.Fatalf("discovery %s", r.body)
	}
	var jwks struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(e.get("/jwks").body, &jwks); err != nil || len(jwks.Keys) != 1 {
		t.Fatalf("jwks: %v %v", err, jwks)
	}
	k := jwks.Keys[0]
	cur, _ := e.p.storage.keys.Current()
	if k["kid"] != cur.ID || k["alg"] != "ES256" || k["use"] != "sig" || k["crv"] != "P-256" || k["d"] != nil {
		t.Fatalf("jwk %v", k)
	}
	// Nothing else of op is served: health, readiness, device authorization, op's own paths.
	for _, p := range []string{"", "/", "/healthz", "/ready", "/device_authorization", "/oauth/token", "/keys", "/end_session"} {
		if r := e.get(p); r.code != http.StatusNotFound {
			t.Errorf("%s: %d", p, r.code)
		}
	}
}

// Introspection (RFC 7662) needs a confidential client: an access token is active for its own
// tenant's clients (and platform clients), inactive for another tenant's, and inactive once
// revoked; a refresh token is active for its own client only; junk is inactive.
func TestIntrospection_ActiveUntilRevoked_TenantScoped(t *testing.T) {
	e := newOIDC(t)
	a, b := newTenant(), newTenant()
	c, secret := e.ccClient(a, "tenant.read")
	rs, rsSecret := e.ccClient(a, "tenant.read")
	other, otherSecret := e.ccClient(b, "tenant.read")
	platform, pSecret := e.client(clientSpec{tenant: PlatformTenant, typ: ClientConfidential, admin: true,
		grants: []GrantType{GrantClientCredentials}, scopes: []Scope{"tenant.read"}})
	tok := e.clientCredentials(c, secret).json(t)["access_token"].(string)
	introspect := func(id ClientID, sec, token string) map[string]any {
		t.Helper()
		r := e.post("/introspect", url.Values{"token": {token}}, string(id), sec)
		if r.code != http.StatusOK {
			t.Fatalf("introspect: %d %s", r.code, r.body)
		}
		return r.json(t)
	}
	m := introspect(rs.ID, rsSecret, tok)
	if m["active"] != true || m["tenant_id"] != a || m["client_id"] != string(c.ID) || m["scope"] != "tenant.read" ||
		m["sub"] != string(c.ID) || m["iss"] != e.issuer || m["jti"] == nil || m["exp"] == nil {
		t.Fatalf("active: %v", m)
	}
	if m := introspect(platform.ID, pSecret, tok); m["active"] != true {
		t.Fatalf("a platform client: %v", m)
	}
	if m := introspect(other.ID, otherSecret, tok); m["active"] != false || len(m) != 1 {
		t.Fatalf("another tenant's client: %v", m)
	}
	for _, junk := range []string{"x", "rt1.nope", tok[:len(tok)-4] + "AAAA"} {
		if m := introspect(rs.ID, rsSecret, junk); m["active"] != false {
			t.Fatalf("%q: %v", junk, m)
		}
	}
	if r := e.post("/revoke", url.Values{"token": {tok}}, string(c.ID), secret); r.code != http.StatusOK {
		t.Fatalf("revoke: %d %s", r.code, r.body)
	}
	if m := introspect(rs.ID, rsSecret, tok); m["active"] != false {
		t.Fatalf("revoked: %v", m)
	}
	// Client authentication is required, and failures are invalid_client.
	if r := e.post("/introspect", url.Values{"token": {tok}}, "", ""); r.code != http.StatusUnauthorized || r.json(t)["error"] != "invalid_client" {
		t.Fatalf("anonymous: %d %s", r.code, r.body)
	}
	if r := e.post("/introspect", url.Values{"token": {tok}}, string(rs.ID), "cs1.wrong"); r.code != http.StatusUnauthorized ||
		r.hdr.Get("WWW-Authenticate") == "" {
		t.Fatalf("wrong secret: %d %s", r.code, r.body)
	}
	pub := e.publicClient(a)
	if r := e.post("/introspect", url.Values{"token": {tok}, "client_id": {string(pub.ID)}}, "", ""); r.code != http.StatusUnauthorized {
		t.Fatalf("public client: %d %s", r.code, r.body)
	}

	// Refresh tokens: their own client only.
	web, wsecret := e.webClient(a, true)
	e.users.add(a, "ne@example.com", "correct horse battery", "")
	_, code, verifier := e.signedInCode(web, "openid offline_access", "ne@example.com", "correct horse battery")
	rt := e.exchange(web, wsecret, code, verifier).json(t)["refresh_token"].(string)
	if m := introspect(web.ID, wsecret, rt); m["active"] != true || m["token_type"] != "refresh_token" || m["tenant_id"] != a {
		t.Fatalf("refresh token: %v", m)
	}
	if m := introspect(rs.ID, rsSecret, rt); m["active"] != false {
		t.Fatalf("another client's refresh token: %v", m)
	}
}

// Revocation (RFC 7009): a refresh token revokes its family (its successor fails too), a public
// client revokes with its client_id, unknown tokens are 200, another client's token is refused.
func TestRevocation_RefreshRevokesFamily_ForeignTokenRefused(t *testing.T) {
	e := newOIDC(t)
	tenant := newTenant()
	c := e.publicClient(tenant)
	other, osecret := e.webClient(tenant, true)
	e.users.add(tenant, "ole@example.com", "correct horse battery", "")
	_, code, verifier := e.signedInCode(c, "openid offline_access", "ole@example.com", "correct horse battery")
	m := e.exchange(c, "", code, verifier).json(t)
	rt1 := m["refresh_token"].(string)
	rt2 := e.refresh(c, "", rt1).json(t)["refresh_token"].(string)
	if r := e.post("/revoke", url.Values{"token": {rt2}}, string(other.ID), osecret); r.code != http.StatusBadRequest ||
		r.json(t)["error"] != "unauthorized_client" {
		t.Fatalf("another client: %d %s", r.code, r.body)
	}
	if r := e.post("/revoke", url.Values{"token": {m["access_token"].(string)}}, string(other.ID), osecret); r.code != http.StatusBadRequest {
		t.Fatalf("another client's access token: %d %s", r.code, r.body)
	}
	if r := e.post("/revoke", url.Values{"token": {rt2}, "client_id": {string(c.ID)}, "token_type_hint": {"refresh_token"}}, "", ""); r.code != http.StatusOK {
		t.Fatalf("revoke: %d %s", r.code, r.body)
	}
	if r := e.refresh(c, "", rt2); r.code != http.StatusBadRequest || r.json(t)["error"] != "invalid_grant" {
		t.Fatalf("a revoked refresh token: %d %s", r.code, r.body)
	}
	for _, junk := range []string{"rt1.AAAA", "nothing"} {
		if r := e.post("/revoke", url.Values{"token": {junk}, "client_id": {string(c.ID)}}, "", ""); r.code != http.StatusOK {
			t.Fatalf("unknown token %q: %d %s", junk, r.code, r.body)
		}
	}
	if r := e.post("/revoke", url.Values{"token": {rt2}}, "", ""); r.code != http.StatusUnauthorized {
		t.Fatalf("no client: %d %s", r.code, r.body)
	}
}

// Userinfo: a user's token with openid answers its profile per scopes; a client's own token is
// insufficient_scope; a revoked or foreign-signed token is invalid_token.
func TestUserinfo_ProfilePerScopes_ClientTokensRefused(t *testing.T) {
	e := newOIDC(t)
	tenant := newTenant()
	c, secret := e.webClient(tenant, true)
	uid := e.users.add(tenant, "pia@example.com", "correct horse battery", "Pia")
	_, code, verifier := e.signedInCode(c, "openid email", "pia@example.com", "correct horse battery")
	at := e.exchange(c, secret, code, verifier).json(t)["access_token"].(string)
	r := e.get("/userinfo", "Authorization", "Bearer "+at)
	if m := r.json(t); r.code != http.StatusOK || m["sub"] != uid || m["email"] != "pia@example.com" || m["name"] != nil {
		t.Fatalf("userinfo: %d %s", r.code, r.body)
	}
	cc, csecret := e.ccClient(tenant, "tenant.read")
	ct := e.clientCredentials(cc, csecret).json(t)["access_token"].(string)
	if r := e.get("/userinfo", "Authorization", "Bearer "+ct); r.code != http.StatusForbidden ||
		!strings.Contains(r.hdr.Get("WWW-Authenticate"), "insufficient_scope") {
		t.Fatalf("a client's token: %d %s", r.code, r.body)
	}
	if r := e.post("/revoke", url.Values{"token": {at}}, string(c.ID), secret); r.code != http.StatusOK {
		t.Fatal(r.code)
	}
	for name, h := range map[string]string{"revoked": "Bearer " + at, "garbage": "Bearer abc", "none": ""} {
		if r := e.get("/userinfo", "Authorization", h); r.code != http.StatusUnauthorized ||
			!strings.Contains(r.hdr.Get("WWW-Authenticate"), "invalid_token") {
			t.Errorf("%s: %d %s", name, r.code, r.body)
		}
	}
}

// CORS: never with credentials; discovery and the JWKS for any origin; the token endpoint lets a
// script read its answer only from the origin of one of the calling client's redirect URIs, and
// answers preflights.
func TestCORS_ClientOriginsOnly_NoCredentials(t *testing.T) {
	e := newOIDC(t)
	tenant := newTenant()
	c, secret := e.webClient(tenant, true)
	if r := e.get("/.well-known/openid-configuration", "Origin", "https://anyone.example"); r.hdr.Get("Access-Control-Allow-Origin") != "*" ||
		r.hdr.Get("Access-Control-Allow-Credentials") != "" {
		t.Fatalf("discovery: %v", r.hdr)
	}
	f := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"rt1.x"}, "client_id": {string(c.ID)}, "client_secret": {secret}}
	if r := e.post("/token", f, "", "", "Origin", "https://app.example"); r.hdr.Get("Access-Control-Allow-Origin") != "https://app.example" ||
		r.hdr.Get("Access-Control-Allow-Credentials") != "" || !strings.Contains(r.hdr.Get("Vary"), "Origin") {
		t.Fatalf("the client's origin: %v", r.hdr)
	}
	if r := e.post("/token", f, "", "", "Origin", "https://evil.example"); r.hdr.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("another origin: %v", r.hdr)
	}
	req, _ := http.NewRequest(http.MethodOptions, e.issuer+"/token", nil)
	req.Header.Set("Origin", "https://app.example")
	req.Header.Set("Access-Control-Request-Method", "POST")
	if r := do(t, http.DefaultClient, req); r.code != http.StatusNoContent || r.hdr.Get("Access-Control-Allow-Methods") == "" ||
		r.hdr.Get("Access-Control-Allow-Credentials") != "" {
		t.Fatalf("preflight: %d %v", r.code, r.hdr)
	}
}
