// Package egress is Spine's outbound HTTP client for addresses that tenants choose (webhook
// endpoints, integration connectors): it refuses to reach anything but the public internet, so a
// tenant cannot point Spine at the cloud's metadata service, the virtual network or the host
// itself (server-side request forgery).
//
// The check runs on the address actually dialled, after name resolution, for every connection
// (redirects are not followed at all), so a name that resolves to a private address — or
// re-resolves to one between a check and the request (DNS rebinding) — is refused too.
package egress

import (
	"context"
	"crypto/tls"
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

// ErrRefused: the URL or the address it resolves to is not a public one this client may reach.
var ErrRefused = errors.New("egress: destination refused")

// Config configures a Client.
type Config struct {
	// AllowLoopback lets the client reach 127.0.0.0/8, ::1 and localhost over plain HTTP: the
	// local stack and tests (SPINE_EGRESS_ALLOW_LOOPBACK). Never in Azure.
	AllowLoopback bool
	// Timeout bounds a whole request, body included (default 10 s).
	Timeout time.Duration
}

// DefaultTimeout is Config.Timeout's default.
const DefaultTimeout = 10 * time.Second

// blocked are the ranges never dialled: private, shared (CGNAT), link-local (the metadata
// service 169.254.169.254 among them), Azure's wireserver 168.63.129.16, unique-local, documentation, benchmarking, multicast,
// reserved, and IPv4-mapped forms of all of them (netip unmaps before the check).
var blocked = func() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range []string{
		"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
		"192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24",
		"203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4", "255.255.255.255/32",
		"168.63.129.16/32", // Azure's platform endpoint (wireserver: DHCP, DNS, health probes) — public-looking, host-local
		"::/96", "::ffff:0:0:0/96", "64:ff9b::/96", "64:ff9b:1::/48", "100::/64", "2001::/32", "2001:db8::/32", "2002::/16",
		"fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8",
	} {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}()

// Allowed reports whether ip may be dialled (loopback only when allowLoopback). An address with
// an IPv6 zone (fe80::1%eth0) is never allowed: a zone names an interface of this host, and no
// prefix contains a zoned address, so it would slip past every range.
func Allowed(ip netip.Addr, allowLoopback bool) bool {
	ip = ip.Unmap()
	if !ip.IsValid() || ip.Zone() != "" || ip.IsUnspecified() {
		return false
	}
	if ip.IsLoopback() {
		return allowLoopback
	}
	for _, p := range blocked {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

// CheckURL validates a URL a tenant gives: absolute https (plain http only to a loopback host
// when allowLoopback), a host, no user information (credentials belong in the secret, never in
// a URL that is stored and shown), no fragment. A host given as an IP literal must be Allowed;
// names are checked when dialled.
func CheckURL(raw string, allowLoopback bool) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		return nil, fmt.Errorf("%w: not an absolute URL", ErrRefused)
	}
	if u.User != nil {
		return nil, fmt.Errorf("%w: a URL must not carry credentials", ErrRefused)
	}
	if u.Fragment != "" {
		return nil, fmt.Errorf("%w: a URL must not carry a fragment", ErrRefused)
	}
	host := u.Hostname()
	if strings.Contains(host, "%") {
		return nil, fmt.Errorf("%w: an IPv6 zone names an interface of this host", ErrRefused)
	}
	if strings.HasSuffix(host, ".") {
		// "10.0.0.1." and "localhost." resolve like the names without the dot.
		return nil, fmt.Errorf("%w: a host name must not end in a dot", ErrRefused)
	}
	if _, err := netip.ParseAddr(host); err != nil && numericLastLabel(host) {
		// 10.1, 2852039166, 0xa9.0xfe.0xa9.0xfe, 0251.0376.0251.0376: resolvers read these as IPv4
		// addresses (inet_aton forms, as the WHATWG URL parser does); only the dotted-quad form is
		// accepted, so the check below sees the address.
		return nil, fmt.Errorf("%w: an IPv4 address must be written as four decimal numbers", ErrRefused)
	}
	loopback := host == "localhost"
	if ip, err := netip.ParseAddr(host); err == nil {
		loopback = ip.Unmap().IsLoopback()
		if !Allowed(ip, allowLoopback) {
			return nil, fmt.Errorf("%w: the address is not a public one", ErrRefused)
		}
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && allowLoopback && loopback:
	default:
		return nil, fmt.Errorf("%w: https only", ErrRefused)
	}
	if loopback && !allowLoopback {
		return nil, fmt.Errorf("%w: the address is not a public one", ErrRefused)
	}
	return u, nil
}

// NewClient returns an HTTP client that dials only Allowed addresses, follows no redirect (a 3xx
// is the answer), uses no proxy from the environment, and bounds each request by cfg.Timeout.
// Safe for concurrent use; build one per service and keep it.
func NewClient(cfg Config) *http.Client {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	dialer := &net.Dialer{
		Timeout: 5 * time.Second,
		Control: func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil || !Allowed(ap.Addr(), cfg.AllowLoopback) {
				return ErrRefused
			}
			return nil
		},
	}
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: cfg.Timeout,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       30 * time.Second,
	}
	return &http.Client{
		Transport:     tr,
		Timeout:       cfg.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Error classes a delivery log records: never the error's text (which may echo the URL).
const (
	ClassTimeout = "timeout"
	ClassConnect = "connect"
	ClassTLS     = "tls"
	ClassRefused = "ssrf-refused"
	ClassOther   = "other"
)

// Classify names the class of a request's failure.
func Classify(err error) string {
	var (
		netErr  net.Error
		certErr *tls.CertificateVerificationError
		recErr  tls.RecordHeaderError
		alert   tls.AlertError
	)
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrRefused):
		return ClassRefused
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return ClassTimeout
	case errors.As(err, &certErr), errors.As(err, &recErr), errors.As(err, &alert):
		return ClassTLS
	case errors.As(err, &netErr):
		return ClassConnect
	}
	return ClassOther
}

// numericLastLabel reports whether host's last label is a number (decimal, or hex with 0x): no
// top-level domain is, so such a host is an IPv4 address in one of its non-canonical forms.
func numericLastLabel(host string) bool {
	label := host[strings.LastIndex(host, ".")+1:]
	if hex, ok := strings.CutPrefix(strings.ToLower(label), "0x"); ok {
		return strings.Trim(hex, "0123456789abcdef") == ""
	}
	return label != "" && strings.Trim(label, "0123456789") == ""
}
