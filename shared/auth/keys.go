package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

// Algorithms accepted by the Verifier.
const (
	algRS256 = "RS256"
	algES256 = "ES256"
)

// Key-set refresh policy.
const (
	// remoteRefreshInterval is the background refresh period of a fetched key set (JWKS URL or
	// discovery).
	remoteRefreshInterval = time.Hour
	// remoteUnknownKIDEvery is the minimum gap between on-demand refreshes for an unknown kid.
	remoteUnknownKIDEvery = time.Minute
	// remoteRefreshWaitMax bounds how long a request may wait for a refresh another request runs, and
	// the on-demand refresh it runs itself.
	remoteRefreshWaitMax = 5 * time.Second
	// remoteHTTPTimeout bounds one fetch (the discovery document or the JWKS), and the first load
	// at start.
	remoteHTTPTimeout = 10 * time.Second
	// remoteRetryMax is the longest pause between background retries while no key set has loaded
	// (they start at one second and double).
	remoteRetryMax = time.Minute
	// fileRereadEvery is the minimum gap between re-reads of a JWKS file for an unknown kid.
	fileRereadEvery = 10 * time.Second
	// minRSABits is the smallest RSA modulus accepted for RS256.
	minRSABits = 2048
)

// Internal lookup outcomes of a keyStore; verificationKey turns them into ErrUnknownKey.
var (
	errKeyNotFound     = errors.New("kid not in key set")
	errKeysUnavailable = errors.New("key set unavailable")
)

// verKey is one verification key, resolved once when its key set is loaded so the signature path
// does no JWK work: the public key, and the JWK's alg and use members ("" when absent).
type verKey struct {
	pub crypto.PublicKey
	alg string
	use string
}

// keyStore finds a verification key by key id: errKeyNotFound when absent, errKeysUnavailable
// when the set could not be read. Implementations are safe for concurrent use.
type keyStore interface {
	key(ctx context.Context, kid string) (verKey, error)
}

// fileStore holds the keys of a JWKS file and re-reads it, at most every minGap, when asked for a
// kid it does not have. Safe for concurrent use.
type fileStore struct {
	path   string
	minGap time.Duration
	keys   atomic.Pointer[map[string]verKey]

	mu       sync.Mutex // serialises re-reads
	lastRead time.Time
}

func newFileStore(path string) (*fileStore, error) {
	s := &fileStore{path: path, minGap: fileRereadEvery}
	keys, err := readJWKSFile(path)
	if err != nil {
		return nil, err
	}
	s.keys.Store(&keys)
	s.lastRead = time.Now()
	return s, nil
}

// key implements keyStore.
func (s *fileStore) key(_ context.Context, kid string) (verKey, error) {
	if k, ok := (*s.keys.Load())[kid]; ok {
		return k, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// Another goroutine may have re-read while we waited for the lock.
	if k, ok := (*s.keys.Load())[kid]; ok {
		return k, nil
	}
	if time.Since(s.lastRead) < s.minGap {
		return verKey{}, errKeyNotFound
	}
	s.lastRead = time.Now()
	keys, err := readJWKSFile(s.path)
	if err != nil {
		slog.Default().Warn("auth: re-reading JWKS file failed; keeping the previous keys", "path", s.path, "error", err)
		return verKey{}, errKeyNotFound
	}
	s.keys.Store(&keys)
	if k, ok := keys[kid]; ok {
		return k, nil
	}
	return verKey{}, errKeyNotFound
}

// readJWKSFile parses a JWKS file (see parseJWKS).
func readJWKSFile(path string) (map[string]verKey, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth: reading SPINE_AUTH_JWKS_FILE: %w", err)
	}
	keys, err := parseJWKS(raw)
	if err != nil {
		return nil, fmt.Errorf("auth: SPINE_AUTH_JWKS_FILE %s: %w", path, err)
	}
	return keys, nil
}

// parseJWKS parses a JWKS document into public keys by kid. Keys without a kid are skipped (they can
// never be selected); key types this package cannot use are skipped; a duplicate kid, an invalid key,
// or a set with no usable key is an error.
func parseJWKS(raw []byte) (map[string]verKey, error) {
	var set jwkset.JWKSMarshal
	if err := json.Unmarshal(raw, &set); err != nil {
		return nil, fmt.Errorf("not a JWKS document: %w", err)
	}
	keys := make(map[string]verKey, len(set.Keys))
	for i, m := range set.Keys {
		if m.KID == "" || m.KTY == jwkset.KtyOct {
			continue // unselectable, or a symmetric key this package never verifies with
		}
		m.D, m.P, m.Q, m.DP, m.DQ, m.QI, m.OTH, m.K = "", "", "", "", "", "", nil, "" // public material only
		jwk, err := jwkset.NewJWKFromMarshal(m, jwkset.JWKMarshalOptions{}, jwkset.JWKValidateOptions{})
		if errors.Is(err, jwkset.ErrUnsupportedKey) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("key %d (kid %q): %w", i, m.KID, err)
		}
		if _, dup := keys[m.KID]; dup {
			return nil, fmt.Errorf("kid %q appears more than once", m.KID)
		}
		keys[m.KID] = verKey{pub: publicOf(jwk.Key()), alg: string(m.ALG), use: string(m.USE)}
	}
	if len(keys) == 0 {
		return nil, errors.New("no usable key with a kid")
	}
	return keys, nil
}

// publicOf returns the public half of a private key, or key itself.
func publicOf(key any) crypto.PublicKey {
	if pk, ok := key.(interface{ Public() crypto.PublicKey }); ok {
		return pk.Public()
	}
	return key
}

// verificationKey returns the public key for a token header, enforcing: a kid is present and known;
// the key's use (if any) is sig; the key's alg (if any) equals the token's alg; the key type and size
// fit the alg (RS256: RSA >= 2048 bits; ES256: ECDSA P-256).
func verificationKey(ctx context.Context, store keyStore, alg string, header map[string]any) (crypto.PublicKey, error) {
	kid, _ := header["kid"].(string)
	if kid == "" {
		return nil, invalid(ErrUnknownKey, "token header has no kid")
	}
	k, err := store.key(ctx, kid)
	if err != nil {
		if errors.Is(err, errKeyNotFound) {
			return nil, invalid(ErrUnknownKey, "kid not in key set")
		}
		return nil, invalid(ErrUnknownKey, "key set lookup failed")
	}
	if k.use != "" && k.use != string(jwkset.UseSig) {
		return nil, invalid(ErrKeyMismatch, "key is not for signatures")
	}
	if k.alg != "" && k.alg != alg {
		return nil, invalid(ErrKeyMismatch, "key is for "+k.alg+", token says "+alg)
	}
	switch alg {
	case algRS256:
		if pk, ok := k.pub.(*rsa.PublicKey); ok && pk.N != nil && pk.N.BitLen() >= minRSABits {
			return pk, nil
		}
	case algES256:
		if pk, ok := k.pub.(*ecdsa.PublicKey); ok && pk.Curve == elliptic.P256() {
			return pk, nil
		}
	}
	return nil, invalid(ErrKeyMismatch, "key type does not fit "+alg)
}

// headerKeyfunc returns the jwt.Keyfunc for one Verify call: header policy, then key lookup.
func (v *Verifier) headerKeyfunc(ctx context.Context) jwt.Keyfunc {
	return func(t *jwt.Token) (any, error) {
		if v.onKeyLookup != nil {
			v.onKeyLookup()
		}
		if _, ok := t.Header["crit"]; ok {
			return nil, invalid(ErrMalformedToken, "crit header not supported")
		}
		if typ, ok := t.Header["typ"]; ok && !acceptedTyp(typ) {
			return nil, invalid(ErrMalformedToken, "unexpected typ header")
		}
		alg := t.Method.Alg()
		if alg != algRS256 && alg != algES256 { // WithValidMethods already refuses; kept as a second line
			return nil, invalid(ErrUnsupportedAlgorithm, "")
		}
		return verificationKey(ctx, v.keys, alg, t.Header)
	}
}

// acceptedTyp allows the typ values an access token may carry: JWT and at+jwt (RFC 9068), with or
// without the application/ prefix, in any case.
func acceptedTyp(v any) bool {
	s, ok := v.(string)
	if !ok {
		return false
	}
	switch strings.ToLower(s) {
	case "jwt", "at+jwt", "application/jwt", "application/at+jwt":
		return true
	}
	return false
}
