package secrets

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
)

// Defaults of Config, applied by Open (and by Config.WithDefaults) to the fields left zero.
const (
	// DefaultMaxRetries is how often the SDK retries a request refused with 408, 429, 500, 502,
	// 503 or 504, or failed in transport, before the error reaches the caller.
	DefaultMaxRetries = 3
	// DefaultRetryDelay is the first back-off when the answer names no Retry-After; it doubles
	// per retry (with jitter) up to MaxRetryDelay.
	DefaultRetryDelay = 800 * time.Millisecond
	// DefaultMaxRetryDelay caps a back-off. A Retry-After longer than it is not waited for: the
	// request fails at once (ErrThrottled for a 429), so a throttled vault never holds a caller
	// for minutes.
	DefaultMaxRetryDelay = 30 * time.Second
	// DefaultTryTimeout bounds one attempt (a hung connection is retried, not waited on forever).
	DefaultTryTimeout = 15 * time.Second
	// DefaultService is the service attribute of the keyvault store metrics.
	DefaultService = "platform"
)

// Config says which vault to reach and how. The zero value of every field but VaultURL means
// its default.
type Config struct {
	// VaultURL is the vault's data-plane URL (SPINE_KEYVAULT_URL), https://<name>.vault.azure.net/
	// in Azure; the local stack's fake listens on https://127.0.0.1:<port>. Required; https only
	// (the SDK's bearer policy refuses to send a token over plain http).
	VaultURL string
	// CAFile is a PEM file of the certificate authority to trust (SPINE_KEYVAULT_CA_FILE): the
	// local fake's self-signed certificate. Only for a vault on a loopback address. With it the
	// credential is a static development token (the fake accepts any bearer token) and the
	// challenge's resource is not checked against the vault's host (the fake is not under
	// vault.azure.net). Without it the credential is azidentity's DefaultAzureCredential: the
	// managed identity in Azure (AZURE_CLIENT_ID picks the user-assigned one), the Azure CLI's
	// login on a workstation.
	CAFile string
	// MaxRetries (default DefaultMaxRetries; negative: no retry), RetryDelay (default
	// DefaultRetryDelay), MaxRetryDelay (default DefaultMaxRetryDelay) and TryTimeout (default
	// DefaultTryTimeout) are the SDK's retry options (azcore policy.RetryOptions).
	MaxRetries    int
	RetryDelay    time.Duration
	MaxRetryDelay time.Duration
	TryTimeout    time.Duration
	// Service is the service attribute of the keyvault store metrics (default DefaultService).
	Service string

	// Credential, when set, replaces the credential Open would choose (tests, a different
	// identity). Transport, when set, replaces the HTTP client (tests: an httptest server's
	// client); CAFile is then not read. Neither is a setting.
	Credential azcore.TokenCredential
	Transport  policy.Transporter
}

// WithDefaults returns c with every zero field but VaultURL and CAFile set to its default.
func (c Config) WithDefaults() Config {
	if c.MaxRetries == 0 {
		c.MaxRetries = DefaultMaxRetries
	}
	if c.RetryDelay == 0 {
		c.RetryDelay = DefaultRetryDelay
	}
	if c.MaxRetryDelay == 0 {
		c.MaxRetryDelay = DefaultMaxRetryDelay
	}
	if c.TryTimeout == 0 {
		c.TryTimeout = DefaultTryTimeout
	}
	if c.Service == "" {
		c.Service = DefaultService
	}
	return c
}

// Validate reports every problem of c at once: VaultURL an https URL with a host and no query,
// CAFile only for a loopback vault, retry options in range (MaxRetries ≤ 10, delays and
// TryTimeout not negative, RetryDelay ≤ MaxRetryDelay once defaulted).
func (c Config) Validate() error {
	var errs []error
	u, err := url.Parse(c.VaultURL)
	switch {
	case c.VaultURL == "":
		errs = append(errs, errors.New("secrets: VaultURL is required"))
	case err != nil || u.Scheme != "https" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		errs = append(errs, errors.New("secrets: VaultURL must be an https URL such as https://<name>.vault.azure.net/"))
	}
	if c.CAFile != "" && (err != nil || u == nil || !IsLoopbackHost(u.Hostname())) {
		errs = append(errs, errors.New("secrets: CAFile is for the local fake only: the vault URL must name a loopback host (127.0.0.1, ::1, localhost)"))
	}
	d := c.WithDefaults()
	if d.MaxRetries > 10 {
		errs = append(errs, fmt.Errorf("secrets: MaxRetries %d is above 10", d.MaxRetries))
	}
	if d.RetryDelay < 0 || d.MaxRetryDelay < 0 || d.TryTimeout < 0 {
		errs = append(errs, errors.New("secrets: RetryDelay, MaxRetryDelay and TryTimeout must not be negative"))
	}
	if d.RetryDelay > d.MaxRetryDelay {
		errs = append(errs, fmt.Errorf("secrets: RetryDelay %s is above MaxRetryDelay %s", d.RetryDelay, d.MaxRetryDelay))
	}
	return errors.Join(errs...)
}

// IsLoopbackHost reports whether host (no port) is localhost or a loopback IP address.
func IsLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Open validates cfg and builds the vault's client. It does no I/O beyond reading CAFile: the
// first call authenticates (Key Vault's bearer challenge, then the credential's token).
func Open(cfg Config) (*Vault, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	opts := &azsecrets.ClientOptions{ClientOptions: azcore.ClientOptions{
		Retry: policy.RetryOptions{
			MaxRetries: int32(cfg.MaxRetries), RetryDelay: cfg.RetryDelay,
			MaxRetryDelay: cfg.MaxRetryDelay, TryTimeout: cfg.TryTimeout,
		},
		Transport: cfg.Transport,
	}}
	cred := cfg.Credential
	if cfg.CAFile != "" {
		if opts.Transport == nil {
			t, err := caTransport(cfg.CAFile)
			if err != nil {
				return nil, err
			}
			opts.Transport = t
		}
		if cred == nil {
			cred = DevCredential()
		}
		// The fake's challenge names https://vault.azure.net, which 127.0.0.1 is not under.
		opts.DisableChallengeResourceVerification = true
	}
	if cred == nil {
		c, err := azidentity.NewDefaultAzureCredential(nil)
		if err != nil {
			return nil, fmt.Errorf("secrets: credential: %w", err)
		}
		cred = c
	}
	c, err := azsecrets.NewClient(cfg.VaultURL, cred, opts)
	if err != nil {
		return nil, errors.New("secrets: the vault URL is malformed")
	}
	return NewVault(c, cfg.Service), nil
}

// caTransport is an HTTP client that trusts only the certificates in the PEM file caFile.
func caTransport(caFile string) (*http.Client, error) {
	pemData, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("secrets: CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemData) {
		return nil, fmt.Errorf("secrets: CA file %s holds no PEM certificate", caFile)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	tr.Proxy = nil // a loopback fake is never behind a proxy
	return &http.Client{Transport: tr}, nil
}

// DevToken is the bearer token DevCredential hands out. The local fake accepts any token; a
// real vault rejects this one.
const DevToken = "spine-dev-keyvault-token"

// DevCredential returns a credential that always answers DevToken, valid for a day from the
// call: what Open uses with CAFile, for the local fake.
func DevCredential() azcore.TokenCredential { return devCredential{} }

type devCredential struct{}

func (devCredential) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: DevToken, ExpiresOn: time.Now().Add(24 * time.Hour)}, nil
}
