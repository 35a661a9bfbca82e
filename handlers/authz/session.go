package authz

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/zitadel/oidc/v3/pkg/oidc"

	"spine/shared/cache"
	"spine/shared/tenancy"
)

// The sign-in state lives in Redis only (no table): the auth requests of /authorize between the
// redirect to the sign-in page and the code's redemption, and the browsers' sign-in sessions.
// Without Redis (not configured, or down) no sign-in can start or finish: the flows fail with an
// OAuth error or an error page, never with a token. client_credentials and refresh do not need it.

// authRequestTTL bounds an auth request from /authorize to the code's issue.
const authRequestTTL = 10 * time.Minute

// authRequestKey is the Redis key of auth request id: a platform-level key, {p}:authz:authreq:<id>
// (the tenant is not known before the sign-in).
func authRequestKey(id string) string { return cache.PlatformKey(service, "authreq", id) }

// codeIssuedKey marks that auth request id's code was issued (SET NX: one code per request).
func codeIssuedKey(id string) string { return cache.PlatformKey(service, "authreq-code", id) }

// requestFailuresKey counts the failed (and running) sign-in attempts of auth request id.
func requestFailuresKey(id string) string { return cache.PlatformKey(service, "authreq-failures", id) }

// signInFailuresKey counts the failed (and running) sign-in attempts of an e-mail address in
// tenant, by the SHA-256 of its lowercase form (identity's uniqueness rule): Redis holds no
// address.
func signInFailuresKey(tenant tenancy.TenantID, email string) string {
	h := sha256.Sum256([]byte(strings.ToLower(email)))
	return cache.TenantKey(tenant.String(), service, "signin-failures", hex.EncodeToString(h[:]))
}

var (
	// errStateUnavailable: Redis is not configured or did not answer.
	errStateUnavailable = errors.New("authz: sign-in state unavailable")
	// errAuthRequestNotFound: unknown or expired auth request.
	errAuthRequestNotFound = errors.New("authz: auth request not found")
	// errCodeIssuedAlready: a second code for one auth request.
	errCodeIssuedAlready = errors.New("authz: a code was issued for this auth request already")
)

// authRequest is one /authorize request as op validated it, then what the sign-in page added. It
// is stored as JSON in Redis and implements op.AuthRequest (and op.IDTokenRequest).
type authRequest struct {
	ID        string    `json:"id"`
	CreatedAt time.Time `json:"createdAt"`

	ClientID            string                   `json:"clientId"`
	RedirectURI         string                   `json:"redirectUri"`
	State               string                   `json:"state,omitempty"`
	Nonce               string                   `json:"nonce,omitempty"`
	Scopes              []string                 `json:"scopes"`
	Audience            []string                 `json:"audience"`
	ResponseType        oidc.ResponseType        `json:"responseType"`
	ResponseMode        oidc.ResponseMode        `json:"responseMode,omitempty"`
	CodeChallenge       string                   `json:"codeChallenge,omitempty"`
	CodeChallengeMethod oidc.CodeChallengeMethod `json:"codeChallengeMethod,omitempty"`
	Prompt              []string                 `json:"prompt,omitempty"`
	MaxAge              *uint                    `json:"maxAge,omitempty"`
	LoginHint           string                   `json:"loginHint,omitempty"`

	// BrowserHash is the SHA-256 of the browser-binding cookie's value of the browser that called
	// /authorize: the sign-in page, the consent page and the callback refuse any other browser.
	// Only the hash is kept (here, in Redis and in auth_codes.request), so a dump binds nothing.
	BrowserHash []byte `json:"browserHash"`
	// CSRFHash is the SHA-256 of the sign-in and consent forms' token (csrfToken; checked on
	// POST).
	CSRFHash []byte `json:"csrfHash"`

	// Set by the sign-in page.
	Tenant   string    `json:"tenant,omitempty"` // the user's tenant
	Subject  string    `json:"subject,omitempty"`
	AuthTime time.Time `json:"authTime,omitzero"`
	AMR      []string  `json:"amr,omitempty"`
	Complete bool      `json:"done,omitempty"` // signed in and consented: the callback may issue the code

	// CodeIssued: the code was issued (the request is kept until the code's window has passed, so
	// that a replayed code finds its tenant).
	CodeIssued bool `json:"codeIssued,omitempty"`

	// codeHash is set when the request was found by its code (AuthRequestByCode), for redemption.
	codeHash []byte
	// family is the redeemed code's family (set by the redemption): its access token's fam claim.
	family string
	// csrf is the forms' CSRF token, set by loadRequest for the browser it checked (never stored).
	csrf string
}

// bindBrowser binds a to the browser whose binding cookie's value is browser: a keeps the
// SHA-256 of the value and of the forms' CSRF token.
func (a *authRequest) bindBrowser(browser string) {
	h := sha256.Sum256([]byte(browser))
	a.BrowserHash = h[:]
	c := sha256.Sum256([]byte(csrfToken(browser, a.ID)))
	a.CSRFHash = c[:]
}

// fromBrowser reports whether browser (a binding cookie's value; "" for none) is the one a is
// bound to, comparing the hashes in constant time.
func (a *authRequest) fromBrowser(browser string) bool {
	h := sha256.Sum256([]byte(browser))
	return browser != "" && subtle.ConstantTimeCompare(h[:], a.BrowserHash) == 1
}

// csrfOK reports whether token is a's forms' CSRF token (hashes compared in constant time).
func (a *authRequest) csrfOK(token string) bool {
	h := sha256.Sum256([]byte(token))
	return token != "" && subtle.ConstantTimeCompare(h[:], a.CSRFHash) == 1
}

// csrfToken is the forms' CSRF token of the auth request id in the browser whose binding
// cookie's value is browser: HMAC-SHA256 keyed by that value, so the pages can render it again
// without storing it, and nobody without the cookie (a Redis or database dump included) can make
// it.
func csrfToken(browser, id string) string {
	m := hmac.New(sha256.New, []byte(browser))
	m.Write([]byte("spine-csrf\x00" + id))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// op.AuthRequest.
func (a *authRequest) GetID() string                      { return a.ID }
func (a *authRequest) GetACR() string                     { return "" }
func (a *authRequest) GetAMR() []string                   { return a.AMR }
func (a *authRequest) GetAudience() []string              { return a.Audience }
func (a *authRequest) GetAuthTime() time.Time             { return a.AuthTime }
func (a *authRequest) GetClientID() string                { return a.ClientID }
func (a *authRequest) GetNonce() string                   { return a.Nonce }
func (a *authRequest) GetRedirectURI() string             { return a.RedirectURI }
func (a *authRequest) GetScopes() []string                { return a.Scopes }
func (a *authRequest) GetState() string                   { return a.State }
func (a *authRequest) GetSubject() string                 { return a.Subject }
func (a *authRequest) Done() bool                         { return a.Complete }
func (a *authRequest) GetResponseType() oidc.ResponseType { return a.ResponseType }
func (a *authRequest) GetResponseMode() oidc.ResponseMode { return a.ResponseMode }

// GetCodeChallenge implements op.AuthRequest: nil when the request had none.
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge {
	if a.CodeChallenge == "" {
		return nil
	}
	return &oidc.CodeChallenge{Challenge: a.CodeChallenge, Method: a.CodeChallengeMethod}
}

// tenant is the signed-in user's tenant.
func (a *authRequest) tenant() (tenancy.TenantID, error) { return tenancy.ParseTenantID(a.Tenant) }

// hasPrompt reports whether the request asked for prompt p.
func (a *authRequest) hasPrompt(p string) bool { return slices.Contains(a.Prompt, p) }

// signInSession is a browser's sign-in: who, in which tenant, since when.
type signInSession struct {
	Tenant   string    `json:"tenant"`
	Subject  string    `json:"subject"`
	AuthTime time.Time `json:"authTime"`
	AMR      []string  `json:"amr"`
}

// state keeps auth requests and sign-in sessions in Redis.
type state struct {
	rdb        redis.UniversalClient // nil: no Redis configured
	sessionTTL time.Duration
	codeTTL    time.Duration
}

func (s *state) client() (redis.UniversalClient, error) {
	if s.rdb == nil {
		return nil, errStateUnavailable
	}
	return s.rdb, nil
}

// unavailable wraps a Redis failure.
func unavailable(err error) error { return fmt.Errorf("%w: %w", errStateUnavailable, err) }

// saveAuthRequest stores a with ttl.
func (s *state) saveAuthRequest(ctx context.Context, a *authRequest, ttl time.Duration) error {
	rdb, err := s.client()
	if err != nil {
		return err
	}
	b, err := json.Marshal(a)
	if err != nil {
		return err
	}
	if err := rdb.Set(ctx, authRequestKey(a.ID), b, ttl).Err(); err != nil {
		return unavailable(err)
	}
	return nil
}

// updateAuthRequest stores a keeping the key's remaining time to live.
func (s *state) updateAuthRequest(ctx context.Context, a *authRequest) error {
	rdb, err := s.client()
	if err != nil {
		return err
	}
	b, err := json.Marshal(a)
	if err != nil {
		return err
	}
	// XX: never recreate a request that expired meanwhile.
	ok, err := rdb.SetArgs(ctx, authRequestKey(a.ID), b, redis.SetArgs{Mode: "XX", KeepTTL: true}).Result()
	if errors.Is(err, redis.Nil) || (err == nil && ok != "OK") {
		return errAuthRequestNotFound
	}
	if err != nil {
		return unavailable(err)
	}
	return nil
}

// authRequest returns the auth request id, or errAuthRequestNotFound.
func (s *state) authRequest(ctx context.Context, id string) (*authRequest, error) {
	rdb, err := s.client()
	if err != nil {
		return nil, err
	}
	if id == "" || len(id) > 64 {
		return nil, errAuthRequestNotFound
	}
	b, err := rdb.Get(ctx, authRequestKey(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, errAuthRequestNotFound
	}
	if err != nil {
		return nil, unavailable(err)
	}
	a := &authRequest{}
	if err := json.Unmarshal(b, a); err != nil || a.ID != id {
		return nil, errAuthRequestNotFound
	}
	return a, nil
}

// markCodeIssued records that the code of a was issued, once: a second call (a replayed callback)
// is errCodeIssuedAlready. The request is then kept for the code's redemption window.
func (s *state) markCodeIssued(ctx context.Context, a *authRequest) error {
	rdb, err := s.client()
	if err != nil {
		return err
	}
	ok, err := rdb.SetNX(ctx, codeIssuedKey(a.ID), "1", s.codeTTL+time.Minute).Result()
	if err != nil {
		return unavailable(err)
	}
	if !ok {
		return errCodeIssuedAlready
	}
	a.CodeIssued = true
	b, err := json.Marshal(a)
	if err != nil {
		return err
	}
	if err := rdb.Set(ctx, authRequestKey(a.ID), b, s.codeTTL+time.Minute).Err(); err != nil {
		return unavailable(err)
	}
	return nil
}

// deleteAuthRequest removes an auth request that has no code.
func (s *state) deleteAuthRequest(ctx context.Context, id string) error {
	rdb, err := s.client()
	if err != nil {
		return err
	}
	if err := rdb.Del(ctx, authRequestKey(id)).Err(); err != nil {
		return unavailable(err)
	}
	return nil
}

// countAttempt adds one attempt to the counter key and returns the count and how long the
// counter's window still runs: the first attempt starts the window (the key's TTL), later ones do
// not extend it. One script, so the count and its TTL are never apart (a counter without a TTL
// would block for ever), and parallel attempts each get their own count.
func (s *state) countAttempt(ctx context.Context, key string, window time.Duration) (int64, time.Duration, error) {
	rdb, err := s.client()
	if err != nil {
		return 0, 0, err
	}
	v, err := countAttemptScript.Run(ctx, rdb, []string{key}, window.Milliseconds()).Int64Slice()
	if err != nil || len(v) != 2 {
		return 0, 0, unavailable(fmt.Errorf("counting a sign-in attempt: %w", err))
	}
	return v[0], time.Duration(v[1]) * time.Millisecond, nil
}

var countAttemptScript = redis.NewScript(`
local n = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  ttl = tonumber(ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return {n, ttl}`)

// releaseAttempt takes back an attempt countAttempt counted (it succeeded, or failed for a reason
// that is not the user's); nothing when the counter's window has ended meanwhile. A counter back
// at zero is deleted.
func (s *state) releaseAttempt(ctx context.Context, key string) error {
	rdb, err := s.client()
	if err != nil {
		return err
	}
	if err := releaseAttemptScript.Run(ctx, rdb, []string{key}).Err(); err != nil && !errors.Is(err, redis.Nil) {
		return unavailable(err)
	}
	return nil
}

var releaseAttemptScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local n = redis.call('DECR', KEYS[1])
if n <= 0 then redis.call('DEL', KEYS[1]) end
return n`)

// sessionKey is the Redis key of a sign-in session: the id's SHA-256, so a copy of Redis holds no
// cookie value (design: {t:<tenant>}:authz:session:<id>).
func sessionKey(tenant tenancy.TenantID, id string) string {
	h := sha256.Sum256([]byte(id))
	return cache.TenantKey(tenant.String(), service, "session", hex.EncodeToString(h[:]))
}

// newSession stores a sign-in session and returns its cookie value: <tenant>.<32 random bytes,
// base64url>. The tenant in the value names the key's hash slot; the random part is the secret.
func (s *state) newSession(ctx context.Context, sess signInSession) (string, error) {
	rdb, err := s.client()
	if err != nil {
		return "", err
	}
	tenant, err := tenancy.ParseTenantID(sess.Tenant)
	if err != nil {
		return "", err
	}
	value := tenant.String() + "." + randomToken()
	b, err := json.Marshal(sess)
	if err != nil {
		return "", err
	}
	if err := rdb.Set(ctx, sessionKey(tenant, value), b, s.sessionTTL).Err(); err != nil {
		return "", unavailable(err)
	}
	return value, nil
}

// session returns the session of a cookie value, or ok=false when there is none (unknown,
// expired, malformed).
func (s *state) session(ctx context.Context, value string) (sess signInSession, ok bool, err error) {
	tenant, good := sessionTenant(value)
	if !good {
		return signInSession{}, false, nil
	}
	rdb, err := s.client()
	if err != nil {
		return signInSession{}, false, err
	}
	b, err := rdb.Get(ctx, sessionKey(tenant, value)).Bytes()
	if errors.Is(err, redis.Nil) {
		return signInSession{}, false, nil
	}
	if err != nil {
		return signInSession{}, false, unavailable(err)
	}
	if err := json.Unmarshal(b, &sess); err != nil || sess.Tenant != tenant.String() {
		return signInSession{}, false, nil
	}
	return sess, true, nil
}

// endSession deletes the session of a cookie value (nothing when there is none).
func (s *state) endSession(ctx context.Context, value string) error {
	tenant, good := sessionTenant(value)
	if !good {
		return nil
	}
	rdb, err := s.client()
	if err != nil {
		return err
	}
	if err := rdb.Del(ctx, sessionKey(tenant, value)).Err(); err != nil {
		return unavailable(err)
	}
	return nil
}

// sessionTenant parses the tenant part of a session cookie value.
func sessionTenant(value string) (tenancy.TenantID, bool) {
	t, secret, found := strings.Cut(value, ".")
	if !found || len(secret) != 43 {
		return tenancy.TenantID{}, false
	}
	id, err := tenancy.ParseTenantID(t)
	return id, err == nil
}

// randomToken is 32 random bytes, base64url without padding (43 characters).
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
