package auth

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// Defaults applied by [NewVerifier] to zero-valued [Config] fields.
const (
	// DefaultClockSkew is the leeway applied to exp, nbf and iat.
	DefaultClockSkew = 30 * time.Second
	// DefaultCacheSize is the maximum number of verified tokens remembered.
	DefaultCacheSize = 10000
	// MaxClockSkew is the largest ClockSkew Validate accepts.
	MaxClockSkew = 5 * time.Minute
)

// Config configures a [Verifier]. The application reads it from the settings SPINE_AUTH_ISSUER,
// SPINE_AUTH_AUDIENCE, SPINE_AUTH_JWKS_URL and SPINE_AUTH_JWKS_FILE, and sets Keys when the
// authorization server runs in the same binary.
//
// Where the verification keys come from:
//   - Keys (in process), when set; a JWKS file or URL, when also set, is trusted as well and asked
//     after Keys (tests mint with the dev key beside the server's own keys);
//   - else JWKSFile or JWKSURL (at most one of them);
//   - else discovery: the issuer's discovery document (Issuer + "/.well-known/openid-configuration"),
//     whose issuer must equal Issuer exactly, names the JWKS (jwks_uri), fetched and refreshed like
//     JWKSURL. Issuer must then follow JWKSURL's URL rules.
type Config struct {
	// Issuer is the exact iss value accepted (SPINE_AUTH_ISSUER). Required.
	Issuer string
	// Audience must appear in the token's aud claim, a string or an array (SPINE_AUTH_AUDIENCE).
	// Required.
	Audience string
	// Keys supplies the keys in process (see [KeySource]); read on every signature check. When it
	// is a [KeyRefresher] too, a kid no key set knows asks it to refresh (it rate-limits itself).
	Keys KeySource
	// JWKSURL is the authorization server's JWKS endpoint (SPINE_AUTH_JWKS_URL). It must be an
	// absolute https URL; plain http is allowed only for loopback hosts (localhost, 127.0.0.0/8, ::1).
	// The set is fetched at start (a failure is logged: the process can start before the
	// authorization server is reachable), refreshed hourly in the background, and refreshed on demand
	// when a token names an unknown kid (at most once a minute). At most one of JWKSURL and JWKSFile
	// is set.
	JWKSURL string
	// JWKSFile is a path to a JWKS document (SPINE_AUTH_JWKS_FILE), read at start and re-read when a
	// token names an unknown kid (at most every 10 seconds). At most one of JWKSURL and JWKSFile is
	// set.
	JWKSFile string
	// ClockSkew is the leeway for exp, nbf and iat. Zero means DefaultClockSkew (30s); it must be
	// between 0 and MaxClockSkew (use a tiny value such as time.Nanosecond for practically none).
	ClockSkew time.Duration
	// CacheSize bounds the verified-token cache. Zero means DefaultCacheSize (10000); a negative value
	// disables the cache, so every Verify checks the signature.
	CacheSize int
}

// withDefaults returns c with zero fields replaced by their defaults.
func (c Config) withDefaults() Config {
	if c.ClockSkew == 0 {
		c.ClockSkew = DefaultClockSkew
	}
	if c.CacheSize == 0 {
		c.CacheSize = DefaultCacheSize
	}
	return c
}

// Validate reports every problem with c, each naming the setting to fix; all errors wrap
// [ErrInvalidConfig]. It does not apply defaults and contacts nothing.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...))
	}
	if strings.TrimSpace(c.Issuer) == "" {
		bad("SPINE_AUTH_ISSUER (issuer) is required")
	}
	if strings.TrimSpace(c.Audience) == "" {
		bad("SPINE_AUTH_AUDIENCE (audience) is required")
	}
	switch {
	case c.JWKSURL != "" && c.JWKSFile != "":
		bad("set only one of SPINE_AUTH_JWKS_URL or SPINE_AUTH_JWKS_FILE (both are set)")
	case c.JWKSURL != "":
		if err := checkRemoteURL(c.JWKSURL); err != nil {
			bad("SPINE_AUTH_JWKS_URL %v", err)
		}
	case c.JWKSFile == "" && c.Keys == nil && strings.TrimSpace(c.Issuer) != "":
		if err := checkIssuerURL(c.Issuer); err != nil {
			bad("SPINE_AUTH_ISSUER %v (the signing keys are discovered from it when neither SPINE_AUTH_JWKS_URL nor SPINE_AUTH_JWKS_FILE is set)", err)
		}
	}
	if c.ClockSkew < 0 || c.ClockSkew > MaxClockSkew {
		bad("clock skew %s is outside 0..%s", c.ClockSkew, MaxClockSkew)
	}
	return errors.Join(errs...)
}

// checkRemoteURL applies the rules of a URL keys are fetched from: absolute, https, or http on a
// loopback host only.
func checkRemoteURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return errors.New("must be an absolute URL")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
		return errors.New("must use https (plain http is allowed only for loopback hosts)")
	default:
		return fmt.Errorf("has unsupported scheme %q (use https)", u.Scheme)
	}
}

// checkIssuerURL applies checkRemoteURL's rules to an issuer keys are discovered from, which also
// has no query and no fragment (OpenID Connect Discovery 1.0 §2).
func checkIssuerURL(raw string) error {
	if err := checkRemoteURL(raw); err != nil {
		return err
	}
	if u, _ := url.Parse(raw); u.RawQuery != "" || u.Fragment != "" || u.ForceQuery || strings.Contains(raw, "#") {
		return errors.New("must have no query and no fragment")
	}
	return nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
