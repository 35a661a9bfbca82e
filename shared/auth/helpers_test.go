package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

const (
	testIssuer   = "https://auth.spine.test"
	testAudience = "spine-api"
)

// env is a dev signer, an extra RSA key, and a file-backed Verifier trusting both.
type env struct {
	dir     string
	signer  *DevSigner
	rsaKey  *rsa.PrivateKey
	rsaKID  string
	v       *Verifier
	lookups *atomic.Int64
}

func newEnv(t testing.TB, cacheSize int) *env {
	t.Helper()
	dir := t.TempDir()
	s, err := EnsureDevKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{dir: dir, signer: s, rsaKey: rk, rsaKID: "rsa-1"}
	// A JWKS file with the dev EC key and the RSA key.
	writeJWKS(t, filepath.Join(dir, "all.json"), s.JWKS(), jwkFor(t, &rk.PublicKey, e.rsaKID, jwkset.AlgRS256))
	e.v = newFileVerifier(t, filepath.Join(dir, "all.json"), cacheSize)
	e.lookups = countLookups(e.v)
	return e
}

func newFileVerifier(t testing.TB, path string, cacheSize int) *Verifier {
	t.Helper()
	v, err := NewVerifier(context.Background(), Config{
		Issuer: testIssuer, Audience: testAudience, JWKSFile: path, CacheSize: cacheSize,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	return v
}

func countLookups(v *Verifier) *atomic.Int64 {
	n := new(atomic.Int64)
	v.onKeyLookup = func() { n.Add(1) }
	return n
}

// jwkFor returns one public JWK (JSON) for key.
func jwkFor(t testing.TB, pub crypto.PublicKey, kid string, alg jwkset.ALG) jwkset.JWKMarshal {
	t.Helper()
	j, err := jwkset.NewJWKFromKey(pub, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: kid, ALG: alg, USE: jwkset.UseSig}})
	if err != nil {
		t.Fatal(err)
	}
	return j.Marshal()
}

// writeJWKS writes a JWKS made of the keys of base (a JWKS document, may be nil) plus extra.
func writeJWKS(t testing.TB, path string, base []byte, extra ...jwkset.JWKMarshal) []byte {
	t.Helper()
	var set jwkset.JWKSMarshal
	if base != nil {
		if err := json.Unmarshal(base, &set); err != nil {
			t.Fatal(err)
		}
	}
	set.Keys = append(set.Keys, extra...)
	raw, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	if path != "" {
		if err := os.WriteFile(path, raw, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return raw
}

// claims returns a valid tenant token body at now.
func claims(now time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"iss":       testIssuer,
		"aud":       testAudience,
		"sub":       "user-1",
		"tenant_id": "tenant-1",
		"scope":     "tenant.read tenant.manage",
		"iat":       now.Unix(),
		"nbf":       now.Unix(),
		"exp":       now.Add(time.Hour).Unix(),
		"jti":       "jti-1",
	}
}

// sign signs c with method/key and the given header members (alg comes from method).
func sign(t testing.TB, method jwt.SigningMethod, key any, header map[string]any, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, c)
	for k, v := range header {
		if v == nil {
			delete(tok.Header, k)
		} else {
			tok.Header[k] = v
		}
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// rawJWS assembles header.payload and signs the signing input with method/key, whatever the header says.
func rawJWS(t testing.TB, header map[string]any, c jwt.MapClaims, method jwt.SigningMethod, key any) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	input := enc(header) + "." + enc(c)
	sig, err := method.Sign(input, key)
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func (e *env) es256(t testing.TB, c jwt.MapClaims) string {
	return sign(t, jwt.SigningMethodES256, e.signer.key, map[string]any{"kid": e.signer.kid}, c)
}

func newECKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// fakeClock is a settable clock for Verifier.now.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock(t time.Time) *fakeClock {
	c := &fakeClock{}
	c.ns.Store(t.UnixNano())
	return c
}
func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

func segments(tok string) []string { return strings.Split(tok, ".") }

func newECKeyCurve384(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
