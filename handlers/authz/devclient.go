package authz

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"spine/shared/ids"
	"spine/shared/secrets"
	"spine/shared/sqlstore"
)

// The local stack's dev clients (SPINE_AUTHZ_DEV_CLIENT=true, set only by scripts/run.sh): what
// `handler token` mints through. Their credentials live in the vault only, as JSON DevCredentials.
const (
	// DevClientName is the name of the platform dev client the service ensures at start-up.
	DevClientName = "spine-dev"
	// DevClientSecretName is the vault secret holding the platform dev client's credentials.
	DevClientSecretName = "authz-dev-client-secret"
	// devTenantSecretPrefix + tenant id names the vault secret of a tenant's dev client.
	devTenantSecretPrefix = "authz-dev-client-"
	// DevTenantClientName is the name `handler token` gives a tenant's dev client.
	DevTenantClientName = "spine-dev (handler token)"
	// DevCredentialsContentType is the content type of a dev client's vault secret.
	DevCredentialsContentType = "application/json"
)

// DevCredentials are a dev client's id and secret, as kept in the vault.
type DevCredentials struct {
	ClientID     string `json:"clientId"`
	ClientSecret string `json:"clientSecret"`
}

// DevTenantSecretName is the vault secret holding the dev client of tenant (a UUID, any case):
// authz-dev-client-<tenant id in lowercase>.
func DevTenantSecretName(tenant string) (string, error) {
	id, err := uuid.Parse(tenant)
	if err != nil || len(tenant) != 36 {
		return "", errors.New("the tenant id must be a UUID")
	}
	return devTenantSecretPrefix + id.String(), nil
}

// Encode is the vault secret's value.
func (c DevCredentials) Encode() string {
	b, _ := json.Marshal(c)
	return string(b)
}

// ParseDevCredentials reads a dev client's vault secret value.
func ParseDevCredentials(value string) (DevCredentials, error) {
	var c DevCredentials
	if err := json.Unmarshal([]byte(value), &c); err != nil || c.ClientID == "" || c.ClientSecret == "" {
		return DevCredentials{}, ErrDevCredentialsMalformed
	}
	c.ClientID = strings.TrimSpace(c.ClientID)
	return c, nil
}

// String masks the secret.
func (c DevCredentials) String() string { return "dev client " + c.ClientID + " (secret masked)" }

// DevClientScopes are the scopes a dev client is allowed: every API scope of the catalog (the
// OpenID Connect scopes are about users, which a client_credentials token has none of).
func DevClientScopes() []string {
	var out []string
	for _, s := range scopeCatalog {
		if !IsOIDCScope(s) {
			out = append(out, string(s))
		}
	}
	return out
}

// TenantDevClientScopes are the scopes `handler token` allows a tenant's dev client: those of
// DevClientScopes a tenant client may hold (not the platform-only ones).
func TenantDevClientScopes() []string {
	var out []string
	for _, s := range DevClientScopes() {
		if !slices.Contains(platformOnlyScopes, Scope(s)) {
			out = append(out, s)
		}
	}
	return out
}

// devClientStore is what EnsureDevClient needs of the store.
type devClientStore interface {
	AuthenticateClient(ctx context.Context, id, secret string) (Client, error)
	CreateClient(ctx context.Context, c Client) (Client, string, error)
	UpdateClient(ctx context.Context, tenant string, id ClientID, ifMatch *int64, fn func(*Client) error) (Client, error)
}

// devClientVault is what EnsureDevClient needs of the vault (secrets.Vault).
type devClientVault interface {
	Get(ctx context.Context, name string) (secrets.Secret, error)
	Set(ctx context.Context, name, value, contentType string, tags map[string]string) (secrets.Secret, error)
}

// EnsureDevClient makes the platform dev client exist (SPINE_AUTHZ_DEV_CLIENT=true, local stack
// only): a confidential platform client named spine-dev, platform admin, with client_credentials and
// every scope of DevClientScopes, whose credentials are in the vault as DevClientSecretName and
// nowhere else. When the vault's credentials still authenticate, the client is kept (and given
// what it lacks of the above: a scope added to the catalog since); when they do not — the secret
// is missing or unreadable, the client was deleted or its secret rotated — a new client is created
// and its credentials replace the vault's. It returns the client's id.
func EnsureDevClient(ctx context.Context, store devClientStore, vault devClientVault, log *slog.Logger) (ClientID, error) {
	if log == nil {
		log = slog.Default()
	}
	creds, found, err := ReadDevCredentials(ctx, vault, DevClientSecretName)
	if errors.Is(err, ErrDevCredentialsMalformed) {
		found, err = false, nil // replaced below
	}
	if err != nil {
		return "", err
	}
	if found {
		c, err := store.AuthenticateClient(ctx, creds.ClientID, creds.ClientSecret)
		switch {
		case err == nil && c.Platform():
			if c.PlatformAdmin && c.Allows(GrantClientCredentials) && hasScopes(c, DevClientScopes()) {
				return c.ID, nil
			}
			up, err := store.UpdateClient(ctx, PlatformTenant, c.ID, nil, func(c *Client) error {
				c.PlatformAdmin = true
				if !c.Allows(GrantClientCredentials) {
					c.GrantTypes = append(c.GrantTypes, GrantClientCredentials)
				}
				for _, s := range DevClientScopes() {
					if !c.AllowsScope(s) {
						c.Scopes = append(c.Scopes, Scope(s))
					}
				}
				return c.validate()
			})
			if err != nil {
				return "", fmt.Errorf("authz: updating the dev client %s: %w", c.ID, err)
			}
			log.Info("authz: dev client updated (platform admin, every API scope)", "clientId", string(up.ID))
			return up.ID, nil
		case err == nil, errors.Is(err, ErrInvalidClient):
			log.Info("authz: the vault's dev client no longer authenticates (deleted, or its secret rotated); creating a new one",
				"clientId", creds.ClientID)
		default:
			return "", fmt.Errorf("authz: checking the dev client: %w", err)
		}
	}
	now := sqlstore.Now().UTC().Truncate(time.Microsecond)
	c := Client{ID: ClientID(ids.New()), Tenant: PlatformTenant, Name: DevClientName, Type: ClientConfidential,
		GrantTypes: []GrantType{GrantClientCredentials}, FirstParty: true, PlatformAdmin: true,
		Version: 1, CreatedAt: now, UpdatedAt: now}
	for _, s := range DevClientScopes() {
		c.Scopes = append(c.Scopes, Scope(s))
	}
	if err := c.validate(); err != nil {
		return "", fmt.Errorf("authz: the dev client: %w", err)
	}
	created, secret, err := store.CreateClient(ctx, c)
	if err != nil {
		return "", fmt.Errorf("authz: creating the dev client: %w", err)
	}
	value := DevCredentials{ClientID: string(created.ID), ClientSecret: secret}.Encode()
	if _, err := vault.Set(ctx, DevClientSecretName, value, DevCredentialsContentType, map[string]string{"client": string(created.ID)}); err != nil {
		return "", fmt.Errorf("authz: keeping the dev client's credentials in the vault (%s): %w", DevClientSecretName, err)
	}
	log.Info("authz: dev client created; its credentials are in the vault only", "clientId", string(created.ID), "secret", DevClientSecretName)
	return created.ID, nil
}

// ErrDevCredentialsMalformed: a dev client's vault secret does not hold {"clientId","clientSecret"}.
var ErrDevCredentialsMalformed = errors.New("authz: the dev client's vault secret is not {\"clientId\",\"clientSecret\"}")

// ReadDevCredentials reads a dev client's credentials from the vault (the server's EnsureDevClient
// and `handler token` alike): found is false when the secret does not exist; a secret that does not
// hold credentials is ErrDevCredentialsMalformed.
func ReadDevCredentials(ctx context.Context, vault interface {
	Get(ctx context.Context, name string) (secrets.Secret, error)
}, name string) (c DevCredentials, found bool, err error) {
	s, err := vault.Get(ctx, name)
	if errors.Is(err, secrets.ErrNotFound) {
		return DevCredentials{}, false, nil
	}
	if err != nil {
		return DevCredentials{}, false, fmt.Errorf("authz: reading %s from the vault: %w", name, err)
	}
	if c, err = ParseDevCredentials(s.Value()); err != nil {
		return DevCredentials{}, false, fmt.Errorf("%s: %w", name, err)
	}
	return c, true, nil
}

// hasScopes reports whether c is allowed every scope of want.
func hasScopes(c Client, want []string) bool {
	return !slices.ContainsFunc(want, func(s string) bool { return !c.AllowsScope(s) })
}
