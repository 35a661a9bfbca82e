package authz

import (
	"time"

	"github.com/zitadel/oidc/v3/pkg/op"
)

// ccRequest is a client_credentials token request: the client is its subject.
type ccRequest struct {
	client   Client
	scopes   []string
	audience []string
}

var _ op.TokenRequest = (*ccRequest)(nil)

func (r *ccRequest) GetSubject() string    { return string(r.client.ID) }
func (r *ccRequest) GetAudience() []string { return r.audience }
func (r *ccRequest) GetScopes() []string   { return r.scopes }

// refreshRequest is a refresh_token token request over the stored refresh token.
type refreshRequest struct {
	rt     RefreshToken
	scopes []string // this request's (at most the token's)
}

var _ op.RefreshTokenRequest = (*refreshRequest)(nil)

func (r *refreshRequest) GetAMR() []string            { return r.rt.AMR }
func (r *refreshRequest) GetAudience() []string       { return r.rt.Audience }
func (r *refreshRequest) GetAuthTime() time.Time      { return r.rt.AuthTime }
func (r *refreshRequest) GetClientID() string         { return string(r.rt.ClientID) }
func (r *refreshRequest) GetScopes() []string         { return r.scopes }
func (r *refreshRequest) GetSubject() string          { return r.rt.Subject }
func (r *refreshRequest) SetCurrentScopes(s []string) { r.scopes = s }
