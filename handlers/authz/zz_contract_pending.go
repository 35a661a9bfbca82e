// Package authz: TEMPORARY mirror of the i11-store contract (design: the store surface the
// protocol uses and its model), so that the protocol branch builds before i11-store is merged.
// Deleted at the merge.
package authz

import (
	"errors"
	"time"

	"spine/shared/tenancy"
)

// PlatformTenant is the tenant of platform clients (zero TenantID here; design: the nil uuid).
var PlatformTenant = tenancy.TenantID{}

// Client is an OAuth client.
type Client struct {
	TenantID               tenancy.TenantID
	ID                     string
	Name                   string
	Type                   string // confidential | public
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	GrantTypes             []string
	Scopes                 []string
	FirstParty             bool
	PlatformAdmin          bool
	SecretHash             []byte
}

// Code is an authorization code's stored record.
type Code struct {
	TenantID      tenancy.TenantID
	CodeHash      []byte
	AuthRequestID string
	ClientID      string
	Subject       string
	Request       []byte
	FamilyID      string
	CreatedAt     time.Time
	ExpiresAt     time.Time
}

// RefreshToken is a refresh token's stored record.
type RefreshToken struct {
	TenantID  tenancy.TenantID
	ID        string
	FamilyID  string
	ClientID  string
	Subject   string
	Scopes    []string
	Audience  []string
	AuthTime  time.Time
	AMR       []string
	ExpiresAt time.Time
}

// TokenIssued is the event data of an issued access token.
type TokenIssued struct {
	Grant     string
	ClientID  string
	Subject   string
	Scopes    []string
	TokenID   string
	ExpiresAt time.Time
}

// Store sentinels.
var (
	ErrClientNotFound       = errors.New("authz: client not found")
	ErrCodeNotFound         = errors.New("authz: code not found")
	ErrCodeReused           = errors.New("authz: code reused")
	ErrCodeExpired          = errors.New("authz: code expired")
	ErrRefreshTokenNotFound = errors.New("authz: refresh token not found")
	ErrRefreshTokenReused   = errors.New("authz: refresh token reused")
)

// service is the service's name (module.go).
const service = "authz"

// Client types.
const (
	clientConfidential = "confidential"
	clientPublic       = "public"
)
