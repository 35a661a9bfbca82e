package tests

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// The authorization server through the binary, with standard client libraries only:
// golang.org/x/oauth2 (client credentials; authorization code with PKCE, following the sign-in page
// with a cookie jar; refresh) and github.com/coreos/go-oidc/v3 (discovery, ID token verification).
// The tokens it issues work on the API (the API trusts its keys in process) for their own tenant
// only; introspection and revocation, refresh rotation and reuse detection, client authentication
// failures and PKCE for public clients behave as RFC 6749/7009/7636/7662 say. A user's token
// carries the API scopes of the user's roles only (identity's permissions), whatever the client
// may have.
func TestOIDC_StandardClients_TokensWorkOnTheAPI_TenantBound(t *testing.T) {
	s := startServer(t, nil)
	ctx := t.Context()
	ops := s.mint("ops", "", true, "tenant.read", "tenant.manage", "client.manage", "user.invite", "user.read", "role.read", "role.assign")
	tenantA, tenantB := s.register(slug("oidca"), "standard"), s.register(slug("oidcb"), "standard")
	for _, id := range []string{tenantA, tenantB} {
		if r := s.call("POST", "/api/tenants/"+id+"/provision", s.admin, nil, nil); r.Code != http.StatusOK {
			t.Fatalf("provision: %d %s", r.Code, r.Body)
		}
	}
	tokenURL := s.issuer + "/token"

	// ---- client_credentials (tenant A's service client) ----
	svc := s.createClient(ops, tenantA, map[string]any{"name": "reporting", "clientType": "confidential",
		"grantTypes": []string{"client_credentials"}, "scopes": []string{"tenant.read"}})
	cc := clientcredentials.Config{ClientID: svc.id, ClientSecret: svc.secret, TokenURL: tokenURL, Scopes: []string{"tenant.read"}}
	tok, err := cc.Token(ctx)
	if err != nil {
		t.Fatalf("client_credentials: %v", err)
	}
	if !tok.Expiry.After(time.Now()) || tok.Expiry.After(time.Now().Add(15*time.Minute)) || tok.RefreshToken != "" {
		t.Fatalf("token %+v", tok)
	}
	if r := s.call("GET", "/api/tenants/"+tenantA, tok.AccessToken, nil, nil); r.Code != http.StatusOK {
		t.Fatalf("own tenant: %d %s", r.Code, r.Body)
	}
	if r := s.call("GET", "/api/tenants/"+tenantB, tok.AccessToken, nil, nil); r.Code != http.StatusForbidden && r.Code != http.StatusNotFound {
		t.Fatalf("another tenant: %d %s", r.Code, r.Body)
	}
	// A wrong secret: 401 invalid_client, RFC 6749 §5.2 JSON.
	bad := cc
	bad.ClientSecret = svc.secret + "x"
	var re *oauth2.RetrieveError
	if _, err := bad.Token(ctx); !errors.As(err, &re) || re.Response.StatusCode != http.StatusUnauthorized || re.ErrorCode != "invalid_client" ||
		!strings.HasPrefix(re.Response.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("wrong secret: %v", err)
	}
	// A scope the client may not have, and a grant it does not hold.
	wide := cc
	wide.Scopes = []string{"tenant.manage"}
	if _, err := wide.Token(ctx); !errors.As(err, &re) || re.ErrorCode != "invalid_scope" {
		t.Fatalf("scope not allowed: %v", err)
	}

	// ---- discovery, through go-oidc (it checks the issuer the document names) ----
	provider, err := oidc.NewProvider(ctx, s.issuer)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	if provider.Endpoint().TokenURL != tokenURL || provider.Endpoint().AuthURL != s.issuer+"/authorize" {
		t.Fatalf("endpoints %+v", provider.Endpoint())
	}

	// ---- users with a password (identity: invite, accept): Dana in A (role member: tenant.read,
	// user.read, role.read), Erin in B ----
	const password = "a long enough passphrase"
	email := "dana@" + tenantA[:8] + ".example"
	userID := s.userWithPassword(ops, tenantA, email, password, "Dana", s.roleID(ops, tenantA, "member"))
	emailB := "erin@" + tenantB[:8] + ".example"
	s.userWithPassword(ops, tenantB, emailB, password, "Erin")

	// ---- authorization code + PKCE: a confidential web client of tenant A ----
	const redirect = "http://127.0.0.1:9/callback"
	web := s.createClient(ops, tenantA, map[string]any{"name": "portal", "clientType": "confidential", "firstParty": true,
		"grantTypes": []string{"authorization_code", "refresh_token"}, "redirectUris": []string{redirect},
		"scopes": []string{"openid", "email", "profile", "offline_access", "tenant.read", "tenant.manage"}})
	conf := oauth2.Config{ClientID: web.id, ClientSecret: web.secret, Endpoint: provider.Endpoint(), RedirectURL: redirect,
		Scopes: []string{oidc.ScopeOpenID, "email", "profile", oidc.ScopeOfflineAccess, "tenant.read", "tenant.manage"}}
	b := newBrowser(t)
	code := b.signIn(conf, "nonce-1", email, password, "")
	verifier := code.verifier
	tokens, err := conf.Exchange(ctx, code.code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	rawID, _ := tokens.Extra("id_token").(string)
	idToken, err := provider.Verifier(&oidc.Config{ClientID: web.id}).Verify(ctx, rawID)
	if err != nil {
		t.Fatalf("ID token: %v", err)
	}
	var idClaims struct {
		Email string `json:"email"`
		Name  string `json:"name"`
		Nonce string `json:"nonce"`
	}
	if err := idToken.Claims(&idClaims); err != nil || idToken.Subject != userID || idClaims.Email != email ||
		idClaims.Name != "Dana" || idClaims.Nonce != "nonce-1" {
		t.Fatalf("ID token claims: sub %s %+v %v", idToken.Subject, idClaims, err)
	}
	if err := idToken.VerifyAccessToken(tokens.AccessToken); err != nil {
		t.Fatalf("at_hash: %v", err)
	}
	// The user's access token works on the API for tenant A only.
	if r := s.call("GET", "/api/tenants/"+tenantA, tokens.AccessToken, nil, nil); r.Code != http.StatusOK {
		t.Fatalf("the user's token on its tenant: %d %s", r.Code, r.Body)
	}
	if r := s.call("GET", "/api/tenants/"+tenantB, tokens.AccessToken, nil, nil); r.Code != http.StatusForbidden && r.Code != http.StatusNotFound {
		t.Fatalf("the user's token on another tenant: %d %s", r.Code, r.Body)
	}
	// Userinfo, as go-oidc asks it.
	info, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tokens))
	if err != nil || info.Subject != userID || info.Email != email {
		t.Fatalf("userinfo: %+v %v", info, err)
	}

	// ---- introspection says active (with the scopes of Dana's role only: the client may have
	// tenant.manage, a member may not); revocation makes it inactive ----
	const memberScope = "openid email profile offline_access tenant.read"
	if m := s.introspect(web, tokens.AccessToken); m["active"] != true || m["sub"] != userID || m["tenant_id"] != tenantA ||
		m["scope"] != memberScope || tokens.Extra("scope") != memberScope {
		t.Fatalf("introspection: %v (token response scope %v)", m, tokens.Extra("scope"))
	}
	if code := s.revoke(web, tokens.AccessToken); code != http.StatusOK {
		t.Fatalf("revoke: %d", code)
	}
	if m := s.introspect(web, tokens.AccessToken); m["active"] != false {
		t.Fatalf("introspection after revocation: %v", m)
	}

	// ---- refresh rotates; a reused refresh token fails and revokes the family ----
	rt1 := tokens.RefreshToken
	refreshed, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: rt1, Expiry: time.Now().Add(-time.Hour)}).Token()
	if err != nil || refreshed.RefreshToken == "" || refreshed.RefreshToken == rt1 || refreshed.AccessToken == "" {
		t.Fatalf("refresh: %+v %v", refreshed, err)
	}
	if r := s.call("GET", "/api/tenants/"+tenantA, refreshed.AccessToken, nil, nil); r.Code != http.StatusOK {
		t.Fatalf("the refreshed token: %d %s", r.Code, r.Body)
	}
	rt2 := refreshed.RefreshToken
	if _, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: rt1, Expiry: time.Now().Add(-time.Hour)}).Token(); !errors.As(err, &re) ||
		re.ErrorCode != "invalid_grant" {
		t.Fatalf("a reused refresh token: %v", err)
	}
	if _, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: rt2, Expiry: time.Now().Add(-time.Hour)}).Token(); !errors.As(err, &re) ||
		re.ErrorCode != "invalid_grant" {
		t.Fatalf("the family's newest token after a reuse: %v", err)
	}

	// ---- a public client: PKCE required; with it, no secret needed ----
	pub := s.createClient(ops, tenantA, map[string]any{"name": "mobile", "clientType": "public", "firstParty": true,
		"grantTypes": []string{"authorization_code", "refresh_token"}, "redirectUris": []string{"http://127.0.0.1/cb"},
		"scopes": []string{"openid", "offline_access", "tenant.read"}})
	pconf := oauth2.Config{ClientID: pub.id, Endpoint: provider.Endpoint(), RedirectURL: "http://127.0.0.1:43111/cb",
		Scopes: []string{oidc.ScopeOpenID, "tenant.read"}}
	noPKCE := b.follow(pconf.AuthCodeURL("st-nopkce"))
	if q := noPKCE.redirectQuery(t, "http://127.0.0.1:43111/cb"); q.Get("error") != "invalid_request" || q.Get("code") != "" {
		t.Fatalf("public client without PKCE: %v", q)
	}
	pcode := b.signIn(pconf, "", email, password, "") // signed in already: no form, straight to the code
	ptok, err := pconf.Exchange(ctx, pcode.code, oauth2.VerifierOption(pcode.verifier))
	if err != nil {
		t.Fatalf("public exchange: %v", err)
	}
	if r := s.call("GET", "/api/tenants/"+tenantA, ptok.AccessToken, nil, nil); r.Code != http.StatusOK {
		t.Fatalf("the public client's token: %d %s", r.Code, r.Body)
	}

	// ---- tenant B's user can never get a token through tenant A's client ----
	other := newBrowser(t)
	page := other.follow(conf.AuthCodeURL("st-b", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	if r := other.submit(t, page, map[string]string{"email": emailB, "password": password}); r.code != http.StatusUnauthorized ||
		strings.Contains(r.loc, "code=") {
		t.Fatalf("another tenant's credentials on A's client: %d %s", r.code, r.loc)
	}
}

// userWithPassword invites email to tenant with roleIDs and accepts the invitation with password
// (identity's API, as a user would); it returns the user's id.
func (s *server) userWithPassword(ops, tenant, email, password, name string, roleIDs ...string) string {
	s.t.Helper()
	r := s.call("POST", "/api/users/invitations?tenantId="+tenant, ops, map[string]any{"email": email, "roleIds": append([]string{}, roleIDs...)},
		map[string]string{"Idempotency-Key": "invite-" + email})
	if r.Code != http.StatusCreated {
		s.t.Fatalf("invite: %d %s", r.Code, r.Body)
	}
	id := r.JSON(s.t)["userId"].(string)
	if r := s.call("POST", "/api/users/invitations/accept", "", map[string]string{"token": r.JSON(s.t)["token"].(string),
		"password": password, "displayName": name}, nil); r.Code != http.StatusOK {
		s.t.Fatalf("accept: %d %s", r.Code, r.Body)
	}
	return id
}

// roleID is the id of tenant's role code, once the provisioning consumer has seeded it.
func (s *server) roleID(ops, tenant, code string) string {
	s.t.Helper()
	var id string
	eventually(s.t, "the role "+code, func() bool {
		r := s.call("GET", "/api/roles?tenantId="+tenant, ops, nil, nil)
		if r.Code != http.StatusOK {
			s.t.Fatalf("roles: %d %s", r.Code, r.Body)
		}
		for _, v := range r.JSON(s.t)["value"].([]any) {
			if m := v.(map[string]any); m["code"] == code {
				id = m["id"].(string)
			}
		}
		return id != ""
	})
	return id
}

// oidcClient is a client created through the admin API.
type oidcClient struct{ id, secret string }

func (s *server) createClient(token, tenant string, body map[string]any) oidcClient {
	s.t.Helper()
	r := s.call("POST", "/api/clients?tenantId="+tenant, token, body, nil)
	if r.Code != http.StatusCreated {
		s.t.Fatalf("create client: %d %s", r.Code, r.Body)
	}
	m := r.JSON(s.t)
	secret, _ := m["clientSecret"].(string)
	return oidcClient{id: m["id"].(string), secret: secret}
}

// introspect asks RFC 7662 with c's credentials.
func (s *server) introspect(c oidcClient, token string) map[string]any {
	s.t.Helper()
	r := s.form("/introspect", c, url.Values{"token": {token}})
	if r.Code != http.StatusOK {
		s.t.Fatalf("introspect: %d %s", r.Code, r.Body)
	}
	return r.JSON(s.t)
}

// revoke asks RFC 7009 with c's credentials.
func (s *server) revoke(c oidcClient, token string) int {
	s.t.Helper()
	return s.form("/revoke", c, url.Values{"token": {token}}).Code
}

func (s *server) form(path string, c oidcClient, f url.Values) reply {
	s.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.base+"/api/connect"+path, strings.NewReader(f.Encode())) // this instance's
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(c.id), url.QueryEscape(c.secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{Code: resp.StatusCode, Hdr: resp.Header, Body: b}
}

// browser is a user agent with a cookie jar that follows redirects within the server and stops at
// a client's redirect URI (nothing listens there).
type browser struct {
	t *testing.T
	c *http.Client
}

func newBrowser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, c: &http.Client{Jar: jar, Timeout: 20 * time.Second, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if req.URL.Host != via[0].URL.Host {
			return http.ErrUseLastResponse
		}
		return nil
	}}}
}

// page is a browser's answer.
type page struct {
	code int
	loc  string
	body string
	url  *url.URL
}

func (b *browser) do(req *http.Request) page {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return page{code: resp.StatusCode, loc: resp.Header.Get("Location"), body: string(body), url: resp.Request.URL}
}

func (b *browser) follow(u string) page {
	b.t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, u, nil)
	return b.do(req)
}

var hiddenField = regexp.MustCompile(`name="(authRequestID|csrf)" value="([^"]*)"`)

// submit posts the form of p (its hidden fields and fields) to the form's action.
func (b *browser) submit(t *testing.T, p page, fields map[string]string) page {
	t.Helper()
	f := url.Values{}
	for _, m := range hiddenField.FindAllStringSubmatch(p.body, -1) {
		f.Set(m[1], m[2])
	}
	if f.Get("csrf") == "" {
		t.Fatalf("no form on %s: %d %s", p.url, p.code, p.body)
	}
	for k, v := range fields {
		f.Set(k, v)
	}
	action := *p.url
	action.Path = action.Path[:strings.LastIndex(action.Path, "/")+1] + "login"
	action.RawQuery = ""
	req, _ := http.NewRequest(http.MethodPost, action.String(), strings.NewReader(f.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// redirectQuery is the query of a redirect to the client's redirect URI.
func (p page) redirectQuery(t *testing.T, prefix string) url.Values {
	t.Helper()
	if (p.code != http.StatusFound && p.code != http.StatusSeeOther) || !strings.HasPrefix(p.loc, prefix) {
		t.Fatalf("want a redirect to %s: %d %q %s", prefix, p.code, p.loc, p.body)
	}
	u, _ := url.Parse(p.loc)
	return u.Query()
}

// codeResult is an authorization code and the PKCE verifier it was requested with.
type codeResult struct{ code, verifier string }

// signIn runs the code flow of conf in the browser — S256 PKCE, the sign-in page when the
// browser has no session (email, password, organization for a platform client) — up to the code.
func (b *browser) signIn(conf oauth2.Config, nonce, email, password, organization string) codeResult {
	b.t.Helper()
	verifier := oauth2.GenerateVerifier()
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier)}
	if nonce != "" {
		opts = append(opts, oidc.Nonce(nonce))
	}
	state := "st-" + verifier[:8]
	p := b.follow(conf.AuthCodeURL(state, opts...))
	if p.code == http.StatusOK {
		fields := map[string]string{"email": email, "password": password}
		if organization != "" {
			fields["organization"] = organization
		}
		p = b.submit(b.t, p, fields)
	}
	q := p.redirectQuery(b.t, conf.RedirectURL)
	if q.Get("state") != state || q.Get("code") == "" {
		b.t.Fatalf("callback %v", q)
	}
	return codeResult{code: q.Get("code"), verifier: verifier}
}
