// Package apitest is the mechanics of a service's HTTP API tests: dev-signed access tokens and a
// verifier that accepts them ([Tokens]), one request through a handler ([Do]) and its answer
// ([Response]). Each service's tests wire their own handler and state their own expectations.
package apitest

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"spine/shared/auth"
	"spine/shared/cache"
	"spine/shared/problem"
	"spine/shared/testenv"
)

// The iss and aud of the tokens [Tokens] mints and its verifier accepts.
const (
	Issuer   = "https://spine.test/issuer"
	Audience = "spine-api"
)

// Tokens is a dev signing key in a test's temporary directory, with the issuer and audience its
// tokens carry.
type Tokens struct {
	Signer   *auth.DevSigner
	Issuer   string
	Audience string
	// JWKSFile is the public key as a JWKS, for auth.Config.JWKSFile.
	JWKSFile string
}

// NewTokens creates a dev signing key (auth.EnsureDevKey) in a fresh temporary directory of t,
// for tokens with [Issuer] and [Audience].
func NewTokens(t testing.TB) *Tokens {
	t.Helper()
	dir := t.TempDir()
	signer, err := auth.EnsureDevKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	return &Tokens{Signer: signer, Issuer: Issuer, Audience: Audience, JWKSFile: filepath.Join(dir, auth.DevJWKSFile)}
}

// Verifier returns a verifier that accepts tk's tokens, closed when t ends.
func (tk *Tokens) Verifier(t testing.TB) *auth.Verifier {
	t.Helper()
	v, err := auth.NewVerifier(context.Background(), auth.Config{Issuer: tk.Issuer, Audience: tk.Audience, JWKSFile: tk.JWKSFile})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	return v
}

// Mint returns a token valid for an hour for subject "user-<tenant>" with the given tenant_id
// (empty for none), platform_admin flag and scopes, failing t if it cannot be signed.
func (tk *Tokens) Mint(t testing.TB, tenant string, admin bool, scopes ...string) string {
	t.Helper()
	tok, err := tk.Signer.Mint(auth.TokenClaims{Issuer: tk.Issuer, Audience: tk.Audience, Subject: "user-" + tenant,
		TenantID: tenant, Scopes: scopes, PlatformAdmin: admin}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// MintAs is Mint for an explicit subject (the token's sub): a service whose callers are its own
// users (identity: the sub is the identity user id) needs tokens for particular users.
func (tk *Tokens) MintAs(t testing.TB, subject, tenant string, admin bool, scopes ...string) string {
	t.Helper()
	tok, err := tk.Signer.Mint(auth.TokenClaims{Issuer: tk.Issuer, Audience: tk.Audience, Subject: subject,
		TenantID: tenant, Scopes: scopes, PlatformAdmin: admin}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// Response is a recorded answer.
type Response struct {
	Code   int
	Header http.Header
	Body   []byte
}

// JSON decodes the body as a JSON object, failing t if it is not one.
func (r Response) JSON(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("body %q: %v", r.Body, err)
	}
	return m
}

// ProblemCode returns the stable code of a problem+json body, failing t if it is not one.
func (r Response) ProblemCode(t testing.TB) string {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); ct != problem.ContentType {
		t.Fatalf("Content-Type = %q, want %s (status %d, body %s)", ct, problem.ContentType, r.Code, r.Body)
	}
	code, _ := r.JSON(t)["code"].(string)
	return code
}

// Do serves one request through h and records the answer. body is sent as is when it is a
// string, marshalled as JSON otherwise, and absent when nil; a non-nil body is sent as
// application/json. token, when not empty, is sent as a bearer token. headers are name, value
// pairs set last, so they may override Content-Type.
func Do(t testing.TB, h http.Handler, method, path, token string, body any, headers ...string) Response {
	t.Helper()
	var rd *bytes.Reader
	switch b := body.(type) {
	case nil:
		rd = bytes.NewReader(nil)
	case string:
		rd = bytes.NewReader([]byte(b))
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatalf("request body: %v", err)
		}
		rd = bytes.NewReader(raw)
	}
	req := httptest.NewRequest(method, path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return Response{Code: rec.Code, Header: rec.Header(), Body: rec.Body.Bytes()}
}

// Cache opens the stack's Redis (SPINE_REDIS_URL) as the services' cache, closed with the test.
// (Here, not in testenv: the cache package's own tests import testenv.)
func Cache(t testing.TB) *cache.Cache {
	t.Helper()
	url, err := testenv.Require("SPINE_REDIS_URL")
	if err != nil {
		t.Fatal(err)
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	c := cache.New(rdb, cache.Config{}, nil)
	t.Cleanup(func() { c.Close(); _ = rdb.Close() })
	return c
}
