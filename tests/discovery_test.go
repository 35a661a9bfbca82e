package tests

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"golang.org/x/oauth2/clientcredentials"
)

// An instance without the authorization server finds its keys through discovery
// (<issuer>/.well-known/openid-configuration → jwks_uri) on the instance that runs it. It starts
// before that instance listens: it starts anyway, refuses tokens with 401 (never 500) until the
// keys load, then accepts the real server's tokens, which it cannot have any other way (it trusts
// no JWKS file).
func TestDiscovery_AnInstanceWithoutAuthzVerifiesTheServersTokens_StartingFirst(t *testing.T) {
	port := freePort(t)
	issuer := fmt.Sprintf("http://127.0.0.1:%d/api/connect", port)
	api := startServer(t, map[string]string{"SPINE_SERVICES": "tenants,identity,audit",
		"SPINE_AUTH_ISSUER": issuer, "SPINE_AUTH_JWKS_FILE": "", "SPINE_KEYVAULT_URL": "", "SPINE_KEYVAULT_CA_FILE": ""})

	// The authorization server is not up: a token is refused as invalid, not a server error.
	if r := api.call("GET", "/api/tenants", api.admin, nil, nil); r.Code != http.StatusUnauthorized {
		t.Fatalf("before the authorization server is up: %d %s, want 401", r.Code, r.Body)
	}

	authzSrv := startServer(t, map[string]string{"FUNCTIONS_CUSTOMHANDLER_PORT": fmt.Sprint(port), "SPINE_AUTH_ISSUER": issuer})
	if authzSrv.issuer != issuer {
		t.Fatalf("issuer %s, want %s", authzSrv.issuer, issuer)
	}
	ops := authzSrv.mint("ops", "", true, "client.manage")
	r := authzSrv.call("POST", "/api/clients?platform=true", ops, map[string]any{"name": "ops-robot", "clientType": "confidential",
		"grantTypes": []string{"client_credentials"}, "scopes": []string{"tenant.read"}, "platformAdmin": true}, nil)
	if r.Code != http.StatusCreated {
		t.Fatalf("create a platform client: %d %s", r.Code, r.Body)
	}
	m := r.JSON(t)
	cc := clientcredentials.Config{ClientID: m["id"].(string), ClientSecret: m["clientSecret"].(string),
		TokenURL: issuer + "/token", Scopes: []string{"tenant.read"}}
	tok, err := cc.Token(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// The other instance loads the keys by itself (its background retry, or the next token).
	deadline := time.Now().Add(90 * time.Second)
	for {
		r := api.call("GET", "/api/tenants", tok.AccessToken, nil, nil)
		if r.Code == http.StatusOK {
			break
		}
		if r.Code != http.StatusUnauthorized || time.Now().After(deadline) {
			t.Fatalf("the authorization server's token on the other instance: %d %s", r.Code, r.Body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The dev key is not trusted there: only the authorization server's keys are.
	if r := api.call("GET", "/api/tenants", api.admin, nil, nil); r.Code != http.StatusUnauthorized {
		t.Fatalf("a dev-key token on the discovery instance: %d, want 401", r.Code)
	}
}
