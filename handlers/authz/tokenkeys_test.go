package authz

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"spine/shared/auth"
	"spine/shared/secrets"
	"spine/shared/secrets/kvfake"
)

// ringToken signs an access token with the ring's current key, as the provider does.
func ringToken(t *testing.T, ring *secrets.KeyRing, jti string) string {
	t.Helper()
	k, err := ring.Current()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": "https://spine.example/api/connect", "aud": "spine-api",
		"sub": "client-1", "tenant_id": newTenant(), "scope": "tenant.read", "jti": jti,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix()})
	tok.Header["kid"] = k.ID
	s, err := tok.SignedString(k.Private)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The API's verifier over the key ring in process: the current key's tokens verify, a rotation
// is seen on the very next token, and the previous key keeps verifying while it is published.
func TestRingKeys_VerifierSeesARotationAtOnce(t *testing.T) {
	ctx := context.Background()
	ts := kvfake.NewTLSServer(t)
	v, err := secrets.Open(secrets.Config{VaultURL: ts.URL, CAFile: ts.CAFile, MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	ring, err := secrets.NewKeyRing(ctx, v, secrets.KeyRingOptions{Activation: -1})
	if err != nil {
		t.Fatal(err)
	}
	ver, err := auth.NewVerifier(ctx, auth.Config{Issuer: "https://spine.example/api/connect", Audience: "spine-api",
		Keys: newRingKeys(ring, nil), CacheSize: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ver.Close)

	before := ringToken(t, ring, "before")
	if _, err := ver.Verify(ctx, before); err != nil {
		t.Fatalf("a token of the current key: %v", err)
	}
	requests := ts.Requests()
	if _, err := ring.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	after := ringToken(t, ring, "after")
	if _, err := ver.Verify(ctx, after); err != nil {
		t.Fatalf("a token of the new key, right after the rotation: %v", err)
	}
	if _, err := ver.Verify(ctx, before); err != nil {
		t.Fatalf("a token of the previous key, still published: %v", err)
	}
	// The verifier read the ring's memory: the only vault requests are the rotation's own.
	rot := ts.Requests() - requests
	for i := 0; i < 3; i++ {
		if _, err := ver.Verify(ctx, after); err != nil {
			t.Fatal(err)
		}
	}
	if n := ts.Requests() - requests; n != rot {
		t.Fatalf("verifying made %d vault requests", n-rot)
	}
	// Two rotations later the first key is no longer published: its tokens are refused.
	if _, err := ring.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := ver.Verify(ctx, before); !errors.Is(err, auth.ErrUnknownKey) {
		t.Fatalf("a token of a key no longer published: %v, want ErrUnknownKey", err)
	}
}

func TestRingKeys_NoPublishedKeyIsAnError(t *testing.T) {
	if _, err := newRingKeys(&secrets.KeyRing{}, nil).VerificationKeys(context.Background()); !errors.Is(err, errNoPublishedKey) {
		t.Fatalf("err = %v", err)
	}
}

// An instance whose periodic refresh of the key ring fails still learns a key another instance
// rotated in: a token naming an unknown kid refreshes the ring — at most once per
// unknownKidRefreshGap, whether that refresh succeeds or fails, so made-up kids cannot drive the
// vault.
func TestRingKeys_UnknownKidRefreshesTheRingAtMostOncePerGap(t *testing.T) {
	ctx := context.Background()
	ts := kvfake.NewTLSServer(t)
	open := func() *secrets.KeyRing {
		v, err := secrets.Open(secrets.Config{VaultURL: ts.URL, CAFile: ts.CAFile, MaxRetries: -1})
		if err != nil {
			t.Fatal(err)
		}
		ring, err := secrets.NewKeyRing(ctx, v, secrets.KeyRingOptions{Activation: -1, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		return ring
	}
	here, other := open(), open() // two instances over one vault
	var logs strings.Builder
	keys := newRingKeys(here, slog.New(slog.NewTextHandler(&lockedWriter{w: &logs}, nil)))
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	keys.now = func() time.Time { return time.Unix(0, clock.Load()) }
	advance := func() { clock.Add(int64(unknownKidRefreshGap)) }
	ver, err := auth.NewVerifier(ctx, auth.Config{Issuer: "https://spine.example/api/connect", Audience: "spine-api",
		Keys: keys, CacheSize: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ver.Close)

	// The other instance rotates; this one's periodic refresh fails.
	if _, err := other.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	ts.InjectFault(kvfake.Fault{Status: http.StatusServiceUnavailable, Count: 1})
	if err := here.Refresh(ctx); err == nil {
		t.Fatal("the periodic refresh was meant to fail")
	}
	// A token of the new key: its unknown kid refreshes the ring, and it verifies.
	before := ts.Requests()
	if _, err := ver.Verify(ctx, ringToken(t, other, "first")); err != nil {
		t.Fatalf("a token of a key rotated in by another instance: %v", err)
	}
	if ts.Requests() == before {
		t.Fatal("the ring was not refreshed")
	}

	// Within the gap nothing reaches the vault: neither a key rotated in since nor made-up kids.
	if _, err := other.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	second := ringToken(t, other, "second")
	before = ts.Requests()
	if _, err := ver.Verify(ctx, second); !errors.Is(err, auth.ErrUnknownKey) {
		t.Fatalf("within the gap: %v, want ErrUnknownKey", err)
	}
	for i := 0; i < 5; i++ {
		if _, err := ver.Verify(ctx, second); !errors.Is(err, auth.ErrUnknownKey) {
			t.Fatalf("within the gap: %v", err)
		}
		if _, err := ver.Verify(ctx, madeUpKid(t, i)); !errors.Is(err, auth.ErrUnknownKey) {
			t.Fatalf("made-up kid: %v", err)
		}
	}
	if n := ts.Requests() - before; n != 0 {
		t.Fatalf("%d vault requests within the gap", n)
	}

	// Next gap: the refresh fails (logged, the token refused), and the gap counts from it.
	advance()
	ts.InjectFault(kvfake.Fault{Status: http.StatusServiceUnavailable, Count: 1})
	before = ts.Requests()
	if _, err := ver.Verify(ctx, second); !errors.Is(err, auth.ErrUnknownKey) {
		t.Fatalf("with the vault failing: %v, want ErrUnknownKey", err)
	}
	if ts.Requests() == before || !strings.Contains(logs.String(), "refreshing the key ring failed") {
		t.Fatalf("the failed refresh: %d requests, logs %q", ts.Requests()-before, logs.String())
	}
	before = ts.Requests()
	if _, err := ver.Verify(ctx, second); !errors.Is(err, auth.ErrUnknownKey) || ts.Requests() != before {
		t.Fatalf("right after a failed refresh: %v, %d requests", err, ts.Requests()-before)
	}
	// The gap after, the vault answers: the key is learnt.
	advance()
	if _, err := ver.Verify(ctx, second); err != nil {
		t.Fatalf("after the gap: %v", err)
	}
	// A known kid never refreshes.
	before = ts.Requests()
	advance()
	for i := 0; i < 3; i++ {
		if _, err := ver.Verify(ctx, second); err != nil {
			t.Fatal(err)
		}
	}
	if ts.Requests() != before {
		t.Fatalf("a known kid made %d vault requests", ts.Requests()-before)
	}
}

// madeUpKid is a token whose header names a kid no ring holds.
func madeUpKid(t *testing.T, i int) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": "https://spine.example/api/connect", "aud": "spine-api",
		"sub": "x", "tenant_id": newTenant(), "iat": now.Unix(), "exp": now.Add(time.Minute).Unix()})
	tok.Header["kid"] = "made-up-" + string(rune('a'+i))
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
