package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

func TestEnsureDevKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	s1, err := EnsureDevKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	keyPath := filepath.Join(dir, DevKeyFile)
	if runtime.GOOS != "windows" {
		st, err := os.Stat(keyPath)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Fatalf("key mode = %v, want 0600", st.Mode().Perm())
		}
	}
	raw, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(raw)
	if block == nil || block.Type != "PRIVATE KEY" {
		t.Fatal("key file is not PKCS#8 PEM")
	}
	if k, err := x509.ParsePKCS8PrivateKey(block.Bytes); err != nil {
		t.Fatal(err)
	} else if _, ok := k.(*ecdsa.PrivateKey); !ok {
		t.Fatalf("key type %T", k)
	}

	jwksRaw, err := os.ReadFile(filepath.Join(dir, DevJWKSFile))
	if err != nil {
		t.Fatal(err)
	}
	if string(jwksRaw) != string(s1.JWKS()) {
		t.Fatal("jwks.json differs from JWKS()")
	}
	var doc struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(jwksRaw, &doc); err != nil || len(doc.Keys) != 1 {
		t.Fatalf("jwks.json: %v %s", err, jwksRaw)
	}
	k := doc.Keys[0]
	if k["kty"] != "EC" || k["crv"] != "P-256" || k["alg"] != "ES256" || k["use"] != "sig" || k["d"] != "" {
		t.Fatalf("jwk = %v", k)
	}
	if k["kid"] != s1.KeyID() || k["kid"] != ecThumbprint(k["x"], k["y"]) {
		t.Fatalf("kid %q is not the thumbprint", k["kid"])
	}
	if _, err := parseJWKS(jwksRaw); err != nil {
		t.Fatalf("jwks.json not usable by the verifier: %v", err)
	}

	// Second call: same key; jwks.json rewritten if it was removed.
	if err := os.Remove(filepath.Join(dir, DevJWKSFile)); err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" {
		if err := os.Chmod(keyPath, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s2, err := EnsureDevKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s2.KeyID() != s1.KeyID() {
		t.Fatal("EnsureDevKey replaced an existing key")
	}
	if _, err := os.Stat(filepath.Join(dir, DevJWKSFile)); err != nil {
		t.Fatal("jwks.json not rewritten")
	}
	if st, _ := os.Stat(keyPath); runtime.GOOS != "windows" && st.Mode().Perm() != 0o600 {
		t.Fatalf("key mode not tightened: %v", st.Mode().Perm())
	}
	s3, err := LoadDevSigner(dir)
	if err != nil || s3.KeyID() != s1.KeyID() {
		t.Fatalf("LoadDevSigner: %v", err)
	}
	// No temporary files are left behind.
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Fatalf("dir holds %d entries, want 2", len(entries))
	}
}

func TestEnsureDevKey_Concurrent(t *testing.T) {
	dir := t.TempDir()
	var wg sync.WaitGroup
	kids := make([]string, 8)
	errs := make([]error, 8)
	for i := range kids {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			s, err := EnsureDevKey(dir)
			errs[i] = err
			if err == nil {
				kids[i] = s.KeyID()
			}
		}(i)
	}
	wg.Wait()
	for i := range kids {
		if errs[i] != nil || kids[i] != kids[0] {
			t.Fatalf("caller %d: kid %q err %v; want all %q", i, kids[i], errs[i], kids[0])
		}
	}
}

func TestLoadDevSigner_Errors(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadDevSigner(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing: %v", err)
	}
	writeFile(t, filepath.Join(dir, DevKeyFile), "not pem")
	if _, err := LoadDevSigner(dir); err == nil {
		t.Fatal("garbage accepted")
	}
	rsaDER, err := x509.MarshalPKCS8PrivateKey(newEnv(t, 0).rsaKey)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, DevKeyFile), string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: rsaDER})))
	if _, err := LoadDevSigner(dir); err == nil || !strings.Contains(err.Error(), "P-256") {
		t.Fatalf("RSA key accepted: %v", err)
	}
	p384DER, _ := x509.MarshalPKCS8PrivateKey(newECKeyCurve384(t))
	writeFile(t, filepath.Join(dir, DevKeyFile), string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p384DER})))
	if _, err := LoadDevSigner(dir); err == nil {
		t.Fatal("P-384 key accepted")
	}
}

// TestThumbprint checks the RFC 7638 computation against an independently computed value
// (printf '{"crv":"P-256","kty":"EC","x":"…","y":"…"}' | openssl dgst -binary -sha256 | base64url).
func TestThumbprint(t *testing.T) {
	const pemKey = `-----BEGIN EC PRIVATE KEY-----
MHcCAQEEIK07hGLr0RwyUdYJ8wbIiBS55CjnkMD23DWr+ccnypWLoAoGCCqGSM49
AwEHoUQDQgAE5lhEug5xK4xBDZ2nAbaxLtaLiv85bxJ7ePd1dkO23HThqIrvawF5
QAaS/RNouybCiRhRjI3EaxLkQwgrCw0gqQ==
-----END EC PRIVATE KEY-----`
	block, _ := pem.Decode([]byte(pemKey))
	key, err := x509.ParseECPrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	s, err := newDevSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.KeyID(), "zedj-Bd1Zshp8KLePv2MB-lJ_Hagp7wAwdkA0NUTniU"; got != want {
		t.Fatalf("thumbprint = %q, want %q", got, want)
	}
	if !strings.Contains(string(s.JWKS()), `"x": "5lhEug5xK4xBDZ2nAbaxLtaLiv85bxJ7ePd1dkO23HQ"`) {
		t.Fatalf("jwks = %s", s.JWKS())
	}
}

func TestMint(t *testing.T) {
	e := newEnv(t, 0)
	tc := TokenClaims{Issuer: testIssuer, Audience: testAudience, Subject: "user-9", TenantID: "tenant-9", Scopes: []string{"a.read", "b.write"}}
	before := time.Now().Truncate(time.Second)
	tok, err := e.signer.Mint(tc, 15*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	p, err := e.v.Verify(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if p.Subject != "user-9" || p.TenantID != "tenant-9" || !p.HasScope("a.read") || !p.HasScope("b.write") || p.PlatformAdmin {
		t.Fatalf("%+v", p)
	}
	if d := p.ExpiresAt.Sub(before); d < 15*time.Minute || d > 15*time.Minute+2*time.Second {
		t.Fatalf("exp - now = %s", d)
	}
	if id, err := uuid.Parse(p.TokenID); err != nil || id.Version() != 7 {
		t.Fatalf("jti %q is not a UUIDv7", p.TokenID)
	}

	// Header and timing claims.
	parsed, _, err := jwt.NewParser().ParseUnverified(tok, jwt.MapClaims{})
	if err != nil {
		t.Fatal(err)
	}
	h := parsed.Header
	if h["alg"] != "ES256" || h["kid"] != e.signer.KeyID() || h["typ"] != "at+jwt" {
		t.Fatalf("header = %v", h)
	}
	mc := parsed.Claims.(jwt.MapClaims)
	for _, c := range []string{"iat", "nbf", "exp", "jti"} {
		if _, ok := mc[c]; !ok {
			t.Fatalf("claim %s missing: %v", c, mc)
		}
	}
	if _, ok := mc["platform_admin"]; ok {
		t.Fatal("platform_admin written for a tenant token")
	}

	// Two mints give two jti.
	tok2, _ := e.signer.Mint(tc, time.Minute)
	p2, err := e.v.Verify(context.Background(), tok2)
	if err != nil || p2.TokenID == p.TokenID {
		t.Fatalf("jti reused: %v", err)
	}

	for name, bad := range map[string]TokenClaims{
		"no issuer":    {Audience: "a", Subject: "s", TenantID: "t"},
		"no audience":  {Issuer: "i", Subject: "s", TenantID: "t"},
		"no subject":   {Issuer: "i", Audience: "a", TenantID: "t"},
		"no tenant":    {Issuer: "i", Audience: "a", Subject: "s"},
		"spaced scope": {Issuer: "i", Audience: "a", Subject: "s", TenantID: "t", Scopes: []string{"a b"}},
		"empty scope":  {Issuer: "i", Audience: "a", Subject: "s", TenantID: "t", Scopes: []string{""}},
		"quoted scope": {Issuer: "i", Audience: "a", Subject: "s", TenantID: "t", Scopes: []string{`a"`}},
		"non-ascii":    {Issuer: "i", Audience: "a", Subject: "s", TenantID: "t", Scopes: []string{"é"}},
		"zero ttl":     {},
	} {
		ttl := time.Minute
		if name == "zero ttl" {
			bad, ttl = tc, 0
		}
		if _, err := e.signer.Mint(bad, ttl); err == nil {
			t.Errorf("%s: Mint accepted", name)
		}
	}
}
