package tests

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2/clientcredentials"
)

// createPlatformClient creates a confidential platform client (client_credentials, platform admin)
// through the admin API with a platform admin's token.
func (s *server) createPlatformClient(token string) oidcClient {
	s.t.Helper()
	r := s.call("POST", "/api/clients?platform=true", token, map[string]any{"name": "platform-svc", "clientType": "confidential",
		"grantTypes": []string{"client_credentials"}, "scopes": []string{"tenant.read"}, "platformAdmin": true}, nil)
	if r.Code != http.StatusCreated {
		s.t.Fatalf("create platform client: %d %s", r.Code, r.Body)
	}
	m := r.JSON(s.t)
	return oidcClient{id: m["id"].(string), secret: m["clientSecret"].(string)}
}

// platformEntries lists the platform audit chain (as a platform admin) in chain order.
func (s *server) platformEntries(token string) []map[string]any {
	s.t.Helper()
	r := s.call("GET", "/api/audit-entries?platform=true&limit=200", token, nil, nil)
	if r.Code != http.StatusOK {
		s.t.Fatalf("platform audit query: %d %s", r.Code, r.Body)
	}
	var out []map[string]any
	for _, v := range r.JSON(s.t)["value"].([]any) {
		out = append(out, v.(map[string]any))
	}
	return out
}

// The platform's own events through the binary: a platform admin creates a platform client and the
// client gets a token with client_credentials; authz emits ClientCreated and TokenIssued without a
// tenant, and the Audit Trail records each exactly once in the platform chain, which verifies and
// which a platform admin reads with ?platform=true while a tenant's token cannot. Nothing is
// dead-lettered and no ERROR line is logged.
func TestPlatformEvents_PlatformClientAuditedOnceNoDeadLetter(t *testing.T) {
	s := startServer(t, nil)
	ops := s.mint("ops", "", true, "client.manage", "audit.read", "platform.ops")
	c := s.createPlatformClient(ops)
	cc := clientcredentials.Config{ClientID: c.id, ClientSecret: c.secret, TokenURL: s.issuer + "/token", Scopes: []string{"tenant.read"}}
	tok, err := cc.Token(t.Context())
	if err != nil {
		t.Fatalf("client_credentials: %v", err)
	}
	if r := s.call("GET", "/api/tenants", tok.AccessToken, nil, nil); r.Code != http.StatusOK {
		t.Fatalf("the platform client's token on the API: %d %s", r.Code, r.Body)
	}

	// ClientCreated's resource is the client; TokenIssued's payload names it.
	mine := func(es []map[string]any) (created, issued int) {
		for _, e := range es {
			res, _ := e["resource"].(map[string]any)
			payload, _ := e["payload"].(map[string]any)
			switch {
			case e["action"] == "ClientCreated" && res["id"] == c.id:
				created++
			case e["action"] == "TokenIssued" && payload["clientId"] == c.id:
				issued++
			}
		}
		return
	}
	var es []map[string]any
	deadline := time.Now().Add(20 * time.Second)
	for {
		es = s.platformEntries(ops)
		if created, issued := mine(es); created >= 1 && issued >= 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if created, issued := mine(es); created != 1 || issued != 1 {
		t.Fatalf("platform chain: %d ClientCreated and %d TokenIssued of the client, want exactly 1 each: %v", created, issued, es)
	}
	for _, e := range es {
		if e["tenantId"] != "00000000-0000-0000-0000-000000000000" {
			t.Fatalf("a platform-chain entry names a tenant: %v", e)
		}
	}
	r := s.call("GET", "/api/audit-entries/verify?platform=true", ops, nil, nil)
	if v := r.JSON(t); r.Code != http.StatusOK || v["ok"] != true || v["entriesChecked"].(float64) < 2 {
		t.Fatalf("verify the platform chain: %d %s", r.Code, r.Body)
	}

	tenant := s.register(slug("pev"), "standard")
	if r := s.call("GET", "/api/audit-entries?platform=true", s.token(tenant, false), nil, nil); r.Code != http.StatusForbidden {
		t.Fatalf("a tenant's token on the platform chain: %d %s", r.Code, r.Body)
	}

	r = s.call("GET", "/api/ops/dead-letters", ops, nil, nil)
	var dead struct{ Value []json.RawMessage }
	if r.Code != http.StatusOK || json.Unmarshal(r.Body, &dead) != nil || len(dead.Value) != 0 {
		t.Fatalf("dead letters: %d %s, want none", r.Code, r.Body)
	}
	for _, line := range strings.Split(s.logs.String(), "\n") {
		if strings.Contains(line, `"level":"ERROR"`) || strings.Contains(line, "invalid-event") {
			t.Fatalf("the handler logged: %s", line)
		}
	}
}
