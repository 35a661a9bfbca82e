package contracts

import "time"

// Authz's events (topic "authz"), the authorization server's. Subject: the client id for client
// events (so a client's changes stay in order), the token's jti for TokenIssued, the refresh-token
// family id for RefreshTokenReuseDetected. Ids are canonical UUIDs. TenantID is the client's
// tenant, absent ("") for a platform client's events, which are platform-level.
//
// No event carries token material: never an access token, refresh token, authorization code or
// client secret, nor a hash of one. A jti identifies an access token without being one.
const (
	TokenIssued               = "TokenIssued"
	RefreshTokenReuseDetected = "RefreshTokenReuseDetected"
	ClientCreated             = "ClientCreated"
	ClientUpdated             = "ClientUpdated"
	ClientDeleted             = "ClientDeleted"
	ClientSecretRotated       = "ClientSecretRotated"
)

// AuthzEvents are the types the authz service publishes.
var AuthzEvents = []string{TokenIssued, RefreshTokenReuseDetected, ClientCreated, ClientUpdated, ClientDeleted, ClientSecretRotated}

// TokenIssuedData is the data of TokenIssued: an access token was issued to ClientID for Subject
// (the user, or the client itself for client_credentials) through GrantType.
type TokenIssuedData struct {
	TenantID  string `json:"tenantId,omitempty"`
	ClientID  string `json:"clientId"`
	Subject   string `json:"subject"`
	GrantType string `json:"grantType"`
	// Scopes are the access token's scopes, as granted.
	Scopes []string `json:"scopes"`
	// TokenID is the access token's jti; ExpiresAt its exp.
	TokenID   string    `json:"tokenId"`
	ExpiresAt time.Time `json:"expiresAt"`
	// RefreshTokenIssued says whether a refresh token came with it (never the refresh token).
	RefreshTokenIssued bool `json:"refreshTokenIssued,omitempty"`
	// PlatformAdmin says whether the token carries platform_admin.
	PlatformAdmin bool `json:"platformAdmin,omitempty"`
}

// Where a reuse was detected (RefreshTokenReuseDetectedData.Via).
const (
	ReuseViaRefreshToken      = "refresh_token"
	ReuseViaAuthorizationCode = "authorization_code"
)

// RefreshTokenReuseDetectedData is the data of RefreshTokenReuseDetected: a refresh token that had
// been rotated already, or an authorization code that had been redeemed already, was presented
// again, and every refresh token of its family was revoked.
type RefreshTokenReuseDetectedData struct {
	TenantID string `json:"tenantId,omitempty"`
	ClientID string `json:"clientId"`
	Subject  string `json:"subject"`
	FamilyID string `json:"familyId"`
	// Via is ReuseViaRefreshToken or ReuseViaAuthorizationCode.
	Via string `json:"via"`
	// RevokedTokens counts the family's refresh tokens this detection revoked.
	RevokedTokens int       `json:"revokedTokens"`
	DetectedAt    time.Time `json:"detectedAt"`
}

// ClientData is the data of ClientCreated and ClientUpdated: the client as it is after the change
// (never its secret).
type ClientData struct {
	TenantID               string   `json:"tenantId,omitempty"`
	ClientID               string   `json:"clientId"`
	Name                   string   `json:"name"`
	ClientType             string   `json:"clientType"`
	RedirectURIs           []string `json:"redirectUris"`
	PostLogoutRedirectURIs []string `json:"postLogoutRedirectUris"`
	GrantTypes             []string `json:"grantTypes"`
	Scopes                 []string `json:"scopes"`
	FirstParty             bool     `json:"firstParty"`
	PlatformAdmin          bool     `json:"platformAdmin"`
	Version                int64    `json:"version"`
}

// ClientDeletedData is the data of ClientDeleted: the client was deleted (it authenticates no
// more) and its refresh tokens were revoked.
type ClientDeletedData struct {
	TenantID             string    `json:"tenantId,omitempty"`
	ClientID             string    `json:"clientId"`
	DeletedAt            time.Time `json:"deletedAt"`
	RevokedRefreshTokens int       `json:"revokedRefreshTokens"`
}

// ClientSecretRotatedData is the data of ClientSecretRotated: the client has a new secret and the
// previous one no longer authenticates.
type ClientSecretRotatedData struct {
	TenantID  string    `json:"tenantId,omitempty"`
	ClientID  string    `json:"clientId"`
	RotatedAt time.Time `json:"rotatedAt"`
}
