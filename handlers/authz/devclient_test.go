package authz

import (
	"context"
	"errors"
	"strings"
	"testing"

	"spine/shared/secrets"
	"spine/shared/secrets/kvfake"
	"spine/shared/sqlstore"
)

// devEnv is a store over the test database and a vault over the TLS fake of Key Vault.
type devEnv struct {
	store Store
	vault *secrets.Vault
}

func newDevEnv(t *testing.T) devEnv {
	t.Helper()
	ts := kvfake.NewTLSServer(t)
	v, err := secrets.Open(secrets.Config{VaultURL: ts.URL, CAFile: ts.CAFile, MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	return devEnv{store: NewStore(testDB.OpenRuntime(t, sqlstore.PoolConfig{}), newTestCache(t), StoreConfig{}), vault: v}
}

// vaultCredentials reads the dev client's credentials as `handler token` does.
func (e devEnv) vaultCredentials(t *testing.T) DevCredentials {
	t.Helper()
	s, err := e.vault.Get(context.Background(), DevClientSecretName)
	if err != nil {
		t.Fatalf("the vault's %s: %v", DevClientSecretName, err)
	}
	c, err := ParseDevCredentials(s.Value())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestEnsureDevClient_CreatesAPlatformAdminWithEveryAPIScope_CredentialsInTheVaultOnly(t *testing.T) {
	ctx := context.Background()
	e := newDevEnv(t)
	id, err := EnsureDevClient(ctx, e.store, e.vault, nil)
	if err != nil {
		t.Fatal(err)
	}
	creds := e.vaultCredentials(t)
	if creds.ClientID != string(id) || !strings.HasPrefix(creds.ClientSecret, clientSecretPrefix) {
		t.Fatalf("vault holds %s, want client %s with a cs1. secret", creds, id)
	}
	c, err := e.store.AuthenticateClient(ctx, creds.ClientID, creds.ClientSecret)
	if err != nil {
		t.Fatalf("the vault's credentials do not authenticate: %v", err)
	}
	if !c.Platform() || !c.PlatformAdmin || c.Name != DevClientName || c.Type != ClientConfidential ||
		!c.Allows(GrantClientCredentials) || !hasScopes(c, DevClientScopes()) || c.AllowsScope(string(ScopeOpenID)) {
		t.Fatalf("dev client = %+v", c)
	}
	for _, s := range []string{"tenant.read", "tenant.manage", "audit.read", "audit.write", "platform.ops", "client.manage", "user.invite"} {
		if !c.AllowsScope(s) {
			t.Errorf("the dev client lacks %s", s)
		}
	}
}

func TestEnsureDevClient_KeepsTheClientWhoseCredentialsStillAuthenticate(t *testing.T) {
	ctx := context.Background()
	e := newDevEnv(t)
	first, err := EnsureDevClient(ctx, e.store, e.vault, nil)
	if err != nil {
		t.Fatal(err)
	}
	before := e.vaultCredentials(t)
	again, err := EnsureDevClient(ctx, e.store, e.vault, nil)
	if err != nil || again != first {
		t.Fatalf("second start: %s, %v; want the same client %s", again, err, first)
	}
	if after := e.vaultCredentials(t); after != before {
		t.Fatal("a second start replaced credentials that still worked")
	}
	vs, err := e.vault.Versions(ctx, DevClientSecretName)
	if err != nil || len(vs) != 1 {
		t.Fatalf("vault versions %d (%v), want 1: nothing written on a start that found a working client", len(vs), err)
	}
}

func TestEnsureDevClient_ReplacesADeletedOrRotatedClient(t *testing.T) {
	ctx := context.Background()
	for name, break_ := range map[string]func(e devEnv, id ClientID) error{
		"deleted": func(e devEnv, id ClientID) error { return e.store.DeleteClient(ctx, PlatformTenant, id, nil) },
		"secret rotated": func(e devEnv, id ClientID) error {
			_, _, err := e.store.RotateClientSecret(ctx, PlatformTenant, id, nil)
			return err
		},
	} {
		t.Run(name, func(t *testing.T) {
			e := newDevEnv(t)
			first, err := EnsureDevClient(ctx, e.store, e.vault, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := break_(e, first); err != nil {
				t.Fatal(err)
			}
			second, err := EnsureDevClient(ctx, e.store, e.vault, nil)
			if err != nil || second == first {
				t.Fatalf("after the client was %s: %s, %v; want a new client", name, second, err)
			}
			creds := e.vaultCredentials(t)
			if _, err := e.store.AuthenticateClient(ctx, creds.ClientID, creds.ClientSecret); err != nil || creds.ClientID != string(second) {
				t.Fatalf("the vault's new credentials: %s, %v", creds, err)
			}
		})
	}
}

func TestEnsureDevClient_GivesAKeptClientTheScopesItLacks(t *testing.T) {
	ctx := context.Background()
	e := newDevEnv(t)
	id, err := EnsureDevClient(ctx, e.store, e.vault, nil)
	if err != nil {
		t.Fatal(err)
	}
	// As if the catalog had grown since the client was made: it lacks a scope.
	if _, err := e.store.UpdateClient(ctx, PlatformTenant, id, nil, func(c *Client) error {
		c.Scopes = []Scope{"tenant.read"}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	again, err := EnsureDevClient(ctx, e.store, e.vault, nil)
	if err != nil || again != id {
		t.Fatalf("%s, %v; want the same client %s", again, err, id)
	}
	c, err := e.store.Client(ctx, PlatformTenant, id)
	if err != nil || !hasScopes(c, DevClientScopes()) {
		t.Fatalf("after the update: %+v, %v", c.Scopes, err)
	}
}

func TestEnsureDevClient_ReplacesUnreadableCredentials(t *testing.T) {
	ctx := context.Background()
	e := newDevEnv(t)
	if _, err := e.vault.Set(ctx, DevClientSecretName, "not json", "text/plain", nil); err != nil {
		t.Fatal(err)
	}
	id, err := EnsureDevClient(ctx, e.store, e.vault, nil)
	if err != nil {
		t.Fatal(err)
	}
	if creds := e.vaultCredentials(t); creds.ClientID != string(id) {
		t.Fatalf("vault %s, want %s", creds, id)
	}
}

func TestEnsureDevClient_FailsWhenTheVaultCannotBeRead(t *testing.T) {
	ts := kvfake.NewTLSServer(t)
	v, err := secrets.Open(secrets.Config{VaultURL: ts.URL, CAFile: ts.CAFile, MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	ts.InjectFault(kvfake.Fault{Status: 503, Count: 10})
	_, err = EnsureDevClient(context.Background(), NewStore(testDB.OpenRuntime(t, sqlstore.PoolConfig{}), nil, StoreConfig{}), v, nil)
	if err == nil || !errors.Is(err, secrets.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
}

func TestDevTenantSecretName(t *testing.T) {
	name, err := DevTenantSecretName("0190AAAA-0000-7000-8000-00000000000A")
	if err != nil || name != "authz-dev-client-0190aaaa-0000-7000-8000-00000000000a" {
		t.Fatalf("%q %v", name, err)
	}
	for _, bad := range []string{"", "contoso", "0190aaaa00007000800000000000000a", "{0190aaaa-0000-7000-8000-00000000000a}"} {
		if _, err := DevTenantSecretName(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestDevCredentials_StringMasksTheSecret(t *testing.T) {
	c := DevCredentials{ClientID: "id-1", ClientSecret: "cs1.secret"}
	if strings.Contains(c.String(), "cs1.secret") {
		t.Fatal(c.String())
	}
	got, err := ParseDevCredentials(c.Encode())
	if err != nil || got != c {
		t.Fatalf("%v %v", got, err)
	}
}
