package authz

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/labstack/echo/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"

	"spine/shared/authn"
	"spine/shared/httpx"
	"spine/shared/ids"
	"spine/shared/secrets"
	"spine/shared/secrets/kvfake"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
	"spine/shared/testenv/apitest"
)

// The provider's tests run it as the binary does — mounted on an echo /api group behind the edge,
// over the package's PostgreSQL database (the real store), the stack's Redis and a key ring in the
// Key Vault TLS fake — and drive it over HTTP like a client and a browser would. Only identity is
// stood in for, by testUsers (identity's own answer to authn.Users is tested in identity).

// testUsers is an in-memory authn.Users and permissions.Permissions (identity answers both in the
// binary): a user holds the permissions granted to it while it is active.
type testUsers struct {
	mu        sync.Mutex
	m         map[string]*testUser // by id
	permsErr  error                // set: Effective fails with it
	authCalls int                  // Authenticate calls (each is an argon2id computation in identity)
}

type testUser struct {
	id, tenant, email, password, name string
	active                            bool
	perms                             []string
}

// grant gives user id the permissions perms (catalog codes, the API scope names).
func (u *testUsers) grant(id string, perms ...string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.m[id].perms = append(u.m[id].perms, perms...)
}

// revoke takes permission perm from user id (its role was revoked).
func (u *testUsers) revoke(id, perm string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.m[id].perms = slices.DeleteFunc(u.m[id].perms, func(p string) bool { return p == perm })
}

// failPermissions makes every Effective call fail with err (nil: answer again).
func (u *testUsers) failPermissions(err error) { u.mu.Lock(); u.permsErr = err; u.mu.Unlock() }

func (u *testUsers) Effective(_ context.Context, tenant tenancy.TenantID, id string) ([]string, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.permsErr != nil {
		return nil, u.permsErr
	}
	x, ok := u.m[id]
	if !ok || x.tenant != tenant.String() || !x.active {
		return []string{}, nil
	}
	out := slices.Clone(x.perms)
	slices.Sort(out)
	return out, nil
}

func (u *testUsers) Allowed(ctx context.Context, tenant tenancy.TenantID, id, perm string) (bool, error) {
	held, err := u.Effective(ctx, tenant, id)
	return slices.Contains(held, perm), err
}

func (u *testUsers) add(tenant, email, password, name string) string {
	u.mu.Lock()
	defer u.mu.Unlock()
	id := ids.New()
	u.m[id] = &testUser{id: id, tenant: tenant, email: email, password: password, name: name, active: true}
	return id
}

func (u *testUsers) disable(id string) { u.mu.Lock(); u.m[id].active = false; u.mu.Unlock() }

// authenticated is how many times Authenticate was called.
func (u *testUsers) authenticated() int { u.mu.Lock(); defer u.mu.Unlock(); return u.authCalls }

func (u *testUsers) Authenticate(_ context.Context, tenant tenancy.TenantID, email, password string) (string, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.authCalls++
	for _, x := range u.m {
		if x.tenant == tenant.String() && strings.EqualFold(x.email, email) && x.password == password && x.active {
			return x.id, nil
		}
	}
	return "", authn.ErrInvalidCredentials
}

func (u *testUsers) Profile(_ context.Context, tenant tenancy.TenantID, id string) (authn.Profile, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	x, ok := u.m[id]
	if !ok || x.tenant != tenant.String() || !x.active {
		return authn.Profile{}, authn.ErrUnknownUser
	}
	return authn.Profile{UserID: x.id, Email: x.email, Name: x.name}, nil
}

// oidcEnv is a running provider.
type oidcEnv struct {
	t      testing.TB
	p      *Provider
	store  Store
	users  *testUsers
	srv    *httptest.Server
	issuer string
	logs   *strings.Builder
}

const testAudience = "spine-api"

// newOIDC starts a provider; edit adjusts its configuration and collaborators before it is built.
func newOIDC(t testing.TB, edit ...func(*ProviderConfig, *ProviderDeps)) *oidcEnv {
	t.Helper()
	c := newTestCache(t)
	store := NewStore(testDB.OpenRuntime(t, sqlstore.PoolConfig{}), c, StoreConfig{})
	kv := kvfake.NewTLSServer(t)
	vault, err := secrets.Open(secrets.Config{VaultURL: kv.URL, CAFile: kv.CAFile})
	if err != nil {
		t.Fatal(err)
	}
	ring, err := secrets.NewKeyRing(t.Context(), vault, secrets.KeyRingOptions{Logger: slog.New(slog.DiscardHandler), Activation: -1})
	if err != nil {
		t.Fatal(err)
	}
	var h http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	logs := &strings.Builder{}
	env := &oidcEnv{t: t, store: store, users: &testUsers{m: map[string]*testUser{}}, srv: srv, issuer: srv.URL + ConnectPath, logs: logs}
	cfg := ProviderConfig{Issuer: env.issuer, Audience: testAudience, CryptoKey: [32]byte{1, 2, 3}}
	deps := ProviderDeps{Store: store, Keys: ring, Users: env.users, Permissions: env.users, Redis: c.Redis(),
		Log: slog.New(slog.NewTextHandler(&lockedWriter{w: logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	for _, f := range edit {
		f(&cfg, &deps)
	}
	env.p, err = NewProvider(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	e := echo.New()
	api, _ := httpx.NewAPI(e, httpx.APIConfig{Verifier: apitest.NewTokens(t).Verifier(t), MaxBodyBytes: 64 << 10})
	env.p.Mount(api)
	h = e
	return env
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// clientSpec describes a test client.
type clientSpec struct {
	tenant     string
	typ        ClientType
	firstParty bool
	admin      bool
	grants     []GrantType
	scopes     []Scope
	redirects  []string
	logout     []string
}

// client creates a client in the store (as the admin API would).
func (e *oidcEnv) client(s clientSpec) (Client, string) {
	e.t.Helper()
	now := time.Now().UTC()
	c := Client{ID: ClientID(ids.New()), Tenant: s.tenant, Name: "Test app", Type: s.typ, RedirectURIs: s.redirects,
		PostLogoutRedirectURIs: s.logout, GrantTypes: s.grants, Scopes: s.scopes, FirstParty: s.firstParty,
		PlatformAdmin: s.admin, Version: 1, CreatedAt: now, UpdatedAt: now}
	if err := c.validate(); err != nil {
		e.t.Fatal(err)
	}
	created, secret, err := e.store.CreateClient(context.Background(), c)
	if err != nil {
		e.t.Fatal(err)
	}
	return created, secret
}

// ccClient is a confidential client_credentials client of tenant.
func (e *oidcEnv) ccClient(tenant string, scopes ...Scope) (Client, string) {
	return e.client(clientSpec{tenant: tenant, typ: ClientConfidential, grants: []GrantType{GrantClientCredentials}, scopes: scopes})
}

// webClient is a confidential code+refresh client of tenant.
func (e *oidcEnv) webClient(tenant string, firstParty bool) (Client, string) {
	return e.client(clientSpec{tenant: tenant, typ: ClientConfidential, firstParty: firstParty,
		grants:    []GrantType{GrantAuthorizationCode, GrantRefreshToken},
		scopes:    []Scope{ScopeOpenID, ScopeProfile, ScopeEmail, ScopeOfflineAccess, "user.read"},
		redirects: []string{"https://app.example/cb"}, logout: []string{"https://app.example/bye"}})
}

// publicClient is a public (native/SPA) code+refresh client of tenant with a loopback redirect.
func (e *oidcEnv) publicClient(tenant string) Client {
	c, _ := e.client(clientSpec{tenant: tenant, typ: ClientPublic, firstParty: true,
		grants:    []GrantType{GrantAuthorizationCode, GrantRefreshToken},
		scopes:    []Scope{ScopeOpenID, ScopeEmail, ScopeOfflineAccess, "user.read"},
		redirects: []string{"http://127.0.0.1/cb"}})
	return c
}

// reply is an HTTP answer.
type reply struct {
	code int
	hdr  http.Header
	body []byte
}

func (r reply) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("%d %q: %v", r.code, r.body, err)
	}
	return m
}

func do(t testing.TB, c *http.Client, req *http.Request) reply {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{code: resp.StatusCode, hdr: resp.Header, body: b}
}

// post sends a form to path (under the issuer) with optional Basic credentials.
func (e *oidcEnv) post(path string, form url.Values, basicID, basicSecret string, hdr ...string) reply {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.issuer+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basicID != "" {
		req.SetBasicAuth(url.QueryEscape(basicID), url.QueryEscape(basicSecret))
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return do(e.t, http.DefaultClient, req)
}

func (e *oidcEnv) get(path string, hdr ...string) reply {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.issuer+path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return do(e.t, http.DefaultClient, req)
}

// clientCredentials gets a token for c.
func (e *oidcEnv) clientCredentials(c Client, secret string, scopes ...string) reply {
	e.t.Helper()
	f := url.Values{"grant_type": {"client_credentials"}}
	if len(scopes) > 0 {
		f.Set("scope", strings.Join(scopes, " "))
	}
	return e.post("/token", f, string(c.ID), secret)
}

// claims verifies a JWT against the provider's JWKS (fetched like a verifier would) and returns
// its claims.
func (e *oidcEnv) claims(raw string) map[string]any {
	e.t.Helper()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(e.get("/jwks").body, &set); err != nil || len(set.Keys) == 0 {
		e.t.Fatalf("jwks: %v", err)
	}
	jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		e.t.Fatalf("not an ES256 JWS: %v", err)
	}
	kid := jws.Signatures[0].Header.KeyID
	keys := set.Key(kid)
	if len(keys) != 1 {
		e.t.Fatalf("kid %q not in the JWKS", kid)
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		e.t.Fatalf("signature: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(payload, &m); err != nil {
		e.t.Fatal(err)
	}
	return m
}

// browser is a user agent with cookies that follows redirects within the server and stops at a
// client's redirect URI.
type browser struct {
	e *oidcEnv
	c *http.Client
}

func (e *oidcEnv) browser() *browser {
	jar, _ := cookiejar.New(nil)
	host := strings.TrimPrefix(e.srv.URL, "http://")
	return &browser{e: e, c: &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		if req.URL.Host != host {
			return http.ErrUseLastResponse
		}
		return nil
	}}}
}

func (b *browser) get(rawURL string) reply {
	b.e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, rawURL, nil)
	return do(b.e.t, b.c, req)
}

func (b *browser) post(path string, form url.Values) reply {
	b.e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, b.e.issuer+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return do(b.e.t, b.c, req)
}

// authorize opens /authorize with params (client_id, redirect_uri, scope, state, PKCE...).
func (b *browser) authorize(params url.Values) reply {
	b.e.t.Helper()
	if params.Get("response_type") == "" {
		params.Set("response_type", "code")
	}
	return b.get(b.e.issuer + "/authorize?" + params.Encode())
}

var (
	hiddenRE = regexp.MustCompile(`name="(authRequestID|csrf)" value="([^"]*)"`)
)

// form returns the hidden fields of a sign-in or consent page.
func form(t testing.TB, r reply) url.Values {
	t.Helper()
	v := url.Values{}
	for _, m := range hiddenRE.FindAllStringSubmatch(string(r.body), -1) {
		v.Set(m[1], m[2])
	}
	if v.Get("authRequestID") == "" || v.Get("csrf") == "" {
		t.Fatalf("no form in %d %s", r.code, r.body)
	}
	return v
}

// signIn submits the sign-in page r with credentials (and the organization, for a platform
// client).
func (b *browser) signIn(r reply, email, password, organization string) reply {
	b.e.t.Helper()
	f := form(b.e.t, r)
	f.Set("email", email)
	f.Set("password", password)
	if organization != "" {
		f.Set("organization", organization)
	}
	return b.post("/login", f)
}

// redirected returns the query of a redirect to a client's redirect URI.
func redirected(t testing.TB, r reply, prefix string) url.Values {
	t.Helper()
	loc := r.hdr.Get("Location")
	if r.code != http.StatusFound && r.code != http.StatusSeeOther || !strings.HasPrefix(loc, prefix) {
		t.Fatalf("want a redirect to %s, got %d %q %s", prefix, r.code, loc, r.body)
	}
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

// pkce is a verifier and its S256 challenge.
func pkce() (verifier, challenge string) {
	verifier = randomToken()
	return verifier, oidc.NewSHACodeChallenge(verifier)
}

// codeParams are /authorize's parameters for client c.
func codeParams(c Client, scope, challenge string) url.Values {
	v := url.Values{"client_id": {string(c.ID)}, "redirect_uri": {c.RedirectURIs[0]}, "scope": {scope}, "state": {"st-" + ids.New()[:8]},
		"nonce": {"n-1"}}
	if challenge != "" {
		v.Set("code_challenge", challenge)
		v.Set("code_challenge_method", "S256")
	}
	return v
}

// exchange redeems code at /token.
func (e *oidcEnv) exchange(c Client, secret, code, verifier string) reply {
	e.t.Helper()
	f := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {c.RedirectURIs[0]}}
	if verifier != "" {
		f.Set("code_verifier", verifier)
	}
	if secret == "" {
		f.Set("client_id", string(c.ID))
		return e.post("/token", f, "", "")
	}
	return e.post("/token", f, string(c.ID), secret)
}

// refresh redeems a refresh token at /token.
func (e *oidcEnv) refresh(c Client, secret, rt string) reply {
	e.t.Helper()
	f := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
	if secret == "" {
		f.Set("client_id", string(c.ID))
		return e.post("/token", f, "", "")
	}
	return e.post("/token", f, string(c.ID), secret)
}

// signedInCode runs the code flow for c in a fresh browser up to the code (first-party clients:
// no consent) and returns the browser, the code and the PKCE verifier.
func (e *oidcEnv) signedInCode(c Client, scope, email, password string) (*browser, string, string) {
	e.t.Helper()
	b := e.browser()
	verifier, challenge := pkce()
	params := codeParams(c, scope, challenge)
	page := b.authorize(params)
	if page.code != http.StatusOK {
		e.t.Fatalf("sign-in page: %d %s", page.code, page.body)
	}
	q := redirected(e.t, b.signIn(page, email, password, ""), c.RedirectURIs[0])
	if q.Get("state") != params.Get("state") || q.Get("code") == "" {
		e.t.Fatalf("callback query %v", q)
	}
	return b, q.Get("code"), verifier
}
