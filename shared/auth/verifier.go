package auth

import (
	"context"
	"crypto/sha256"
	"errors"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/golang-jwt/jwt/v5"
)

// maxTokenLen bounds the raw token accepted by Verify; longer input is rejected before hashing or parsing.
const maxTokenLen = 8 << 10

// Verifier validates bearer access tokens. It is safe for concurrent use by multiple goroutines.
// Create it with [NewVerifier] and release its background refresh with [Verifier.Close].
type Verifier struct {
	cfg    Config
	keys   keyStore
	parser *jwt.Parser
	cache  *tokenCache // nil when disabled
	cancel context.CancelFunc
	once   sync.Once

	// now is the clock; replaced only by tests, before first use.
	now func() time.Time
	// onKeyLookup, when set (tests only, before first use), runs each time the signature path looks up a key.
	onKeyLookup func()
}

// NewVerifier validates cfg, applies its defaults and sets up the key source (see [Config]): Keys
// is read on every signature check; JWKSFile is read now (an unreadable file or one with no usable
// key is an error); JWKSURL and discovery are fetched now, waiting at most 10s, and a failed first
// fetch is logged, not returned, so the process can start before the authorization server is
// reachable: until the keys load, tokens are refused as invalid (401), and the set is retried in the
// background and on the next token. ctx bounds the background refresh of a fetched set: it stops
// when ctx ends or Close is called.
func NewVerifier(ctx context.Context, cfg Config) (*Verifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	v := &Verifier{cfg: cfg, cache: newTokenCache(cfg.CacheSize), now: time.Now}
	bg, cancel := context.WithCancel(ctx)
	v.cancel = cancel
	var configured keyStore
	switch {
	case cfg.JWKSFile != "":
		fs, err := newFileStore(cfg.JWKSFile)
		if err != nil {
			cancel()
			return nil, err
		}
		configured = fs
	case cfg.JWKSURL != "":
		configured = newRemoteStore(bg, cfg.JWKSURL, "")
	case cfg.Keys == nil:
		configured = newRemoteStore(bg, "", cfg.Issuer)
	}
	switch {
	case cfg.Keys == nil:
		v.keys = configured
	case configured == nil:
		v.keys = sourceStore{src: cfg.Keys, refresh: true}
	default:
		// The source's own refresh (KeyRefresher) only once the configured set does not know the
		// kid either: a token of the configured keys never makes the key ring read its vault.
		v.keys = multiStore{sourceStore{src: cfg.Keys}, configured, sourceStore{src: cfg.Keys, refresh: true}}
	}
	v.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{algRS256, algES256}),
		jwt.WithIssuer(cfg.Issuer),
		jwt.WithAudience(cfg.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(cfg.ClockSkew),
		jwt.WithTimeFunc(func() time.Time { return v.now() }),
		jwt.WithStrictDecoding(),
	)
	return v, nil
}

// Close stops the background refresh of a fetched key set. It is idempotent. Verify remains usable after
// Close with the keys already loaded (an unknown kid may still trigger an on-demand refresh).
func (v *Verifier) Close() {
	v.once.Do(v.cancel)
}

// accessClaims are the claims Spine reads from an access token.
type accessClaims struct {
	jwt.RegisteredClaims
	TenantID      string `json:"tenant_id,omitempty"`
	Scope         string `json:"scope,omitempty"`
	PlatformAdmin bool   `json:"platform_admin,omitempty"`
}

// Verify validates raw (the compact JWS, without the "Bearer " prefix) and returns its Principal.
//
// A token is accepted when: its alg is RS256 or ES256; its header carries a kid found in the key set
// whose type fits the alg (see [ErrKeyMismatch]); the signature verifies; iss equals Config.Issuer;
// aud (string or array) contains Config.Audience; exp is present and, like nbf and iat when present,
// holds within Config.ClockSkew of now; sub is non-empty; and tenant_id is non-empty or platform_admin
// is true (both may be set).
//
// A token verified before is answered from the cache without a signature check until exp plus
// ClockSkew — the same instant the full check starts rejecting it — after which it fails with
// [ErrExpired]. A cached token stays accepted until then even if its key leaves the key set.
//
// Errors: "" gives [ErrMissingToken]; a token longer than 8 KiB is refused as [ErrMalformedToken]
// before any parsing; every other failure matches [ErrInvalidToken] and one specific
// sentinel (see the package's error variables). ctx bounds any on-demand key-set refresh.
func (v *Verifier) Verify(ctx context.Context, raw string) (Principal, error) {
	if raw == "" {
		return Principal{}, ErrMissingToken
	}
	if len(raw) > maxTokenLen {
		return Principal{}, invalid(ErrMalformedToken, "token too long")
	}
	var key cacheKey
	if v.cache != nil {
		// The hash only reads raw; viewing the string's bytes avoids copying a token per request.
		key = sha256.Sum256(unsafe.Slice(unsafe.StringData(raw), len(raw)))
		if p, found, live := v.cache.Get(&key, v.now().UnixNano()); found {
			if !live {
				return Principal{}, invalid(ErrExpired, "")
			}
			return p.clone(), nil
		}
	}
	p, err := v.verifySlow(ctx, raw)
	if err != nil {
		return Principal{}, err
	}
	if v.cache != nil {
		v.cache.Put(&key, p, p.ExpiresAt.Add(v.cfg.ClockSkew).UnixNano(), v.now().UnixNano())
		return p.clone(), nil
	}
	return p, nil
}

// verifySlow runs the full signature and claims check.
func (v *Verifier) verifySlow(ctx context.Context, raw string) (Principal, error) {
	var c accessClaims
	tok, err := v.parser.ParseWithClaims(raw, &c, v.headerKeyfunc(ctx))
	if err != nil {
		return Principal{}, classify(tok, err)
	}
	if c.Subject == "" {
		return Principal{}, invalid(ErrInvalidClaims, "sub is required")
	}
	if c.TenantID == "" && !c.PlatformAdmin {
		return Principal{}, invalid(ErrInvalidClaims, "tenant_id or platform_admin=true is required")
	}
	p := Principal{
		Subject:       c.Subject,
		TenantID:      c.TenantID,
		PlatformAdmin: c.PlatformAdmin,
		ExpiresAt:     c.ExpiresAt.Time,
		TokenID:       c.ID,
	}
	if fields := strings.Fields(c.Scope); len(fields) > 0 {
		p.Scopes = fields
	}
	return p, nil
}

// classify maps a jwt parse error onto this package's sentinels without exposing jwt's error types.
func classify(tok *jwt.Token, err error) error {
	var te *tokenError
	if errors.As(err, &te) { // from our keyfunc, already classified
		return te
	}
	if tok == nil || errors.Is(err, jwt.ErrTokenMalformed) {
		return invalid(ErrMalformedToken, "")
	}
	if alg, _ := tok.Header["alg"].(string); alg != algRS256 && alg != algES256 {
		return invalid(ErrUnsupportedAlgorithm, "")
	}
	switch {
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return invalid(ErrBadSignature, "")
	case errors.Is(err, jwt.ErrTokenExpired):
		return invalid(ErrExpired, "")
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return invalid(ErrNotYetValid, "nbf is in the future")
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return invalid(ErrNotYetValid, "iat is in the future")
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return invalid(ErrWrongIssuer, "")
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return invalid(ErrWrongAudience, "")
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return invalid(ErrInvalidClaims, "a required claim (exp, iss or aud) is missing")
	default:
		return invalid(ErrInvalidClaims, "")
	}
}
