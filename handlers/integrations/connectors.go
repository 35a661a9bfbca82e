package integrations

import (
	"cmp"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"spine/shared/egress"
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

// The error classes of a failed check or sync: shared/egress's (timeout, connect, tls,
// ssrf-refused, other) and the answer's status class, or the secret that could not be read.
const (
	ClassTimeout           = egress.ClassTimeout
	ClassConnect           = egress.ClassConnect
	ClassTLS               = egress.ClassTLS
	ClassSSRFRefused       = egress.ClassRefused
	ClassOther             = egress.ClassOther
	ClassHTTP3xx           = "http-3xx"
	ClassHTTP4xx           = "http-4xx"
	ClassHTTP5xx           = "http-5xx"
	ClassSecretUnavailable = "secret-unavailable"
)

// Env is what connectors call out with: shared/egress's client (public addresses only, checked
// on the dialled address; no proxy, no redirect) and whether loopback targets are allowed
// (SPINE_EGRESS_ALLOW_LOOPBACK: local runs and tests only).
type Env struct {
	AllowLoopback bool
	HTTP          *http.Client
}

// CallTimeout bounds every call a connector makes (connect, TLS, answer, body).
const CallTimeout = 5 * time.Second

// NewEnv builds the connectors' environment over an egress client with CallTimeout.
func NewEnv(allowLoopback bool) Env {
	return Env{AllowLoopback: allowLoopback, HTTP: egress.NewClient(egress.Config{AllowLoopback: allowLoopback, Timeout: CallTimeout})}
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
                   "description": "https://host[:port][/prefix], no query string or fragment; http only to a loopback host where loopback targets are allowed (local stacks)"},
    "healthPath": {"type": "string", "pattern": "^/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$", "maxLength": 500,
                   "description": "path of the check, appended to baseUrl; default /. No query string: a credential goes in the secret"},
    "syncPath":   {"type": "string", "pattern": "^/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$", "maxLength": 500,
                   "description": "path the sync GETs; default healthPath. No query string: a credential goes in the secret"},
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

// URLSettings are the members CheckURLSettings checks: the URL and the paths the connector calls.
func (httpConnector) URLSettings() []string { return []string{"baseUrl", "healthPath", "syncPath"} }

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
	if _, err := egress.CheckURL(s.BaseURL, env.AllowLoopback); err != nil {
		return &SettingsError{kind: ErrInvalidSettings, Path: "settings.baseUrl",
			Detail: "must be an https URL of a public address (" + strings.TrimPrefix(err.Error(), egress.ErrRefused.Error()+": ") + ")"}
	}
	return nil
}

func (c httpConnector) Check(ctx context.Context, raw json.RawMessage, secret secrets.Secret, env Env) Outcome {
	var s httpSettings
	if err := json.Unmarshal(raw, &s); err != nil {
		return Outcome{ErrorClass: ClassOther}
	}
	return c.get(ctx, s, cmp.Or(s.HealthPath, "/"), secret, env)
}

func (c httpConnector) Sync(ctx context.Context, raw json.RawMessage, secret secrets.Secret, env Env) Outcome {
	var s httpSettings
	if err := json.Unmarshal(raw, &s); err != nil {
		return Outcome{ErrorClass: ClassOther}
	}
	return c.get(ctx, s, cmp.Or(s.SyncPath, s.HealthPath, "/"), secret, env)
}

// get is one GET of baseUrl+path with the credential, within CallTimeout; the body is read (up to
// 64 KiB, so the connection can be reused) and dropped.
func (httpConnector) get(ctx context.Context, s httpSettings, path string, secret secrets.Secret, env Env) Outcome {
	if _, err := egress.CheckURL(s.BaseURL, env.AllowLoopback); err != nil {
		return Outcome{ErrorClass: ClassSSRFRefused}
	}
	ctx, cancel := context.WithTimeout(ctx, CallTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(s.BaseURL, "/")+path, nil)
	if err != nil {
		return Outcome{ErrorClass: ClassOther}
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
		return Outcome{ErrorClass: egress.Classify(err)}
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
