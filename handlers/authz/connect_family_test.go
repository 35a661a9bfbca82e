package authz

import (
	"net/http"
	"net/url"
	"testing"
)

// introspector is a resource server of tenant: a confidential client_credentials client that
// introspects tokens.
func (e *oidcEnv) introspector(tenant string) func(token string) map[string]any {
	rs, secret := e.ccClient(tenant, "tenant.read")
	return func(token string) map[string]any {
		e.t.Helper()
		r := e.post("/introspect", url.Values{"token": {token}}, string(rs.ID), secret)
		if r.code != http.StatusOK {
			e.t.Fatalf("introspect: %d %s", r.code, r.body)
		}
		return r.json(e.t)
	}
}

// A reused refresh token revokes its family, and with it the access tokens issued from that
// family (by the code and by every refresh): introspection and userinfo stop accepting them at
// once, even though each was introspected (and its answer cached) before. Another sign-in's
// family, and a client's own token (which names no family), stay active.
func TestIntrospection_RefreshReuse_FamilyAccessTokensInactive(t *testing.T) {
	e := newOIDC(t)
	tenant := newTenant()
	c, secret := e.webClient(tenant, true)
	e.users.add(tenant, "fa@example.com", "correct horse battery", "")
	introspect := e.introspector(tenant)

	_, code, verifier := e.signedInCode(c, "openid offline_access", "fa@example.com", "correct horse battery")
	first := e.exchange(c, secret, code, verifier).json(t)
	at1, rt1 := first["access_token"].(string), first["refresh_token"].(string)
	second := e.refresh(c, secret, rt1).json(t)
	at2 := second["access_token"].(string)
	fam, _ := e.claims(at1)[famClaim].(string)
	if fam == "" || e.claims(at2)[famClaim] != fam {
		t.Fatalf("the family claim: %v, then %v", e.claims(at1)[famClaim], e.claims(at2)[famClaim])
	}
	_, code2, verifier2 := e.signedInCode(c, "openid offline_access", "fa@example.com", "correct horse battery")
	r2 := e.exchange(c, secret, code2, verifier2)
	otherFamily, _ := r2.json(t)["access_token"].(string)
	if otherFamily == "" {
		t.Fatalf("another sign-in: %d %s %s", r2.code, r2.body, e.logs)
	}
	cc, ccSecret := e.ccClient(tenant, "tenant.read")
	own := e.clientCredentials(cc, ccSecret).json(t)["access_token"].(string)
	if _, ok := e.claims(own)[famClaim]; ok {
		t.Fatalf("a client_credentials token names a family: %v", e.claims(own))
	}
	for _, tok := range []string{at1, at2, otherFamily, own} {
		for range 2 { // the second answer comes from the caches
			if m := introspect(tok); m["active"] != true {
				t.Fatalf("before the reuse: %v", m)
			}
		}
	}
	userinfo := func(tok string) int {
		t.Helper()
		return e.get("/userinfo", "Authorization", "Bearer "+tok).code
	}
	if got := userinfo(at2); got != http.StatusOK {
		t.Fatalf("userinfo before the reuse: %d", got)
	}

	r := e.refresh(c, secret, rt1)
	if r.code != http.StatusBadRequest || r.json(t)["error"] != "invalid_grant" {
		t.Fatalf("reuse: %d %s", r.code, r.body)
	}
	for i, tok := range []string{at1, at2} {
		if m := introspect(tok); m["active"] != false || len(m) != 1 {
			t.Fatalf("access token %d of the revoked family: %v", i+1, m)
		}
	}
	if got := userinfo(at2); got != http.StatusUnauthorized {
		t.Fatalf("userinfo after the reuse: %d", got)
	}
	for _, tok := range []string{otherFamily, own} {
		if m := introspect(tok); m["active"] != true {
			t.Fatalf("a token of no revoked family: %v", m)
		}
	}
}

// A replayed code revokes what it issued: the access token of its first redemption goes
// inactive at once, with offline_access (the family's refresh tokens are revoked) and without it
// (no refresh token: the code itself marks the family).
func TestIntrospection_CodeReplay_IssuedAccessTokenInactive(t *testing.T) {
	for _, scope := range []string{"openid offline_access", "openid"} {
		t.Run(scope, func(t *testing.T) {
			e := newOIDC(t)
			tenant := newTenant()
			c, secret := e.webClient(tenant, true)
			e.users.add(tenant, "cr@example.com", "correct horse battery", "")
			introspect := e.introspector(tenant)
			_, code, verifier := e.signedInCode(c, scope, "cr@example.com", "correct horse battery")
			at := e.exchange(c, secret, code, verifier).json(t)["access_token"].(string)
			for range 2 {
				if m := introspect(at); m["active"] != true {
					t.Fatalf("before the replay: %v", m)
				}
			}
			if r := e.exchange(c, secret, code, verifier); r.code != http.StatusBadRequest || r.json(t)["error"] != "invalid_grant" {
				t.Fatalf("replay: %d %s", r.code, r.body)
			}
			if m := introspect(at); m["active"] != false {
				t.Fatalf("the first redemption's access token after the replay: %v", m)
			}
		})
	}
}

// A deleted client's access tokens — its own (client_credentials) and its users' — are inactive
// at once, though each was introspected (and cached) before; another client's stay active.
func TestIntrospection_DeletedClient_TokensInactive(t *testing.T) {
	e := newOIDC(t)
	tenant := newTenant()
	introspect := e.introspector(tenant)
	cc, ccSecret := e.ccClient(tenant, "tenant.read")
	kept, keptSecret := e.ccClient(tenant, "tenant.read")
	web, webSecret := e.webClient(tenant, true)
	e.users.add(tenant, "dc@example.com", "correct horse battery", "")
	_, code, verifier := e.signedInCode(web, "openid", "dc@example.com", "correct horse battery")
	userToken := e.exchange(web, webSecret, code, verifier).json(t)["access_token"].(string)
	ownToken := e.clientCredentials(cc, ccSecret).json(t)["access_token"].(string)
	keptToken := e.clientCredentials(kept, keptSecret).json(t)["access_token"].(string)
	for _, tok := range []string{userToken, ownToken, keptToken} {
		for range 2 {
			if m := introspect(tok); m["active"] != true {
				t.Fatalf("before the deletion: %v", m)
			}
		}
	}
	for _, id := range []ClientID{cc.ID, web.ID} {
		if err := e.store.DeleteClient(t.Context(), tenant, id, nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, tok := range []string{userToken, ownToken} {
		if m := introspect(tok); m["active"] != false {
			t.Fatalf("a deleted client's token: %v", m)
		}
	}
	if m := introspect(keptToken); m["active"] != true {
		t.Fatalf("another client's token: %v", m)
	}
}
