package authz

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"spine/shared/ids"
	"spine/shared/tenancy"
)

// Wrong password, unknown address, malformed address: one page, one status, one message — the
// sign-in never tells whether an address exists. The page keeps the address typed, never the
// password, and carries its CSRF token; it may not be framed or cached.
func TestSignIn_401_FailuresAreIndistinguishable(t *testing.T) {
	e := newOIDC(t)
	tenant := newTenant()
	c, _ := e.webClient(tenant, true)
	e.users.add(tenant, "gus@example.com", "correct horse battery", "")
	b := e.browser()
	page := b.authorize(codeParams(c, "openid", ""))
	if page.code != http.StatusOK || page.hdr.Get("X-Frame-Options") != "DENY" || page.hdr.Get("Cache-Control") != "no-store" ||
		!strings.Contains(page.hdr.Get("Content-Security-Policy"), "frame-ancestors 'none'") || strings.Contains(string(page.body), "organization") {
		t.Fatalf("sign-in page: %d %v %s", page.code, page.hdr, page.body)
	}
	var bodies []string
	for _, email := range []string{"gus@example.com", "nobody@example.com", "not an address"} {
		r := b.signIn(page, email, "wrong horse battery", "")
		if r.code != http.StatusUnauthorized || !strings.Contains(string(r.body), msgCredentials) || strings.Contains(string(r.body), "wrong horse") {
			t.Fatalf("%s: %d %s", email, r.code, r.body)
		}
		bodies = append(bodies, strings.Replace(string(r.body), `value="`+email+`"`, "", 1))
	}
	if bodies[0] != bodies[1] || bodies[1] != bodies[2] {
		t.Fatalf("the failures differ:\n%s\n%s", bodies[0], bodies[1])
	}
	// The same request still signs in with the right password.
	q := redirected(t, b.signIn(page, "gus@example.com", "correct horse battery", ""), c.RedirectURIs[0])
	if q.Get("code") == "" {
		t.Fatalf("callback %v", q)
	}
}

// The forms are bound: a POST without the auth request's CSRF token is refused, and a sign-in
// link opened in another browser (no binding cookie from its /authorize) is refused — on the page
// and at the callback.
func TestSignIn_403_CSRFAndOtherBrowserRefused(t *testing.T) {
	e := newOIDC(t)
	tenant := newTenant()
	c, _ := e.webClient(tenant, true)
	e.users.add(tenant, "hal@example.com", "correct horse battery", "")
	b := e.browser()
	page := b.authorize(codeParams(c, "openid", ""))
	f := form(t, page)
	f.Set("csrf", "forged")
	f.Set("email", "hal@example.com")
	f.Set("password", "correct horse battery")
	if r := b.post("/login", f); r.code != http.StatusForbidden || strings.Contains(string(r.body), "code=") {
		t.Fatalf("forged CSRF: %d %s", r.code, r.body)
	}
	// The victim's browser opens the attacker's sign-in link.
	id := form(t, page).Get("authRequestID")
	victim := e.browser()
	if r := victim.get(e.issuer + "/login?authRequestID=" + id); r.code != http.StatusBadRequest || !strings.Contains(string(r.body), "another browser") {
		t.Fatalf("another browser's page: %d %s", r.code, r.body)
	}
	if r := victim.signIn(page, "hal@example.com", "correct horse battery", ""); r.code != http.StatusBadRequest {
		t.Fatalf("another browser's sign-in: %d %s", r.code, r.body)
	}
	// The request itself completes in its own browser, then its callback is refused elsewhere.
	if q := redirected(t, b.signIn(page, "hal@example.com", "correct horse battery", ""), c.RedirectURIs[0]); q.Get("code") == "" {
		t.Fatalf("own browser: %v", q)
	}
	if r := victim.get(e.issuer + "/authorize/callback?id=" + id); r.code != http.StatusBadRequest || strings.Contains(r.hdr.Get("Location"), "code=") {
		t.Fatalf("another browser's callback: %d %s %s", r.code, r.hdr.Get("Location"), r.body)
	}
}

// The sign-in session: a second authorization in the same browser for the same tenant skips the
// password; prompt=login asks again; another tenant's client asks; prompt=none without a session
// is login_required.
func TestSignIn_SessionSkipsPassword_SameTenantOnly(t *testing.T) {
	e := newOIDC(t)
	tenant, other := newTenant(), newTenant()
	c, _ := e.webClient(tenant, true)
	c2, _ := e.webClient(tenant, true)
	oc, _ := e.webClient(other, true)
	e.users.add(tenant, "ida@example.com", "correct horse battery", "")
	b, _, _ := e.signedInCode(c, "openid", "ida@example.com", "correct horse battery")

	if q := redirected(t, b.authorize(codeParams(c2, "openid", "")), c2.RedirectURIs[0]); q.Get("code") == "" {
		t.Fatalf("same tenant, signed in: %v", q)
	}
	v := codeParams(c2, "openid", "")
	v.Set("prompt", "login")
	if r := b.authorize(v); r.code != http.StatusOK || !strings.Contains(string(r.body), `name="password"`) {
		t.Fatalf("prompt=login: %d %s", r.code, r.body)
	}
	if r := b.authorize(codeParams(oc, "openid", "")); r.code != http.StatusOK || !strings.Contains(string(r.body), `name="password"`) {
		t.Fatalf("another tenant's client: %d %s", r.code, r.body)
	}
	v = codeParams(c, "openid", "")
	v.Set("prompt", "none")
	if q := redirected(t, e.browser().authorize(v), c.RedirectURIs[0]); q.Get("error") != "login_required" || q.Get("state") != v.Get("state") {
		t.Fatalf("prompt=none without a session: %v", q)
	}
	if q := redirected(t, b.authorize(v), c.RedirectURIs[0]); q.Get("code") == "" {
		t.Fatalf("prompt=none with a session: %v", q)
	}
	// The session cookie is HttpOnly, SameSite=Lax and scoped to the connect path.
	u, _ := url.Parse(e.issuer + "/login")
	if len(b.c.Jar.Cookies(u)) != 2 {
		t.Fatalf("cookies %v", b.c.Jar.Cookies(u))
	}
}

// A third-party client asks for consent once: allow records it (the next sign-in skips the page),
// deny ends the request with access_denied at the client.
func TestConsent_ThirdPartyClient_AllowOnceDenyIsAccessDenied(t *testing.T) {
	e := newOIDC(t)
	tenant := newTenant()
	c, secret := e.webClient(tenant, false)
	e.users.grant(e.users.add(tenant, "jo@example.com", "correct horse battery", ""), "user.read")
	b := e.browser()
	params := codeParams(c, "openid user.read", "")
	consent := b.signIn(b.authorize(params), "jo@example.com", "correct horse battery", "")
	if consent.code != http.StatusOK || !strings.Contains(string(consent.body), "user.read") || !strings.Contains(string(consent.body), `value="deny"`) {
		t.Fatalf("consent page: %d %s", consent.code, consent.body)
	}
	deny := form(t, consent)
	deny.Set("decision", "deny")
	if q := redirected(t, b.post("/consent", deny), c.RedirectURIs[0]); q.Get("error") != "access_denied" || q.Get("state") != params.Get("state") {
		t.Fatalf("deny: %v", q)
	}
	params = codeParams(c, "openid user.read", "")
	consent = b.authorize(params) // signed in already: straight to consent
	allow := form(t, consent)
	allow.Set("decision", "allow")
	q := redirected(t, b.post("/consent", allow), c.RedirectURIs[0])
	if r := e.exchange(c, secret, q.Get("code"), ""); r.code != http.StatusOK {
		t.Fatalf("exchange after consent: %d %s", r.code, r.body)
	}
	// Recorded: the same scopes need no page; a new scope asks again.
	if q := redirected(t, b.authorize(codeParams(c, "user.read", "")), c.RedirectURIs[0]); q.Get("code") == "" {
		t.Fatalf("consented scopes: %v", q)
	}
	if r := b.authorize(codeParams(c, "openid email", "")); r.code != http.StatusOK || !strings.Contains(string(r.body), "email") {
		t.Fatalf("a new scope: %d %s", r.code, r.body)
	}
}

// A platform client serves every tenant: its page asks for the organization (the tenant's id), and
// the tokens name the tenant the user signed in to.
func TestSignIn_PlatformClient_OrganizationNamesTheTenant(t *testing.T) {
	e := newOIDC(t)
	tenant := newTenant()
	c, secret := e.webClient(PlatformTenant, true)
	uid := e.users.add(tenant, "kim@example.com", "correct horse battery", "Kim")
	b := e.browser()
	page := b.authorize(codeParams(c, "openid offline_access", ""))
	if !strings.Contains(string(page.body), `name="organization"`) {
		t.Fatalf("no organization field: %s", page.body)
	}
	if r := b.signIn(page, "kim@example.com", "correct horse battery", "not-a-tenant"); r.code != http.StatusUnauthorized ||
		!strings.Contains(string(r.body), msgCredentials) {
		t.Fatalf("a malformed organization: %d %s", r.code, r.body)
	}
	if r := b.signIn(page, "kim@example.com", "correct horse battery", newTenant()); r.code != http.StatusUnauthorized {
		t.Fatalf("another organization: %d %s", r.code, r.body)
	}
	q := redirected(t, b.signIn(page, "kim@example.com", "correct horse battery", tenant), c.RedirectURIs[0])
	m := e.exchange(c, secret, q.Get("code"), "").json(t)
	if at := e.claims(m["access_token"].(string)); at["tenant_id"] != tenant || at["sub"] != uid || at["platform_admin"] != nil {
		t.Fatalf("access token %v", at)
	}
	r := e.refresh(c, secret, m["refresh_token"].(string))
	if at := e.claims(r.json(t)["access_token"].(string)); at["tenant_id"] != tenant {
		t.Fatalf("refreshed %v", at)
	}
}

// Redis down: /authorize answers the client temporarily_unavailable (never a code), the sign-in
// page is a clean 503 page, and client_credentials still works (it needs no Redis).
func TestSignIn_RedisDown_CleanErrorsNeverAToken(t *testing.T) {
	down := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialerRetries: 1})
	t.Cleanup(func() { _ = down.Close() })
	e := newOIDC(t, func(_ *ProviderConfig, d *ProviderDeps) { d.Redis = down })
	tenant := newTenant()
	c, _ := e.webClient(tenant, true)
	params := codeParams(c, "openid", "")
	q := redirected(t, e.browser().authorize(params), c.RedirectURIs[0])
	if q.Get("error") != "temporarily_unavailable" || q.Get("code") != "" || q.Get("state") != params.Get("state") {
		t.Fatalf("authorize: %v", q)
	}
	if r := e.browser().get(e.issuer + "/login?authRequestID=" + ids.New()); r.code != http.StatusServiceUnavailable ||
		!strings.Contains(string(r.body), msgUnavailable) || strings.Contains(string(r.body), "127.0.0.1:1") {
		t.Fatalf("sign-in page: %d %s", r.code, r.body)
	}
	cc, secret := e.ccClient(tenant, "tenant.read")
	if r := e.clientCredentials(cc, secret); r.code != http.StatusOK {
		t.Fatalf("client_credentials without Redis: %d %s", r.code, r.body)
	}
	// No Redis configured at all: the same.
	e2 := newOIDC(t, func(_ *ProviderConfig, d *ProviderDeps) { d.Redis = nil })
	c2, _ := e2.webClient(tenant, true)
	if q := redirected(t, e2.browser().authorize(codeParams(c2, "openid", "")), c2.RedirectURIs[0]); q.Get("error") != "temporarily_unavailable" {
		t.Fatalf("no Redis: %v", q)
	}
}

// The auth request lives in Redis under the platform-level key {p}:authz:authreq:<id>, and after its code is issued it stays
// for the code's window (so a replay finds its tenant); the session under the tenant's hash tag,
// by the SHA-256 of the cookie.
func TestState_KeysAndLifetimes(t *testing.T) {
	e := newOIDC(t)
	tenant := newTenant()
	c, secret := e.webClient(tenant, true)
	e.users.add(tenant, "lu@example.com", "correct horse battery", "")
	b := e.browser()
	page := b.authorize(codeParams(c, "openid", ""))
	id := form(t, page).Get("authRequestID")
	rdb := e.p.state.rdb
	ctx := context.Background()
	if ttl := rdb.TTL(ctx, "{p}:authz:authreq:"+id).Val(); ttl <= 0 || ttl > authRequestTTL {
		t.Fatalf("auth request TTL %v", ttl)
	}
	q := redirected(t, b.signIn(page, "lu@example.com", "correct horse battery", ""), c.RedirectURIs[0])
	if r := e.exchange(c, secret, q.Get("code"), ""); r.code != http.StatusOK {
		t.Fatal(r.code)
	}
	if ttl := rdb.TTL(ctx, "{p}:authz:authreq:"+id).Val(); ttl <= 0 || ttl > e.p.cfg.CodeTTL+2*time.Minute {
		t.Fatalf("after the exchange, the auth request's TTL is %v (want the code's window)", ttl)
	}
	u, _ := url.Parse(e.issuer + "/login")
	var cookie string
	for _, ck := range b.c.Jar.Cookies(u) {
		if ck.Name == sessionCookie {
			cookie = ck.Value
		}
	}
	keys := rdb.Keys(ctx, "{t:"+tenant+"}:authz:session:*").Val()
	if len(keys) != 1 || strings.Contains(keys[0], cookie[37:]) || keys[0] != sessionKey(tenancy.MustParseTenantID(tenant), cookie) {
		t.Fatalf("session keys %v for cookie %q", keys, cookie)
	}
}

// /endsession with a registered post_logout_redirect_uri ends the browser's session (the next
// authorization asks for the password again) and clears its cookie; an unregistered one is refused
// and ends nothing.
func TestEndSession_ClearsTheSession_RegisteredRedirectOnly(t *testing.T) {
	e := newOIDC(t)
	tenant := newTenant()
	c, secret := e.webClient(tenant, true)
	e.users.add(tenant, "mo@example.com", "correct horse battery", "")
	b, code, verifier := e.signedInCode(c, "openid", "mo@example.com", "correct horse battery")
	idToken := e.exchange(c, secret, code, verifier).json(t)["id_token"].(string)

	bad := url.Values{"id_token_hint": {idToken}, "post_logout_redirect_uri": {"https://evil.example/"}}
	if r := b.get(e.issuer + "/endsession?" + bad.Encode()); r.code != http.StatusBadRequest || r.hdr.Get("Location") != "" {
		t.Fatalf("unregistered post-logout URI: %d %s", r.code, r.body)
	}
	if q := redirected(t, b.authorize(codeParams(c, "openid", "")), c.RedirectURIs[0]); q.Get("code") == "" {
		t.Fatalf("still signed in after a refused logout: %v", q)
	}
	good := url.Values{"id_token_hint": {idToken}, "post_logout_redirect_uri": {"https://app.example/bye"}, "state": {"s1"}}
	q := redirected(t, b.get(e.issuer+"/endsession?"+good.Encode()), "https://app.example/bye")
	if q.Get("state") != "s1" {
		t.Fatalf("logout redirect %v", q)
	}
	if r := b.authorize(codeParams(c, "openid", "")); r.code != http.StatusOK || !strings.Contains(string(r.body), `name="password"`) {
		t.Fatalf("after logout: %d %s", r.code, r.body)
	}
}

// NewProvider: the issuer must be <base>/api/connect, https or http on loopback (op's insecure
// mode only then), and the access-token TTL at most 15 minutes.
func TestNewProvider_RefusesIssuersAndTTLs(t *testing.T) {
	e := newOIDC(t)
	deps := ProviderDeps{Store: e.store, Keys: e.p.storage.keys, Users: e.users, Permissions: e.users, Log: slog.New(slog.DiscardHandler)}
	for _, cfg := range []ProviderConfig{
		{Issuer: "https://spine.example/connect", Audience: "a"},
		{Issuer: "https://spine.example/api/connect/", Audience: "a"},
		{Issuer: "http://spine.example/api/connect", Audience: "a"},
		{Issuer: "https://spine.example/api/connect?x=1", Audience: "a"},
		{Issuer: "https://spine.example/api/connect", Audience: ""},
		{Issuer: "https://spine.example/api/connect", Audience: "a", AccessTokenTTL: MaxAccessTokenTTL + 1},
	} {
		if _, err := NewProvider(cfg, deps); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
	noPerms := deps
	noPerms.Permissions = nil
	if _, err := NewProvider(ProviderConfig{Issuer: "https://spine.example/api/connect", Audience: "a"}, noPerms); err == nil {
		t.Error("a provider without Permissions accepted")
	}
	for _, iss := range []string{"https://spine.example/api/connect", "http://localhost:7071/api/connect", "http://[::1]:7071/api/connect"} {
		if _, err := NewProvider(ProviderConfig{Issuer: iss, Audience: "a"}, deps); err != nil {
			t.Errorf("%s: %v", iss, err)
		}
	}
}
