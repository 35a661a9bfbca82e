package auth

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

// jwksServer serves whatever JWKS document is current and counts requests; a nil document is a 503.
type jwksServer struct {
	*httptest.Server
	doc  atomic.Pointer[[]byte]
	hits atomic.Int64
}

func newJWKSServer(t *testing.T, doc []byte) *jwksServer {
	t.Helper()
	s := &jwksServer{}
	s.set(doc)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		d := s.doc.Load()
		if d == nil || *d == nil {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_, _ = w.Write(*d)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(doc []byte) { s.doc.Store(&doc) }

func newURLVerifier(t *testing.T, url string) *Verifier {
	t.Helper()
	v, err := NewVerifier(t.Context(), Config{Issuer: testIssuer, Audience: testAudience, JWKSURL: url + "/.well-known/jwks.json"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	return v
}

func TestVerify_JWKSFromURL(t *testing.T) {
	keyA, keyB, keyC := newECKey(t), newECKey(t), newECKey(t)
	jwkA := jwkFor(t, &keyA.PublicKey, "key-a", jwkset.AlgES256)
	jwkB := jwkFor(t, &keyB.PublicKey, "key-b", jwkset.AlgES256)
	srv := newJWKSServer(t, writeJWKS(t, "", nil, jwkA))
	v := newURLVerifier(t, srv.URL)
	if n := srv.hits.Load(); n != 1 {
		t.Fatalf("JWKS fetched %d times at start, want 1", n)
	}

	now := time.Now()
	tokA := sign(t, jwt.SigningMethodES256, keyA, map[string]any{"kid": "key-a"}, claims(now))
	if p, err := v.Verify(context.Background(), tokA); err != nil || p.TenantID != "tenant-1" {
		t.Fatalf("key A: %+v %v", p, err)
	}

	// Rotation: the server now publishes B; a B token triggers one refresh on the unknown kid.
	srv.set(writeJWKS(t, "", nil, jwkA, jwkB))
	tokB := sign(t, jwt.SigningMethodES256, keyB, map[string]any{"kid": "key-b"}, claims(now))
	if _, err := v.Verify(context.Background(), tokB); err != nil {
		t.Fatalf("key B after rotation: %v", err)
	}
	if n := srv.hits.Load(); n != 2 {
		t.Fatalf("JWKS fetched %d times, want 2", n)
	}

	// A second unknown kid right away is refused without another fetch (rate limit), and fast.
	tokC := sign(t, jwt.SigningMethodES256, keyC, map[string]any{"kid": "key-c"}, claims(now))
	start := time.Now()
	if _, err := v.Verify(context.Background(), tokC); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("key C: err = %v, want ErrUnknownKey", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("rate-limited lookup took %s", d)
	}
	if n := srv.hits.Load(); n != 2 {
		t.Fatalf("JWKS fetched %d times, want still 2", n)
	}
	// Known keys keep working.
	if _, err := v.Verify(context.Background(), tokA); err != nil {
		t.Fatal(err)
	}
}

func TestVerify_JWKSURLDownAtStart(t *testing.T) {
	key := newECKey(t)
	srv := newJWKSServer(t, nil) // authorization server not up yet
	v := newURLVerifier(t, srv.URL)

	srv.set(writeJWKS(t, "", nil, jwkFor(t, &key.PublicKey, "k1", jwkset.AlgES256)))
	tok := sign(t, jwt.SigningMethodES256, key, map[string]any{"kid": "k1"}, claims(time.Now()))
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatalf("first token after the JWKS came up: %v", err)
	}
}

func TestVerify_JWKSURLWithDevSigner(t *testing.T) {
	s, err := EnsureDevKey(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	srv := newJWKSServer(t, s.JWKS())
	v := newURLVerifier(t, srv.URL)
	tok, err := s.Mint(TokenClaims{Issuer: testIssuer, Audience: testAudience, Subject: "svc", PlatformAdmin: true, Scopes: []string{"tenant.manage"}}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	p, err := v.Verify(context.Background(), tok)
	if err != nil || !p.PlatformAdmin || !p.HasScope("tenant.manage") {
		t.Fatalf("%+v %v", p, err)
	}
	v.Close()
	v.Close() // idempotent
}
