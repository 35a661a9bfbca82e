package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// DiscoveryPath is appended to the issuer (without its trailing slash) to find the OpenID Provider
// configuration (OpenID Connect Discovery 1.0 §4).
const DiscoveryPath = "/.well-known/openid-configuration"

// maxRemoteBody bounds a discovery document or JWKS read over HTTP.
const maxRemoteBody = 1 << 20

// remoteStore holds a key set fetched over HTTP, either from a fixed JWKS URL (SPINE_AUTH_JWKS_URL)
// or from the jwks_uri of the issuer's discovery document. It is fetched at start (a failure is
// logged, not returned: the authorization server may not listen yet), refreshed in the background
// (hourly; while nothing has loaded, retried after 1 s, 2 s, … up to a minute), and refreshed on
// demand when a token names an unknown kid, at most once per onDemandEvery. Until a set has loaded
// every lookup fails (errKeysUnavailable), which the Verifier answers as an invalid token.
// Safe for concurrent use.
type remoteStore struct {
	// Exactly one of jwksURL (fixed) and issuer (discovery) is set.
	jwksURL string
	issuer  string
	source  string // the setting, for logs and errors
	client  *http.Client

	keys atomic.Pointer[map[string]verKey] // nil until the first successful fetch

	// sem admits one fetch at a time; lastOnDemand is guarded by it.
	sem           chan struct{}
	lastOnDemand  time.Time
	onDemandEvery time.Duration
	refreshEvery  time.Duration
}

// newRemoteStore builds the store and tries the first fetch (bounded by remoteHTTPTimeout); the
// background refresh runs until ctx ends. Exactly one of jwksURL and issuer is non-empty, already
// checked by Config.Validate.
func newRemoteStore(ctx context.Context, jwksURL, issuer string) *remoteStore {
	s := &remoteStore{
		jwksURL: jwksURL, issuer: issuer,
		source: "SPINE_AUTH_JWKS_URL",
		client: &http.Client{
			Timeout: remoteHTTPTimeout,
			// A redirect may not leave the URL rules: https, or http on loopback only.
			CheckRedirect: func(req *http.Request, via []*http.Request) error {
				if len(via) >= 5 {
					return errors.New("too many redirects")
				}
				return checkRemoteURL(req.URL.String())
			},
		},
		sem:           make(chan struct{}, 1),
		onDemandEvery: remoteUnknownKIDEvery,
		refreshEvery:  remoteRefreshInterval,
	}
	if issuer != "" {
		s.source = "discovery from SPINE_AUTH_ISSUER"
	}
	first, cancel := context.WithTimeout(ctx, remoteHTTPTimeout)
	s.sem <- struct{}{}
	if err := s.refresh(first); err != nil {
		slog.Default().WarnContext(ctx, "auth: JWKS refresh failed at start; tokens are refused until the signing keys load (retrying)",
			"source", s.source, "error", err)
	}
	<-s.sem
	cancel()
	go s.background(ctx)
	return s
}

// key implements keyStore.
func (s *remoteStore) key(ctx context.Context, kid string) (verKey, error) {
	if k, ok := s.lookup(kid); ok {
		return k, nil
	}
	wait, cancel := context.WithTimeout(ctx, remoteRefreshWaitMax)
	defer cancel()
	select {
	case s.sem <- struct{}{}:
	case <-wait.Done():
		return verKey{}, s.missing()
	}
	defer func() { <-s.sem }()
	// A refresh that ran while we waited may have brought the key.
	if k, ok := s.lookup(kid); ok {
		return k, nil
	}
	if !s.lastOnDemand.IsZero() && time.Since(s.lastOnDemand) < s.onDemandEvery {
		return verKey{}, s.missing()
	}
	s.lastOnDemand = time.Now()
	if err := s.refresh(wait); err != nil {
		slog.Default().WarnContext(ctx, "auth: JWKS refresh failed (a token named an unknown kid)", "source", s.source, "error", err)
		return verKey{}, s.missing()
	}
	if k, ok := s.lookup(kid); ok {
		return k, nil
	}
	return verKey{}, errKeyNotFound
}

func (s *remoteStore) lookup(kid string) (verKey, bool) {
	m := s.keys.Load()
	if m == nil {
		return verKey{}, false
	}
	k, ok := (*m)[kid]
	return k, ok
}

// missing is the error of a failed lookup: unavailable while no set has loaded, else not found.
func (s *remoteStore) missing() error {
	if s.keys.Load() == nil {
		return errKeysUnavailable
	}
	return errKeyNotFound
}

// background refreshes the set every refreshEvery, or sooner (with a doubling pause) while none
// has loaded, until ctx ends. A failed refresh keeps the keys already loaded.
func (s *remoteStore) background(ctx context.Context) {
	retry := time.Second
	for {
		pause := s.refreshEvery
		if s.keys.Load() == nil {
			pause = retry
			retry = min(2*retry, remoteRetryMax)
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		select {
		case s.sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		fetch, cancel := context.WithTimeout(ctx, remoteHTTPTimeout)
		err := s.refresh(fetch)
		cancel()
		<-s.sem
		if err != nil && ctx.Err() == nil {
			slog.Default().WarnContext(ctx, "auth: JWKS refresh failed; keeping the keys already loaded", "source", s.source, "error", err)
		}
	}
}

// refresh fetches the set (after the discovery document, in discovery mode) and installs it. The
// caller holds sem.
func (s *remoteStore) refresh(ctx context.Context) error {
	u := s.jwksURL
	if s.issuer != "" {
		var err error
		if u, err = s.discover(ctx); err != nil {
			return err
		}
	}
	raw, err := s.get(ctx, u, "application/jwk-set+json, application/json")
	if err != nil {
		return fmt.Errorf("JWKS %s: %w", u, err)
	}
	keys, err := parseJWKS(raw)
	if err != nil {
		return fmt.Errorf("JWKS %s: %w", u, err)
	}
	s.keys.Store(&keys)
	return nil
}

// discover reads the issuer's discovery document and returns its jwks_uri. The document's issuer
// must equal the configured one exactly (OpenID Connect Discovery 1.0 §4.3), and jwks_uri must
// follow the same URL rules as SPINE_AUTH_JWKS_URL.
func (s *remoteStore) discover(ctx context.Context) (string, error) {
	u := strings.TrimSuffix(s.issuer, "/") + DiscoveryPath
	raw, err := s.get(ctx, u, "application/json")
	if err != nil {
		return "", fmt.Errorf("discovery %s: %w", u, err)
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return "", fmt.Errorf("discovery %s: not a JSON document: %w", u, err)
	}
	if doc.Issuer != s.issuer {
		return "", fmt.Errorf("discovery %s: issuer %q is not SPINE_AUTH_ISSUER %q", u, doc.Issuer, s.issuer)
	}
	if err := checkRemoteURL(doc.JWKSURI); err != nil {
		return "", fmt.Errorf("discovery %s: jwks_uri %q %w", u, doc.JWKSURI, err)
	}
	return doc.JWKSURI, nil
}

// get reads u: a 200 answer of at most maxRemoteBody bytes.
func (s *remoteStore) get(ctx context.Context, u, accept string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", accept)
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxRemoteBody+1))
	if err != nil {
		return nil, err
	}
	if len(raw) > maxRemoteBody {
		return nil, fmt.Errorf("answer larger than %d bytes", maxRemoteBody)
	}
	return raw, nil
}
