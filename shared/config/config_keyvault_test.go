package config

import (
	"strings"
	"testing"
)

// withAuthz is the services list of a binary that serves the authorization server (there is no
// authz module on this branch yet; the rule keys on the service name).
var withAuthz = append(append([]string{}, services...), "authz")

func authzDB(m map[string]string) map[string]string {
	m["SPINE_AUTHZ_DB_URL"] = "postgres://authz_app:pw@127.0.0.1:5432/authz?sslmode=disable"
	return m
}

func TestLoad_KeyVaultURL_RequiredOnlyWhenAServiceWithSecretsIsEnabled(t *testing.T) {
	if _, err := Load(env(valid()), services); err != nil {
		t.Fatalf("without authz the vault is optional: %v", err)
	}
	_, err := Load(env(authzDB(valid())), withAuthz)
	if err == nil || !strings.Contains(err.Error(), "SPINE_KEYVAULT_URL: required when any of authz, notifications, integrations is enabled") {
		t.Fatalf("authz without a vault: %v", err)
	}
	for _, svc := range []string{"notifications", "integrations"} {
		m := valid()
		m["SPINE_"+strings.ToUpper(svc)+"_DB_URL"] = "postgres://" + svc + "_app:pw@127.0.0.1:5432/" + svc + "?sslmode=disable"
		if _, err := Load(env(m), append(append([]string{}, services...), svc)); err == nil || !strings.Contains(err.Error(), "SPINE_KEYVAULT_URL: required") {
			t.Fatalf("%s without a vault: %v", svc, err)
		}
	}
	m := authzDB(valid())
	m["SPINE_SERVICES"] = "tenants,audit"
	if _, err := Load(env(m), withAuthz); err != nil {
		t.Fatalf("authz known but not enabled: %v", err)
	}
	m = authzDB(valid())
	m["SPINE_KEYVAULT_URL"] = "https://kv-spine-dev.vault.azure.net/"
	c, err := Load(env(m), withAuthz)
	if err != nil || c.KeyVaultURL != "https://kv-spine-dev.vault.azure.net/" || c.KeyVaultCAFile != "" {
		t.Fatalf("%q %q %v", c.KeyVaultURL, c.KeyVaultCAFile, err)
	}
}

func TestLoad_KeyVaultSettings_Validated(t *testing.T) {
	for _, tc := range []struct {
		url, ca, want string // want "" = valid
	}{
		{"https://127.0.0.1:24123", "/stack/keyvault/cert.pem", ""},
		{"https://localhost:24123/", "/stack/keyvault/cert.pem", ""},
		{"http://127.0.0.1:24123", "", "SPINE_KEYVAULT_URL: \"http://127.0.0.1:24123\" is not an https URL"},
		{"kv-spine-dev.vault.azure.net", "", "is not an https URL"},
		{"https://kv-spine-dev.vault.azure.net/", "/stack/keyvault/cert.pem", "SPINE_KEYVAULT_CA_FILE: only for the local Key Vault fake"},
		{"", "/stack/keyvault/cert.pem", "SPINE_KEYVAULT_CA_FILE"},
	} {
		m := authzDB(valid())
		m["SPINE_KEYVAULT_URL"], m["SPINE_KEYVAULT_CA_FILE"] = tc.url, tc.ca
		_, err := Load(env(m), withAuthz)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s %s: %v", tc.url, tc.ca, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s %s: %v, want %q", tc.url, tc.ca, err, tc.want)
		}
	}
}

// The platform dev client (a platform-admin client whose secret sits in the vault) is for local
// runs only: the setting is refused unless the issuer is on a loopback host, as make run's is.
func TestLoad_AuthzDevClient_RefusedWithNonLoopbackIssuer(t *testing.T) {
	for _, tc := range []struct {
		issuer string
		ok     bool
	}{
		{"http://127.0.0.1:7071/api/connect", true},
		{"http://localhost:7071/api/connect", true},
		{"http://[::1]:7071/api/connect", true},
		{"https://spine.example/api/connect", false},
		{"https://func-spine.azurewebsites.net/api/connect", false},
		{"http://10.0.0.4:7071/api/connect", false},
		{"https://127.0.0.1.nip.io/api/connect", false},
	} {
		m := authzDB(valid())
		m["SPINE_KEYVAULT_URL"] = "https://kv-spine-dev.vault.azure.net/"
		m["SPINE_AUTH_ISSUER"] = tc.issuer
		m["SPINE_AUTHZ_DEV_CLIENT"] = "true"
		c, err := Load(env(m), withAuthz)
		switch {
		case tc.ok && (err != nil || !c.AuthzDevClient):
			t.Errorf("%s: %v, want the dev client on", tc.issuer, err)
		case !tc.ok && (err == nil || !strings.Contains(err.Error(), "SPINE_AUTHZ_DEV_CLIENT: only for local runs")):
			t.Errorf("%s: %v, want SPINE_AUTHZ_DEV_CLIENT refused", tc.issuer, err)
		}
		// Off, any issuer is fine.
		m["SPINE_AUTHZ_DEV_CLIENT"] = "false"
		if _, err := Load(env(m), withAuthz); err != nil {
			t.Errorf("%s without the dev client: %v", tc.issuer, err)
		}
	}
}

func TestLoad_EgressAllowLoopback_OnlyWithALoopbackIssuer(t *testing.T) {
	m := valid()
	m["SPINE_AUTH_ISSUER"] = "http://127.0.0.1:7071/api/connect"
	m["SPINE_EGRESS_ALLOW_LOOPBACK"] = "true"
	if c, err := Load(env(m), services); err != nil || !c.EgressAllowLoopback {
		t.Fatalf("loopback issuer: %v %v", c.EgressAllowLoopback, err)
	}
	m["SPINE_AUTH_ISSUER"] = "https://spine.example/api/connect"
	if _, err := Load(env(m), services); err == nil || !strings.Contains(err.Error(), "SPINE_EGRESS_ALLOW_LOOPBACK: only for local runs") {
		t.Fatalf("public issuer: %v", err)
	}
	delete(m, "SPINE_EGRESS_ALLOW_LOOPBACK")
	if c, err := Load(env(m), services); err != nil || c.EgressAllowLoopback {
		t.Fatalf("default: %v %v", c.EgressAllowLoopback, err)
	}
}
