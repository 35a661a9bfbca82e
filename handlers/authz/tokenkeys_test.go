package authz

import (
	"context"
	"errors"
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
		Keys: newRingKeys(ring), CacheSize: -1})
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
	if _, err := newRingKeys(&secrets.KeyRing{}).VerificationKeys(context.Background()); !errors.Is(err, errNoPublishedKey) {
		t.Fatalf("err = %v", err)
	}
}
