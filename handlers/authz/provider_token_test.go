package authz

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"spine/shared/ids"
	"spine/shared/tenancy"
)

// client_credentials: a tenant client's token is an ES256 JWT of the published key with the
// design's claims — iss, sub = the client, aud, exp within the TTL (≤ 15 min), iat, nbf, jti,
// client_id, scope (space-separated), tenant_id — and no platform_admin.
func TestClientCredentials_TenantClient_TokenHasTheDesignClaims(t *testing.T) {
	e := newOIDC(t)
	tenant := newTenant()
	c, secret := e.ccClient(tenant, "tenant.read", "user.read")
	r := e.clientCredentials(c, secret)
	if r.code != http.StatusOK {
		t.Fatalf("token: %d %s", r.code, r.body)
	}
	m := r.json(t)
	if m["token_type"] != "Bearer" || m["refresh_token"] != nil || m["id_token"] != nil {
		t.Fatalf("response %v", m)
	}
	if exp := m["expires_in"].(float64); exp <= 0 || exp > 600 {
		t.Errorf("expires_in %v, want ≤ 600 (the 10-minute default)", exp)
	}
	cl := e.claims(m["access_token"].(string))
	aud, _ := cl["aud"].([]any)
	if cl["iss"] != e.issuer || cl["sub"] != string(c.ID) || cl["client_id"] != string(c.ID) || cl["tenant_id"] != tenant ||
		cl["scope"] != "tenant.read user.read" || len(aud) != 1 || aud[0] != testAudience || cl["platform_admin"] != nil {
		t.Fatalf("claims %v", cl)
	}
	iat, exp := int64(cl["iat"].(float64)), int64(cl["exp"].(float64))
	if exp-iat > int64(MaxAccessTokenTTL/time.Second) || exp <= time.Now().Unix() || cl["nbf"] == nil {
		t.Errorf("iat %d exp %d nbf %v", iat, exp, cl["nbf"])
	}
	if jti, _ := cl["jti"].(string); !validID(jti) {
		t.Errorf("jti %v is not a uuid", cl["jti"])
	}
	// A narrower request gets exactly what it asked for.
	if cl := e.claims(e.clientCredentials(c, secret, "user.read").json(t)["access_token"].(string)); cl["scope"] != "user.read" {
		t.Errorf("narrowed scope %v", cl["scope"])
	}
}

// A platform client marked platform_admin gets a platform-admin token: no tenant_id.
func TestClientCredentials_PlatformAdminClient_TokenIsPlatformAdmin(t *testing.T) {
	e := newOIDC(t)
	c, secret := e.client(clientSpec{tenant: PlatformTenant, typ: ClientConfidential, admin: true,
		grants: []GrantType{GrantClientCredentials}, scopes: []Scope{"tenant.read"}})
	cl := e.claims(e.clientCredentials(c, secret).json(t)["access_token"].(string))
	if cl["platform_admin"] != true || cl["tenant_id"] != nil || cl["scope"] != "tenant.read" {
		t.Fatalf("claims %v", cl)
	}
}

// RFC 6749 §5.2: a wrong secret (Basic or form) or an unknown client is 401 invalid_client as
// JSON, with the Basic challenge when the client used Basic; nothing names the cause.
func TestToken_401_InvalidClient_WrongSecretUnknownClientPublicClient(t *testing.T) {
	e := newOIDC(t)
	c, secret := e.ccClient(newTenant(), "tenant.read")
	pub := e.publicClient(newTenant())
	cases := map[string]reply{
		"basic, wrong secret": e.clientCredentials(c, secret+"x"),
		"form, wrong secret": e.post("/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {string(c.ID)},
			"client_secret": {"cs1.nope"}}, "", ""),
		"unknown client":        e.clientCredentials(Client{ID: ClientID(ids.New())}, secret),
		"bad client id":         e.post("/token", url.Values{"grant_type": {"client_credentials"}}, "not-a-client", "x"),
		"public client, secret": e.clientCredentials(pub, "anything"),
	}
	for name, r := range cases {
		if r.code != http.StatusUnauthorized || r.json(t)["error"] != "invalid_client" || !strings.HasPrefix(r.hdr.Get("Content-Type"), "application/json") {
			t.Errorf("%s: %d %s", name, r.code, r.body)
		}
		if strings.Contains(name, "form") == (r.hdr.Get("WWW-Authenticate") != "") {
			t.Errorf("%s: WWW-Authenticate %q", name, r.hdr.Get("WWW-Authenticate"))
		}
	}
}

// Only the three grants reach the grant logic: password, implicit, device, token exchange and JWT
// bearer are unsupported_grant_type; a GET is 405; a scope the client may not have is invalid_scope;
// a client without client_credentials is unauthorized_client.
func TestToken_400_UnsupportedGrantsAndScopes(t *testing.T) {
	e := newOIDC(t)
	c, secret := e.ccClient(newTenant(), "tenant.read")
	for _, g := range []string{"password", "implicit", "urn:ietf:params:oauth:grant-type:device_code",
		"urn:ietf:params:oauth:grant-type:token-exchange", "urn:ietf:params:oauth:grant-type:jwt-bearer"} {
		r := e.post("/token", url.Values{"grant_type": {g}, "username": {"u"}, "password": {"p"}}, string(c.ID), secret)
		if r.code != http.StatusBadRequest || r.json(t)["error"] != "unsupported_grant_type" {
			t.Errorf("%s: %d %s", g, r.code, r.body)
		}
	}
	if r := e.get("/token?grant_type=client_credentials"); r.code != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d %s", r.code, r.body)
	}
	if r := e.clientCredentials(c, secret, "tenant.manage"); r.code != http.StatusBadRequest || r.json(t)["error"] != "invalid_scope" {
		t.Errorf("scope not allowed: %d %s", r.code, r.body)
	}
	web, wsecret := e.webClient(newTenant(), true)
	if r := e.clientCredentials(web, wsecret); r.code != http.StatusBadRequest || r.json(t)["error"] != "unauthorized_client" {
		t.Errorf("grant not allowed: %d %s", r.code, r.body)
	}
}

// The code flow of a confidential first-party client: sign-in, code, tokens (access, refresh, ID
// token with the profile claims its scopes ask for); the access token names the user and its
// tenant; refresh rotates (a new refresh token each time, the old one spent).
func TestCodeFlow_ConfidentialClient_TokensThenRefreshRotates(t *testing.T) {
	e := newOIDC(t)
	tenant := newTenant()
	c, secret := e.webClient(tenant, true)
	uid := e.users.add(tenant, "ada@example.com", "correct horse battery", "Ada")
	e.users.grant(uid, "user.read")
	_, code, verifier := e.signedInCode(c, "openid email profile offline_access user.read", "ada@example.com", "correct horse battery")
	r := e.exchange(c, secret, code, verifier)
	if r.code != http.StatusOK {
		t.Fatalf("exchange: %d %s", r.code, r.body)
	}
	m := r.json(t)
	at := e.claims(m["access_token"].(string))
	if at["sub"] != uid || at["tenant_id"] != tenant || at["client_id"] != string(c.ID) ||
		at["scope"] != "openid email profile offline_access user.read" || at["platform_admin"] != nil {
		t.Fatalf("access token %v", at)
	}
	id := e.claims(m["id_token"].(string))
	aud, _ := id["aud"].([]any)
	if id["sub"] != uid || id["email"] != "ada@example.com" || id["name"] != "Ada" || id["nonce"] != "n-1" ||
		!slices.Contains(aud, any(string(c.ID))) || id["azp"] != string(c.ID) || id["tenant_id"] != nil || id["scope"] != nil {
		t.Fatalf("id token %v", id)
	}
	rt := m["refresh_token"].(string)
	r2 := e.refresh(c, secret, rt)
	if r2.code != http.StatusOK {
		t.Fatalf("refresh: %d %s", r2.code, r2.body)
	}
	rt2 := r2.json(t)["refresh_token"].(string)
	if rt2 == "" || rt2 == rt {
		t.Fatalf("no rotation: %q", rt2)
	}
	if at2 := e.claims(r2.json(t)["access_token"].(string)); at2["sub"] != uid || at2["tenant_id"] != tenant || at2["jti"] == at["jti"] {
		t.Fatalf("refreshed access token %v", at2)
	}
	// A narrower scope on refresh: the access token has it, the family keeps its grant.
	r3 := e.post("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt2}, "scope": {"openid user.read"}},
		string(c.ID), secret)
	if r3.code != http.StatusOK || e.claims(r3.json(t)["access_token"].(string))["scope"] != "openid user.read" {
		t.Fatalf("narrowed refresh: %d %s", r3.code, r3.body)
	}
	r4 := e.refresh(c, secret, r3.json(t)["refresh_token"].(string))
	if r4.code != http.StatusOK || e.claims(r4.json(t)["access_token"].(string))["scope"] != at["scope"] {
		t.Fatalf("refresh after a narrowed one: %d %s", r4.code, r4.body)
	}
}

// Refresh reuse: presenting a rotated refresh token again fails and revokes the whole family, so
// the newest token of the family fails too.
func TestRefresh_ReusedToken_400_RevokesFamilyNewestFailsToo(t *testing.T) {
	e := newOIDC(t)
	tenant := newTenant()
	c, secret := e.webClient(tenant, true)
	e.users.add(tenant, "bo@example.com", "correct horse battery", "")
	_, code, verifier := e.signedInCode(c, "openid offline_access", "bo@example.com", "correct horse battery")
	rt1 := e.exchange(c, secret, code, verifier).json(t)["refresh_token"].(string)
	rt2 := e.refresh(c, secret, rt1).json(t)["refresh_token"].(string)
	r := e.refresh(c, secret, rt1)
	if r.code != http.StatusBadRequest || r.json(t)["error"] != "invalid_grant" {
		t.Fatalf("reuse: %d %s", r.code, r.body)
	}
	if r := e.refresh(c, secret, rt2); r.code != http.StatusBadRequest || r.json(t)["error"] != "invalid_grant" {
		t.Fatalf("the family's newest after a reuse: %d %s", r.code, r.body)
	}
}

// A code is redeemed once: a second redemption fails and revokes the refresh tokens the first one
// issued. A wrong verifier, another client or another redirect URI never get tokens.
func TestCode_ReplayedCode_400_RevokesWhatItIssued(t *testing.T) {
	e := newOIDC(t)
	tenant := newTenant()
	c, secret := e.webClient(tenant, true)
	other, osecret := e.webClient(tenant, true)
	e.users.add(tenant, "cy@example.com", "correct horse battery", "")
	_, code, verifier := e.signedInCode(c, "openid offline_access", "cy@example.com", "correct horse battery")
	if r := e.exchange(c, secret, code, verifier+"x"); r.code != http.StatusBadRequest || r.json(t)["error"] != "invalid_grant" {
		t.Fatalf("wrong verifier: %d %s", r.code, r.body)
	}
	if r := e.exchange(other, osecret, code, verifier); r.code != http.StatusBadRequest || r.json(t)["error"] != "invalid_grant" {
		t.Fatalf("another client: %d %s", r.code, r.body)
	}
	rt := e.exchange(c, secret, code, verifier).json(t)["refresh_token"].(string)
	if r := e.exchange(c, secret, code, verifier); r.code != http.StatusBadRequest || r.json(t)["error"] != "invalid_grant" {
		t.Fatalf("replay: %d %s", r.code, r.body)
	}
	if r := e.refresh(c, secret, rt); r.code != http.StatusBadRequest || r.json(t)["error"] != "invalid_grant" {
		t.Fatalf("a refresh token of a replayed code: %d %s", r.code, r.body)
	}
}

// A disabled user's refresh token no longer works (identity says the user cannot sign in).
func TestRefresh_DisabledUser_400(t *testing.T) {
	e := newOIDC(t)
	tenant := newTenant()
	c, secret := e.webClient(tenant, true)
	uid := e.users.add(tenant, "di@example.com", "correct horse battery", "")
	_, code, verifier := e.signedInCode(c, "openid offline_access", "di@example.com", "correct horse battery")
	rt := e.exchange(c, secret, code, verifier).json(t)["refresh_token"].(string)
	e.users.disable(uid)
	if r := e.refresh(c, secret, rt); r.code != http.StatusBadRequest || r.json(t)["error"] != "invalid_grant" {
		t.Fatalf("refresh of a disabled user: %d %s", r.code, r.body)
	}
}

// A public client: PKCE is required (S256 only) at /authorize, and its code flow works with the
// verifier and no secret; without it the token request fails.
func TestPublicClient_PKCERequired_S256Only(t *testing.T) {
	e := newOIDC(t)
	tenant := newTenant()
	c := e.publicClient(tenant)
	e.users.add(tenant, "pa@example.com", "correct horse battery", "")
	b := e.browser()
	for name, params := range map[string]url.Values{
		"no challenge": codeParams(c, "openid", ""),
		"plain": func() url.Values {
			v := codeParams(c, "openid", "abc")
			v.Set("code_challenge_method", "plain")
			return v
		}(),
		"method omitted": func() url.Values { v := codeParams(c, "openid", "abc"); v.Del("code_challenge_method"); return v }(),
	} {
		q := redirected(t, b.authorize(params), c.RedirectURIs[0])
		if q.Get("error") != "invalid_request" || q.Get("state") != params.Get("state") || q.Get("code") != "" {
			t.Errorf("%s: %v", name, q)
		}
	}
	_, code, verifier := e.signedInCode(c, "openid offline_access", "pa@example.com", "correct horse battery")
	if r := e.exchange(c, "", code, ""); r.code != http.StatusBadRequest {
		t.Fatalf("no verifier: %d %s", r.code, r.body)
	}
	r := e.exchange(c, "", code, verifier)
	if r.code != http.StatusOK || r.json(t)["refresh_token"] == nil {
		t.Fatalf("public exchange: %d %s", r.code, r.body)
	}
	if r := e.refresh(c, "", r.json(t)["refresh_token"].(string)); r.code != http.StatusOK {
		t.Fatalf("public refresh: %d %s", r.code, r.body)
	}
	// A confidential client may omit PKCE, but never use plain.
	w, _ := e.webClient(tenant, true)
	v := codeParams(w, "openid", "abc")
	v.Set("code_challenge_method", "plain")
	if q := redirected(t, b.authorize(v), w.RedirectURIs[0]); q.Get("error") != "invalid_request" {
		t.Errorf("confidential plain: %v", q)
	}
}

// A tenant-A client never yields a token for tenant B: its users are A's (B's credentials fail),
// and client_credentials names A.
func TestIsolation_TenantAClient_NeverATokenForB(t *testing.T) {
	e := newOIDC(t)
	a, b := newTenant(), newTenant()
	c, _ := e.webClient(a, true)
	e.users.add(b, "eve@example.com", "correct horse battery", "")
	br := e.browser()
	page := br.authorize(codeParams(c, "openid", ""))
	f := form(t, page)
	f.Set("email", "eve@example.com")
	f.Set("password", "correct horse battery")
	f.Set("organization", b) // not a field of a tenant client's page: ignored
	if r := br.post("/login", f); r.code != http.StatusUnauthorized || !strings.Contains(string(r.body), msgCredentials) {
		t.Fatalf("B's user on A's client: %d %s", r.code, r.body)
	}
	cc, csecret := e.ccClient(a, "tenant.read")
	if cl := e.claims(e.clientCredentials(cc, csecret).json(t)["access_token"].(string)); cl["tenant_id"] != a {
		t.Fatalf("client_credentials tenant %v", cl["tenant_id"])
	}
}

// mapDirectory is a tenant directory over a map; an absent tenant is unknown.
type mapDirectory struct {
	mu sync.Mutex
	m  map[string]tenancy.Status
}

func (d *mapDirectory) set(tenant string, st tenancy.Status) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.m[tenant] = st
}

func (d *mapDirectory) TenantStatus(_ context.Context, id tenancy.TenantID) (tenancy.Status, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	st, ok := d.m[id.String()]
	if !ok {
		return "", tenancy.ErrTenantNotFound
	}
	return st, nil
}

// No grant issues a token for a suspended, decommissioned or unknown tenant: client credentials
// answer unauthorized_client, a code and a refresh token invalid_grant; the tenant's active state
// back, tokens flow again. A platform client's token asks no tenant.
func TestToken_400_TenantNotActive_NoTokenOnAnyGrant(t *testing.T) {
	dir := &mapDirectory{m: map[string]tenancy.Status{}}
	e := newOIDC(t, func(_ *ProviderConfig, d *ProviderDeps) { d.Directory = dir })
	tenant := newTenant()
	dir.set(tenant, tenancy.StatusActive)
	cc, ccSecret := e.ccClient(tenant, "tenant.read")
	web, webSecret := e.webClient(tenant, true)
	e.users.grant(e.users.add(tenant, "ada@example.com", "correct horse battery", "Ada"), "user.read")
	_, code, verifier := e.signedInCode(web, "openid offline_access user.read", "ada@example.com", "correct horse battery")
	r := e.exchange(web, webSecret, code, verifier)
	if r.code != http.StatusOK {
		t.Fatalf("exchange while active: %d %s", r.code, r.body)
	}
	rt := r.json(t)["refresh_token"].(string)

	for _, st := range []tenancy.Status{tenancy.StatusSuspended, tenancy.StatusDecommissioned, ""} {
		if st == "" {
			dir.mu.Lock()
			delete(dir.m, tenant)
			dir.mu.Unlock()
		} else {
			dir.set(tenant, st)
		}
		if r := e.clientCredentials(cc, ccSecret); r.code != http.StatusBadRequest || r.json(t)["error"] != "unauthorized_client" {
			t.Errorf("%q: client credentials %d %s", st, r.code, r.body)
		}
		if r := e.refresh(web, webSecret, rt); r.code != http.StatusBadRequest || r.json(t)["error"] != "invalid_grant" {
			t.Errorf("%q: refresh %d %s", st, r.code, r.body)
		}
	}
	// Nor a code: the sign-in answers the client access_denied.
	b := e.browser()
	_, challenge := pkce()
	page := b.authorize(codeParams(web, "openid user.read", challenge))
	if page.code != http.StatusOK {
		t.Fatalf("sign-in page: %d %s", page.code, page.body)
	}
	if q := redirected(t, b.signIn(page, "ada@example.com", "correct horse battery", ""), web.RedirectURIs[0]); q.Get("error") != "access_denied" || q.Get("code") != "" {
		t.Errorf("unknown tenant: sign-in answered %v", q)
	}
	// A code issued while the tenant was active is refused at /token once it is not.
	dir.set(tenant, tenancy.StatusActive)
	_, code, verifier = e.signedInCode(web, "openid user.read", "ada@example.com", "correct horse battery")
	dir.set(tenant, tenancy.StatusSuspended)
	if r := e.exchange(web, webSecret, code, verifier); r.code != http.StatusBadRequest || r.json(t)["error"] != "invalid_grant" {
		t.Errorf("suspended tenant: code exchange %d %s", r.code, r.body)
	}

	// The refusal consumed nothing: once the tenant is active again the same refresh token works.
	dir.set(tenant, tenancy.StatusActive)
	if r := e.clientCredentials(cc, ccSecret); r.code != http.StatusOK {
		t.Fatalf("active again: client credentials %d %s", r.code, r.body)
	}
	if r := e.refresh(web, webSecret, rt); r.code != http.StatusOK {
		t.Fatalf("active again: refresh %d %s", r.code, r.body)
	}
	pc, pcSecret := e.client(clientSpec{tenant: PlatformTenant, typ: ClientConfidential, admin: true,
		grants: []GrantType{GrantClientCredentials}, scopes: []Scope{"tenant.read"}})
	if r := e.clientCredentials(pc, pcSecret); r.code != http.StatusOK {
		t.Fatalf("platform client: %d %s", r.code, r.body)
	}
}
