// Package secrets is Spine's Key Vault adapter: the only code that reads or writes secrets, and
// the token signing key ring built on it (KeyRing).
//
// Vault wraps the azsecrets client behind a narrow interface (Client). Secret values are held in
// memory only: every type that carries one (Secret, SigningKey) masks it in String, GoString,
// LogValue, fmt's verbs and JSON, and no error of this package carries SDK text (which names the
// vault's URL) — callers see the sentinels ErrNotFound, ErrThrottled and ErrUnavailable with the
// HTTP status and Key Vault's error code at most.
//
// Telemetry: every call is a store operation (telemetry.StoreKeyVault; op get, set, list or
// update) for Config.Service, platform-level (tenant "none").
package secrets

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"spine/shared/telemetry"
)

// Errors callers test with errors.Is. Their text is safe to log; a response never shows more
// than "not found" or "unavailable".
var (
	// ErrNotFound: the secret (or the version) does not exist, or has no enabled version.
	ErrNotFound = errors.New("secrets: not found")
	// ErrThrottled: Key Vault still answered 429 after the SDK's retries, or asked to wait longer
	// than Config.MaxRetryDelay.
	ErrThrottled = errors.New("secrets: key vault throttled the request")
	// ErrUnavailable: anything else — the vault is unreachable, refused the credential (401/403),
	// failed (5xx after the retries) or answered something this package cannot read.
	ErrUnavailable = errors.New("secrets: key vault unavailable")
)

// Client is the part of *azsecrets.Client the Vault uses; tests may supply their own.
type Client interface {
	GetSecret(ctx context.Context, name, version string, o *azsecrets.GetSecretOptions) (azsecrets.GetSecretResponse, error)
	SetSecret(ctx context.Context, name string, p azsecrets.SetSecretParameters, o *azsecrets.SetSecretOptions) (azsecrets.SetSecretResponse, error)
	UpdateSecretProperties(ctx context.Context, name, version string, p azsecrets.UpdateSecretPropertiesParameters, o *azsecrets.UpdateSecretPropertiesOptions) (azsecrets.UpdateSecretPropertiesResponse, error)
	NewListSecretPropertiesVersionsPager(name string, o *azsecrets.ListSecretPropertiesVersionsOptions) *runtime.Pager[azsecrets.ListSecretPropertiesVersionsResponse]
	DeleteSecret(ctx context.Context, name string, o *azsecrets.DeleteSecretOptions) (azsecrets.DeleteSecretResponse, error)
	RecoverDeletedSecret(ctx context.Context, name string, o *azsecrets.RecoverDeletedSecretOptions) (azsecrets.RecoverDeletedSecretResponse, error)
}

var _ Client = (*azsecrets.Client)(nil)

// Vault reads and writes the secrets of one key vault. Safe for concurrent use.
type Vault struct {
	c       Client
	service string
}

// NewVault returns a Vault over c; service is the metrics' service attribute (DefaultService
// when empty). Open builds c from a Config; tests may pass their own Client.
func NewVault(c Client, service string) *Vault {
	if service == "" {
		service = DefaultService
	}
	return &Vault{c: c, service: service}
}

// For returns a Vault over the same client whose metrics name service: one vault, each owning
// service's calls counted as its own.
func (v *Vault) For(service string) *Vault {
	if service == "" {
		service = DefaultService
	}
	return &Vault{c: v.c, service: service}
}

// Secret is one version of a secret, with its value. The value is only readable through
// Value(); every way of printing, logging or JSON-encoding a Secret masks it.
type Secret struct {
	Name, Version string
	ContentType   string
	Tags          map[string]string
	Enabled       bool
	// Created and Updated are Key Vault's attributes (whole seconds, UTC).
	Created, Updated time.Time
	value            string
}

// Value returns the secret's value. Keep it in memory; never log or return it.
func (s Secret) Value() string { return s.value }

const masked = "***"

// String shows the name and version, never the value.
func (s Secret) String() string {
	return fmt.Sprintf("secret %s/%s (value %s)", s.Name, s.Version, masked)
}

// GoString is String, so %#v masks the value too.
func (s Secret) GoString() string { return s.String() }

// Format makes every fmt verb print String.
func (s Secret) Format(f fmt.State, _ rune) { fmt.Fprint(f, s.String()) }

// LogValue implements slog.LogValuer: name, version, content type, created; value masked.
func (s Secret) LogValue() slog.Value {
	return slog.GroupValue(slog.String("name", s.Name), slog.String("version", s.Version),
		slog.String("contentType", s.ContentType), slog.Time("created", s.Created), slog.String("value", masked))
}

// MarshalJSON writes the same fields as LogValue, value masked.
func (s Secret) MarshalJSON() ([]byte, error) {
	return fmt.Appendf(nil, `{"name":%q,"version":%q,"contentType":%q,"value":%q}`, s.Name, s.Version, s.ContentType, masked), nil
}

// Version describes one version of a secret, without its value.
type Version struct {
	Name, Version    string
	ContentType      string
	Tags             map[string]string
	Enabled          bool
	Created, Updated time.Time
}

// TagCreated is the tag Set adds to every version it writes: the writer's clock in RFC 3339
// with nanoseconds. Key Vault's created attribute has whole seconds, so versions written within
// one second are ordered by this tag (see Versions).
const TagCreated = "spine-created"

// nameRE is Key Vault's rule for secret names.
var nameRE = regexp.MustCompile(`^[0-9A-Za-z-]{1,127}$`)

func checkName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("secrets: %q is not a secret name (1-127 letters, digits and dashes)", name)
	}
	return nil
}

// Get reads the latest version of name. ErrNotFound when the secret does not exist.
func (v *Vault) Get(ctx context.Context, name string) (Secret, error) {
	return v.GetVersion(ctx, name, "")
}

// GetVersion reads one version of name ("" is the latest). ErrNotFound when it does not exist.
func (v *Vault) GetVersion(ctx context.Context, name, version string) (s Secret, err error) {
	if err := checkName(name); err != nil {
		return Secret{}, err
	}
	ctx, end := v.observe(ctx, "get")
	defer func() { end(err) }()
	resp, err := v.c.GetSecret(ctx, name, version, nil)
	if err != nil {
		return Secret{}, translate(err, name)
	}
	return secretOf(resp.Secret)
}

// Set writes a new version of name (creating the secret if needed) and returns it. tags may be
// nil; Set adds TagCreated.
func (v *Vault) Set(ctx context.Context, name, value, contentType string, tags map[string]string) (s Secret, err error) {
	if err := checkName(name); err != nil {
		return Secret{}, err
	}
	ctx, end := v.observe(ctx, "set")
	defer func() { end(err) }()
	t := make(map[string]*string, len(tags)+1)
	for k, val := range tags {
		t[k] = to.Ptr(val)
	}
	t[TagCreated] = to.Ptr(time.Now().UTC().Format(time.RFC3339Nano))
	p := azsecrets.SetSecretParameters{Value: to.Ptr(value), Tags: t}
	if contentType != "" {
		p.ContentType = to.Ptr(contentType)
	}
	resp, err := v.c.SetSecret(ctx, name, p, nil)
	if err != nil {
		return Secret{}, translate(err, name)
	}
	return secretOf(resp.Secret)
}

// SetEnabled enables or disables one version of name: a disabled version cannot be read and is
// left out of Versions (so a key ring stops using it at its next Refresh).
func (v *Vault) SetEnabled(ctx context.Context, name, version string, enabled bool) (err error) {
	if err := checkName(name); err != nil {
		return err
	}
	if version == "" {
		return errors.New("secrets: SetEnabled needs a version")
	}
	ctx, end := v.observe(ctx, "update")
	defer func() { end(err) }()
	_, err = v.c.UpdateSecretProperties(ctx, name, version, azsecrets.UpdateSecretPropertiesParameters{
		SecretAttributes: &azsecrets.SecretAttributes{Enabled: to.Ptr(enabled)},
	}, nil)
	if err != nil {
		return translate(err, name)
	}
	return nil
}

// pingName is the secret Ping asks for. It need not exist: "not found" is an answer from the
// vault, which is all a readiness check wants to know.
const pingName = "spine-readiness-probe"

// Ping reports whether the vault answers and accepts the process's credential (a secret is read:
// a call the data roles allow), for readiness checks. Errors are this package's sentinels.
func (v *Vault) Ping(ctx context.Context) error {
	_, err := v.Get(ctx, pingName)
	if err == nil || errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

// Delete soft-deletes name with all its versions: it can no longer be read, and Recover brings it
// back for as long as the vault's soft-delete retention keeps it (7 to 90 days; purge protection
// in infra). ErrNotFound when name does not exist (or is already deleted).
func (v *Vault) Delete(ctx context.Context, name string) (err error) {
	if err := checkName(name); err != nil {
		return err
	}
	ctx, end := v.observe(ctx, "delete")
	defer func() { end(err) }()
	if _, err = v.c.DeleteSecret(ctx, name, nil); err != nil {
		return translate(err, name)
	}
	return nil
}

// Recover undoes Delete: name and its versions are readable again. ErrNotFound when name is not
// a deleted secret. Key Vault recovers asynchronously; a read right after may still answer
// ErrNotFound for a few seconds in Azure.
func (v *Vault) Recover(ctx context.Context, name string) (err error) {
	if err := checkName(name); err != nil {
		return err
	}
	ctx, end := v.observe(ctx, "recover")
	defer func() { end(err) }()
	if _, err = v.c.RecoverDeletedSecret(ctx, name, nil); err != nil {
		return translate(err, name)
	}
	return nil
}

// Versions lists the enabled versions of name, newest first: by Key Vault's created attribute,
// then (same second) by TagCreated, then by version id, so every reader orders them alike.
// ErrNotFound when name has no enabled version (or does not exist).
func (v *Vault) Versions(ctx context.Context, name string) (out []Version, err error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	ctx, end := v.observe(ctx, "list")
	defer func() { end(err) }()
	pager := v.c.NewListSecretPropertiesVersionsPager(name, nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, translate(err, name)
		}
		for _, p := range page.Value {
			if p == nil || p.ID == nil {
				continue
			}
			ver := Version{Name: p.ID.Name(), Version: p.ID.Version(), ContentType: deref(p.ContentType), Tags: tagsOf(p.Tags)}
			if a := p.Attributes; a != nil {
				ver.Enabled = a.Enabled != nil && *a.Enabled
				ver.Created, ver.Updated = utc(a.Created), utc(a.Updated)
			}
			if ver.Enabled && ver.Version != "" {
				out = append(out, ver)
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: %s has no enabled version", ErrNotFound, name)
	}
	sort.SliceStable(out, func(i, j int) bool { return newer(out[i], out[j]) })
	return out, nil
}

// newer orders versions newest first.
func newer(a, b Version) bool {
	if !a.Created.Equal(b.Created) {
		return a.Created.After(b.Created)
	}
	ta, _ := time.Parse(time.RFC3339Nano, a.Tags[TagCreated])
	tb, _ := time.Parse(time.RFC3339Nano, b.Tags[TagCreated])
	if !ta.Equal(tb) {
		return ta.After(tb)
	}
	return a.Version > b.Version
}

func secretOf(s azsecrets.Secret) (Secret, error) {
	if s.ID == nil || s.Value == nil {
		return Secret{}, fmt.Errorf("%w: the answer holds no secret", ErrUnavailable)
	}
	out := Secret{Name: s.ID.Name(), Version: s.ID.Version(), ContentType: deref(s.ContentType), Tags: tagsOf(s.Tags), value: *s.Value}
	if a := s.Attributes; a != nil {
		out.Enabled = a.Enabled != nil && *a.Enabled
		out.Created, out.Updated = utc(a.Created), utc(a.Updated)
	}
	return out, nil
}

func tagsOf(t map[string]*string) map[string]string {
	if len(t) == 0 {
		return nil
	}
	out := make(map[string]string, len(t))
	for k, v := range t {
		out[k] = deref(v)
	}
	return out
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func utc(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

// translate maps an SDK error to this package's sentinels, keeping the status and Key Vault's
// error code only: the SDK's text names the vault's URL and echoes the request.
func translate(err error, name string) error {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		switch re.StatusCode {
		case http.StatusNotFound:
			return fmt.Errorf("%w: %s", ErrNotFound, name)
		case http.StatusTooManyRequests:
			return fmt.Errorf("%w: %s", ErrThrottled, name)
		}
		return fmt.Errorf("%w: status %d %s", ErrUnavailable, re.StatusCode, safeCode(re.ErrorCode))
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	// A short reason an operator can act on, never the underlying text.
	var authErr *azidentity.AuthenticationFailedError
	var certErr *tls.CertificateVerificationError
	var unknownCA x509.UnknownAuthorityError
	var netErr net.Error
	switch {
	case errors.As(err, &authErr):
		return fmt.Errorf("%w: the credential could not get a token", ErrUnavailable)
	case errors.As(err, &certErr), errors.As(err, &unknownCA):
		return fmt.Errorf("%w: the vault's TLS certificate is not trusted", ErrUnavailable)
	case errors.As(err, &netErr):
		return fmt.Errorf("%w: connection failed", ErrUnavailable)
	}
	return ErrUnavailable
}

// safeCode keeps an error code only when it looks like one (Key Vault's are short identifiers).
func safeCode(code string) string {
	if len(code) > 64 || strings.ContainsFunc(code, func(r rune) bool {
		return !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '.')
	}) {
		return ""
	}
	return code
}

// observe records a keyvault store operation; ErrNotFound is outcome notfound.
func (v *Vault) observe(ctx context.Context, op string) (context.Context, func(error)) {
	m := telemetry.Start(ctx, v.service, telemetry.StoreKeyVault, op, telemetry.TenantNone)
	return ctx, func(err error) {
		outcome := telemetry.OutcomeOf(err)
		if errors.Is(err, ErrNotFound) {
			outcome = telemetry.OutcomeNotFound
		}
		m.EndWith(ctx, outcome, telemetry.NoSize, telemetry.NoSize)
	}
}
