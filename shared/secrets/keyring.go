package secrets

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Names and formats of the authorization server's keys in Key Vault (see KeyRing, EnsureRandom).
const (
	// SigningKeyName is the secret holding the token signing key: PKCS#8 PEM of a P-256 private
	// key per version; versions are rotations.
	SigningKeyName = "authz-signing-key"
	// CryptoKeyName is the secret holding the OpenID provider's 32-byte key for authorization
	// codes (base64), created once by EnsureRandom.
	CryptoKeyName = "authz-crypto-key"
	// AlgES256 is the JWS algorithm of every signing key (ECDSA P-256, SHA-256).
	AlgES256 = "ES256"
	// ContentTypePEM is the content type of a signing key version.
	ContentTypePEM = "application/x-pem-file"
)

// ErrNoSigningKey is Current's error on a KeyRing that never loaded a key (the zero KeyRing).
var ErrNoSigningKey = errors.New("secrets: the key ring holds no signing key")

// SigningKey is one version of the signing key. Every way of printing, logging or JSON-encoding
// it shows the kid, algorithm, version and creation time only, never the private key.
type SigningKey struct {
	// ID is the kid: the RFC 7638 thumbprint of the public key (SHA-256, base64url).
	ID string
	// Algorithm is AlgES256.
	Algorithm string
	// Private is the P-256 private key. Sign with it; never log or return it.
	Private *ecdsa.PrivateKey
	// Version is the Key Vault version the key was read from.
	Version string
	// Created is the version's creation time in Key Vault (whole seconds, UTC).
	Created time.Time
}

// Public returns the public half of the key (nil for the zero SigningKey).
func (k SigningKey) Public() *ecdsa.PublicKey {
	if k.Private == nil {
		return nil
	}
	return &k.Private.PublicKey
}

// String shows kid, algorithm and version, never the private key.
func (k SigningKey) String() string {
	return fmt.Sprintf("signing key %s %s version %s (private key %s)", k.ID, k.Algorithm, k.Version, masked)
}

// GoString is String, so %#v masks the private key too.
func (k SigningKey) GoString() string { return k.String() }

// Format makes every fmt verb print String.
func (k SigningKey) Format(f fmt.State, _ rune) { fmt.Fprint(f, k.String()) }

// LogValue implements slog.LogValuer: kid, alg, version, created; the private key masked.
func (k SigningKey) LogValue() slog.Value {
	return slog.GroupValue(slog.String("kid", k.ID), slog.String("alg", k.Algorithm),
		slog.String("version", k.Version), slog.Time("created", k.Created), slog.String("private", masked))
}

// MarshalJSON writes the same fields as LogValue, the private key masked.
func (k SigningKey) MarshalJSON() ([]byte, error) {
	return fmt.Appendf(nil, `{"kid":%q,"alg":%q,"version":%q,"created":%q,"private":%q}`,
		k.ID, k.Algorithm, k.Version, k.Created.Format(time.RFC3339), masked), nil
}

// KeyRingOptions configure NewKeyRing.
type KeyRingOptions struct {
	// Name is the secret holding the key versions (default SigningKeyName).
	Name string
	// Logger receives one line per key loaded, created or rotated (kid and version only;
	// default slog.Default()).
	Logger *slog.Logger
	// Activation is how long a new version is published before it signs (default
	// DefaultActivation). Every instance re-reads the ring within its refresh interval, so a key
	// that signs only after Activation is already in every instance's published set: no verifier
	// meets a kid it does not know. Negative: a new version signs at once (one instance, tests).
	Activation time.Duration
}

// DefaultActivation is KeyRingOptions.Activation's default: twice the app's refresh interval of
// five minutes.
const DefaultActivation = 10 * time.Minute

// KeyRing holds the signing keys of one Key Vault secret in memory. The newest enabled version
// older than the activation delay signs (Current; the newest one when none is that old yet, as
// at the first start); published (Published) are every newer version — announced ahead of signing —,
// the signing one, and the version before it, so tokens signed before a rotation verify until they
// expire. Rotate writes a new version; Refresh re-reads the versions (the app calls it every few
// minutes, so every instance follows a rotation made by another before the new key signs).
//
// Safe for concurrent use: Current and Published read one atomically swapped snapshot — no lock,
// no allocation, no vault call — while Refresh and Rotate are serialised among themselves.
type KeyRing struct {
	v     *Vault
	name  string
	log   *slog.Logger
	mu    sync.Mutex // held by Refresh and Rotate, never by readers
	state atomic.Pointer[ringState]
	// activation: see KeyRingOptions.Activation (resolved; ≤ 0 signs with a new version at once).
	activation time.Duration
}

type ringState struct {
	current   SigningKey
	published []SigningKey // newest first: versions not yet signing, the current one, the previous one
}

// NewKeyRing loads the ring from v. When the secret has no enabled version it creates the first
// one (a fresh P-256 key; needs permission to set secrets: Key Vault Secrets Officer in Azure).
// Two instances starting at once may both create one: the newer signs, both are published.
func NewKeyRing(ctx context.Context, v *Vault, opts KeyRingOptions) (*KeyRing, error) {
	r := &KeyRing{v: v, name: opts.Name, log: opts.Logger, activation: opts.Activation}
	if r.activation == 0 {
		r.activation = DefaultActivation
	}
	if r.name == "" {
		r.name = SigningKeyName
	}
	if r.log == nil {
		r.log = slog.Default()
	}
	if err := checkName(r.name); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.load(ctx); errors.Is(err, ErrNotFound) {
		k, err := r.create(ctx)
		if err != nil {
			return nil, err
		}
		r.log.InfoContext(ctx, "created the first signing key", "secret", r.name, "key", k)
		if err := r.load(ctx); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, err
	}
	return r, nil
}

// Current returns the key that signs now. It reads memory only, never allocates, and fails only
// on a ring that never loaded (ErrNoSigningKey).
func (r *KeyRing) Current() (SigningKey, error) {
	s := r.state.Load()
	if s == nil {
		return SigningKey{}, ErrNoSigningKey
	}
	return s.current, nil
}

// Published returns the keys verifiers must accept, newest first: versions announced but not yet
// signing, the current one, then the previous enabled version when there is one. The slice is shared and read-only: a Refresh or Rotate
// replaces it, never changes it.
func (r *KeyRing) Published() []SigningKey {
	s := r.state.Load()
	if s == nil {
		return nil
	}
	return s.published
}

// Refresh re-reads the secret's versions and swaps in the published ones (see KeyRing); versions
// already in memory are not read again. On error the ring keeps its keys (a vault outage never
// stops signing). A secret that lost every enabled version is ErrNotFound (nothing is created).
func (r *KeyRing) Refresh(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.load(ctx)
}

// Rotate writes a new key version, reloads, and returns the new key: published at once, signing
// once the activation delay has passed (at once with a negative Activation); the key it replaces
// then stays published as the previous key.
func (r *KeyRing) Rotate(ctx context.Context) (SigningKey, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rotate(ctx)
}

// RotateIfOlder refreshes, then rotates when the newest key (signing, or announced to sign) was
// created more than maxAge ago (the rotation timer's rule). It returns the key that signs afterwards and whether it rotated.
func (r *KeyRing) RotateIfOlder(ctx context.Context, maxAge time.Duration) (SigningKey, bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.load(ctx); err != nil {
		return SigningKey{}, false, err
	}
	st := r.state.Load()
	if time.Since(st.published[0].Created) <= maxAge {
		return st.current, false, nil
	}
	k, err := r.rotate(ctx)
	return k, err == nil, err
}

func (r *KeyRing) rotate(ctx context.Context) (SigningKey, error) {
	k, err := r.create(ctx)
	if err != nil {
		return SigningKey{}, err
	}
	if err := r.load(ctx); err != nil {
		return k, fmt.Errorf("secrets: rotated to version %s, but reloading failed: %w", k.Version, err)
	}
	st := r.state.Load()
	r.log.InfoContext(ctx, "rotated the signing key", "secret", r.name, "key", k, "signing", st.current.ID,
		"signsFrom", k.Created.Add(max(r.activation, 0)).Format(time.RFC3339))
	if st.published[0].Version != k.Version {
		// Another instance rotated in the same second; both keys are valid, the vault's order wins.
		r.log.WarnContext(ctx, "another signing key version is newer than the one just written",
			"secret", r.name, "written", k.Version, "newest", st.published[0].Version)
	}
	return k, nil
}

// create writes a fresh key as a new version and returns it.
func (r *KeyRing) create(ctx context.Context) (SigningKey, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return SigningKey{}, fmt.Errorf("secrets: generating a signing key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return SigningKey{}, fmt.Errorf("secrets: encoding a signing key: %w", err)
	}
	pemText := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	s, err := r.v.Set(ctx, r.name, pemText, ContentTypePEM, map[string]string{"alg": AlgES256})
	if err != nil {
		return SigningKey{}, err
	}
	kid, err := Thumbprint(&priv.PublicKey)
	if err != nil {
		return SigningKey{}, err
	}
	return SigningKey{ID: kid, Algorithm: AlgES256, Private: priv, Version: s.Version, Created: s.Created}, nil
}

// load reads the published versions (reusing those in memory) and swaps them in. The caller
// holds r.mu.
func (r *KeyRing) load(ctx context.Context) error {
	versions, err := r.v.Versions(ctx, r.name)
	if err != nil {
		return err
	}
	signer := signing(versions, r.activation, time.Now())
	old := map[string]SigningKey{}
	if s := r.state.Load(); s != nil {
		for _, k := range s.published {
			old[k.Version] = k
		}
	}
	next := &ringState{}
	for i, ver := range versions[:min(signer+2, len(versions))] {
		k, ok := old[ver.Version]
		if !ok {
			k, err = r.read(ctx, ver)
			if err != nil && i == signer {
				return err
			}
			if err != nil {
				// A key that cannot be parsed can neither sign nor verify anything; sign on.
				r.log.WarnContext(ctx, "skipping an unreadable signing key version",
					"secret", r.name, "version", ver.Version, "error", err.Error())
				continue
			}
			r.log.InfoContext(ctx, "loaded a signing key", "secret", r.name, "key", k, "current", i == signer)
		}
		if i == signer {
			next.current = k
		}
		next.published = append(next.published, k)
	}
	r.state.Store(next)
	return nil
}

// signing is the index in versions (enabled, newest first) of the one that signs at now: the
// newest created at least activation ago, else the oldest (at the first start, or after rotations
// closer together than the delay: the key every instance has had longest).
func signing(versions []Version, activation time.Duration, now time.Time) int {
	if activation <= 0 {
		return 0
	}
	for i, v := range versions {
		if !v.Created.After(now.Add(-activation)) {
			return i
		}
	}
	return len(versions) - 1
}

// read fetches one version and parses its key.
func (r *KeyRing) read(ctx context.Context, ver Version) (SigningKey, error) {
	s, err := r.v.GetVersion(ctx, r.name, ver.Version)
	if err != nil {
		return SigningKey{}, err
	}
	priv, err := ParseSigningKey(s.Value())
	if err != nil {
		return SigningKey{}, fmt.Errorf("secrets: %s version %s: %w", r.name, ver.Version, err)
	}
	kid, err := Thumbprint(&priv.PublicKey)
	if err != nil {
		return SigningKey{}, err
	}
	created := ver.Created
	if created.IsZero() {
		created = s.Created
	}
	return SigningKey{ID: kid, Algorithm: AlgES256, Private: priv, Version: ver.Version, Created: created}, nil
}

// ParseSigningKey reads a PKCS#8 PEM "PRIVATE KEY" block holding an ECDSA P-256 key. Its errors
// never quote the input.
func ParseSigningKey(pemText string) (*ecdsa.PrivateKey, error) {
	block, _ := pem.Decode([]byte(pemText))
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, errors.New("not a PKCS#8 PEM \"PRIVATE KEY\" block")
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, errors.New("not a valid PKCS#8 private key")
	}
	key, ok := parsed.(*ecdsa.PrivateKey)
	if !ok || key.Curve != elliptic.P256() {
		return nil, errors.New("not an ECDSA P-256 key")
	}
	return key, nil
}

// Thumbprint is the RFC 7638 JWK thumbprint of a P-256 public key (SHA-256 over the required
// members crv, kty, x, y in that order without whitespace, base64url unpadded): the kid.
func Thumbprint(pub *ecdsa.PublicKey) (string, error) {
	if pub == nil {
		return "", errors.New("secrets: thumbprint of a nil key")
	}
	b, err := pub.Bytes() // 0x04 || X || Y
	if err != nil || len(b) != 65 || pub.Curve != elliptic.P256() {
		return "", errors.New("secrets: not a P-256 public key")
	}
	enc := base64.RawURLEncoding
	sum := sha256.Sum256([]byte(`{"crv":"P-256","kty":"EC","x":"` + enc.EncodeToString(b[1:33]) +
		`","y":"` + enc.EncodeToString(b[33:]) + `"}`))
	return enc.EncodeToString(sum[:]), nil
}

// EnsureRandom returns the n random bytes held (base64) by the secret name, creating it when it
// has no enabled version. It reads the oldest enabled version: instances that start together
// and each create one all settle on the first one written (a later reader sees the same oldest
// version), so they share one key. To replace the key, disable the old version (SetEnabled).
// A value that is not n bytes of base64 is an error (never quoted).
func (v *Vault) EnsureRandom(ctx context.Context, name string, n int) ([]byte, error) {
	if n < 16 || n > 1024 {
		return nil, fmt.Errorf("secrets: EnsureRandom of %d bytes (want 16 to 1024)", n)
	}
	versions, err := v.Versions(ctx, name)
	if errors.Is(err, ErrNotFound) {
		b := make([]byte, n)
		if _, err := rand.Read(b); err != nil {
			return nil, fmt.Errorf("secrets: random bytes: %w", err)
		}
		if _, err := v.Set(ctx, name, base64.StdEncoding.EncodeToString(b), "application/octet-stream",
			map[string]string{"encoding": "base64"}); err != nil {
			return nil, err
		}
		versions, err = v.Versions(ctx, name)
	}
	if err != nil {
		return nil, err
	}
	oldest := versions[len(versions)-1]
	s, err := v.GetVersion(ctx, name, oldest.Version)
	if err != nil {
		return nil, err
	}
	b, err := base64.StdEncoding.DecodeString(s.Value())
	if err != nil || len(b) != n {
		return nil, fmt.Errorf("secrets: %s version %s does not hold %d bytes of base64", name, oldest.Version, n)
	}
	return b, nil
}
