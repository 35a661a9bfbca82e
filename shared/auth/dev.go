package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// File names inside a dev key directory.
const (
	// DevKeyFile holds the ES256 (P-256) private key, PKCS#8 PEM, mode 0600.
	DevKeyFile = "dev-signing-key.pem"
	// DevJWKSFile holds the public key as a JWKS; point SPINE_AUTH_JWKS_FILE at it.
	DevJWKSFile = "jwks.json"
)

// DevSigner signs ES256 access tokens with the local development key. It is immutable and safe for
// concurrent use. It is for the local stack and tests only; production tokens come from the
// authorization server, whose keys live in Key Vault.
type DevSigner struct {
	key  *ecdsa.PrivateKey
	kid  string
	jwks []byte
}

// TokenClaims are the claims [DevSigner.Mint] puts in a token.
type TokenClaims struct {
	Issuer   string // iss; required
	Audience string // aud; required
	Subject  string // sub; required
	// TenantID is tenant_id; required unless PlatformAdmin.
	TenantID string
	// Scopes become the space-separated scope claim; each must be an RFC 6749 scope token.
	Scopes []string
	// PlatformAdmin is platform_admin.
	PlatformAdmin bool
}

// EnsureDevKey makes dir (mode 0700 when created) hold a dev signing key and returns its signer. When
// dir/dev-signing-key.pem is absent it generates a P-256 key and writes it as PKCS#8 PEM with mode
// 0600 (created atomically: concurrent callers end up with the same key); when present it loads it
// and tightens its mode to 0600. It always (re)writes dir/jwks.json (mode 0644, atomically) with the
// public key: kty EC, crv P-256, kid = RFC 7638 thumbprint, alg ES256, use sig.
func EnsureDevKey(dir string) (*DevSigner, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("auth: dev key dir: %w", err)
	}
	keyPath := filepath.Join(dir, DevKeyFile)
	if _, err := os.Stat(keyPath); errors.Is(err, fs.ErrNotExist) {
		if err := createDevKey(dir, keyPath); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, fmt.Errorf("auth: dev key: %w", err)
	}
	if runtime.GOOS != "windows" {
		if err := os.Chmod(keyPath, 0o600); err != nil {
			return nil, fmt.Errorf("auth: dev key mode: %w", err)
		}
	}
	s, err := LoadDevSigner(dir)
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(filepath.Join(dir, DevJWKSFile), s.jwks, 0o644); err != nil {
		return nil, fmt.Errorf("auth: writing dev JWKS: %w", err)
	}
	return s, nil
}

// createDevKey writes a fresh key to keyPath unless another process got there first.
func createDevKey(dir, keyPath string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("auth: generating dev key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("auth: encoding dev key: %w", err)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	tmp, err := writeTemp(dir, data, 0o600)
	if err != nil {
		return fmt.Errorf("auth: writing dev key: %w", err)
	}
	defer os.Remove(tmp)
	// Link fails if keyPath exists, so a complete file appears at most once and is never replaced.
	err = os.Link(tmp, keyPath)
	if err == nil || errors.Is(err, fs.ErrExist) {
		return nil
	}
	// File systems without hard links: exclusive create, still never replacing an existing key.
	f, ferr := os.OpenFile(keyPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(ferr, fs.ErrExist) {
		return nil
	}
	if ferr != nil {
		return fmt.Errorf("auth: writing dev key: %w", errors.Join(err, ferr))
	}
	_, rerr := f.Write(data)
	if cerr := f.Close(); rerr == nil {
		rerr = cerr
	}
	if rerr != nil {
		os.Remove(keyPath)
		return fmt.Errorf("auth: writing dev key: %w", rerr)
	}
	return nil
}

// LoadDevSigner loads dir/dev-signing-key.pem (PKCS#8 PEM, ECDSA P-256). It does not write anything.
func LoadDevSigner(dir string) (*DevSigner, error) {
	raw, err := os.ReadFile(filepath.Join(dir, DevKeyFile))
	if err != nil {
		return nil, fmt.Errorf("auth: dev key: %w", err)
	}
	block, _ := pem.Decode(raw)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, errors.New("auth: dev key: not a PKCS#8 PEM \"PRIVATE KEY\" block")
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("auth: dev key: %w", err)
	}
	key, ok := parsed.(*ecdsa.PrivateKey)
	if !ok || key.Curve != elliptic.P256() {
		return nil, errors.New("auth: dev key: not an ECDSA P-256 key")
	}
	return newDevSigner(key)
}

func newDevSigner(key *ecdsa.PrivateKey) (*DevSigner, error) {
	x, y, err := ecPublicCoordinates(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	kid := ecThumbprint(x, y)
	jwks, err := json.MarshalIndent(map[string]any{"keys": []map[string]string{{
		"kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": kid, "alg": algES256, "use": "sig",
	}}}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("auth: dev JWKS: %w", err)
	}
	return &DevSigner{key: key, kid: kid, jwks: append(jwks, '\n')}, nil
}

// ecPublicCoordinates returns the base64url (unpadded) x and y of a P-256 key, each 32 bytes long.
func ecPublicCoordinates(pub *ecdsa.PublicKey) (x, y string, err error) {
	b, err := pub.Bytes() // 0x04 || X || Y
	if err != nil || len(b) != 65 {
		return "", "", errors.New("auth: dev key: invalid P-256 public key")
	}
	enc := base64.RawURLEncoding
	return enc.EncodeToString(b[1:33]), enc.EncodeToString(b[33:]), nil
}

// ecThumbprint is the RFC 7638 JWK thumbprint (SHA-256, base64url) of a P-256 key: the hash of the
// required members in lexicographic order with no whitespace.
func ecThumbprint(x, y string) string {
	sum := sha256.Sum256([]byte(`{"crv":"P-256","kty":"EC","x":"` + x + `","y":"` + y + `"}`))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// KeyID returns the kid put in every token header: the key's RFC 7638 thumbprint.
func (s *DevSigner) KeyID() string { return s.kid }

// JWKS returns the public key set document (the content of jwks.json); the caller owns the slice.
func (s *DevSigner) JWKS() []byte { return append([]byte(nil), s.jwks...) }

// devClaims is the token body Mint writes.
type devClaims struct {
	jwt.RegisteredClaims
	TenantID      string `json:"tenant_id,omitempty"`
	Scope         string `json:"scope,omitempty"`
	PlatformAdmin bool   `json:"platform_admin,omitempty"`
}

// Mint returns an ES256 access token (header typ at+jwt, kid) for c, valid from now for ttl: iat
// and nbf are now, exp is now+ttl (whole seconds), jti is a fresh UUIDv7. It refuses claims a
// Verifier would reject (missing iss, aud or sub; neither tenant_id nor platform admin; an invalid
// scope token) and a ttl below one second.
func (s *DevSigner) Mint(c TokenClaims, ttl time.Duration) (string, error) {
	switch {
	case c.Issuer == "", c.Audience == "", c.Subject == "":
		return "", errors.New("auth: mint: issuer, audience and subject are required")
	case c.TenantID == "" && !c.PlatformAdmin:
		return "", errors.New("auth: mint: a tenant id or platform admin is required")
	case ttl < time.Second:
		return "", errors.New("auth: mint: ttl must be at least one second")
	}
	for _, sc := range c.Scopes {
		if !validScopeToken(sc) {
			return "", fmt.Errorf("auth: mint: invalid scope token %q", sc)
		}
	}
	jti, err := uuid.NewV7()
	if err != nil {
		return "", fmt.Errorf("auth: mint: jti: %w", err)
	}
	now := time.Now().Truncate(time.Second)
	t := jwt.NewWithClaims(jwt.SigningMethodES256, devClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    c.Issuer,
			Subject:   c.Subject,
			Audience:  jwt.ClaimStrings{c.Audience},
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
			NotBefore: jwt.NewNumericDate(now),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        jti.String(),
		},
		TenantID:      c.TenantID,
		Scope:         strings.Join(c.Scopes, " "),
		PlatformAdmin: c.PlatformAdmin,
	})
	t.Header["kid"] = s.kid
	t.Header["typ"] = "at+jwt"
	signed, err := t.SignedString(s.key)
	if err != nil {
		return "", fmt.Errorf("auth: mint: %w", err)
	}
	return signed, nil
}

// writeTemp writes data to a new temporary file in dir with mode perm and returns its path.
func writeTemp(dir string, data []byte, perm fs.FileMode) (string, error) {
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return "", err
	}
	name := f.Name()
	if err := f.Chmod(perm); err != nil && runtime.GOOS != "windows" {
		f.Close()
		os.Remove(name)
		return "", err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(name)
		return "", err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(name)
		return "", err
	}
	if err := f.Close(); err != nil {
		os.Remove(name)
		return "", err
	}
	return name, nil
}

// writeFileAtomic replaces path with data so readers see the old or the new content, never a mix.
func writeFileAtomic(path string, data []byte, perm fs.FileMode) error {
	tmp, err := writeTemp(filepath.Dir(path), data, perm)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}
