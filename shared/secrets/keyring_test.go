package secrets_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"spine/shared/secrets"
	"spine/shared/secrets/kvfake"
)

func newRing(t *testing.T, v *secrets.Vault, logger *slog.Logger) *secrets.KeyRing {
	t.Helper()
	r, err := secrets.NewKeyRing(ctx(t), v, secrets.KeyRingOptions{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func current(t *testing.T, r *secrets.KeyRing) secrets.SigningKey {
	t.Helper()
	k, err := r.Current()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func kids(keys []secrets.SigningKey) []string {
	var out []string
	for _, k := range keys {
		out = append(out, k.ID)
	}
	return out
}

func TestKeyRing_FirstStartCreatesTheSigningKey(t *testing.T) {
	_, v := newFake(t)
	if _, err := v.Versions(ctx(t), secrets.SigningKeyName); !errors.Is(err, secrets.ErrNotFound) {
		t.Fatalf("a fresh vault holds %s already: %v", secrets.SigningKeyName, err)
	}
	r := newRing(t, v, quiet())
	k := current(t, r)
	if k.Algorithm != "ES256" || k.Private == nil || k.Private.Curve != elliptic.P256() || len(k.Version) != 32 {
		t.Fatalf("Current = %v (curve %v)", k, k.Private)
	}
	kid, err := secrets.Thumbprint(k.Public())
	if err != nil || k.ID != kid || len(kid) != 43 {
		t.Fatalf("kid %q, thumbprint %q (%v)", k.ID, kid, err)
	}
	stored, err := v.Get(ctx(t), secrets.SigningKeyName)
	if err != nil {
		t.Fatal(err)
	}
	if stored.Version != k.Version || stored.ContentType != "application/x-pem-file" || stored.Tags["alg"] != "ES256" {
		t.Errorf("stored %s: contentType %q, tags %v", stored, stored.ContentType, stored.Tags)
	}
	priv, err := secrets.ParseSigningKey(stored.Value())
	if err != nil || !priv.Equal(k.Private) {
		t.Errorf("the vault holds another key than the ring signs with (%v)", err)
	}
	if p := r.Published(); len(p) != 1 || p[0].ID != k.ID {
		t.Errorf("Published = %v, want only the current key", kids(p))
	}
	// A second start reads the key; it does not create another.
	again := newRing(t, v, quiet())
	if got := current(t, again); got.ID != k.ID || got.Version != k.Version {
		t.Errorf("second start: %v, want %v", got, k)
	}
	if versions, _ := v.Versions(ctx(t), secrets.SigningKeyName); len(versions) != 1 {
		t.Errorf("%d versions after two starts, want 1", len(versions))
	}
}

func TestKeyRing_Rotate_PublishesCurrentAndPreviousWithDistinctKids(t *testing.T) {
	_, v := newFake(t)
	r := newRing(t, v, quiet())
	old := current(t, r)
	rotated, err := r.Rotate(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	now := current(t, r)
	if now.ID != rotated.ID || now.Version != rotated.Version || now.ID == old.ID || now.Version == old.Version {
		t.Fatalf("after Rotate: current %v, rotated %v, old %v", now, rotated, old)
	}
	if got, want := kids(r.Published()), []string{now.ID, old.ID}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Published = %v, want [current previous] %v", got, want)
	}
	// A third key: the oldest is no longer published.
	third, err := r.Rotate(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := kids(r.Published()), []string{third.ID, now.ID}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Published after two rotations = %v, want %v", got, want)
	}
}

// sign mints a small ES256 JWT with k, as the authorization server does.
func sign(t *testing.T, k secrets.SigningKey) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"sub": "client", "exp": time.Now().Add(time.Minute).Unix()})
	tok.Header["kid"] = k.ID
	s, err := tok.SignedString(k.Private)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// verify checks token against the published keys by kid, as a verifier fed by Published does.
func verify(token string, published []secrets.SigningKey) error {
	_, err := jwt.Parse(token, func(tok *jwt.Token) (any, error) {
		kid, _ := tok.Header["kid"].(string)
		for _, k := range published {
			if k.ID == kid {
				return k.Public(), nil
			}
		}
		return nil, fmt.Errorf("unknown kid %q", kid)
	}, jwt.WithValidMethods([]string{"ES256"}))
	return err
}

func TestKeyRing_TokenSignedWithThePreviousKey_StillVerifiesAfterRotation(t *testing.T) {
	_, v := newFake(t)
	r := newRing(t, v, quiet())
	before := sign(t, current(t, r))
	if _, err := r.Rotate(ctx(t)); err != nil {
		t.Fatal(err)
	}
	after := sign(t, current(t, r))
	for name, tok := range map[string]string{"signed before the rotation": before, "signed after": after} {
		if err := verify(tok, r.Published()); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	// Two rotations later the first key is gone: its tokens no longer verify.
	if _, err := r.Rotate(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if err := verify(before, r.Published()); err == nil {
		t.Error("a token of a key two rotations old still verifies")
	}
}

func TestKeyRing_SecondRingSeesARotationAfterRefresh(t *testing.T) {
	ts, v := newFake(t)
	a := newRing(t, v, quiet())
	b := newRing(t, openVault(t, ts), quiet()) // another instance: its own client
	first := current(t, b)
	rotated, err := a.Rotate(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if got := current(t, b); got.ID != first.ID {
		t.Fatalf("b changed key before Refresh: %v", got)
	}
	if err := verify(sign(t, rotated), b.Published()); err == nil {
		t.Fatal("b verifies the new key's tokens before Refresh (the test would prove nothing)")
	}
	if err := b.Refresh(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if got := current(t, b); got.ID != rotated.ID || got.Version != rotated.Version {
		t.Fatalf("b after Refresh signs with %v, want %v", got, rotated)
	}
	if fmt.Sprint(kids(b.Published())) != fmt.Sprint(kids(a.Published())) {
		t.Fatalf("published: b %v, a %v", kids(b.Published()), kids(a.Published()))
	}
	if err := verify(sign(t, rotated), b.Published()); err != nil {
		t.Fatal(err)
	}
}

func TestKeyRing_DisabledNewestVersion_PreviousSignsAgainAfterRefresh(t *testing.T) {
	_, v := newFake(t)
	r := newRing(t, v, quiet())
	first := current(t, r)
	bad, err := r.Rotate(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := v.SetEnabled(ctx(t), secrets.SigningKeyName, bad.Version, false); err != nil {
		t.Fatal(err)
	}
	if err := r.Refresh(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if got := current(t, r); got.ID != first.ID {
		t.Fatalf("after disabling the newest version, Current = %v, want %v", got, first)
	}
	if p := kids(r.Published()); len(p) != 1 || p[0] != first.ID {
		t.Fatalf("Published = %v, want only %s", p, first.ID)
	}
}

func TestKeyRing_RefreshDuringAnOutage_KeepsSigning(t *testing.T) {
	ts, v := newFake(t)
	r := newRing(t, v, quiet())
	k := current(t, r)
	ts.InjectFault(kvfake.Fault{Status: 503, Count: 100})
	if err := r.Refresh(ctx(t)); !errors.Is(err, secrets.ErrUnavailable) {
		t.Fatalf("Refresh during an outage = %v, want ErrUnavailable", err)
	}
	if _, err := r.Rotate(ctx(t)); !errors.Is(err, secrets.ErrUnavailable) {
		t.Fatalf("Rotate during an outage = %v, want ErrUnavailable", err)
	}
	if got := current(t, r); got.ID != k.ID || len(r.Published()) != 1 {
		t.Fatalf("the ring lost its key: %v", got)
	}
}

func TestKeyRing_MalformedNewestVersion_FailsWithoutQuotingIt(t *testing.T) {
	_, v := newFake(t)
	newRing(t, v, quiet())
	const garbage = "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n"
	if _, err := v.Set(ctx(t), secrets.SigningKeyName, garbage, "application/x-pem-file", nil); err != nil {
		t.Fatal(err)
	}
	_, err := secrets.NewKeyRing(ctx(t), v, secrets.KeyRingOptions{Logger: quiet()})
	if err == nil || strings.Contains(err.Error(), "bm90IGEga2V5") {
		t.Fatalf("NewKeyRing over a malformed newest version = %v", err)
	}
	// A P-384 key is not a signing key of this ring either (ES256 is P-256 only).
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(p384)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := secrets.ParseSigningKey(string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))); err == nil {
		t.Fatal("ParseSigningKey accepted a P-384 key")
	}
}

func TestKeyRing_RotateIfOlder_RotatesOnlyAnOldKey(t *testing.T) {
	var clock atomic.Int64
	clock.Store(time.Now().Add(-40 * 24 * time.Hour).Unix())
	_, v := newFake(t, kvfake.Options{Now: func() time.Time { return time.Unix(clock.Load(), 0) }})
	r := newRing(t, v, quiet())
	old := current(t, r)
	clock.Store(time.Now().Unix())
	k, rotated, err := r.RotateIfOlder(ctx(t), 30*24*time.Hour)
	if err != nil || !rotated || k.ID == old.ID {
		t.Fatalf("RotateIfOlder on a 40-day-old key = %v, %v, %v", k, rotated, err)
	}
	again, rotated, err := r.RotateIfOlder(ctx(t), 30*24*time.Hour)
	if err != nil || rotated || again.ID != k.ID {
		t.Fatalf("RotateIfOlder on a fresh key = %v, %v, %v", again, rotated, err)
	}
}

func TestKeyRing_CurrentAllocatesNothing(t *testing.T) {
	_, v := newFake(t)
	r := newRing(t, v, quiet())
	if n := testing.AllocsPerRun(1000, func() {
		if _, err := r.Current(); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("Current allocates %v times per call", n)
	}
	var zero secrets.KeyRing
	if _, err := zero.Current(); !errors.Is(err, secrets.ErrNoSigningKey) {
		t.Fatalf("zero KeyRing: %v", err)
	}
}

// Readers never block on or race with Refresh and Rotate (run with -race), and always see a key
// that is published.
func TestKeyRing_ConcurrentReadersDuringRotations(t *testing.T) {
	_, v := newFake(t)
	r := newRing(t, v, quiet())
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var bad atomic.Int64
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				k, err := r.Current()
				p := r.Published()
				if err != nil || k.Private == nil || len(p) == 0 {
					bad.Add(1)
				}
			}
		}()
	}
	for range 3 {
		if _, err := r.Rotate(ctx(t)); err != nil {
			t.Error(err)
		}
		if err := r.Refresh(ctx(t)); err != nil {
			t.Error(err)
		}
	}
	close(stop)
	wg.Wait()
	if bad.Load() != 0 {
		t.Fatalf("%d reads saw no key", bad.Load())
	}
}

// Nothing the ring logs, and no way of printing a SigningKey, shows the private key.
func TestKeyRing_PrivateKeyNeverAppearsInLogsOrPrints(t *testing.T) {
	_, v := newFake(t)
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r := newRing(t, v, logger)
	if _, err := r.Rotate(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if err := r.Refresh(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if err := newRing(t, v, logger).Refresh(ctx(t)); err != nil {
		t.Fatal(err)
	}
	k := current(t, r)
	holder := struct {
		Key  secrets.SigningKey
		Keys []secrets.SigningKey
	}{k, r.Published()}
	logger.Info("printing", "key", k, "holder", holder, "published", r.Published())
	slog.New(slog.NewTextHandler(&logs, nil)).Info("text", "key", k)
	for _, f := range []string{"%v", "%+v", "%#v", "%s", "%d", "%x"} {
		fmt.Fprintf(&logs, f+"\n", k)
		fmt.Fprintf(&logs, f+"\n", holder)
	}
	raw, err := json.Marshal(holder)
	if err != nil {
		t.Fatal(err)
	}
	logs.Write(raw)
	out := logs.String()
	for _, key := range r.Published() {
		der, err := x509.MarshalPKCS8PrivateKey(key.Private)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := key.Private.Bytes() // the private scalar, in every notation a printer might use
		if err != nil {
			t.Fatal(err)
		}
		d := new(big.Int).SetBytes(raw)
		for _, leak := range []string{
			base64.StdEncoding.EncodeToString(der)[:40], d.String(), d.Text(16),
			base64.RawURLEncoding.EncodeToString(raw), base64.StdEncoding.EncodeToString(raw),
		} {
			if strings.Contains(out, leak) {
				t.Fatalf("private key material %q leaked:\n%s", leak, out)
			}
		}
	}
	if !strings.Contains(out, k.ID) || !strings.Contains(out, "rotated the signing key") {
		t.Fatalf("the logs do not even show the kid and the rotation:\n%s", out)
	}
}

func TestVault_EnsureRandom_CreatesOnceAndInstancesShareTheFirstVersion(t *testing.T) {
	_, v := newFake(t)
	first, err := v.EnsureRandom(ctx(t), secrets.CryptoKeyName, 32)
	if err != nil || len(first) != 32 {
		t.Fatalf("EnsureRandom = %d bytes, %v", len(first), err)
	}
	again, err := v.EnsureRandom(ctx(t), secrets.CryptoKeyName, 32)
	if err != nil || !bytes.Equal(first, again) {
		t.Fatalf("a second EnsureRandom returned other bytes (%v)", err)
	}
	// Another instance that raced and wrote a second version: everyone keeps the first one.
	other := bytes.Repeat([]byte{7}, 32)
	if _, err := v.Set(ctx(t), secrets.CryptoKeyName, base64.StdEncoding.EncodeToString(other), "application/octet-stream", nil); err != nil {
		t.Fatal(err)
	}
	after, err := v.EnsureRandom(ctx(t), secrets.CryptoKeyName, 32)
	if err != nil || !bytes.Equal(after, first) {
		t.Fatalf("after a racing second version: %x, want the first version's bytes", after)
	}
	if _, err := v.Set(ctx(t), "short-key", base64.StdEncoding.EncodeToString([]byte("short")), "", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := v.EnsureRandom(ctx(t), "short-key", 32); err == nil || strings.Contains(err.Error(), "c2hvcnQ") {
		t.Fatalf("EnsureRandom over a 5-byte value = %v", err)
	}
}

func BenchmarkKeyRing_Current(b *testing.B) {
	ts := kvfake.NewTLSServer(b)
	v, err := secrets.Open(secrets.Config{VaultURL: ts.URL, CAFile: ts.CAFile})
	if err != nil {
		b.Fatal(err)
	}
	r, err := secrets.NewKeyRing(b.Context(), v, secrets.KeyRingOptions{Logger: quiet()})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if k, err := r.Current(); err != nil || k.Private == nil {
				b.Fatal("no key")
			}
		}
	})
}
