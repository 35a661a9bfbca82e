package authz

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/zitadel/oidc/v3/pkg/op"

	"spine/shared/authn"
	permissions "spine/shared/authz"
	"spine/shared/contracts"
	"spine/shared/secrets"
	"spine/shared/tenancy"
)

// The OpenID provider: zitadel/oidc's op over the authz store (opStorage), signing in process with
// the key ring's current key, mounted at the issuer's path (/api/connect) on the anonymous /api
// group. op serves discovery's base, the JWKS, /token, /authorize, its callback and /endsession;
// this package serves the rest (introspection, revocation and userinfo, which need the token's
// tenant that op's storage calls do not carry; the sign-in and consent pages).

// ConnectPath is where the provider is mounted: the issuer's path, and the AuthzConnect
// function's route (connect/{*rest} under the Functions route prefix api). SPINE_AUTH_ISSUER must
// end in it, so that the issuer and the mount agree exactly.
const ConnectPath = "/api/connect"

// DefaultRefreshFamilyLifetime is ProviderConfig.RefreshFamilyLifetime's default: a refresh-token
// family ends 30 days after its sign-in.
const DefaultRefreshFamilyLifetime = 30 * 24 * time.Hour

// SignInThrottle bounds failed sign-ins, counted in Redis (a failure costs identity an argon2id
// computation). Both counts are of failures only, whether or not the e-mail address exists, so
// a throttled unknown address looks like a throttled known one.
type SignInThrottle struct {
	// MaxFailures is how many failed sign-ins one e-mail address of one tenant may have within
	// Window; beyond it the sign-in page answers 429 without checking the password, until the
	// window (started by the first failure) ends. Default 10.
	MaxFailures int
	// Window is the per-address count's window. Default 15 minutes.
	Window time.Duration
	// MaxRequestFailures is how many failed sign-ins one auth request may have: the last one
	// deletes the request (429), and the client has to start a new one. Default 5.
	MaxRequestFailures int
}

func (t SignInThrottle) withDefaults() SignInThrottle {
	if t.MaxFailures == 0 {
		t.MaxFailures = 10
	}
	if t.Window == 0 {
		t.Window = 15 * time.Minute
	}
	if t.MaxRequestFailures == 0 {
		t.MaxRequestFailures = 5
	}
	return t
}

// MaxAccessTokenTTL bounds SPINE_AUTHZ_ACCESS_TOKEN_TTL: the API does not ask the server about
// every token, so an access token's lifetime is the bound on how long a revoked one still works.
const MaxAccessTokenTTL = 15 * time.Minute

// protocolStore is the store surface the provider uses (design: "Store surface the protocol
// uses"); the store asserts that it implements it. Every method takes its tenant from its
// arguments or from the value it is given, and answers the store's sentinels.
type protocolStore interface {
	ClientByID(ctx context.Context, id string) (Client, error)
	AuthenticateClient(ctx context.Context, id, secret string) (Client, error)
	CreateCode(ctx context.Context, c Code) error
	RedeemCode(ctx context.Context, tenant string, codeHash []byte) (Code, error)
	CreateRefreshToken(ctx context.Context, rt RefreshToken) (value string, err error)
	RefreshTokenByValue(ctx context.Context, value string) (RefreshToken, error)
	RotateRefreshToken(ctx context.Context, value string, next RefreshToken) (newValue string, err error)
	RevokeRefreshFamily(ctx context.Context, value, clientID string) error
	RevokeAccessToken(ctx context.Context, tenant, jti, clientID string, exp time.Time) error
	AccessTokenRevoked(ctx context.Context, tenant, jti string, exp time.Time) (bool, error)
	FamilyRevoked(ctx context.Context, tenant, family string, exp time.Time) (bool, error)
	Consent(ctx context.Context, tenant, subject, clientID string) (scopes []string, err error)
	GrantConsent(ctx context.Context, tenant, subject, clientID string, scopes []string) error
	EmitTokenIssued(ctx context.Context, tenant string, d contracts.TokenIssuedData) error
}

// The store implements the protocol's surface.
var _ protocolStore = Store(nil)

// signingKeys is the key ring surface the provider signs with (secrets.KeyRing): the current key
// signs every token, the published ones (current first) are the JWKS. Both answer from memory.
type signingKeys interface {
	Current() (secrets.SigningKey, error)
	Published() []secrets.SigningKey
}

// ProviderConfig is what the provider needs besides its collaborators. Zero durations take the
// documented defaults.
type ProviderConfig struct {
	// Issuer is SPINE_AUTH_ISSUER: <public base URL>/api/connect, used as op's static issuer (never
	// derived from Host or X-Forwarded-*). http is accepted only for a loopback host (local runs).
	Issuer string
	// Audience is SPINE_AUTH_AUDIENCE, the aud of every access token.
	Audience string
	// CryptoKey encrypts op's authorization codes (Key Vault secret authz-crypto-key).
	CryptoKey [32]byte
	// AccessTokenTTL is SPINE_AUTHZ_ACCESS_TOKEN_TTL: default 10 minutes, at most MaxAccessTokenTTL.
	AccessTokenTTL time.Duration
	// IDTokenTTL is the ID tokens' lifetime: default AccessTokenTTL.
	IDTokenTTL time.Duration
	// RefreshTokenTTL is how long a refresh token can be used; each rotation starts a new one.
	// Default 14 days.
	RefreshTokenTTL time.Duration
	// RefreshFamilyLifetime bounds a refresh-token family: counted from the sign-in (auth_time),
	// no refresh is accepted once it has passed and no refresh token expires after it, however
	// often the family rotated; the user signs in again. Default 30 days
	// (DefaultRefreshFamilyLifetime).
	RefreshFamilyLifetime time.Duration
	// CodeTTL is the authorization codes' redemption window: default 5 minutes (RFC 6749 §4.1.2:
	// at most 10).
	CodeTTL time.Duration
	// SessionTTL is the sign-in session's lifetime: while it lives, the same browser is not asked
	// for its password again for the same tenant. Default 8 hours.
	SessionTTL time.Duration
	// SignInThrottle bounds failed sign-ins (see SignInThrottle); zero fields take its defaults.
	SignInThrottle SignInThrottle
	// Now is the clock; default time.Now.
	Now func() time.Time
}

func (c ProviderConfig) withDefaults() ProviderConfig {
	if c.AccessTokenTTL == 0 {
		c.AccessTokenTTL = 10 * time.Minute
	}
	if c.IDTokenTTL == 0 {
		c.IDTokenTTL = c.AccessTokenTTL
	}
	if c.RefreshTokenTTL == 0 {
		c.RefreshTokenTTL = 14 * 24 * time.Hour
	}
	if c.CodeTTL == 0 {
		c.CodeTTL = 5 * time.Minute
	}
	if c.RefreshFamilyLifetime == 0 {
		c.RefreshFamilyLifetime = DefaultRefreshFamilyLifetime
	}
	if c.SessionTTL == 0 {
		c.SessionTTL = 8 * time.Hour
	}
	c.SignInThrottle = c.SignInThrottle.withDefaults()
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Provider is the authorization server's protocol side: an http.Handler for every path under
// ConnectPath. Safe for concurrent use.
type Provider struct {
	cfg      ProviderConfig
	issuer   string
	secure   bool // https issuer: __Secure- cookies with the Secure attribute
	op       *op.Provider
	storage  *opStorage
	state    *state
	store    protocolStore
	users    authn.Users
	perms    permissions.Permissions
	dir      tenancy.Directory
	log      *slog.Logger
	callback func(context.Context, string) string
	verified *verifiedTokens // access tokens verifyAccess accepted
	handler  http.Handler
}

// ProviderDeps are the provider's collaborators.
type ProviderDeps struct {
	Store protocolStore
	Keys  signingKeys
	// Users answers the sign-in page and the profile claims (identity, through kit.Deps.Users).
	Users authn.Users
	// Permissions answers a user's effective permissions (identity, through kit.Deps.Permissions):
	// a user's tokens carry an API scope only while the user holds the permission of that code.
	Permissions permissions.Permissions
	// Directory answers tenant states: no token is issued for a suspended, decommissioned or
	// unknown tenant. Nil: not checked (unit tests of the protocol alone).
	Directory tenancy.Directory
	// Redis holds auth requests and sign-in sessions; nil: sign-in is unavailable (client
	// credentials and refresh still work).
	Redis redis.UniversalClient
	Log   *slog.Logger
}

// NewProvider builds the provider. The issuer must be an absolute https URL (http only on a
// loopback host, which is what enables op's insecure mode) whose path is ConnectPath.
func NewProvider(cfg ProviderConfig, d ProviderDeps) (*Provider, error) {
	cfg = cfg.withDefaults()
	if d.Store == nil || d.Keys == nil || d.Users == nil || d.Permissions == nil {
		return nil, errors.New("authz: NewProvider needs a store, a key ring, a sign-in (Users) and Permissions")
	}
	if cfg.AccessTokenTTL < 0 || cfg.AccessTokenTTL > MaxAccessTokenTTL {
		return nil, fmt.Errorf("SPINE_AUTHZ_ACCESS_TOKEN_TTL: %s is not between 1s and %s", cfg.AccessTokenTTL, MaxAccessTokenTTL)
	}
	if cfg.RefreshFamilyLifetime < 0 || cfg.RefreshTokenTTL < 0 {
		return nil, errors.New("authz: the refresh tokens' lifetimes must be positive")
	}
	if t := cfg.SignInThrottle; t.MaxFailures < 0 || t.MaxRequestFailures < 0 || t.Window < 0 {
		return nil, errors.New("authz: the sign-in throttle's limits must be positive")
	}
	if cfg.Audience == "" {
		return nil, errors.New("SPINE_AUTH_AUDIENCE: required by the authorization server")
	}
	u, err := url.Parse(cfg.Issuer)
	if err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("SPINE_AUTH_ISSUER: %q is not an absolute URL without query or fragment", cfg.Issuer)
	}
	if u.Path != ConnectPath {
		return nil, fmt.Errorf("SPINE_AUTH_ISSUER: its path must be %s (where the authorization server is mounted), not %q", ConnectPath, u.Path)
	}
	var opts []op.Option
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && loopback(u.Hostname()):
		opts = append(opts, op.WithAllowInsecure())
	default:
		return nil, fmt.Errorf("SPINE_AUTH_ISSUER: %q must be https (http only on a loopback host)", cfg.Issuer)
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	p := &Provider{cfg: cfg, issuer: cfg.Issuer, secure: u.Scheme == "https", store: d.Store, users: d.Users, perms: d.Permissions, dir: d.Directory, log: d.Log,
		state:    &state{rdb: d.Redis, sessionTTL: cfg.SessionTTL, codeTTL: cfg.CodeTTL},
		verified: newVerifiedTokens(maxVerifiedTokens)}
	p.storage = &opStorage{p: p, keys: d.Keys}
	opts = append(opts,
		op.WithCustomAuthEndpoint(op.NewEndpoint("authorize")),
		op.WithCustomTokenEndpoint(op.NewEndpoint("token")),
		op.WithCustomIntrospectionEndpoint(op.NewEndpoint("introspect")),
		op.WithCustomUserinfoEndpoint(op.NewEndpoint("userinfo")),
		op.WithCustomRevocationEndpoint(op.NewEndpoint("revoke")),
		op.WithCustomEndSessionEndpoint(op.NewEndpoint("endsession")),
		op.WithCustomKeysEndpoint(op.NewEndpoint("jwks")),
		// No CORS from op (its default allows every origin with credentials): the mux answers
		// CORS itself (connect_cors.go).
		op.WithCORSOptions(nil),
		op.WithAccessTokenVerifierOpts(op.WithSupportedAccessTokenSigningAlgorithms(string(signingAlg))),
		op.WithIDTokenHintVerifierOpts(op.WithSupportedIDTokenHintSigningAlgorithms(string(signingAlg))),
	)
	p.op, err = op.NewProvider(&op.Config{
		CryptoKey:                cfg.CryptoKey,
		DefaultLogoutRedirectURI: cfg.Issuer + "/login?signedOut=1",
		CodeMethodS256:           true,
		AuthMethodPost:           true,
		GrantTypeRefreshToken:    true,
		SupportedScopes:          supportedScopes,
		SupportedClaims:          supportedClaims,
	}, p.storage, op.StaticIssuer(cfg.Issuer), opts...)
	if err != nil {
		return nil, fmt.Errorf("authz: the OpenID provider: %w", err)
	}
	p.callback = op.AuthCallbackURL(p.op)
	p.handler = p.routes()
	return p, nil
}

// ServeHTTP implements http.Handler for requests whose path is under ConnectPath.
func (p *Provider) ServeHTTP(w http.ResponseWriter, r *http.Request) { p.handler.ServeHTTP(w, r) }

// supportedScopes are the scopes discovery lists: OpenID's own; the API scopes a client may ask
// for are its own (clients.scopes).
var supportedScopes = []string{"openid", "profile", "email", "offline_access"}

// supportedClaims are the claims our tokens carry.
var supportedClaims = []string{"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "auth_time", "nonce", "amr", "azp",
	"at_hash", "c_hash", "client_id", "scope", "tenant_id", "platform_admin", "email", "name"}
