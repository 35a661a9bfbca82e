package authz

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"spine/shared/ids"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
)

// The authz model's typed values are parsed at the edge (routes.go, the protocol's requests): past
// it, a ClientID is a canonical id, a GrantType and a Scope are ones this server knows.

// PlatformTenant is the tenant id of platform-owned rows: platform clients and the codes, tokens
// and consents they own. Its rows are visible only in sqlstore.PlatformScope(); its events are
// platform-level (no tenant). It is no tenant's id (tenancy.ParseTenantID refuses it).
const PlatformTenant = "00000000-0000-0000-0000-000000000000"

// scopeOf is the row-level-security scope in which tenant's rows are read and written: the
// tenant's own, or platform scope for PlatformTenant. Anything else is ErrInvalidTenant. A
// platform admin working on a tenant's clients works in that tenant's scope, not the platform's.
func scopeOf(tenant string) (sqlstore.Scope, error) {
	if tenant == PlatformTenant {
		return sqlstore.PlatformScope(), nil
	}
	id, err := tenancy.ParseTenantID(tenant)
	if err != nil {
		return sqlstore.Scope{}, fmt.Errorf("%w: %q", ErrInvalidTenant, tenant)
	}
	return sqlstore.TenantScope(id), nil
}

// eventTenant is the tenant an event of tenant's rows is recorded for: "" (platform-level) for
// PlatformTenant.
func eventTenant(tenant string) string {
	if tenant == PlatformTenant {
		return ""
	}
	return tenant
}

// ClientID is an OAuth client_id: a UUID (v7 for clients Spine creates) in canonical lowercase
// form.
type ClientID string

// ParseClientID parses a client id; anything else is ErrClientNotFound (a malformed id names no
// client).
func ParseClientID(s string) (ClientID, error) {
	id, ok := ids.Parse(s)
	if !ok {
		return "", ErrClientNotFound
	}
	return ClientID(id), nil
}

// ClientType is an OAuth client type (RFC 6749 §2.1).
type ClientType string

// The client types: a confidential client authenticates with its secret; a public client (a
// browser or native app) has none and uses the authorization code grant with PKCE.
const (
	ClientConfidential ClientType = "confidential"
	ClientPublic       ClientType = "public"
)

// ParseClientType parses a client type.
func ParseClientType(s string) (ClientType, error) {
	switch t := ClientType(s); t {
	case ClientConfidential, ClientPublic:
		return t, nil
	}
	return "", invalid("clientType must be confidential or public")
}

// GrantType is an OAuth grant type this server issues tokens through.
type GrantType string

// The grants (OAuth 2.1: no implicit, no password grant).
const (
	GrantClientCredentials GrantType = "client_credentials"
	GrantAuthorizationCode GrantType = "authorization_code"
	GrantRefreshToken      GrantType = "refresh_token"
)

// ParseGrantType parses a grant type.
func ParseGrantType(s string) (GrantType, error) {
	switch g := GrantType(s); g {
	case GrantClientCredentials, GrantAuthorizationCode, GrantRefreshToken:
		return g, nil
	}
	return "", invalid("grant type %q is not one of client_credentials, authorization_code, refresh_token", s)
}

// Scope is a scope of the catalog: an OpenID Connect scope or an API scope some route requires.
type Scope string

// The OpenID Connect scopes.
const (
	ScopeOpenID        Scope = "openid"
	ScopeProfile       Scope = "profile"
	ScopeEmail         Scope = "email"
	ScopeOfflineAccess Scope = "offline_access"
)

// ScopeClientManage is the scope of the client admin API (routes.go).
const ScopeClientManage = "client.manage"

// scopeCatalog is every scope a client may be allowed, sorted: the OpenID Connect scopes and every
// scope an API route requires (auth.RequireScope), this service's own included. A route that
// requires a scope missing here could never be reached by a token of this server;
// tests/scopes_test.go fails when one does.
var scopeCatalog = []Scope{
	"audit.read",
	"audit.write",
	"billing.usage.write",
	ScopeClientManage,
	"config.manage",
	"config.read",
	ScopeEmail,
	"notification.manage",
	"notification.read",
	"notification.send",
	ScopeOfflineAccess,
	ScopeOpenID,
	"platform.ops",
	ScopeProfile,
	"report.manage",
	"report.read",
	"role.assign",
	"role.manage",
	"role.read",
	"tenant.manage",
	"tenant.read",
	"user.invite",
	"user.manage",
	"user.read",
}

// Catalog returns the scope catalog, sorted (a copy).
func Catalog() []Scope { return slices.Clone(scopeCatalog) }

// ParseScope parses a scope of the catalog; any other is ErrInvalidInput naming it.
func ParseScope(s string) (Scope, error) {
	if _, ok := slices.BinarySearch(scopeCatalog, Scope(s)); ok {
		return Scope(s), nil
	}
	return "", invalid("scope %q is not in the catalog", s)
}

// IsOIDCScope reports whether s is an OpenID Connect scope (about the user, not an API).
func IsOIDCScope(s Scope) bool {
	return s == ScopeOpenID || s == ScopeProfile || s == ScopeEmail || s == ScopeOfflineAccess
}

// Client is an OAuth client of a tenant, or of the platform (Tenant == PlatformTenant).
type Client struct {
	ID     ClientID
	Tenant string // canonical tenant id, or PlatformTenant
	Name   string
	Type   ClientType
	// RedirectURIs are the exact redirect URIs of the authorization code grant.
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	GrantTypes             []GrantType
	// Scopes are the scopes the client may be granted.
	Scopes []Scope
	// FirstParty clients skip the consent page.
	FirstParty bool
	// PlatformAdmin (platform clients only) marks the client's client_credentials tokens
	// platform_admin.
	PlatformAdmin bool
	// SecretHash is the SHA-256 of the client's secret (see token.go); nil for a public client
	// and once deleted. Never rendered.
	SecretHash      []byte
	SecretRotatedAt *time.Time
	Version         int64
	CreatedAt       time.Time
	UpdatedAt       time.Time
	DeletedAt       *time.Time
}

// Platform reports whether the client is a platform client.
func (c Client) Platform() bool { return c.Tenant == PlatformTenant }

// Allows reports whether the client may use grant g.
func (c Client) Allows(g GrantType) bool { return slices.Contains(c.GrantTypes, g) }

// AllowsScope reports whether the client may be granted scope s.
func (c Client) AllowsScope(s string) bool { return slices.Contains(c.Scopes, Scope(s)) }

// Limits of a client's lists.
const (
	maxRedirectURIs = 20
	maxURILength    = 2000
)

// validate checks a client as it is to be stored (created or changed), and puts its lists in
// their stored form (sorted, without duplicates; redirect URIs in the order given).
func (c *Client) validate() error {
	if err := validName("name", c.Name, 1, 200); err != nil {
		return err
	}
	if _, err := ParseClientType(string(c.Type)); err != nil {
		return err
	}
	if len(c.GrantTypes) == 0 {
		return invalid("grantTypes must name at least one grant")
	}
	for _, g := range c.GrantTypes {
		if _, err := ParseGrantType(string(g)); err != nil {
			return err
		}
	}
	slices.Sort(c.GrantTypes)
	c.GrantTypes = slices.Compact(c.GrantTypes)
	for _, s := range c.Scopes {
		if _, err := ParseScope(string(s)); err != nil {
			return err
		}
	}
	slices.Sort(c.Scopes)
	c.Scopes = slices.Compact(c.Scopes)
	if c.Scopes == nil {
		c.Scopes = []Scope{}
	}
	var err error
	if c.RedirectURIs, err = checkRedirectURIs("redirectUris", c.RedirectURIs); err != nil {
		return err
	}
	if c.PostLogoutRedirectURIs, err = checkRedirectURIs("postLogoutRedirectUris", c.PostLogoutRedirectURIs); err != nil {
		return err
	}
	switch {
	case c.Type == ClientPublic && c.Allows(GrantClientCredentials):
		return invalid("a public client cannot use client_credentials: it has no secret")
	case c.Allows(GrantRefreshToken) && !c.Allows(GrantAuthorizationCode):
		return invalid("refresh_token needs authorization_code: refresh tokens are issued on a code's redemption")
	case c.Allows(GrantAuthorizationCode) && len(c.RedirectURIs) == 0:
		return invalid("authorization_code needs at least one redirect URI")
	case !c.Allows(GrantAuthorizationCode) && len(c.RedirectURIs)+len(c.PostLogoutRedirectURIs) > 0:
		return invalid("redirect URIs are for authorization_code clients only")
	case slices.Contains(c.Scopes, ScopeOfflineAccess) && !c.Allows(GrantRefreshToken):
		return invalid("offline_access needs the refresh_token grant")
	case c.PlatformAdmin && !c.Platform():
		return invalid("platformAdmin is for platform clients only")
	case c.PlatformAdmin && !c.Allows(GrantClientCredentials):
		return invalid("platformAdmin needs client_credentials: it marks the client's own tokens")
	}
	return nil
}

// checkRedirectURIs checks redirect URIs (RFC 6749 §3.1.2, OAuth 2.1 §7.5): absolute, https or
// http on a loopback host (native apps), no fragment, no user info, at most maxRedirectURIs of
// maxURILength bytes each; duplicates are dropped (the first kept). nil is returned as [].
func checkRedirectURIs(field string, uris []string) ([]string, error) {
	if len(uris) > maxRedirectURIs {
		return nil, invalid("%s may hold at most %d URIs", field, maxRedirectURIs)
	}
	out := make([]string, 0, len(uris))
	for i, s := range uris {
		if err := checkRedirectURI(s); err != nil {
			return nil, invalid("%s[%d] %s", field, i, err.Error())
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out, nil
}

// checkRedirectURI checks one redirect URI; its error is a phrase for the caller. The host is a
// DNS name or an IP address, matched exactly: a wildcard (`*`) or any other character a host name
// cannot hold is refused, and so is user information (`user@`), which would make the URI show
// one host and send to another. Private-use schemes (RFC 8252 §7.1, `com.example.app:/cb`) are
// not supported: a native app redirects to a loopback address (desktop) or a claimed https URI
// (mobile app links).
func checkRedirectURI(s string) error {
	if s == "" || len(s) > maxURILength || strings.ContainsAny(s, " \t\r\n") {
		return fmt.Errorf("must be an absolute URI of at most %d characters without spaces", maxURILength)
	}
	u, err := url.Parse(s)
	switch {
	case err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "":
		return fmt.Errorf("must be an absolute https URI (private-use schemes such as com.example.app:/cb are not supported)")
	case u.Fragment != "" || strings.Contains(s, "#"):
		return fmt.Errorf("must not have a fragment")
	case u.User != nil || strings.Contains(u.Host, "@"):
		return fmt.Errorf("must not hold user information")
	case !validHost(u.Hostname()):
		return fmt.Errorf("must name its host exactly: a DNS name or an IP address (no wildcard)")
	case !validPort(u):
		return fmt.Errorf("must have a port between 1 and 65535 when it names one")
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && loopback(u.Hostname()):
		return nil
	}
	return fmt.Errorf("must use https (http only on a loopback host: 127.0.0.1, [::1], localhost)")
}

// validPort reports whether u names no port, or a port 1–65535 in decimal without a leading
// zero (an empty port after the colon is refused).
func validPort(u *url.URL) bool {
	if !strings.HasSuffix(u.Host, ":"+u.Port()) {
		return true // no port
	}
	p := u.Port()
	n, err := strconv.Atoi(p)
	return err == nil && p != "" && p[0] != '0' && n >= 1 && n <= 65535
}

// validHost reports whether h (a URL's host without port or brackets) is an IP address or a DNS
// name of letter-digit-hyphen labels (RFC 1123), without an empty label or a trailing dot, whose
// last label is not all digits or hexadecimal-looking (`0x7f.1`, `127.1`: resolvers read them as
// IPv4 addresses in other notations, so the URI would show one host and reach another).
func validHost(h string) bool {
	if net.ParseIP(h) != nil {
		return true
	}
	if h == "" || len(h) > 253 {
		return false
	}
	labels := strings.Split(h, ".")
	if last := strings.ToLower(labels[len(labels)-1]); strings.HasPrefix(last, "0x") || strings.Trim(last, "0123456789") == "" {
		return false
	}
	for _, label := range labels {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// loopback reports whether host is a loopback address or localhost.
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// validName checks a name: minLen–maxLen characters on one line, without leading or trailing
// space.
func validName(field, s string, minLen, maxLen int) error {
	n := utf8.RuneCountInString(s)
	if n < minLen || n > maxLen || strings.ContainsAny(s, "\r\n\t") || strings.TrimSpace(s) != s {
		return invalid("%s must be %d–%d characters on one line, without leading or trailing space", field, minLen, maxLen)
	}
	return nil
}

// Code is an authorization code as stored: the SHA-256 of the code (never the code), who it was
// issued to and what the protocol needs back when it is redeemed.
type Code struct {
	// TenantID is the tenant of the client the code was issued to (PlatformTenant for a platform
	// client): the scope of its row.
	TenantID      string
	Hash          []byte // SHA-256 of the code (HashCode)
	AuthRequestID string
	ClientID      ClientID
	Subject       string
	// Request is the protocol's own JSON object (scopes, redirect URI, nonce, PKCE challenge,
	// auth time, amr, audience, response type, ...), kept as given and returned as stored.
	Request []byte
	// FamilyID is the refresh-token family the code's redemption starts: CreateCode sets a new one
	// when it is empty; the refresh token issued on redemption is created with it.
	FamilyID   string
	CreatedAt  time.Time
	ExpiresAt  time.Time
	RedeemedAt *time.Time
}

// RefreshToken is a refresh token as stored: the SHA-256 of its value, never the value.
type RefreshToken struct {
	ID       string // canonical UUID
	TenantID string // the client's tenant, or PlatformTenant
	// FamilyID is the token's family: every token rotated from one issuance. CreateRefreshToken
	// starts a new family when it is empty.
	FamilyID  string
	ClientID  ClientID
	Subject   string
	Scopes    []string
	Audience  []string
	AuthTime  time.Time
	AMR       []string
	CreatedAt time.Time
	ExpiresAt time.Time
	// ConsumedAt is set when the token was rotated (ReplacedBy is its successor), RevokedAt when
	// its family was revoked.
	ConsumedAt *time.Time
	ReplacedBy string
	RevokedAt  *time.Time
}
