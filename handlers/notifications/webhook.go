package notifications

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// Standard Webhooks (https://www.standardwebhooks.com): the secret is "whsec_" + base64 of 24
// random bytes; a delivery carries webhook-id (the notification id, the same on every retry),
// webhook-timestamp (Unix seconds of the attempt) and webhook-signature "v1,<base64 HMAC-SHA256 of
// id.timestamp.body keyed with the secret's bytes>".
const secretPrefix = "whsec_"

// newSecret returns a fresh webhook signing secret.
func newSecret() (string, error) {
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return secretPrefix + base64.StdEncoding.EncodeToString(b[:]), nil
}

// sign returns the webhook-signature header value for id, timestamp and body under secret.
func sign(secret, id string, ts int64, body []byte) (string, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, secretPrefix))
	if err != nil {
		return "", errors.New("notifications: the webhook secret is not whsec_<base64>")
	}
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "%s.%d.", id, ts)
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil)), nil
}

// errSSRF: the target resolved to an address deliveries may not reach.
var errSSRF = errors.New("notifications: the webhook target's address is refused")

// metadataPrefixes are ranges refused besides what net/netip classifies: carrier-grade NAT,
// "this network", IPv4 benchmarking, and the IPv6 translation prefixes that embed IPv4 addresses.
var refusedPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("64:ff9b::/96"),
	netip.MustParsePrefix("64:ff9b:1::/48"),
}

// refusedAddr reports whether a delivery may not connect to ip: private (10/8, 172.16/12,
// 192.168/16, fc00::/7), link-local (169.254/16 — the metadata endpoint 169.254.169.254 — and
// fe80::/10), unspecified, multicast, the ranges above, and loopback unless allowLoopback.
func refusedAddr(ip netip.Addr, allowLoopback bool) bool {
	ip = ip.Unmap()
	switch {
	case !ip.IsValid(), ip.IsUnspecified(), ip.IsPrivate(), ip.IsLinkLocalUnicast(), ip.IsLinkLocalMulticast(),
		ip.IsInterfaceLocalMulticast(), ip.IsMulticast():
		return true
	case ip.IsLoopback():
		return !allowLoopback
	}
	for _, p := range refusedPrefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// checkURL validates a webhook endpoint's URL when it is set: absolute https (http only to a
// loopback host when allowLoopback), no user info, no fragment, and a host that is not a refused
// address literal. Names are resolved and checked again at every delivery (the dialer's Control).
func checkURL(raw string, allowLoopback bool) error {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		return fmt.Errorf("%w: not an absolute URL", ErrInvalidURL)
	}
	if u.User != nil || u.Fragment != "" {
		return fmt.Errorf("%w: no user info or fragment", ErrInvalidURL)
	}
	host := u.Hostname()
	loopback := strings.EqualFold(host, "localhost")
	if ip, err := netip.ParseAddr(host); err == nil {
		if refusedAddr(ip, allowLoopback) {
			return fmt.Errorf("%w: the address %s is private, link-local, loopback or otherwise not public", ErrInvalidURL, host)
		}
		loopback = ip.Unmap().IsLoopback()
	}
	switch {
	case loopback && !allowLoopback:
		return fmt.Errorf("%w: a loopback host", ErrInvalidURL)
	case u.Scheme == "https":
	case u.Scheme == "http" && loopback:
	default:
		return fmt.Errorf("%w: https only", ErrInvalidURL)
	}
	return nil
}

// deliveryTimeout bounds one webhook delivery, connection to response headers.
const deliveryTimeout = 10 * time.Second

// newWebhookClient returns the HTTP client deliveries use: every connection's resolved address is
// checked (refusedAddr) before it is made, so a name that resolves to a private address — or is
// re-pointed there after the endpoint was saved — is refused; no proxy, no redirects followed,
// 10 s per delivery.
func newWebhookClient(allowLoopback bool, tlsConfig *tls.Config) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second, Control: func(_, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil || refusedAddr(ap.Addr(), allowLoopback) {
			return errSSRF
		}
		return nil
	}}
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           d.DialContext,
		TLSClientConfig:       tlsConfig,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: deliveryTimeout,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
	}
	return &http.Client{Transport: tr, Timeout: deliveryTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// errorClass classifies a failed delivery for the log: ssrf-refused, timeout, tls or connect.
func errorClass(err error) string {
	var ne net.Error
	var certErr *tls.CertificateVerificationError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var recErr tls.RecordHeaderError
	switch {
	case errors.Is(err, errSSRF):
		return "ssrf-refused"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.As(err, &certErr), errors.As(err, &unknownAuth), errors.As(err, &hostErr), errors.As(err, &recErr):
		return "tls"
	}
	return "connect"
}

// statusClass classifies an HTTP answer: "" for 2xx, else http-3xx, http-4xx or http-5xx.
func statusClass(code int) string {
	switch {
	case code >= 200 && code < 300:
		return ""
	case code < 400:
		return "http-3xx"
	case code < 500:
		return "http-4xx"
	}
	return "http-5xx"
}
