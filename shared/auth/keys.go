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
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
)

// Algorithms accepted by the Verifier.
const (
	algRS256 = "RS256"
	algES256 = "ES256"
)

// Key-set refresh policy.
const (
	// urlRefreshInterval is the background refresh period of a JWKS URL.
	urlRefreshInterval = time.Hour
	// urlUnknownKIDEvery is the minimum gap between on-demand refreshes for an unknown kid.
	urlUnknownKIDEvery = time.Minute
	// urlRefreshWaitMax bounds how long a request may wait for the unknown-kid rate limiter and the
	// refresh it triggers; when the limiter's next slot is further away the lookup fails at once.
	urlRefreshWaitMax = 5 * time.Second
	// urlHTTPTimeout bounds one JWKS fetch.
	urlHTTPTimeout = 10 * time.Second
	// fileRereadEvery is the minimum gap between re-reads of a JWKS file for an unknown kid.
	fileRereadEvery = 10 * time.Second
	// minRSABits is the smallest RSA modulus accepted for RS256.
	minRSABits = 2048
)

// keyStore finds a JWK by key id; it returns an error matching jwkset.ErrKeyNotFound when absent.
type keyStore interface {
	KeyRead(ctx context.Context, kid string) (jwkset.JWK, error)
}

// newURLStore builds a keyfunc/jwkset HTTP storage with background refresh (ending when ctx ends)
// and rate-limited refresh on unknown kid.
func newURLStore(ctx context.Context, u string) (keyStore, error) {
	kf, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{u}, keyfunc.Override{
		HTTPTimeout:       urlHTTPTimeout,
		RateLimitWaitMax:  urlRefreshWaitMax,
		RefreshInterval:   urlRefreshInterval,
		RefreshUnknownKID: rate.NewLimiter(rate.Every(urlUnknownKIDEvery), 1),
		RefreshErrorHandlerFunc: func(u string) func(context.Context, error) {
			return func(ctx context.Context, err error) {
				slog.Default().WarnContext(ctx, "auth: JWKS refresh failed", "url", u, "error", err)
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("auth: JWKS from SPINE_AUTH_JWKS_URL: %w", err)
	}
	return kf.Storage(), nil
}

// fileStore holds the keys of a JWKS file and re-reads it, at most every minGap, when asked for a
// kid it does not have. Safe for concurrent use.
type fileStore struct {
	path   string
	minGap time.Duration
	keys   atomic.Pointer[map[string]jwkset.JWK]

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

// KeyRead implements keyStore.
func (s *fileStore) KeyRead(_ context.Context, kid string) (jwkset.JWK, error) {
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
		return jwkset.JWK{}, jwkset.ErrKeyNotFound
	}
	s.lastRead = time.Now()
	keys, err := readJWKSFile(s.path)
	if err != nil {
		slog.Default().Warn("auth: re-reading JWKS file failed; keeping the previous keys", "path", s.path, "error", err)
		return jwkset.JWK{}, jwkset.ErrKeyNotFound
	}
	s.keys.Store(&keys)
	if k, ok := keys[kid]; ok {
		return k, nil
	}
	return jwkset.JWK{}, jwkset.ErrKeyNotFound
}

// readJWKSFile parses a JWKS document into public keys by kid. Keys without a kid are skipped (they can
// never be selected); key types this package cannot use are skipped; a duplicate kid, an invalid key,
// or a set with no usable key is an error.
func readJWKSFile(path string) (map[string]jwkset.JWK, error) {
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

func parseJWKS(raw []byte) (map[string]jwkset.JWK, error) {
	var set jwkset.JWKSMarshal
	if err := json.Unmarshal(raw, &set); err != nil {
		return nil, fmt.Errorf("not a JWKS document: %w", err)
	}
	keys := make(map[string]jwkset.JWK, len(set.Keys))
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
		keys[m.KID] = jwk
	}
	if len(keys) == 0 {
		return nil, errors.New("no usable key with a kid")
	}
	return keys, nil
}

// verificationKey returns the public key for a token header, enforcing: a kid is present and known;
// the JWK's use (if any) is sig; the JWK's alg (if any) equals the token's alg; the key type and size
// fit the alg (RS256: RSA >= 2048 bits; ES256: ECDSA P-256).
func verificationKey(ctx context.Context, store keyStore, alg string, header map[string]any) (crypto.PublicKey, error) {
	kid, _ := header["kid"].(string)
	if kid == "" {
		return nil, invalid(ErrUnknownKey, "token header has no kid")
	}
	jwk, err := store.KeyRead(ctx, kid)
	if err != nil {
		if errors.Is(err, jwkset.ErrKeyNotFound) {
			return nil, invalid(ErrUnknownKey, "kid not in key set")
		}
		return nil, invalid(ErrUnknownKey, "key set lookup failed")
	}
	m := jwk.Marshal()
	if m.USE != "" && m.USE != jwkset.UseSig {
		return nil, invalid(ErrKeyMismatch, "key is not for signatures")
	}
	if m.ALG != "" && string(m.ALG) != alg {
		return nil, invalid(ErrKeyMismatch, "key is for "+string(m.ALG)+", token says "+alg)
	}
	key := jwk.Key()
	if pk, ok := key.(interface{ Public() crypto.PublicKey }); ok {
		key = pk.Public()
	}
	switch alg {
	case algRS256:
		if k, ok := key.(*rsa.PublicKey); ok && k.N != nil && k.N.BitLen() >= minRSABits {
			return k, nil
		}
	case algES256:
		if k, ok := key.(*ecdsa.PublicKey); ok && k.Curve == elliptic.P256() {
			return k, nil
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
