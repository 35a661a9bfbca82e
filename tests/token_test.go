package tests

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os/exec"
	"strings"
	"testing"

	"spine/handlers/authz"
	"spine/shared/secrets"
	"spine/shared/secrets/kvfake"
)

// devServer is a server with the platform dev client on (SPINE_AUTHZ_DEV_CLIENT=true, as make run
// starts it) over a Key Vault fake the test holds, so `handler token` can be run against it.
type devServer struct {
	*server
	kv *kvfake.TestServer
}

func startDevServer(t *testing.T) devServer {
	t.Helper()
	kv := kvfake.NewTLSServer(t)
	s := startServer(t, map[string]string{"SPINE_AUTHZ_DEV_CLIENT": "true",
		"SPINE_KEYVAULT_URL": kv.URL, "SPINE_KEYVAULT_CA_FILE": kv.CAFile})
	return devServer{server: s, kv: kv}
}

// handlerToken runs `handler token args...` as make token does (the stack's vault settings and
// make run's issuer and audience) and returns its stdout and stderr.
func (d devServer) handlerToken(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"token"}, args...)...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "SPINE_AUTH_ISSUER=" + d.issuer, "SPINE_AUTH_AUDIENCE=" + audience,
		"SPINE_KEYVAULT_URL=" + d.kv.URL, "SPINE_KEYVAULT_CA_FILE=" + d.kv.CAFile}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// mustToken is handlerToken that must print exactly one line: the token.
func (d devServer) mustToken(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, err := d.handlerToken(t, args...)
	if err != nil {
		t.Fatalf("handler token %v: %v\n%s", args, err, errOut)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 1 || strings.Count(lines[0], ".") != 2 {
		t.Fatalf("handler token %v printed %q, want one token line", args, out)
	}
	return lines[0]
}

// claimsOf decodes a JWT's payload (the API checks the signature; this reads what it says).
func claimsOf(t *testing.T, tok string) map[string]any {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// `handler token` mints through the real path: the platform dev client's client_credentials at
// the server's /api/connect/token, its credentials read from the vault; the token works on the API.
func TestHandlerToken_PlatformAdminThroughTheDevClient(t *testing.T) {
	d := startDevServer(t)
	tok := d.mustToken(t, "--platform-admin", "--scopes", "tenant.read,tenant.manage")
	c := claimsOf(t, tok)
	creds := d.devCredentials(t, authz.DevClientSecretName)
	if c["iss"] != d.issuer || c["sub"] != creds.ClientID || c["client_id"] != creds.ClientID || c["platform_admin"] != true ||
		c["scope"] != "tenant.read tenant.manage" {
		t.Fatalf("claims %v; want the dev client %s's platform token from %s", c, creds.ClientID, d.issuer)
	}
	id := d.register(slug("token-admin"), "standard")
	if r := d.call("GET", "/api/tenants/"+id, tok, nil, nil); r.Code != http.StatusOK {
		t.Fatalf("GET tenant with the minted token: %d %s", r.Code, r.Body)
	}
	// A scope not asked for is not held.
	if r := d.call("GET", "/api/audit-entries?tenantId="+id, tok, nil, nil); r.Code != http.StatusForbidden {
		t.Fatalf("audit read without audit.read: %d %s", r.Code, r.Body)
	}
}

// A tenant's token comes from the tenant's own dev client, created through the admin API on first
// use and kept in the vault; later calls reuse it; a deleted one is created again.
func TestHandlerToken_TenantThroughItsOwnDevClient_RecreatedWhenDeleted(t *testing.T) {
	d := startDevServer(t)
	id := d.register(slug("token-tenant"), "standard")
	if r := d.call("POST", "/api/tenants/"+id+"/provision", d.admin, nil, nil); r.Code != http.StatusOK {
		t.Fatalf("provision: %d %s", r.Code, r.Body)
	}
	tok := d.mustToken(t, "--tenant", id, "--scopes", "tenant.read,audit.read")
	c := claimsOf(t, tok)
	name, _ := authz.DevTenantSecretName(id)
	first := d.devCredentials(t, name)
	if c["tenant_id"] != id || c["sub"] != first.ClientID || c["platform_admin"] != nil {
		t.Fatalf("claims %v; want a token of tenant %s from client %s", c, id, first.ClientID)
	}
	if r := d.call("GET", "/api/tenants/"+id, tok, nil, nil); r.Code != http.StatusOK {
		t.Fatalf("GET own tenant: %d %s", r.Code, r.Body)
	}
	other := d.register(slug("token-other"), "standard")
	if r := d.call("GET", "/api/tenants/"+other, tok, nil, nil); r.Code != http.StatusNotFound {
		t.Fatalf("GET another tenant: %d %s", r.Code, r.Body)
	}
	// The same client again: no new client, no new vault version.
	again := d.mustToken(t, "--tenant", id, "--scopes", "tenant.read")
	if claimsOf(t, again)["sub"] != first.ClientID || d.versions(t, name) != 1 {
		t.Fatalf("second token from %v, %d vault versions; want client %s, 1 version", claimsOf(t, again)["sub"], d.versions(t, name), first.ClientID)
	}
	// Deleted through the admin API: the next call makes a new client.
	admin := d.mustToken(t, "--platform-admin", "--scopes", "client.manage")
	if r := d.call("DELETE", "/api/clients/"+first.ClientID+"?tenantId="+id, admin, nil, nil); r.Code != http.StatusNoContent {
		t.Fatalf("delete the dev client: %d %s", r.Code, r.Body)
	}
	tok = d.mustToken(t, "--tenant", id, "--scopes", "tenant.read")
	second := d.devCredentials(t, name)
	if second.ClientID == first.ClientID || claimsOf(t, tok)["sub"] != second.ClientID {
		t.Fatalf("after the delete: client %s, token of %v", second.ClientID, claimsOf(t, tok)["sub"])
	}
	if r := d.call("GET", "/api/tenants/"+id, tok, nil, nil); r.Code != http.StatusOK {
		t.Fatalf("GET own tenant with the new client's token: %d %s", r.Code, r.Body)
	}
	// Its secret rotated through the admin API (the vault's copy no longer works): the next call
	// makes a new client and deletes the one it replaces.
	if r := d.call("POST", "/api/clients/"+second.ClientID+"/secret?tenantId="+id, admin, nil, nil); r.Code != http.StatusOK {
		t.Fatalf("rotate the dev client's secret: %d %s", r.Code, r.Body)
	}
	tok = d.mustToken(t, "--tenant", id, "--scopes", "tenant.read")
	third := d.devCredentials(t, name)
	if third.ClientID == second.ClientID || claimsOf(t, tok)["sub"] != third.ClientID {
		t.Fatalf("after the rotation: client %s, token of %v", third.ClientID, claimsOf(t, tok)["sub"])
	}
	if r := d.call("GET", "/api/clients/"+second.ClientID+"?tenantId="+id, admin, nil, nil); r.Code != http.StatusNotFound {
		t.Fatalf("the replaced client: %d %s, want 404 (deleted)", r.Code, r.Body)
	}
}

// --subject and --ttl are accepted (old scripts keep working) but cannot be honoured: stderr says
// so, stdout is still the one token line.
func TestHandlerToken_IgnoredFlagsSaySoOnStderr(t *testing.T) {
	d := startDevServer(t)
	out, errOut, err := d.handlerToken(t, "--platform-admin", "--scopes", "tenant.read", "--subject", "someone", "--ttl", "1h")
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	if strings.Count(out, "\n") != 1 || !strings.Contains(errOut, "--subject is ignored") || !strings.Contains(errOut, "--ttl is ignored") {
		t.Fatalf("stdout %q stderr %q", out, errOut)
	}
	if c := claimsOf(t, strings.TrimSpace(out)); c["sub"] == "someone" {
		t.Fatalf("sub %v", c["sub"])
	}
}

// A scope the dev client may not be granted is the server's OAuth error, in one line.
func TestHandlerToken_OneLineForAScopeTheServerRefuses(t *testing.T) {
	d := startDevServer(t)
	out, errOut, err := d.handlerToken(t, "--platform-admin", "--scopes", "no.such.scope")
	if err == nil || out != "" || strings.Count(strings.TrimSpace(errOut), "\n") != 0 || !strings.Contains(errOut, "invalid_scope") {
		t.Fatalf("err %v stdout %q stderr %q", err, out, errOut)
	}
}

// devCredentials reads a dev client's credentials from the server's vault.
func (d devServer) devCredentials(t *testing.T, name string) authz.DevCredentials {
	t.Helper()
	v, err := secrets.Open(secrets.Config{VaultURL: d.kv.URL, CAFile: d.kv.CAFile, MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	s, err := v.Get(context.Background(), name)
	if err != nil {
		t.Fatalf("vault %s: %v", name, err)
	}
	c, err := authz.ParseDevCredentials(s.Value())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// versions counts the enabled versions of a vault secret.
func (d devServer) versions(t *testing.T, name string) int {
	t.Helper()
	v, err := secrets.Open(secrets.Config{VaultURL: d.kv.URL, CAFile: d.kv.CAFile, MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	vs, err := v.Versions(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return len(vs)
}
