package auth

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

// oidcServer is an authorization server's discovery surface: the discovery document under
// <URL>/api/connect and the JWKS it names, each counted; a nil JWKS answers 503.
type oidcServer struct {
	*httptest.Server
	issuer    string
	docIssuer atomic.Pointer[string] // the issuer the document claims; the real one by default
	jwksURI   atomic.Pointer[string] // the jwks_uri the document names; <issuer>/jwks by default
	jwks      atomic.Pointer[[]byte]
	docHits   atomic.Int64
	jwksHits  atomic.Int64
}

// newOIDCServer starts the server on ln (a fresh loopback listener when nil).
func newOIDCServer(t *testing.T, ln net.Listener, jwks []byte) *oidcServer {
	t.Helper()
	s := &oidcServer{}
	s.jwks.Store(&jwks)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/connect/.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		s.docHits.Add(1)
		iss, uri := s.issuer, s.issuer+"/jwks"
		if p := s.docIssuer.Load(); p != nil {
			iss = *p
		}
		if p := s.jwksURI.Load(); p != nil {
			uri = *p
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": iss, "jwks_uri": uri, "token_endpoint": s.issuer + "/token"})
	})
	mux.HandleFunc("GET /api/connect/jwks", func(w http.ResponseWriter, _ *http.Request) {
		s.jwksHits.Add(1)
		d := s.jwks.Load()
		if d == nil || *d == nil {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_, _ = w.Write(*d)
	})
	s.Server = httptest.NewUnstartedServer(mux)
	if ln != nil {
		_ = s.Listener.Close()
		s.Listener = ln
	}
	s.Start()
	s.issuer = s.URL + "/api/connect"
	t.Cleanup(s.Close)
	return s
}

func (s *oidcServer) setJWKS(doc []byte) { s.jwks.Store(&doc) }

// newDiscoveryVerifier trusts issuer through discovery (no JWKS setting).
func newDiscoveryVerifier(t *testing.T, issuer string) (*Verifier, *remoteStore) {
	t.Helper()
	v, err := NewVerifier(t.Context(), Config{Issuer: issuer, Audience: testAudience})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	return v, v.keys.(*remoteStore)
}

// tokenFor signs a valid token for issuer with key, naming kid.
func tokenFor(t *testing.T, issuer string, key any, kid string) string {
	t.Helper()
	c := claims(time.Now())
	c["iss"] = issuer
	c["jti"] = kid + "-" + time.Now().Format(time.RFC3339Nano)
	return sign(t, jwt.SigningMethodES256, key, map[string]any{"kid": kid}, c)
}

// allowOnDemandRefresh lets the next unknown kid refresh the set, as if the minute had passed.
func allowOnDemandRefresh(s *remoteStore) {
	s.sem <- struct{}{}
	s.lastOnDemand = time.Now().Add(-s.onDemandEvery)
	<-s.sem
}

// is401 reports whether err is what the API answers 401 invalid-token for.
func is401(err error) bool {
	p := ProblemFor(err)
	return p != nil && p.Status == http.StatusUnauthorized && p.Code == CodeInvalidToken
}

func TestVerify_Discovery_KeysFromJWKSURI(t *testing.T) {
	key := newECKey(t)
	srv := newOIDCServer(t, nil, writeJWKS(t, "", nil, jwkFor(t, &key.PublicKey, "k1", jwkset.AlgES256)))
	v, _ := newDiscoveryVerifier(t, srv.issuer)
	if d, j := srv.docHits.Load(), srv.jwksHits.Load(); d != 1 || j != 1 {
		t.Fatalf("at start: discovery fetched %d times, JWKS %d times; want 1 and 1", d, j)
	}
	p, err := v.Verify(t.Context(), tokenFor(t, srv.issuer, key, "k1"))
	if err != nil || p.TenantID != "tenant-1" {
		t.Fatalf("%+v %v", p, err)
	}
	// A token of another issuer is refused although its key is known.
	if _, err := v.Verify(t.Context(), tokenFor(t, "https://other.example", key, "k1")); !errors.Is(err, ErrWrongIssuer) {
		t.Fatalf("other issuer: err = %v, want ErrWrongIssuer", err)
	}
}

func TestVerify_Discovery_401_IssuerMismatch(t *testing.T) {
	key := newECKey(t)
	srv := newOIDCServer(t, nil, writeJWKS(t, "", nil, jwkFor(t, &key.PublicKey, "k1", jwkset.AlgES256)))
	for _, claimed := range []string{srv.issuer + "/", "https://evil.example/api/connect", ""} {
		srv.docIssuer.Store(&claimed)
		v, s := newDiscoveryVerifier(t, srv.issuer)
		allowOnDemandRefresh(s)
		_, err := v.Verify(t.Context(), tokenFor(t, srv.issuer, key, "k1"))
		if !errors.Is(err, ErrUnknownKey) || !is401(err) {
			t.Fatalf("document claiming issuer %q: err = %v, want a 401 unknown key", claimed, err)
		}
	}
	if n := srv.jwksHits.Load(); n != 0 {
		t.Fatalf("JWKS fetched %d times from a document with the wrong issuer", n)
	}
}

func TestVerify_Discovery_401_JWKSURIBreaksURLRules(t *testing.T) {
	key := newECKey(t)
	srv := newOIDCServer(t, nil, writeJWKS(t, "", nil, jwkFor(t, &key.PublicKey, "k1", jwkset.AlgES256)))
	for _, uri := range []string{"http://auth.example/jwks", "/api/connect/jwks", "file:///etc/jwks.json"} {
		srv.jwksURI.Store(&uri)
		v, _ := newDiscoveryVerifier(t, srv.issuer)
		if _, err := v.Verify(t.Context(), tokenFor(t, srv.issuer, key, "k1")); !errors.Is(err, ErrUnknownKey) || !is401(err) {
			t.Fatalf("jwks_uri %q: err = %v, want a 401 unknown key", uri, err)
		}
	}
	if n := srv.jwksHits.Load(); n != 0 {
		t.Fatalf("JWKS fetched %d times", n)
	}
}

func TestVerify_Discovery_UnknownKIDRefreshAtMostOncePerGap(t *testing.T) {
	keyA, keyB, keyC := newECKey(t), newECKey(t), newECKey(t)
	jwkA := jwkFor(t, &keyA.PublicKey, "a", jwkset.AlgES256)
	jwkB := jwkFor(t, &keyB.PublicKey, "b", jwkset.AlgES256)
	jwkC := jwkFor(t, &keyC.PublicKey, "c", jwkset.AlgES256)
	srv := newOIDCServer(t, nil, writeJWKS(t, "", nil, jwkA))
	v, s := newDiscoveryVerifier(t, srv.issuer)

	// Rotation: the server publishes B beside A; a B token refreshes the set once.
	srv.setJWKS(writeJWKS(t, "", nil, jwkB, jwkA))
	if _, err := v.Verify(t.Context(), tokenFor(t, srv.issuer, keyB, "b")); err != nil {
		t.Fatalf("B after rotation: %v", err)
	}
	if d, j := srv.docHits.Load(), srv.jwksHits.Load(); d != 2 || j != 2 {
		t.Fatalf("after the B refresh: discovery %d, JWKS %d fetches; want 2 and 2", d, j)
	}
	// Another unknown kid at once is refused without a fetch (one refresh per gap).
	srv.setJWKS(writeJWKS(t, "", nil, jwkC, jwkB))
	tokC := tokenFor(t, srv.issuer, keyC, "c")
	if _, err := v.Verify(t.Context(), tokC); !errors.Is(err, ErrUnknownKey) || !is401(err) {
		t.Fatalf("C within the gap: err = %v, want a 401 unknown key", err)
	}
	if n := srv.jwksHits.Load(); n != 2 {
		t.Fatalf("JWKS fetched %d times within the gap, want still 2", n)
	}
	// Known keys keep working meanwhile, from memory.
	if _, err := v.Verify(t.Context(), tokenFor(t, srv.issuer, keyA, "a")); err != nil {
		t.Fatalf("A within the gap: %v", err)
	}
	// Once the gap has passed, C refreshes the set, which no longer holds A.
	allowOnDemandRefresh(s)
	if _, err := v.Verify(t.Context(), tokC); err != nil {
		t.Fatalf("C after the gap: %v", err)
	}
	if _, err := v.Verify(t.Context(), tokenFor(t, srv.issuer, keyA, "a")); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("a new A token after A left the set: err = %v, want ErrUnknownKey", err)
	}
}

func TestVerify_Discovery_ServerDownAtStartThenUp(t *testing.T) {
	// A port nobody listens on yet: the in-process or neighbouring server has not started.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	issuer := "http://" + addr + "/api/connect"
	v, s := newDiscoveryVerifier(t, issuer) // does not fail: the keys are fetched later

	key := newECKey(t)
	if _, err := v.Verify(t.Context(), tokenFor(t, issuer, key, "k1")); !errors.Is(err, ErrUnknownKey) || !is401(err) {
		t.Fatalf("token before the keys are known: err = %v, want a 401 unknown key (never a 500)", err)
	}

	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listening again on %s: %v", addr, err)
	}
	srv := newOIDCServer(t, ln, writeJWKS(t, "", nil, jwkFor(t, &key.PublicKey, "k1", jwkset.AlgES256)))
	if srv.issuer != issuer {
		t.Fatalf("server issuer %s, want %s", srv.issuer, issuer)
	}
	allowOnDemandRefresh(s)
	if _, err := v.Verify(t.Context(), tokenFor(t, issuer, key, "k1")); err != nil {
		t.Fatalf("token once the server is up: %v", err)
	}
}

func TestVerify_Discovery_BackgroundRetryLoadsKeysAfterFailedStart(t *testing.T) {
	key := newECKey(t)
	srv := newOIDCServer(t, nil, nil) // the JWKS answers 503 at start
	v, s := newDiscoveryVerifier(t, srv.issuer)
	if s.keys.Load() != nil {
		t.Fatal("keys loaded from a JWKS answering 503")
	}
	srv.setJWKS(writeJWKS(t, "", nil, jwkFor(t, &key.PublicKey, "k1", jwkset.AlgES256)))
	// No token arrives: the background retry alone loads the set.
	deadline := time.Now().Add(30 * time.Second)
	for s.keys.Load() == nil {
		if time.Now().After(deadline) {
			t.Fatal("the background retry did not load the keys within 30 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := v.Verify(t.Context(), tokenFor(t, srv.issuer, key, "k1")); err != nil {
		t.Fatal(err)
	}
}

// ringSource is an in-process key ring: Published keys, replaceable at once.
type ringSource struct {
	keys  atomic.Pointer[[]PublicKey]
	err   atomic.Pointer[error]
	calls atomic.Int64
}

func (r *ringSource) set(keys ...PublicKey) { r.keys.Store(&keys) }

func (r *ringSource) VerificationKeys(context.Context) ([]PublicKey, error) {
	r.calls.Add(1)
	if e := r.err.Load(); e != nil {
		return nil, *e
	}
	return *r.keys.Load(), nil
}

func newInProcessVerifier(t testing.TB, src KeySource, jwksFile string, cacheSize int) *Verifier {
	t.Helper()
	v, err := NewVerifier(context.Background(), Config{Issuer: testIssuer, Audience: testAudience, Keys: src, JWKSFile: jwksFile, CacheSize: cacheSize})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	return v
}

func TestVerify_InProcess_RotationSeenAtOnce(t *testing.T) {
	keyA, keyB := newECKey(t), newECKey(t)
	ring := &ringSource{}
	ring.set(PublicKey{ID: "a", Algorithm: "ES256", Key: keyA}) // a private key: its public half is used
	v := newInProcessVerifier(t, ring, "", 0)

	tokA := tokenFor(t, testIssuer, keyA, "a")
	if _, err := v.Verify(t.Context(), tokA); err != nil {
		t.Fatal(err)
	}
	// Rotate: B signs, A is still published. A B token is accepted on the very next check.
	ring.set(PublicKey{ID: "b", Algorithm: "ES256", Key: &keyB.PublicKey}, PublicKey{ID: "a", Algorithm: "ES256", Key: &keyA.PublicKey})
	if _, err := v.Verify(t.Context(), tokenFor(t, testIssuer, keyB, "b")); err != nil {
		t.Fatalf("B right after the rotation: %v", err)
	}
	// A leaves the ring: a new A token is refused; the one verified before stays cached until it expires.
	ring.set(PublicKey{ID: "b", Algorithm: "ES256", Key: &keyB.PublicKey})
	if _, err := v.Verify(t.Context(), tokenFor(t, testIssuer, keyA, "a")); !errors.Is(err, ErrUnknownKey) || !is401(err) {
		t.Fatalf("new A token after A left: err = %v, want a 401 unknown key", err)
	}
	if _, err := v.Verify(t.Context(), tokA); err != nil {
		t.Fatalf("cached A token: %v", err)
	}
}

func TestVerify_InProcess_401_WhenTheRingFails(t *testing.T) {
	key := newECKey(t)
	ring := &ringSource{}
	ring.set(PublicKey{ID: "k", Algorithm: "ES256", Key: &key.PublicKey})
	boom := errors.New("ring not loaded")
	ring.err.Store(&boom)
	v := newInProcessVerifier(t, ring, "", 0)
	if _, err := v.Verify(t.Context(), tokenFor(t, testIssuer, key, "k")); !errors.Is(err, ErrUnknownKey) || !is401(err) {
		t.Fatalf("err = %v, want a 401 unknown key", err)
	}
}

func TestVerify_InProcess_KeyChecksStillApply(t *testing.T) {
	ec, ec384 := newECKey(t), newECKeyCurve384(t)
	ring := &ringSource{}
	ring.set(
		PublicKey{ID: "rs", Algorithm: "RS256", Key: &ec.PublicKey}, // claims RS256 on an EC key
		PublicKey{ID: "p384", Algorithm: "", Key: &ec384.PublicKey},
		PublicKey{ID: "nokey", Algorithm: "ES256"},
	)
	v := newInProcessVerifier(t, ring, "", -1)
	for _, tc := range []struct {
		kid  string
		want error
	}{{"rs", ErrKeyMismatch}, {"p384", ErrKeyMismatch}, {"nokey", ErrUnknownKey}, {"", ErrUnknownKey}} {
		tok := sign(t, jwt.SigningMethodES256, ec, map[string]any{"kid": tc.kid}, claims(time.Now()))
		if tc.kid == "" {
			tok = sign(t, jwt.SigningMethodES256, ec, map[string]any{"kid": nil}, claims(time.Now()))
		}
		if _, err := v.Verify(t.Context(), tok); !errors.Is(err, tc.want) {
			t.Fatalf("kid %q: err = %v, want %v", tc.kid, err, tc.want)
		}
	}
}

func TestVerify_InProcessAndFile_BothTrusted(t *testing.T) {
	e := newEnv(t, -1) // the dev key and an RSA key in a file, as the tests' settings have
	server := newECKey(t)
	ring := &ringSource{}
	ring.set(PublicKey{ID: "server", Algorithm: "ES256", Key: &server.PublicKey})
	v := newInProcessVerifier(t, ring, e.dir+"/all.json", -1)
	if _, err := v.Verify(t.Context(), tokenFor(t, testIssuer, server, "server")); err != nil {
		t.Fatalf("the server's token: %v", err)
	}
	if _, err := v.Verify(t.Context(), e.es256(t, claims(time.Now()))); err != nil {
		t.Fatalf("a dev-key token: %v", err)
	}
	if _, err := v.Verify(t.Context(), tokenFor(t, testIssuer, newECKey(t), "neither")); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("a key neither knows: err = %v, want ErrUnknownKey", err)
	}
}

// refreshingRing is a ringSource that learns pending keys when asked to refresh (as the key ring
// re-reads its vault), counting the requests.
type refreshingRing struct {
	ringSource
	pending  []PublicKey
	refresh  atomic.Int64
	learnKey atomic.Bool
}

func (r *refreshingRing) RefreshKeys(_ context.Context, _ string) bool {
	r.refresh.Add(1)
	if !r.learnKey.Load() {
		return false
	}
	r.set(append(append([]PublicKey{}, *r.keys.Load()...), r.pending...)...)
	return true
}

// A key source that can refresh (KeyRefresher) is asked for a kid that no key set holds, and the
// token verifies when the refresh brought the key; a kid the source or the configured file
// already knows never asks it.
func TestVerify_InProcess_UnknownKidAsksTheSourceToRefresh(t *testing.T) {
	e := newEnv(t, -1)
	known, rotated := newECKey(t), newECKey(t)
	ring := &refreshingRing{pending: []PublicKey{{ID: "rotated", Algorithm: "ES256", Key: &rotated.PublicKey}}}
	ring.set(PublicKey{ID: "known", Algorithm: "ES256", Key: &known.PublicKey})
	v := newInProcessVerifier(t, ring, e.dir+"/all.json", -1)

	if _, err := v.Verify(t.Context(), tokenFor(t, testIssuer, known, "known")); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(t.Context(), e.es256(t, claims(time.Now()))); err != nil {
		t.Fatalf("a dev-key token of the file: %v", err)
	}
	if n := ring.refresh.Load(); n != 0 {
		t.Fatalf("known kids asked for %d refreshes", n)
	}
	// The source declines (rate limit, failure): the token is an unknown key.
	if _, err := v.Verify(t.Context(), tokenFor(t, testIssuer, rotated, "rotated")); !errors.Is(err, ErrUnknownKey) || ring.refresh.Load() != 1 {
		t.Fatalf("declined refresh: err = %v, refreshes %d", err, ring.refresh.Load())
	}
	// The source refreshes and learns the key: the same token verifies.
	ring.learnKey.Store(true)
	if _, err := v.Verify(t.Context(), tokenFor(t, testIssuer, rotated, "rotated")); err != nil || ring.refresh.Load() != 2 {
		t.Fatalf("after the refresh: err = %v, refreshes %d", err, ring.refresh.Load())
	}
	if _, err := v.Verify(t.Context(), tokenFor(t, testIssuer, rotated, "rotated")); err != nil || ring.refresh.Load() != 2 {
		t.Fatalf("a known key again: err = %v, refreshes %d", err, ring.refresh.Load())
	}
}
