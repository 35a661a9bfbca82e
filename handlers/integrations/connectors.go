package integrations

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"syscall"
	"time"

	"spine/shared/secrets"
)

// Connector is one connector type of the registry: the JSON schema of its non-secret settings,
// the rules the schema cannot say, its check (does the connection work?) and its sync.
type Connector interface {
	// Type is the type's name in the API ("http").
	Type() string
	// Schema is the JSON schema of the settings (the subset of Schema).
	Schema() *Schema
	// Validate checks settings that passed the schema against the connector's other rules.
	Validate(settings json.RawMessage, env Env) error
	// Check calls the outside system with the settings and the secret and reports the outcome.
	Check(ctx context.Context, settings json.RawMessage, secret secrets.Secret, env Env) Outcome
	// Sync runs the connector's sync once.
	Sync(ctx context.Context, settings json.RawMessage, secret secrets.Secret, env Env) Outcome
}

// Outcome is what a check or a sync found: ErrorClass "" when it worked, else the class of the
// failure (never a response body, which may hold anything).
type Outcome struct {
	ErrorClass string
}

// OK reports a success.
func (o Outcome) OK() bool { return o.ErrorClass == "" }

// The error classes of a failed check or sync.
const (
	ClassTimeout           = "timeout"
	ClassConnect           = "connect"
	ClassTLS               = "tls"
	ClassHTTP3xx           = "http-3xx"
	ClassHTTP4xx           = "http-4xx"
	ClassHTTP5xx           = "http-5xx"
	ClassSSRFRefused       = "ssrf-refused"
	ClassSecretUnavailable = "secret-unavailable"
)

// Env is what connectors call out with: the SSRF-guarded HTTP client and whether loopback
// targets are allowed (local stacks and tests only).
type Env struct {
	AllowLoopback bool
	HTTP          *http.Client
}

// CallTimeout bounds every call a connector makes (connect, TLS, answer).
const CallTimeout = 5 * time.Second

// errSSRF: the target resolved to an address a connector must never reach.
var errSSRF = errors.New("integrations: target address refused")

// NewEnv builds the connectors' environment. The client never uses a proxy from the environment
// (it would dial for us), never follows redirects (a 3xx could point anywhere), and checks every
// address it dials after resolution (allowedIP), so a name that resolves — or is rebound — to a
// private, link-local, metadata or (unless allowLoopback) loopback address is refused.
func NewEnv(allowLoopback bool) Env {
	d := &net.Dialer{Timeout: CallTimeout, Control: func(_, address string, _ syscall.RawConn) error {
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return errSSRF
		}
		if ip := net.ParseIP(host); ip == nil || !allowedIP(ip, allowLoopback) {
			return errSSRF
		}
		return nil
	}}
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           d.DialContext,
		TLSHandshakeTimeout:   CallTimeout,
		ResponseHeaderTimeout: CallTimeout,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       30 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	return Env{AllowLoopback: allowLoopback, HTTP: &http.Client{Transport: tr, Timeout: CallTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// refusedNets are ranges a connector never reaches beyond what net.IP's predicates cover:
// carrier-grade NAT, "this network", and Azure's platform endpoints (the wire server and IMDS
// live at 168.63.129.16 and 169.254.169.254, the latter link-local already).
var refusedNets = func() []*net.IPNet {
	var out []*net.IPNet
	for _, c := range []string{"100.64.0.0/10", "0.0.0.0/8", "168.63.129.16/32", "192.0.0.0/24", "198.18.0.0/15", "64:ff9b::/96"} {
		_, n, _ := net.ParseCIDR(c)
		out = append(out, n)
	}
	return out
}()

// allowedIP: public unicast addresses only; loopback only when allowLoopback.
func allowedIP(ip net.IP, allowLoopback bool) bool {
	if ip.IsLoopback() {
		return allowLoopback
	}
	if ip.IsUnspecified() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsMulticast() {
		return false
	}
	for _, n := range refusedNets {
		if n.Contains(ip) {
			return false
		}
	}
	return true
}

// classify maps a failed call to its error class.
func classify(err error) string {
	var netErr net.Error
	var certErr *tls.CertificateVerificationError
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var recErr tls.RecordHeaderError
	switch {
	case errors.Is(err, errSSRF):
		return ClassSSRFRefused
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return ClassTimeout
	case errors.As(err, &certErr), errors.As(err, &unknownCA), errors.As(err, &hostErr), errors.As(err, &recErr):
		return ClassTLS
	case strings.Contains(err.Error(), "tls:"):
		return ClassTLS
	}
	return ClassConnect
}

// Registry is the set of connector types, by name.
type Registry struct{ m map[string]Connector }

// NewRegistry returns a registry of cs.
func NewRegistry(cs ...Connector) *Registry {
	r := &Registry{m: map[string]Connector{}}
	for _, c := range cs {
		r.m[c.Type()] = c
	}
	return r
}

// DefaultRegistry is the connector types the service offers.
func DefaultRegistry() *Registry { return NewRegistry(httpConnector{}) }

// Get returns the connector of a type, or ErrUnknownType.
func (r *Registry) Get(typ string) (Connector, error) {
	c, ok := r.m[typ]
	if !ok {
		return nil, ErrUnknownType
	}
	return c, nil
}

// Types lists the connector types, by name.
func (r *Registry) Types() []Connector {
	out := make([]Connector, 0, len(r.m))
	for _, c := range r.m {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b Connector) int { return strings.Compare(a.Type(), b.Type()) })
	return out
}

// ---- the http connector ----

// httpConnector is a generic HTTP API: its check is GET baseUrl+healthPath with the connection's
// credential (a bearer token, or basic auth with username and the secret as the password) and
// expects a 2xx answer; its sync is GET baseUrl+syncPath (healthPath when there is none).
type httpConnector struct{}

var httpSchema = MustParseSchema(`{
  "type": "object",
  "title": "HTTP API",
  "additionalProperties": false,
  "required": ["baseUrl", "authScheme"],
  "properties": {
    "baseUrl":    {"type": "string", "format": "uri", "maxLength": 2000,
                   "description": "https://host[:port][/prefix]; http only to a loopback host where loopback targets are allowed (local stacks)"},
    "healthPath": {"type": "string", "pattern": "^/[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*$", "maxLength": 500,
                   "description": "path (and query) of the check, appended to baseUrl; default /"},
    "syncPath":   {"type": "string", "pattern": "^/[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*$", "maxLength": 500,
                   "description": "path (and query) the sync GETs; default healthPath"},
    "authScheme": {"type": "string", "enum": ["bearer", "basic"],
                   "description": "bearer: the secret is the token; basic: username and the secret as the password"},
    "username":   {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "^[^:]*$",
                   "description": "basic auth only"}
  }
}`)

type httpSettings struct {
	BaseURL    string `json:"baseUrl"`
	HealthPath string `json:"healthPath"`
	SyncPath   string `json:"syncPath"`
	AuthScheme string `json:"authScheme"`
	Username   string `json:"username"`
}

func (httpConnector) Type() string    { return "http" }
func (httpConnector) Schema() *Schema { return httpSchema }

func (httpConnector) Validate(raw json.RawMessage, env Env) error {
	var s httpSettings
	if err := json.Unmarshal(raw, &s); err != nil {
		return &SettingsError{kind: ErrInvalidSettings, Path: "settings", Detail: "is not an object of this connector's settings"}
	}
	switch {
	case s.AuthScheme == "basic" && s.Username == "":
		return &SettingsError{kind: ErrInvalidSettings, Path: "settings.username", Detail: "is required with authScheme basic"}
	case s.AuthScheme == "bearer" && s.Username != "":
		return &SettingsError{kind: ErrInvalidSettings, Path: "settings.username", Detail: "is for authScheme basic only"}
	}
	if err := checkTarget(s.BaseURL, env.AllowLoopback); err != nil {
		return &SettingsError{kind: ErrInvalidSettings, Path: "settings.baseUrl", Detail: err.Error()}
	}
	return nil
}

// checkTarget applies the target rules a URL can be judged by before any lookup: https, or
// http to a loopback host when loopback is allowed; an IP literal must be an allowed address.
// (Names are judged after resolution, at every dial.)
func checkTarget(raw string, allowLoopback bool) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("must be a URL")
	}
	host := u.Hostname()
	ip := net.ParseIP(host)
	loopback := strings.EqualFold(host, "localhost") || ip != nil && ip.IsLoopback()
	switch {
	case loopback && !allowLoopback:
		return errors.New("must not name a loopback host")
	case u.Scheme != "https" && !(u.Scheme == "http" && loopback):
		return errors.New("must be an https URL")
	case ip != nil && !allowedIP(ip, allowLoopback):
		return errors.New("must not name a private, link-local or platform address")
	}
	return nil
}

func (c httpConnector) Check(ctx context.Context, raw json.RawMessage, secret secrets.Secret, env Env) Outcome {
	var s httpSettings
	if err := json.Unmarshal(raw, &s); err != nil {
		return Outcome{ErrorClass: ClassConnect}
	}
	return c.get(ctx, s, cmp.Or(s.HealthPath, "/"), secret, env)
}

func (c httpConnector) Sync(ctx context.Context, raw json.RawMessage, secret secrets.Secret, env Env) Outcome {
	var s httpSettings
	if err := json.Unmarshal(raw, &s); err != nil {
		return Outcome{ErrorClass: ClassConnect}
	}
	return c.get(ctx, s, cmp.Or(s.SyncPath, s.HealthPath, "/"), secret, env)
}

// get is one GET of baseUrl+path with the credential, within CallTimeout; the body is read (up to
// 64 KiB, so the connection can be reused) and dropped.
func (httpConnector) get(ctx context.Context, s httpSettings, path string, secret secrets.Secret, env Env) Outcome {
	if err := checkTarget(s.BaseURL, env.AllowLoopback); err != nil {
		return Outcome{ErrorClass: ClassSSRFRefused}
	}
	ctx, cancel := context.WithTimeout(ctx, CallTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(s.BaseURL, "/")+path, nil)
	if err != nil {
		return Outcome{ErrorClass: ClassConnect}
	}
	switch s.AuthScheme {
	case "basic":
		req.SetBasicAuth(s.Username, secret.Value())
	default:
		req.Header.Set("Authorization", "Bearer "+secret.Value())
	}
	req.Header.Set("User-Agent", "spine-integrations/1")
	resp, err := env.HTTP.Do(req)
	if err != nil {
		return Outcome{ErrorClass: classify(err)}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return Outcome{}
	case resp.StatusCode < 400:
		return Outcome{ErrorClass: ClassHTTP3xx}
	case resp.StatusCode < 500:
		return Outcome{ErrorClass: ClassHTTP4xx}
	}
	return Outcome{ErrorClass: ClassHTTP5xx}
}
