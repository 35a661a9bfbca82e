package tests

import (
	"net/http"
	"testing"

	"golang.org/x/oauth2/clientcredentials"
)

// Two instances of one deployment (the same databases, Redis, Key Vault and issuer): introspection
// caches a token's revocation answer (Redis) and the verified token (in process), yet a token
// revoked through one instance is inactive at once on both — including the one that had just
// answered it active — and the other way round.
func TestIntrospection_TwoInstances_RevokedOnOneInactiveOnBothAtOnce(t *testing.T) {
	one := startServer(t, nil)
	two := startInstance(t, one)
	ops := one.mint("ops", "", true, "tenant.read", "tenant.manage", "client.manage")
	tenant := one.register(slug("intro"), "standard")
	if r := one.call("POST", "/api/tenants/"+tenant+"/provision", one.admin, nil, nil); r.Code != http.StatusOK {
		t.Fatalf("provision: %d %s", r.Code, r.Body)
	}
	c := one.createClient(ops, tenant, map[string]any{"name": "resource-server", "clientType": "confidential",
		"grantTypes": []string{"client_credentials"}, "scopes": []string{"tenant.read"}})
	for i, pair := range [][2]*server{{one, two}, {two, one}} {
		revoker, other := pair[0], pair[1]
		cc := clientcredentials.Config{ClientID: c.id, ClientSecret: c.secret, TokenURL: other.base + "/api/connect/token",
			Scopes: []string{"tenant.read"}}
		tok, err := cc.Token(t.Context())
		if err != nil {
			t.Fatalf("round %d: client_credentials: %v", i, err)
		}
		for range 2 { // the second answer is the cached one
			for _, s := range []*server{other, revoker} {
				if m := s.introspect(c, tok.AccessToken); m["active"] != true || m["tenant_id"] != tenant {
					t.Fatalf("round %d: before the revocation, on %s: %v", i, s.base, m)
				}
			}
		}
		if code := revoker.revoke(c, tok.AccessToken); code != http.StatusOK {
			t.Fatalf("round %d: revoke: %d", i, code)
		}
		for _, s := range []*server{other, revoker} {
			if m := s.introspect(c, tok.AccessToken); m["active"] != false || len(m) != 1 {
				t.Fatalf("round %d: revoked on %s, introspected on %s: %v", i, revoker.base, s.base, m)
			}
		}
	}
}
