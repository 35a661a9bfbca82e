package auth

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

func TestVerify(t *testing.T) {
	e := newEnv(t, -1) // no cache: every case goes through the full check
	now := time.Now()
	kid := e.signer.kid

	pubDER, err := x509.MarshalPKIXPublicKey(&e.signer.key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})

	with := func(mut func(jwt.MapClaims)) jwt.MapClaims {
		c := claims(now)
		mut(c)
		return c
	}

	cases := []struct {
		name  string
		token func(t *testing.T) string
		want  error // nil: accepted
		check func(t *testing.T, p Principal)
	}{
		{
			name:  "valid tenant token",
			token: func(t *testing.T) string { return e.es256(t, claims(now)) },
			check: func(t *testing.T, p Principal) {
				want := Principal{Subject: "user-1", TenantID: "tenant-1", Scopes: []string{"tenant.read", "tenant.manage"},
					ExpiresAt: time.Unix(now.Add(time.Hour).Unix(), 0), TokenID: "jti-1"}
				if !principalEqual(p, want) {
					t.Fatalf("principal = %+v, want %+v", p, want)
				}
				if !p.HasScope("tenant.read") || p.HasScope("tenant") || p.HasScope("TENANT.READ") {
					t.Fatal("HasScope wrong")
				}
			},
		},
		{
			name: "valid platform-admin token",
			token: func(t *testing.T) string {
				return e.es256(t, with(func(c jwt.MapClaims) {
					delete(c, "tenant_id")
					c["platform_admin"] = true
					c["scope"] = "tenant.manage"
				}))
			},
			check: func(t *testing.T, p Principal) {
				if !p.PlatformAdmin || p.TenantID != "" || !slices.Equal(p.Scopes, []string{"tenant.manage"}) {
					t.Fatalf("principal = %+v", p)
				}
			},
		},
		{
			name: "platform admin with tenant and no scope claim",
			token: func(t *testing.T) string {
				return e.es256(t, with(func(c jwt.MapClaims) { c["platform_admin"] = true; delete(c, "scope") }))
			},
			check: func(t *testing.T, p Principal) {
				if !p.PlatformAdmin || p.TenantID != "tenant-1" || len(p.Scopes) != 0 {
					t.Fatalf("principal = %+v", p)
				}
			},
		},
		{
			name: "audience array containing ours",
			token: func(t *testing.T) string {
				return e.es256(t, with(func(c jwt.MapClaims) { c["aud"] = []string{"other-api", testAudience} }))
			},
		},
		{
			name: "RS256 with an RSA key in the JWKS",
			token: func(t *testing.T) string {
				return sign(t, jwt.SigningMethodRS256, e.rsaKey, map[string]any{"kid": e.rsaKID}, claims(now))
			},
		},
		{
			name: "typ at+jwt accepted",
			token: func(t *testing.T) string {
				return sign(t, jwt.SigningMethodES256, e.signer.key, map[string]any{"kid": kid, "typ": "at+JWT"}, claims(now))
			},
		},
		{
			name: "expired within clock skew still accepted",
			token: func(t *testing.T) string {
				return e.es256(t, with(func(c jwt.MapClaims) { c["exp"] = now.Add(-10 * time.Second).Unix() }))
			},
		},
		{
			name: "expired",
			token: func(t *testing.T) string {
				return e.es256(t, with(func(c jwt.MapClaims) {
					c["iat"] = now.Add(-2 * time.Hour).Unix()
					c["exp"] = now.Add(-time.Minute).Unix()
				}))
			},
			want: ErrExpired,
		},
		{
			name: "not yet valid",
			token: func(t *testing.T) string {
				return e.es256(t, with(func(c jwt.MapClaims) { c["nbf"] = now.Add(5 * time.Minute).Unix() }))
			},
			want: ErrNotYetValid,
		},
		{
			name: "issued in the future",
			token: func(t *testing.T) string {
				return e.es256(t, with(func(c jwt.MapClaims) { c["iat"] = now.Add(5 * time.Minute).Unix() }))
			},
			want: ErrNotYetValid,
		},
		{
			name: "wrong issuer",
			token: func(t *testing.T) string {
				return e.es256(t, with(func(c jwt.MapClaims) { c["iss"] = "https://evil.test" }))
			},
			want: ErrWrongIssuer,
		},
		{
			name:  "wrong audience",
			token: func(t *testing.T) string { return e.es256(t, with(func(c jwt.MapClaims) { c["aud"] = "other-api" })) },
			want:  ErrWrongAudience,
		},
		{
			name: "audience array without ours",
			token: func(t *testing.T) string {
				return e.es256(t, with(func(c jwt.MapClaims) { c["aud"] = []string{"a", "b"} }))
			},
			want: ErrWrongAudience,
		},
		{
			name:  "missing exp",
			token: func(t *testing.T) string { return e.es256(t, with(func(c jwt.MapClaims) { delete(c, "exp") })) },
			want:  ErrInvalidClaims,
		},
		{
			name:  "missing sub",
			token: func(t *testing.T) string { return e.es256(t, with(func(c jwt.MapClaims) { delete(c, "sub") })) },
			want:  ErrInvalidClaims,
		},
		{
			name: "missing tenant_id and platform_admin",
			token: func(t *testing.T) string {
				return e.es256(t, with(func(c jwt.MapClaims) { delete(c, "tenant_id") }))
			},
			want: ErrInvalidClaims,
		},
		{
			name: "platform_admin false and no tenant",
			token: func(t *testing.T) string {
				return e.es256(t, with(func(c jwt.MapClaims) { delete(c, "tenant_id"); c["platform_admin"] = false }))
			},
			want: ErrInvalidClaims,
		},
		{
			name: "tenant_id of the wrong type",
			token: func(t *testing.T) string {
				return e.es256(t, with(func(c jwt.MapClaims) { c["tenant_id"] = 42 }))
			},
			want: ErrMalformedToken,
		},
		{
			name: "unknown kid",
			token: func(t *testing.T) string {
				return sign(t, jwt.SigningMethodES256, newECKey(t), map[string]any{"kid": "not-in-set"}, claims(now))
			},
			want: ErrUnknownKey,
		},
		{
			name:  "no kid",
			token: func(t *testing.T) string { return sign(t, jwt.SigningMethodES256, e.signer.key, nil, claims(now)) },
			want:  ErrUnknownKey,
		},
		{
			name: "known kid but signed by another key",
			token: func(t *testing.T) string {
				return sign(t, jwt.SigningMethodES256, newECKey(t), map[string]any{"kid": kid}, claims(now))
			},
			want: ErrBadSignature,
		},
		{
			name: "alg none",
			token: func(t *testing.T) string {
				return sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, map[string]any{"kid": kid}, claims(now))
			},
			want: ErrUnsupportedAlgorithm,
		},
		{
			name: "alg none with a signature",
			token: func(t *testing.T) string {
				valid := segments(e.es256(t, claims(now)))
				h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","kid":"` + kid + `"}`))
				return h + "." + valid[1] + "." + valid[2]
			},
			want: ErrUnsupportedAlgorithm,
		},
		{
			name: "HS256 signed with the public key bytes (algorithm confusion)",
			token: func(t *testing.T) string {
				return sign(t, jwt.SigningMethodHS256, pubPEM, map[string]any{"kid": kid}, claims(now))
			},
			want: ErrUnsupportedAlgorithm,
		},
		{
			name: "HS256 signed with the JWKS bytes",
			token: func(t *testing.T) string {
				return sign(t, jwt.SigningMethodHS256, e.signer.JWKS(), map[string]any{"kid": kid}, claims(now))
			},
			want: ErrUnsupportedAlgorithm,
		},
		{
			name: "ES384 refused",
			token: func(t *testing.T) string {
				return sign(t, jwt.SigningMethodES384, newECKeyCurve384(t), map[string]any{"kid": kid}, claims(now))
			},
			want: ErrUnsupportedAlgorithm,
		},
		{
			name: "ES256 token whose header says RS256",
			token: func(t *testing.T) string {
				return rawJWS(t, map[string]any{"alg": "RS256", "kid": kid, "typ": "JWT"}, claims(now), jwt.SigningMethodES256, e.signer.key)
			},
			want: ErrKeyMismatch,
		},
		{
			name: "RS256 header naming the EC key, RSA-signed",
			token: func(t *testing.T) string {
				return sign(t, jwt.SigningMethodRS256, e.rsaKey, map[string]any{"kid": kid}, claims(now))
			},
			want: ErrKeyMismatch,
		},
		{
			name: "ES256 header naming the RSA key",
			token: func(t *testing.T) string {
				return sign(t, jwt.SigningMethodES256, e.signer.key, map[string]any{"kid": e.rsaKID}, claims(now))
			},
			want: ErrKeyMismatch,
		},
		{
			name: "tampered payload",
			token: func(t *testing.T) string {
				parts := segments(e.es256(t, claims(now)))
				c := claims(now)
				c["tenant_id"] = "tenant-2"
				b, _ := json.Marshal(c)
				return parts[0] + "." + base64.RawURLEncoding.EncodeToString(b) + "." + parts[2]
			},
			want: ErrBadSignature,
		},
		{
			name: "tampered signature",
			token: func(t *testing.T) string {
				parts := segments(e.es256(t, claims(now)))
				sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
				sig[5] ^= 0x01
				return parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(sig)
			},
			want: ErrBadSignature,
		},
		{
			name: "crit header refused",
			token: func(t *testing.T) string {
				return sign(t, jwt.SigningMethodES256, e.signer.key, map[string]any{"kid": kid, "crit": []string{"exp"}}, claims(now))
			},
			want: ErrMalformedToken,
		},
		{
			name: "unexpected typ refused",
			token: func(t *testing.T) string {
				return sign(t, jwt.SigningMethodES256, e.signer.key, map[string]any{"kid": kid, "typ": "dpop+jwt"}, claims(now))
			},
			want: ErrMalformedToken,
		},
		{name: "garbage", token: func(*testing.T) string { return "not a token" }, want: ErrMalformedToken},
		{name: "garbage segments", token: func(*testing.T) string { return "a.b.c" }, want: ErrMalformedToken},
		{name: "two segments", token: func(t *testing.T) string { p := segments(e.es256(t, claims(now))); return p[0] + "." + p[1] }, want: ErrMalformedToken},
		{name: "oversized", token: func(*testing.T) string { return strings.Repeat("a", maxTokenLen+1) }, want: ErrMalformedToken},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tok := tc.token(t)
			p, err := e.v.Verify(context.Background(), tok)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if tc.check != nil {
					tc.check(t, p)
				}
				return
			}
			t.Logf("rejected: %v", err)
			if !errors.Is(err, tc.want) || !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("err = %v, want %v and ErrInvalidToken", err, tc.want)
			}
			if !principalEqual(p, Principal{}) {
				t.Fatalf("principal on error = %+v", p)
			}
			for _, seg := range segments(tok) {
				if len(seg) > 8 && strings.Contains(err.Error(), seg) {
					t.Fatalf("error text contains part of the token: %v", err)
				}
			}
		})
	}
}

func TestVerify_Missing(t *testing.T) {
	e := newEnv(t, 0)
	_, err := e.v.Verify(context.Background(), "")
	if !errors.Is(err, ErrMissingToken) || errors.Is(err, ErrInvalidToken) {
		t.Fatalf("err = %v", err)
	}
}

func TestVerify_WeakRSAKeyRefused(t *testing.T) {
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Skipf("cannot generate a 1024-bit RSA key here: %v", err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "jwks.json")
	writeJWKS(t, path, nil, jwkFor(t, &weak.PublicKey, "weak", jwkset.AlgRS256))
	v := newFileVerifier(t, path, 0)
	tok := sign(t, jwt.SigningMethodRS256, weak, map[string]any{"kid": "weak"}, claims(time.Now()))
	if _, err := v.Verify(context.Background(), tok); !errors.Is(err, ErrKeyMismatch) {
		t.Fatalf("err = %v, want ErrKeyMismatch", err)
	}
}

func TestVerify_KeyWithoutAlgStillChecksType(t *testing.T) {
	dev := newEnv(t, 0)
	dir := t.TempDir()
	path := filepath.Join(dir, "jwks.json")
	writeJWKS(t, path, nil,
		jwkFor(t, &dev.signer.key.PublicKey, "ec-noalg", ""),
		jwkFor(t, &dev.rsaKey.PublicKey, "rsa-noalg", ""))
	v := newFileVerifier(t, path, 0)
	now := time.Now()
	for _, tc := range []struct {
		name string
		tok  string
		want error
	}{
		{"ES256 on EC key", sign(t, jwt.SigningMethodES256, dev.signer.key, map[string]any{"kid": "ec-noalg"}, claims(now)), nil},
		{"RS256 on RSA key", sign(t, jwt.SigningMethodRS256, dev.rsaKey, map[string]any{"kid": "rsa-noalg"}, claims(now)), nil},
		{"RS256 header on EC key", rawJWS(t, map[string]any{"alg": "RS256", "kid": "ec-noalg"}, claims(now), jwt.SigningMethodES256, dev.signer.key), ErrKeyMismatch},
		{"ES256 header on RSA key", sign(t, jwt.SigningMethodES256, dev.signer.key, map[string]any{"kid": "rsa-noalg"}, claims(now)), ErrKeyMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := v.Verify(context.Background(), tc.tok)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestVerify_FileRereadOnUnknownKID(t *testing.T) {
	e := newEnv(t, 0)
	path := filepath.Join(e.dir, "all.json")
	fs := e.v.keys.(*fileStore)

	other := newECKey(t)
	tok := sign(t, jwt.SigningMethodES256, other, map[string]any{"kid": "rotated"}, claims(time.Now()))
	// The file does not have the key yet.
	if _, err := e.v.Verify(context.Background(), tok); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("err = %v, want ErrUnknownKey", err)
	}
	// Publish the key; within the re-read gap the file is not read again.
	writeJWKS(t, path, e.signer.JWKS(), jwkFor(t, &other.PublicKey, "rotated", jwkset.AlgES256))
	if _, err := e.v.Verify(context.Background(), tok); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("within the gap: err = %v, want ErrUnknownKey", err)
	}
	fs.mu.Lock()
	fs.lastRead = time.Now().Add(-fileRereadEvery)
	fs.mu.Unlock()
	if _, err := e.v.Verify(context.Background(), tok); err != nil {
		t.Fatalf("after the gap: %v", err)
	}
	// The dev key is still there.
	if _, err := e.v.Verify(context.Background(), e.es256(t, claims(time.Now()))); err != nil {
		t.Fatal(err)
	}
}

func TestNewVerifier_FileErrors(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"missing":   "",
		"not json":  "{",
		"no keys":   `{"keys":[]}`,
		"only oct":  `{"keys":[{"kty":"oct","kid":"h","k":"c2VjcmV0"}]}`,
		"bad point": `{"keys":[{"kty":"EC","crv":"P-256","kid":"x","x":"AAAA","y":"AAAA"}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".json")
			if content != "" {
				writeFile(t, path, content)
			}
			_, err := NewVerifier(context.Background(), Config{Issuer: testIssuer, Audience: testAudience, JWKSFile: path})
			if err == nil || !strings.Contains(err.Error(), "SPINE_AUTH_JWKS_FILE") {
				t.Fatalf("err = %v, want an error naming SPINE_AUTH_JWKS_FILE", err)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	ok := Config{Issuer: testIssuer, Audience: testAudience, JWKSFile: "/x/jwks.json"}
	cases := []struct {
		name string
		mut  func(*Config)
		want []string // substrings; nil: valid
	}{
		{"file", func(*Config) {}, nil},
		{"https url", func(c *Config) { c.JWKSFile = ""; c.JWKSURL = "https://auth.example/.well-known/jwks.json" }, nil},
		{"loopback http url", func(c *Config) { c.JWKSFile = ""; c.JWKSURL = "http://127.0.0.1:8080/jwks" }, nil},
		{"localhost http url", func(c *Config) { c.JWKSFile = ""; c.JWKSURL = "http://localhost:8080/jwks" }, nil},
		{"no issuer", func(c *Config) { c.Issuer = "" }, []string{"SPINE_AUTH_ISSUER"}},
		{"no audience", func(c *Config) { c.Audience = " " }, []string{"SPINE_AUTH_AUDIENCE"}},
		{"discovery from an https issuer", func(c *Config) { c.JWKSFile = "" }, nil},
		{"discovery from a loopback http issuer", func(c *Config) { c.JWKSFile = ""; c.Issuer = "http://127.0.0.1:7071/api/connect" }, nil},
		{"in process with any issuer", func(c *Config) { c.JWKSFile = ""; c.Issuer = "spine"; c.Keys = KeySourceFunc(nil) }, nil},
		{"in process and a file", func(c *Config) { c.Keys = KeySourceFunc(nil) }, nil},
		{"discovery from a remote http issuer", func(c *Config) { c.JWKSFile = ""; c.Issuer = "http://auth.example/api/connect" },
			[]string{"SPINE_AUTH_ISSUER", "https", "discovered"}},
		{"discovery from a bare name", func(c *Config) { c.JWKSFile = ""; c.Issuer = "spine" }, []string{"SPINE_AUTH_ISSUER", "absolute"}},
		{"discovery from an issuer with a query", func(c *Config) { c.JWKSFile = ""; c.Issuer = "https://auth.example/?x=1" },
			[]string{"SPINE_AUTH_ISSUER", "no query"}},
		{"both sources", func(c *Config) { c.JWKSURL = "https://a.example/jwks" }, []string{"SPINE_AUTH_JWKS_URL", "SPINE_AUTH_JWKS_FILE", "both"}},
		{"remote http url", func(c *Config) { c.JWKSFile = ""; c.JWKSURL = "http://auth.example/jwks" }, []string{"SPINE_AUTH_JWKS_URL", "https"}},
		{"relative url", func(c *Config) { c.JWKSFile = ""; c.JWKSURL = "/jwks" }, []string{"SPINE_AUTH_JWKS_URL"}},
		{"ftp url", func(c *Config) { c.JWKSFile = ""; c.JWKSURL = "ftp://a.example/jwks" }, []string{"SPINE_AUTH_JWKS_URL"}},
		{"negative skew", func(c *Config) { c.ClockSkew = -time.Second }, []string{"clock skew"}},
		{"huge skew", func(c *Config) { c.ClockSkew = time.Hour }, []string{"clock skew"}},
		{"everything", func(c *Config) { *c = Config{} }, []string{"SPINE_AUTH_ISSUER", "SPINE_AUTH_AUDIENCE"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.mut(&c)
			err := c.Validate()
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("err = %v, want ErrInvalidConfig", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("err = %q, want it to mention %q", err, w)
				}
			}
			if _, nerr := NewVerifier(context.Background(), c); !errors.Is(nerr, ErrInvalidConfig) {
				t.Fatalf("NewVerifier err = %v, want ErrInvalidConfig", nerr)
			}
		})
	}
	d := ok.withDefaults()
	if d.ClockSkew != DefaultClockSkew || d.CacheSize != DefaultCacheSize {
		t.Fatalf("defaults = %v, %d", d.ClockSkew, d.CacheSize)
	}
}

func principalEqual(a, b Principal) bool {
	return a.Subject == b.Subject && a.TenantID == b.TenantID && slices.Equal(a.Scopes, b.Scopes) &&
		a.PlatformAdmin == b.PlatformAdmin && a.ExpiresAt.Equal(b.ExpiresAt) && a.TokenID == b.TokenID
}
