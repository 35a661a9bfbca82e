package tests

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"spine/shared/auth"
)

// The client admin API through the binary as the host drives it: a provisioned tenant's admin
// creates a confidential client (201, its secret in that answer only), lists and reads it without
// the secret, rotates it; the secret appears in no log line. The AuthzTokenPrune timer answers the
// host's timer invocation.
func TestAuthz_ClientAdminThroughTheBinary_AndPruneTimer(t *testing.T) {
	s := startServer(t, nil)
	id := s.register(slug("clients"), "standard")
	if r := s.call("POST", "/api/tenants/"+id+"/provision", s.admin, nil, nil); r.Code != http.StatusOK {
		t.Fatalf("provision: %d %s", r.Code, r.Body)
	}
	// The admin holds tenant.read too: a tenant token gives a client only API scopes it holds.
	tok, err := s.signer.Mint(auth.TokenClaims{Issuer: s.issuer, Audience: audience, Subject: "e2e-admin", TenantID: id,
		Scopes: []string{"client.manage", "tenant.read"}}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	r := s.call("POST", "/api/clients", tok, map[string]any{"name": "Reporting", "clientType": "confidential",
		"grantTypes": []string{"client_credentials"}, "scopes": []string{"tenant.read"}}, map[string]string{"Idempotency-Key": "c1"})
	if r.Code != http.StatusCreated {
		t.Fatalf("create: %d %s", r.Code, r.Body)
	}
	created := r.JSON(t)
	clientID, secret := created["id"].(string), created["clientSecret"].(string)
	if !strings.HasPrefix(secret, "cs1.") || created["tenantId"] != id {
		t.Fatalf("created %s", r.Body)
	}
	for _, path := range []string{"/api/clients", "/api/clients/" + clientID} {
		r := s.call("GET", path, tok, nil, nil)
		if r.Code != http.StatusOK || !strings.Contains(string(r.Body), clientID) || strings.Contains(string(r.Body), secret) {
			t.Fatalf("GET %s: %d %s", path, r.Code, r.Body)
		}
	}
	r = s.call("POST", "/api/clients/"+clientID+"/secret", tok, nil, nil)
	rotated, _ := r.JSON(t)["clientSecret"].(string)
	if r.Code != http.StatusOK || rotated == "" || rotated == secret {
		t.Fatalf("rotate: %d %s", r.Code, r.Body)
	}
	otherTok, err := s.signer.Mint(auth.TokenClaims{Issuer: s.issuer, Audience: audience, Subject: "e2e-other",
		TenantID: s.register(slug("other"), "standard"), Scopes: []string{"client.manage"}}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if other := s.call("GET", "/api/clients/"+clientID, otherTok, nil, nil); other.Code != http.StatusNotFound {
		t.Fatalf("another tenant's token: %d %s", other.Code, other.Body)
	}

	res := s.invoke("AuthzTokenPrune", hostTimerBody(t, "AuthzTokenPrune"))
	var out struct {
		Outputs map[string]any
		Logs    []string
	}
	if res.Code != http.StatusOK || json.Unmarshal(res.Body, &out) != nil || out.Outputs == nil {
		t.Fatalf("timer: %d %s", res.Code, res.Body)
	}
	for _, v := range []string{secret, rotated} {
		if strings.Contains(s.logs.String(), v) {
			t.Errorf("a client secret is in the handler's logs")
		}
	}
}
