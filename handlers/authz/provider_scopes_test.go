package authz

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// What a user's token may carry: the OpenID Connect scopes the client may have, and an API scope
// only while both the client may have it and the user holds the permission of that code.

// scopeClient is a confidential code+refresh client of tenant allowed scopes.
func (e *oidcEnv) scopeClient(tenant string, firstParty bool, scopes ...Scope) (Client, string) {
	return e.client(clientSpec{tenant: tenant, typ: ClientConfidential, firstParty: firstParty,
		grants: []GrantType{GrantAuthorizationCode, GrantRefreshToken}, scopes: scopes,
		redirects: []string{"https://app.example/cb"}, logout: []string{"https://app.example/bye"}})
}

// tokens redeems code and fails the test unless it answers 200.
func (e *oidcEnv) tokens(c Client, secret, code, verifier string) map[string]any {
	e.t.Helper()
	r := e.exchange(c, secret, code, verifier)
	if r.code != http.StatusOK {
		e.t.Fatalf("exchange: %d %s", r.code, r.body)
	}
	return r.json(e.t)
}

// refreshed refreshes rt (with scope, unless "") and fails the test unless it answers 200: the
// access token's scope claim, the response's scope, and the new refresh token.
func (e *oidcEnv) refreshed(c Client, secret, rt, scope string) (atScope, respScope, next string) {
	e.t.Helper()
	f := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
	if scope != "" {
		f.Set("scope", scope)
	}
	r := e.post("/token", f, string(c.ID), secret)
	if r.code != http.StatusOK {
		e.t.Fatalf("refresh: %d %s", r.code, r.body)
	}
	m := r.json(e.t)
	at, _ := e.claims(m["access_token"].(string))["scope"].(string)
	rs, _ := m["scope"].(string)
	return at, rs, m["refresh_token"].(string)
}

// A member's token holds the API scopes its roles grant and no other, whatever the client may
// have and asked for; the OpenID Connect scopes stay. The refresh tokens' family holds no more
// (a permission given after the sign-in is not in its tokens), and a third-party client's consent
// page asks only for what the user holds. identity failing: server_error at the client, no code.
func TestCodeFlow_Member_TokenScopesBoundedByRolePermissions(t *testing.T) {
	e := newOIDC(t)
	tenant := newTenant()
	all := []Scope{ScopeOpenID, ScopeEmail, ScopeOfflineAccess, "tenant.read", "user.read", "role.read", "user.manage", "role.manage"}
	c, secret := e.scopeClient(tenant, true, all...)
	uid := e.users.add(tenant, "mem@example.com", "correct horse battery", "Mem")
	e.users.grant(uid, "tenant.read", "user.read", "role.read") // the member role

	_, code, verifier := e.signedInCode(c, "openid email offline_access tenant.read user.read user.manage role.manage",
		"mem@example.com", "correct horse battery")
	m := e.tokens(c, secret, code, verifier)
	const want = "openid email offline_access tenant.read user.read"
	if at := e.claims(m["access_token"].(string)); at["scope"] != want || m["scope"] != want {
		t.Fatalf("access token scope %q, response scope %q, want %q", at["scope"], m["scope"], want)
	}
	// Given user.manage after the sign-in: the family's grant was decided at the sign-in.
	e.users.grant(uid, "user.manage")
	if at, rs, _ := e.refreshed(c, secret, m["refresh_token"].(string), ""); at != want || rs != want {
		t.Fatalf("refreshed scope %q (response %q), want %q", at, rs, want)
	}

	// A third-party client: the consent page lists only what the user holds.
	tp, _ := e.scopeClient(tenant, false, all...)
	b := e.browser()
	consent := b.signIn(b.authorize(codeParams(tp, "openid tenant.read role.manage", "")), "mem@example.com", "correct horse battery", "")
	if consent.code != http.StatusOK || !strings.Contains(string(consent.body), "<li>tenant.read</li>") ||
		strings.Contains(string(consent.body), "role.manage") {
		t.Fatalf("consent page: %d %s", consent.code, consent.body)
	}

	// identity cannot answer: the client gets server_error, never a wider code.
	e.users.failPermissions(errors.New("identity unreachable"))
	params := codeParams(c, "openid tenant.read", "")
	b2 := e.browser()
	q := redirected(t, b2.signIn(b2.authorize(params), "mem@example.com", "correct horse battery", ""), c.RedirectURIs[0])
	if q.Get("error") != "server_error" || q.Get("code") != "" || q.Get("state") != params.Get("state") ||
		strings.Contains(q.Get("error_description"), "unreachable") {
		t.Fatalf("permissions unavailable: %v", q)
	}
	// Only OpenID Connect scopes asked: identity is not asked, the sign-in completes. (Its
	// session was made before the failure: the auth request above ended, the session did not.)
	b3 := e.browser()
	if q := redirected(t, b3.signIn(b3.authorize(codeParams(c, "openid email", "")), "mem@example.com", "correct horse battery", ""),
		c.RedirectURIs[0]); q.Get("code") == "" {
		t.Fatalf("OpenID scopes only: %v", q)
	}
}

// A permission revoked after the sign-in (its role taken away) is gone from the next refreshed
// access token; given back, it returns (within the family's grant). identity failing on refresh:
// server_error, and the refresh token is not spent.
func TestRefresh_PermissionRemoved_ScopeDropped(t *testing.T) {
	e := newOIDC(t)
	tenant := newTenant()
	c, secret := e.scopeClient(tenant, true, ScopeOpenID, ScopeOfflineAccess, "tenant.read", "user.read")
	uid := e.users.add(tenant, "rev@example.com", "correct horse battery", "")
	e.users.grant(uid, "tenant.read", "user.read")
	_, code, verifier := e.signedInCode(c, "openid offline_access tenant.read user.read", "rev@example.com", "correct horse battery")
	m := e.tokens(c, secret, code, verifier)
	if at := e.claims(m["access_token"].(string)); at["scope"] != "openid offline_access tenant.read user.read" {
		t.Fatalf("first token scope %v", at["scope"])
	}

	e.users.revoke(uid, "user.read")
	at, rs, rt := e.refreshed(c, secret, m["refresh_token"].(string), "")
	if at != "openid offline_access tenant.read" || rs != at {
		t.Fatalf("after the revocation: token scope %q, response scope %q", at, rs)
	}

	e.users.failPermissions(errors.New("identity unreachable"))
	r := e.refresh(c, secret, rt)
	if r.code != http.StatusInternalServerError || r.json(t)["error"] != "server_error" || strings.Contains(string(r.body), "unreachable") {
		t.Fatalf("permissions unavailable: %d %s", r.code, r.body)
	}
	e.users.failPermissions(nil)

	e.users.grant(uid, "user.read")
	if at, _, _ := e.refreshed(c, secret, rt, ""); at != "openid offline_access tenant.read user.read" {
		t.Fatalf("given back (and the token not spent by the failure): scope %q", at)
	}
}

// A scope the client lost after the sign-in is in no token the family issues next: not by
// default, not when asked for (invalid_scope), and not in the successor refresh token, even once
// the client has it again.
func TestRefresh_ClientScopeRemoved_NotInNewTokens(t *testing.T) {
	e := newOIDC(t)
	tenant := newTenant()
	c, secret := e.scopeClient(tenant, true, ScopeOpenID, ScopeOfflineAccess, "tenant.read", "user.read")
	uid := e.users.add(tenant, "cl@example.com", "correct horse battery", "")
	e.users.grant(uid, "tenant.read", "user.read")
	_, code, verifier := e.signedInCode(c, "openid offline_access tenant.read user.read", "cl@example.com", "correct horse battery")
	rt := e.tokens(c, secret, code, verifier)["refresh_token"].(string)

	setScopes := func(scopes ...Scope) {
		t.Helper()
		if _, err := e.store.UpdateClient(context.Background(), tenant, c.ID, nil, func(cl *Client) error {
			cl.Scopes = scopes
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	setScopes(ScopeOpenID, ScopeOfflineAccess, "tenant.read")
	if r := e.post("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "scope": {"user.read"}},
		string(c.ID), secret); r.code != http.StatusBadRequest || r.json(t)["error"] != "invalid_scope" {
		t.Fatalf("asking for the lost scope: %d %s", r.code, r.body)
	}
	at, rs, rt2 := e.refreshed(c, secret, rt, "")
	if at != "openid offline_access tenant.read" || rs != at {
		t.Fatalf("after the client lost user.read: token scope %q, response scope %q", at, rs)
	}
	stored, err := e.store.RefreshTokenByValue(context.Background(), rt2)
	if err != nil || strings.Join(stored.Scopes, " ") != "openid offline_access tenant.read" {
		t.Fatalf("successor's grant %v %v", stored.Scopes, err)
	}
	setScopes(ScopeOpenID, ScopeOfflineAccess, "tenant.read", "user.read")
	if at, _, _ := e.refreshed(c, secret, rt2, ""); at != "openid offline_access tenant.read" {
		t.Fatalf("the client given user.read back: scope %q (the family's grant was narrowed)", at)
	}
}

// A refresh-token family ends RefreshFamilyLifetime after its sign-in: no refresh token of it
// expires later, a refresh within it works, and one after it is invalid_grant, however recently
// the family rotated. The default is 30 days.
func TestRefresh_FamilyPastMaxLifetime_InvalidGrant(t *testing.T) {
	if d := newOIDC(t).p.cfg.RefreshFamilyLifetime; d != 30*24*time.Hour {
		t.Fatalf("default family lifetime %v", d)
	}
	clk := &testClock{}
	e := newOIDC(t, func(cfg *ProviderConfig, _ *ProviderDeps) { cfg.Now = clk.now; cfg.RefreshFamilyLifetime = time.Hour })
	tenant := newTenant()
	c, secret := e.webClient(tenant, true)
	e.users.add(tenant, "old@example.com", "correct horse battery", "")
	_, code, verifier := e.signedInCode(c, "openid offline_access", "old@example.com", "correct horse battery")
	rt := e.tokens(c, secret, code, verifier)["refresh_token"].(string)
	first, err := e.store.RefreshTokenByValue(context.Background(), rt)
	if err != nil {
		t.Fatal(err)
	}
	end := first.AuthTime.Add(time.Hour)
	if first.ExpiresAt.After(end) {
		t.Fatalf("the first refresh token expires %v, after the family's end %v", first.ExpiresAt, end)
	}

	clk.move(50 * time.Minute)
	_, _, rt2 := e.refreshed(c, secret, rt, "")
	next, err := e.store.RefreshTokenByValue(context.Background(), rt2)
	if err != nil || next.ExpiresAt.After(end) || !next.AuthTime.Equal(first.AuthTime) {
		t.Fatalf("successor expires %v (family ends %v), auth_time %v: %v", next.ExpiresAt, end, next.AuthTime, err)
	}

	clk.move(11 * time.Minute)
	if r := e.refresh(c, secret, rt2); r.code != http.StatusBadRequest || r.json(t)["error"] != "invalid_grant" {
		t.Fatalf("past the family's lifetime: %d %s", r.code, r.body)
	}
}

// A client without the email scope never gets the email claim, asked for or not (nor phone or
// address, which no client has): the ID token, the access token's scope and userinfo all lack it.
// A request with no scope the client may have is invalid_scope.
func TestAuthorize_ClientWithoutEmailScope_NoEmailClaim(t *testing.T) {
	e := newOIDC(t)
	tenant := newTenant()
	c, secret := e.scopeClient(tenant, true, ScopeOpenID, ScopeProfile, ScopeOfflineAccess)
	e.users.add(tenant, "nem@example.com", "correct horse battery", "Nem")
	_, code, verifier := e.signedInCode(c, "openid profile email phone address", "nem@example.com", "correct horse battery")
	m := e.tokens(c, secret, code, verifier)
	id := e.claims(m["id_token"].(string))
	if id["name"] != "Nem" || id["email"] != nil || id["phone_number"] != nil || id["address"] != nil {
		t.Fatalf("ID token %v", id)
	}
	at := m["access_token"].(string)
	if cl := e.claims(at); cl["scope"] != "openid profile" || m["scope"] != "openid profile" {
		t.Fatalf("access token scope %v, response scope %v", cl["scope"], m["scope"])
	}
	info := e.get("/userinfo", "Authorization", "Bearer "+at)
	if info.code != http.StatusOK || info.json(t)["email"] != nil || info.json(t)["name"] != "Nem" {
		t.Fatalf("userinfo: %d %s", info.code, info.body)
	}

	params := codeParams(c, "email phone", "")
	if q := redirected(t, e.browser().authorize(params), c.RedirectURIs[0]); q.Get("error") != "invalid_scope" || q.Get("state") != params.Get("state") {
		t.Fatalf("no allowed scope: %v", q)
	}
}
