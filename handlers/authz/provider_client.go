package authz

import (
	"net/url"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// opClient is a stored client as op sees it.
type opClient struct {
	c Client
	p *Provider
}

var _ op.Client = (*opClient)(nil)

func (c *opClient) GetID() string                    { return string(c.c.ID) }
func (c *opClient) RedirectURIs() []string           { return c.c.RedirectURIs }
func (c *opClient) PostLogoutRedirectURIs() []string { return c.c.PostLogoutRedirectURIs }

// ApplicationType implements op.Client: a confidential client is a web application; a public one
// is native (op then accepts its https and custom-scheme redirect URIs exactly, and a loopback
// http one on any port, RFC 8252 §7.3), which also covers single-page applications.
func (c *opClient) ApplicationType() op.ApplicationType {
	if c.c.Type == ClientConfidential {
		return op.ApplicationTypeWeb
	}
	return op.ApplicationTypeNative
}

// AuthMethod implements op.Client: confidential clients send their secret (HTTP Basic or the
// form: op accepts both, AuthMethodPost being enabled); public clients none.
func (c *opClient) AuthMethod() oidc.AuthMethod {
	if c.c.Type == ClientConfidential {
		return oidc.AuthMethodBasic
	}
	return oidc.AuthMethodNone
}

// ResponseTypes implements op.Client: code only, for clients with the authorization_code grant.
// Never id_token or token: no implicit flow (OAuth 2.1).
func (c *opClient) ResponseTypes() []oidc.ResponseType {
	if c.c.Allows(GrantAuthorizationCode) {
		return []oidc.ResponseType{oidc.ResponseTypeCode}
	}
	return nil
}

// GrantTypes implements op.Client: the client's, among the three the server supports.
func (c *opClient) GrantTypes() []oidc.GrantType {
	out := make([]oidc.GrantType, 0, len(c.c.GrantTypes))
	for _, g := range c.c.GrantTypes {
		switch g {
		case GrantAuthorizationCode, GrantRefreshToken, GrantClientCredentials:
			out = append(out, oidc.GrantType(g))
		}
	}
	return out
}

// LoginURL implements op.Client: the sign-in page of the auth request.
func (c *opClient) LoginURL(id string) string {
	return c.p.issuer + "/login?authRequestID=" + url.QueryEscape(id)
}

func (c *opClient) AccessTokenType() op.AccessTokenType { return op.AccessTokenTypeJWT }
func (c *opClient) IDTokenLifetime() time.Duration      { return c.p.cfg.IDTokenTTL }
func (c *opClient) DevMode() bool                       { return false }
func (c *opClient) ClockSkew() time.Duration            { return 0 }

// IDTokenUserinfoClaimsAssertion implements op.Client: the ID token carries the profile claims its
// scopes ask for (email, name) even though an access token is issued beside it.
func (c *opClient) IDTokenUserinfoClaimsAssertion() bool { return true }

// RestrictAdditionalIdTokenScopes implements op.Client: no restriction.
func (c *opClient) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

// RestrictAdditionalAccessTokenScopes implements op.Client: no restriction.
func (c *opClient) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

// IsScopeAllowed implements op.Client: the client's own scopes (op keeps OpenID's own anyway).
func (c *opClient) IsScopeAllowed(scope string) bool { return c.c.AllowsScope(scope) }
