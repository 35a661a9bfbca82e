package authz

import (
	"encoding/json"
	"errors"
	"strings"

	"github.com/google/uuid"
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
		return DevCredentials{}, errors.New("authz: the dev client's vault secret is not {\"clientId\",\"clientSecret\"}")
	}
	c.ClientID = strings.TrimSpace(c.ClientID)
	return c, nil
}

// String masks the secret.
func (c DevCredentials) String() string { return "dev client " + c.ClientID + " (secret masked)" }
