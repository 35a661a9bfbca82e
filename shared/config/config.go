// Package config reads the binary's settings from the environment (Azure Functions app settings),
// validates them once at start-up with messages that name the setting, and logs them with every
// secret masked.
//
// In Azure, settings that hold secrets are Key Vault references
// (@Microsoft.KeyVault(SecretUri=...)); the Functions platform resolves them before the process
// starts, so this package sees plain values and never talks to Key Vault itself.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"spine/shared/telemetry"
)

// DB is one service's database settings.
type DB struct {
	// Dialect is SPINE_<SERVICE>_DB_DIALECT: postgres (default) or sqlserver.
	Dialect string
	// URL is SPINE_<SERVICE>_DB_URL, the runtime role's DSN (secret). Required.
	URL string
	// MigrateURL is SPINE_<SERVICE>_DB_MIGRATE_URL, the owner role's DSN used only by
	// `handler migrate` (secret). Required for migrate.
	MigrateURL string
}

// Config is every setting of the binary. Defaults are applied by Load.
type Config struct {
	// Port is FUNCTIONS_CUSTOMHANDLER_PORT when the Functions host starts us, else PORT
	// (default 7071).
	Port int
	// Standalone is SPINE_STANDALONE (default false): fire timer functions in-process on their
	// schedules, because no Functions host does it. `make run` sets it.
	Standalone bool
	// HostFronted is SPINE_HOST_FRONTED (default false): the Functions host reaches this process
	// over a private, non-loopback address, so function invocations (POST /<Name>) are accepted from
	// any peer. Off, they are accepted only from loopback peers, which is how the host (and the
	// in-process scheduler and transport) calls; anyone else who reaches the port gets 403.
	HostFronted bool
	// LogLevel is SPINE_LOG_LEVEL: debug, info (default), warn, error.
	LogLevel slog.Level
	// Enabled is SPINE_SERVICES, a comma-separated subset of the services Load was given (default
	// all), in the order given.
	Enabled []string
	// DB holds each enabled service's database settings.
	DB map[string]DB
	// RedisURL is SPINE_REDIS_URL (secret; redis:// or rediss://). Empty disables the cache:
	// every read goes to SQL.
	RedisURL string
	// StorageConnectionString is SPINE_STORAGE_CONNECTION_STRING (secret), used locally with Azurite.
	StorageConnectionString string
	// StorageAccountURL is SPINE_STORAGE_ACCOUNT_URL (https://<account>.blob.core.windows.net/),
	// used in Azure with the managed identity. One of the two storage settings is required.
	StorageAccountURL string
	// ServiceBusConnectionString is SPINE_SERVICEBUS_CONNECTION_STRING (secret), or
	// ServiceBusNamespace is SPINE_SERVICEBUS_NAMESPACE (<name>.servicebus.windows.net, reached
	// with the managed identity). With neither, events go through the in-process transport that
	// delivers them to this binary's own Service Bus-triggered functions (local runs and tests).
	ServiceBusConnectionString, ServiceBusNamespace string
	// AuthIssuer, AuthAudience: SPINE_AUTH_ISSUER, SPINE_AUTH_AUDIENCE (required).
	AuthIssuer, AuthAudience string
	// AuthJWKSURL / AuthJWKSFile: SPINE_AUTH_JWKS_URL or SPINE_AUTH_JWKS_FILE (at most one). With
	// neither, the API finds the signing keys through the issuer's discovery document (so
	// SPINE_AUTH_ISSUER must then be an https URL, or http on a loopback host), unless the
	// authorization server runs in this binary, whose keys it reads in process.
	AuthJWKSURL, AuthJWKSFile string
	// DevKeyDir is SPINE_DEV_KEY_DIR: where `handler token` finds the dev signing key.
	DevKeyDir string
	// KeyVaultURL is SPINE_KEYVAULT_URL: the Key Vault holding the services' secrets (the
	// authorization server's keys, webhook secrets, integration credentials)
	// (https://<name>.vault.azure.net/; the local stack's fake is https://127.0.0.1:<port>).
	// Required when a service of KeyVaultServices is enabled; https only.
	KeyVaultURL string
	// KeyVaultCAFile is SPINE_KEYVAULT_CA_FILE, local only: a PEM file of the CA to trust for
	// KeyVaultURL (the local fake's self-signed certificate). With it the app authenticates with
	// a static development token; without it, with the managed identity. Only for a loopback
	// vault URL.
	KeyVaultCAFile string
	// AuthzDevClient is SPINE_AUTHZ_DEV_CLIENT (default false; only scripts/run.sh sets it): the
	// authz service ensures at start-up the platform dev client `handler token` mints through,
	// its credentials in the vault only. Local runs only: refused unless SPINE_AUTH_ISSUER's host
	// is loopback (a platform-admin client must never be created by a setting in Azure).
	AuthzDevClient bool
	// EgressAllowLoopback is SPINE_EGRESS_ALLOW_LOOPBACK (default false; scripts/run.sh and tests
	// set it): tenant-chosen outbound URLs (webhook endpoints, integration connectors) may be
	// plain-HTTP loopback ones. Otherwise only public https addresses are reached (shared/egress).
	// Only for local runs, like AuthzDevClient.
	EgressAllowLoopback bool
	// AuthzAccessTokenTTL is SPINE_AUTHZ_ACCESS_TOKEN_TTL (default 10m, at most 15m): the lifetime
	// of the access tokens the authorization server issues — the bound on how long a revoked one
	// still works at the API, which does not ask the server about every token.
	AuthzAccessTokenTTL time.Duration
	// AuthzKeyRotation is SPINE_AUTHZ_KEY_ROTATION (default 720h, 30 days): how old the signing key
	// gets before the AuthzKeyRotation timer writes the next version in Key Vault.
	AuthzKeyRotation time.Duration
	// MaxBodyBytes is SPINE_MAX_BODY_BYTES (default 1048576): larger request bodies get 413.
	MaxBodyBytes int64
	// RequestTimeout is SPINE_REQUEST_TIMEOUT (default 20s, 1s to 230s, the Azure front end's own
	// bound): every /api request's deadline; past it, what still waits fails as 503 timeout.
	RequestTimeout time.Duration
	// RateLimitShadow is SPINE_RATELIMIT_SHADOW (default none): a comma-separated list of route
	// templates (`/api/audit-entries`; `tenant` for the tenant-wide limit) whose edition limits are
	// counted but never refused on this deployment, for rolling out new limits. An edition's limit
	// can also be shadow by itself (its `shadow` field).
	RateLimitShadow []string
	// CacheTTL is SPINE_CACHE_TTL (default 60s): the TTL of cached tenant reads and of identity's
	// cached effective permission sets.
	CacheTTL time.Duration
	// ProvisioningRetryAfter is SPINE_PROVISIONING_RETRY_AFTER (default 30s): how long a failed
	// provisioning step rests before the TenantProvisioningSweep timer retries it.
	ProvisioningRetryAfter time.Duration
	// IdentityInvitationTTL is SPINE_IDENTITY_INVITATION_TTL (default 168h, 7 days): how long an
	// invitation to a tenant can be accepted.
	IdentityInvitationTTL time.Duration
	// PprofAddr is SPINE_PPROF_ADDR (default off): a loopback address (127.0.0.1:6060) on which
	// net/http/pprof serves profiles, for `make bench` and investigations.
	PprofAddr string
	// MetricsAddr is SPINE_METRICS_ADDR (default off): a loopback address (127.0.0.1:9464) on which
	// Prometheus text is served at /metrics. The local stack sets it.
	MetricsAddr string
	// MetricsTenantLimit is SPINE_METRICS_TENANT_LIMIT (default 1000): how many distinct tenants keep
	// their id on the per-store metrics; later tenants are recorded as "other".
	MetricsTenantLimit int
	// OTLPMetrics and OTLPTraces say whether the standard OpenTelemetry variables ask for OTLP/HTTP
	// export: OTEL_EXPORTER_OTLP_ENDPOINT for both, OTEL_EXPORTER_OTLP_METRICS_ENDPOINT or
	// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT for one (OTEL_SDK_DISABLED=true: neither). The exporters
	// read the rest of the OTEL_* variables themselves.
	OTLPMetrics, OTLPTraces bool
	// MemoryLimit is SPINE_MEMORY_LIMIT (default 128MiB; "off" for none): the Go runtime's soft
	// memory limit (runtime/debug.SetMemoryLimit) in bytes, written as GOMEMLIMIT is (a count with an
	// optional B, KiB, MiB, GiB or TiB suffix). Near it the GC runs more often and the scavenger
	// returns freed pages to the OS sooner, so a burst does not leave the instance holding its peak;
	// it is soft, so a live heap above it is never an out-of-memory failure (the GC then caps its
	// own CPU share). GOMEMLIMIT, when set, is the runtime's own setting and wins. 0 means off.
	MemoryLimit int64
	// TenantEditions is SPINE_TENANT_EDITIONS (default free,standard,enterprise): the edition codes
	// the provisioning step "edition" accepts until billing's catalog answers it.
	TenantEditions []string
	// ReportingArtifactTTL is SPINE_REPORTING_ARTIFACT_TTL (default 8760h, one year; at least 1h): how
	// long a report run's artifact is kept (its expiresAt). A tenant's edition may override it
	// (entitlements Retention["reportArtifacts"]).
	ReportingArtifactTTL time.Duration
	// ReportingSASTTL is SPINE_REPORTING_SAS_TTL (default 5m, 10s to 1h): the lifetime of a report
	// download's read-only SAS URL.
	ReportingSASTTL time.Duration

	// Notifications (handlers/notifications). NotificationsSettings has the defaults.
	Notifications Notifications

	// RetentionScale is SPINE_RETENTION_SCALE (default 1; 1e-9 to 1): the factor every retention
	// period of the retention engine (shared/retention) is multiplied by. e2e tests shrink 90 days
	// to seconds with it; production leaves it at 1.
	RetentionScale float64
	// RetentionMaxRows is SPINE_RETENTION_MAX_ROWS (default 100000, 100 to 10000000): the most rows
	// one sweep run selects.
	RetentionMaxRows int
	// RetentionMaxDuration is SPINE_RETENTION_MAX_DURATION (default 4m, 1s to 9m): how long one
	// sweep run may take (the batch under way finishes), well inside the Functions timeout.
	RetentionMaxDuration time.Duration
	// TableAccountURL is SPINE_TABLE_ACCOUNT_URL (https://<account>.table.core.windows.net/;
	// default derived from SPINE_STORAGE_ACCOUNT_URL): the maintenance ledger's table service, with
	// the managed identity. With SPINE_STORAGE_CONNECTION_STRING its TableEndpoint is used.
	TableAccountURL string
	// RetentionCrashAt is SPINE_TEST_RETENTION_CRASH_AT (default none; one of after-intent,
	// after-export, after-apply, after-evidence): for crash-injection tests only, the process exits
	// at that step of a sweep's first batch. Never set it in a deployment.
	RetentionCrashAt string
}

// Notifications is the notifications service's settings.
type Notifications struct {
	// SMTPAddr is SPINE_SMTP_ADDR (host:port; default none): the SMTP server e-mail notifications
	// go through (the local stack's sink, or a relay). Without it an e-mail notification fails with
	// error class "connect" on every attempt.
	SMTPAddr string
	// SMTPFrom is SPINE_SMTP_FROM (default "Spine <no-reply@spine.local>"): the From address.
	SMTPFrom string
	// SMTPUsername and SMTPPassword are SPINE_SMTP_USERNAME and SPINE_SMTP_PASSWORD (secret; a Key
	// Vault reference in Azure): PLAIN authentication, only over STARTTLS or to a loopback server.
	SMTPUsername, SMTPPassword string
	// InlineBodyMax is SPINE_NOTIFICATIONS_INLINE_BODY_MAX (default 8192 bytes, 256 B to 1 MiB): a
	// body up to it is stored in the row, a larger one in Blob (notification-bodies).
	InlineBodyMax int64
	// RetryScale is SPINE_NOTIFICATIONS_RETRY_SCALE (default 1; 0.0001 to 1): the factor the
	// delivery retry schedule (5s, 5m, 30m, 2h, 5h, 10h, 10h) is multiplied by; tests compress it.
	RetryScale float64
	// EndpointDisableAfter is SPINE_NOTIFICATIONS_ENDPOINT_DISABLE_AFTER (default 120h, 5 days; at
	// least 1s): a webhook endpoint whose deliveries failed continuously this long is disabled.
	// Webhook targets on loopback are allowed by SPINE_EGRESS_ALLOW_LOOPBACK (shared/egress).
	EndpointDisableAfter time.Duration
}

// loadNotifications reads the Notifications settings.
func loadNotifications(get Getenv, errs *[]error) Notifications {
	n := Notifications{SMTPAddr: get("SPINE_SMTP_ADDR"), SMTPFrom: get("SPINE_SMTP_FROM"),
		SMTPUsername: get("SPINE_SMTP_USERNAME"), SMTPPassword: get("SPINE_SMTP_PASSWORD"),
		InlineBodyMax: 8 << 10, RetryScale: 1, EndpointDisableAfter: 120 * time.Hour}
	if n.SMTPAddr != "" {
		if _, port, err := net.SplitHostPort(n.SMTPAddr); err != nil || port == "" {
			*errs = append(*errs, fmt.Errorf("SPINE_SMTP_ADDR: %q is not host:port", n.SMTPAddr))
		}
	}
	if n.SMTPFrom == "" {
		n.SMTPFrom = "Spine <no-reply@spine.local>"
	}
	if v := get("SPINE_NOTIFICATIONS_INLINE_BODY_MAX"); v != "" {
		b, err := ParseByteSize(v)
		if err != nil || b < 256 || b > 1<<20 {
			*errs = append(*errs, fmt.Errorf("SPINE_NOTIFICATIONS_INLINE_BODY_MAX: %q is not a size from 256B to 1MiB (e.g. 8KiB)", v))
		}
		n.InlineBodyMax = b
	}
	if v := get("SPINE_NOTIFICATIONS_RETRY_SCALE"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || !(f >= 0.0001 && f <= 1) {
			*errs = append(*errs, fmt.Errorf("SPINE_NOTIFICATIONS_RETRY_SCALE: %q is not a number from 0.0001 to 1", v))
		}
		n.RetryScale = f
	}
	if v := get("SPINE_NOTIFICATIONS_ENDPOINT_DISABLE_AFTER"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second {
			*errs = append(*errs, fmt.Errorf("SPINE_NOTIFICATIONS_ENDPOINT_DISABLE_AFTER: %q is not a duration of at least 1s (e.g. 120h)", v))
		}
		n.EndpointDisableAfter = d
	}
	return n
}

// Getenv looks a setting up; os.Getenv in production, a map in tests.
type Getenv func(string) string

// FromEnv loads the configuration of services from the process environment.
func FromEnv(services []string) (Config, error) { return Load(os.Getenv, services) }

// Load reads and validates every setting. services are the owning services the binary can serve,
// in start-up order (the module list's names): SPINE_SERVICES picks among them, and each enabled
// one has its SPINE_<SERVICE>_DB_* settings. The error lists every problem at once.
func Load(get Getenv, services []string) (Config, error) {
	var errs []error
	c := Config{DB: map[string]DB{}}

	c.Port = 7071
	portSetting := "PORT"
	if v := get("FUNCTIONS_CUSTOMHANDLER_PORT"); v != "" {
		portSetting = "FUNCTIONS_CUSTOMHANDLER_PORT"
	}
	if v := get(portSetting); v != "" {
		p, err := strconv.Atoi(v)
		if err != nil || p < 1 || p > 65535 {
			errs = append(errs, fmt.Errorf("%s: %q is not a TCP port", portSetting, v))
		}
		c.Port = p
	}
	c.Standalone = parseBool(get, "SPINE_STANDALONE", false, &errs)
	c.HostFronted = parseBool(get, "SPINE_HOST_FRONTED", false, &errs)
	switch v := strings.ToLower(get("SPINE_LOG_LEVEL")); v {
	case "", "info":
		c.LogLevel = slog.LevelInfo
	case "debug":
		c.LogLevel = slog.LevelDebug
	case "warn":
		c.LogLevel = slog.LevelWarn
	case "error":
		c.LogLevel = slog.LevelError
	default:
		errs = append(errs, fmt.Errorf("SPINE_LOG_LEVEL: %q is not one of debug, info, warn, error", v))
	}

	c.Enabled = services
	if v := get("SPINE_SERVICES"); v != "" {
		c.Enabled = nil
		for _, s := range strings.Split(v, ",") {
			s = strings.TrimSpace(s)
			if !contains(services, s) {
				errs = append(errs, fmt.Errorf("SPINE_SERVICES: unknown service %q (known: %s)", s, strings.Join(services, ", ")))
				continue
			}
			c.Enabled = append(c.Enabled, s)
		}
	}
	for _, s := range c.Enabled {
		p := "SPINE_" + strings.ToUpper(s) + "_DB_"
		db := DB{Dialect: get(p + "DIALECT"), URL: get(p + "URL"), MigrateURL: get(p + "MIGRATE_URL")}
		if db.Dialect == "" {
			db.Dialect = "postgres"
		}
		if db.Dialect != "postgres" && db.Dialect != "sqlserver" {
			errs = append(errs, fmt.Errorf("%sDIALECT: %q is not postgres or sqlserver", p, db.Dialect))
		}
		if db.URL == "" {
			errs = append(errs, fmt.Errorf("%sURL: required (the runtime role's connection string for %s)", p, s))
		}
		c.DB[s] = db
	}

	c.RedisURL = get("SPINE_REDIS_URL")
	if c.RedisURL != "" {
		if u, err := url.Parse(c.RedisURL); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") {
			errs = append(errs, errors.New("SPINE_REDIS_URL: must be a redis:// or rediss:// URL"))
		}
	}
	c.StorageConnectionString = get("SPINE_STORAGE_CONNECTION_STRING")
	c.StorageAccountURL = get("SPINE_STORAGE_ACCOUNT_URL")
	if c.StorageConnectionString == "" && c.StorageAccountURL == "" {
		errs = append(errs, errors.New("SPINE_STORAGE_CONNECTION_STRING or SPINE_STORAGE_ACCOUNT_URL: one is required"))
	}

	c.ServiceBusConnectionString = get("SPINE_SERVICEBUS_CONNECTION_STRING")
	c.ServiceBusNamespace = get("SPINE_SERVICEBUS_NAMESPACE")
	c.AuthIssuer = get("SPINE_AUTH_ISSUER")
	c.AuthAudience = get("SPINE_AUTH_AUDIENCE")
	c.AuthJWKSURL = get("SPINE_AUTH_JWKS_URL")
	c.AuthJWKSFile = get("SPINE_AUTH_JWKS_FILE")
	if c.AuthIssuer == "" {
		errs = append(errs, errors.New("SPINE_AUTH_ISSUER: required"))
	}
	if c.AuthAudience == "" {
		errs = append(errs, errors.New("SPINE_AUTH_AUDIENCE: required"))
	}
	switch {
	case c.AuthJWKSURL != "" && c.AuthJWKSFile != "":
		errs = append(errs, errors.New("SPINE_AUTH_JWKS_URL or SPINE_AUTH_JWKS_FILE: at most one (both are set)"))
	case c.AuthJWKSURL == "" && c.AuthJWKSFile == "" && c.AuthIssuer != "":
		if err := discoverableIssuer(c.AuthIssuer); err != nil {
			errs = append(errs, fmt.Errorf("SPINE_AUTH_ISSUER: %q %v (the signing keys are discovered from it when neither SPINE_AUTH_JWKS_URL nor SPINE_AUTH_JWKS_FILE is set)", c.AuthIssuer, err))
		}
	}
	c.DevKeyDir = get("SPINE_DEV_KEY_DIR")
	c.KeyVaultURL = get("SPINE_KEYVAULT_URL")
	c.KeyVaultCAFile = get("SPINE_KEYVAULT_CA_FILE")
	errs = append(errs, checkKeyVault(c)...)
	c.AuthzDevClient = parseBool(get, "SPINE_AUTHZ_DEV_CLIENT", false, &errs)
	c.EgressAllowLoopback = parseBool(get, "SPINE_EGRESS_ALLOW_LOOPBACK", false, &errs)
	if c.EgressAllowLoopback && !loopbackURL(c.AuthIssuer) {
		errs = append(errs, fmt.Errorf("SPINE_EGRESS_ALLOW_LOOPBACK: only for local runs (SPINE_AUTH_ISSUER on a loopback host), not with %q: it lets tenants' URLs reach this host", c.AuthIssuer))
	}
	if c.AuthzDevClient && !loopbackURL(c.AuthIssuer) {
		errs = append(errs, fmt.Errorf("SPINE_AUTHZ_DEV_CLIENT: only for local runs (SPINE_AUTH_ISSUER on a loopback host, as make run sets it), not with %q: it creates a platform-admin client", c.AuthIssuer))
	}
	c.AuthzAccessTokenTTL = 10 * time.Minute
	if v := get("SPINE_AUTHZ_ACCESS_TOKEN_TTL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second || d > 15*time.Minute {
			errs = append(errs, fmt.Errorf("SPINE_AUTHZ_ACCESS_TOKEN_TTL: %q is not a duration between 1s and 15m (e.g. 10m)", v))
		}
		c.AuthzAccessTokenTTL = d
	}
	c.AuthzKeyRotation = 30 * 24 * time.Hour
	if v := get("SPINE_AUTHZ_KEY_ROTATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Hour {
			errs = append(errs, fmt.Errorf("SPINE_AUTHZ_KEY_ROTATION: %q is not a duration of at least 1h (e.g. 720h)", v))
		}
		c.AuthzKeyRotation = d
	}

	c.MaxBodyBytes = 1 << 20
	if v := get("SPINE_MAX_BODY_BYTES"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1024 {
			errs = append(errs, fmt.Errorf("SPINE_MAX_BODY_BYTES: %q is not a byte count ≥ 1024", v))
		}
		c.MaxBodyBytes = n
	}
	if v := get("SPINE_RATELIMIT_SHADOW"); v != "" {
		for _, r := range strings.Split(v, ",") {
			switch r = strings.TrimSpace(r); {
			case r == "tenant":
				c.RateLimitShadow = append(c.RateLimitShadow, "")
			case strings.HasPrefix(r, "/api/"):
				c.RateLimitShadow = append(c.RateLimitShadow, r)
			default:
				errs = append(errs, fmt.Errorf("SPINE_RATELIMIT_SHADOW: %q is neither \"tenant\" nor a route template under /api/", r))
			}
		}
	}
	c.RequestTimeout = 20 * time.Second
	if v := get("SPINE_REQUEST_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second || d > 230*time.Second {
			errs = append(errs, fmt.Errorf("SPINE_REQUEST_TIMEOUT: %q is not a duration from 1s to 230s", v))
		}
		c.RequestTimeout = d
	}
	c.CacheTTL = 60 * time.Second
	if v := get("SPINE_CACHE_TTL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("SPINE_CACHE_TTL: %q is not a positive duration (e.g. 60s)", v))
		}
		c.CacheTTL = d
	}
	c.ProvisioningRetryAfter = 30 * time.Second
	if v := get("SPINE_PROVISIONING_RETRY_AFTER"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("SPINE_PROVISIONING_RETRY_AFTER: %q is not a positive duration (e.g. 30s)", v))
		}
		c.ProvisioningRetryAfter = d
	}
	c.IdentityInvitationTTL = 7 * 24 * time.Hour
	if v := get("SPINE_IDENTITY_INVITATION_TTL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Minute {
			errs = append(errs, fmt.Errorf("SPINE_IDENTITY_INVITATION_TTL: %q is not a duration of at least 1m (e.g. 168h)", v))
		}
		c.IdentityInvitationTTL = d
	}
	c.PprofAddr = get("SPINE_PPROF_ADDR")
	if c.PprofAddr != "" {
		host, _, err := net.SplitHostPort(c.PprofAddr)
		if ip := net.ParseIP(host); err != nil || (host != "localhost" && (ip == nil || !ip.IsLoopback())) {
			errs = append(errs, fmt.Errorf("SPINE_PPROF_ADDR: %q must be a loopback host:port (profiles are not for the network)", c.PprofAddr))
		}
	}
	c.MetricsAddr = get("SPINE_METRICS_ADDR")
	if c.MetricsAddr != "" {
		if err := telemetry.CheckLoopback(c.MetricsAddr); err != nil {
			errs = append(errs, fmt.Errorf("SPINE_METRICS_ADDR: %q must be a loopback host:port (metrics are scraped locally)", c.MetricsAddr))
		}
	}
	c.MetricsTenantLimit = telemetry.DefaultTenantLimit
	if v := get("SPINE_METRICS_TENANT_LIMIT"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			errs = append(errs, fmt.Errorf("SPINE_METRICS_TENANT_LIMIT: %q is not a count ≥ 1", v))
		}
		c.MetricsTenantLimit = n
	}
	c.OTLPMetrics, c.OTLPTraces = telemetry.OTLPFromEnv(get)
	// The exporters fall back to https://localhost:4318 on an endpoint they cannot parse (logging
	// it, and then failing every export): a typo is a settings error here instead.
	for _, k := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"} {
		if v := get(k); v != "" && (c.OTLPMetrics || c.OTLPTraces) {
			if u, err := url.Parse(v); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				errs = append(errs, fmt.Errorf("%s: %q is not an http(s) URL (e.g. http://127.0.0.1:4318)", k, v))
			}
		}
	}
	c.MemoryLimit = DefaultMemoryLimit
	if v := get("SPINE_MEMORY_LIMIT"); v != "" {
		n, err := ParseByteSize(v)
		if err != nil || (n != 0 && n < minMemoryLimit) {
			errs = append(errs, fmt.Errorf("SPINE_MEMORY_LIMIT: %q is not off or a size of at least 16MiB (e.g. 128MiB)", v))
		}
		c.MemoryLimit = n
	}
	c.TenantEditions = []string{"free", "standard", "enterprise"}
	if v := get("SPINE_TENANT_EDITIONS"); v != "" {
		c.TenantEditions = nil
		for _, e := range strings.Split(v, ",") {
			if e = strings.TrimSpace(e); e != "" {
				c.TenantEditions = append(c.TenantEditions, e)
			}
		}
	}
	c.ReportingArtifactTTL = 365 * 24 * time.Hour
	if v := get("SPINE_REPORTING_ARTIFACT_TTL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Hour {
			errs = append(errs, fmt.Errorf("SPINE_REPORTING_ARTIFACT_TTL: %q is not a duration of at least 1h (e.g. 8760h)", v))
		}
		c.ReportingArtifactTTL = d
	}
	c.ReportingSASTTL = 5 * time.Minute
	if v := get("SPINE_REPORTING_SAS_TTL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 10*time.Second || d > time.Hour {
			errs = append(errs, fmt.Errorf("SPINE_REPORTING_SAS_TTL: %q is not a duration from 10s to 1h (e.g. 5m)", v))
		}
		c.ReportingSASTTL = d
	}
	c.Notifications = loadNotifications(get, &errs)
	c.RetentionScale = 1
	if v := get("SPINE_RETENTION_SCALE"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || !(f >= 1e-9 && f <= 1) {
			errs = append(errs, fmt.Errorf("SPINE_RETENTION_SCALE: %q is not a number from 1e-9 to 1", v))
		}
		c.RetentionScale = f
	}
	c.RetentionMaxRows = 100_000
	if v := get("SPINE_RETENTION_MAX_ROWS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 100 || n > 10_000_000 {
			errs = append(errs, fmt.Errorf("SPINE_RETENTION_MAX_ROWS: %q is not a number from 100 to 10000000", v))
		}
		c.RetentionMaxRows = n
	}
	c.RetentionMaxDuration = 4 * time.Minute
	if v := get("SPINE_RETENTION_MAX_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second || d > 9*time.Minute {
			errs = append(errs, fmt.Errorf("SPINE_RETENTION_MAX_DURATION: %q is not a duration from 1s to 9m (e.g. 4m)", v))
		}
		c.RetentionMaxDuration = d
	}
	c.RetentionCrashAt = get("SPINE_TEST_RETENTION_CRASH_AT")
	switch c.RetentionCrashAt {
	case "", "after-intent", "after-export", "after-apply", "after-evidence":
	default:
		errs = append(errs, fmt.Errorf("SPINE_TEST_RETENTION_CRASH_AT: %q is not after-intent, after-export, after-apply or after-evidence", c.RetentionCrashAt))
	}
	c.TableAccountURL = get("SPINE_TABLE_ACCOUNT_URL")
	if c.TableAccountURL == "" && c.StorageAccountURL != "" {
		c.TableAccountURL = strings.Replace(c.StorageAccountURL, ".blob.", ".table.", 1)
	}
	return c, errors.Join(errs...)
}

// KeyVaultServices are the services whose secrets live in Key Vault: the authorization server's
// signing keys, the notifications service's webhook secrets, the integrations' credentials.
var KeyVaultServices = []string{"authz", "notifications", "integrations"}

// checkKeyVault checks SPINE_KEYVAULT_URL (required when a service of KeyVaultServices is enabled) and SPINE_KEYVAULT_CA_FILE (a loopback vault only).
func checkKeyVault(c Config) []error {
	var errs []error
	u, err := url.Parse(c.KeyVaultURL)
	valid := err == nil && u.Scheme == "https" && u.Host != "" && u.RawQuery == "" && u.User == nil
	switch {
	case c.KeyVaultURL == "" && slices.ContainsFunc(KeyVaultServices, func(s string) bool { return contains(c.Enabled, s) }):
		errs = append(errs, fmt.Errorf("SPINE_KEYVAULT_URL: required when any of %s is enabled (their secrets live in Key Vault)", strings.Join(KeyVaultServices, ", ")))
	case c.KeyVaultURL != "" && !valid:
		errs = append(errs, fmt.Errorf("SPINE_KEYVAULT_URL: %q is not an https URL such as https://<name>.vault.azure.net/", c.KeyVaultURL))
	}
	if c.KeyVaultCAFile != "" {
		host := ""
		if valid {
			host = u.Hostname()
		}
		ip := net.ParseIP(host)
		if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			errs = append(errs, errors.New("SPINE_KEYVAULT_CA_FILE: only for the local Key Vault fake (SPINE_KEYVAULT_URL on a loopback address); in Azure the vault's certificate is public"))
		}
	}
	return errs
}

// DefaultMemoryLimit is SPINE_MEMORY_LIMIT's default, 128 MiB: about four times the heap the
// handler needs under the bench's load (an idle instance holds ~10 MiB of heap, a loaded one
// ~25 MiB), so the GC is not made to run harder in normal work, while the runtime memory of an
// instance after a burst stays within the 150 MB goal of issue 10.
const DefaultMemoryLimit = 128 << 20

// minMemoryLimit is the smallest limit accepted: below it the GC would run continuously.
const minMemoryLimit = 16 << 20

// ParseByteSize reads a size as GOMEMLIMIT writes it: a non-negative integer with an optional
// B, KiB, MiB, GiB or TiB suffix; "off" is 0.
func ParseByteSize(v string) (int64, error) {
	if strings.EqualFold(v, "off") {
		return 0, nil
	}
	num, mult := v, int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}} {
		if n, ok := strings.CutSuffix(v, u.suffix); ok {
			num, mult = n, u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("%q is not a byte size (e.g. 128MiB)", v)
	}
	return n * mult, nil
}

func parseBool(get Getenv, name string, def bool, errs *[]error) bool {
	v := get(name)
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		*errs = append(*errs, fmt.Errorf("%s: %q is not a boolean", name, v))
	}
	return b
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// LogValue implements slog.LogValuer: every secret is masked, keeping only what helps a reader
// (scheme, host, database) and never a password or key.
func (c Config) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.Int("port", c.Port),
		slog.Bool("standalone", c.Standalone),
		slog.Bool("hostFronted", c.HostFronted),
		slog.String("logLevel", c.LogLevel.String()),
		slog.String("services", strings.Join(c.Enabled, ",")),
		slog.String("redis", MaskURL(c.RedisURL)),
		slog.String("storage", MaskConnectionString(c.StorageConnectionString)),
		slog.String("storageAccountURL", c.StorageAccountURL),
		slog.String("serviceBus", MaskConnectionString(c.ServiceBusConnectionString)+c.ServiceBusNamespace),
		slog.String("authIssuer", c.AuthIssuer),
		slog.String("authAudience", c.AuthAudience),
		slog.String("authJWKS", c.AuthJWKSURL+c.AuthJWKSFile),
		slog.String("keyVault", c.KeyVaultURL),
		slog.String("keyVaultCAFile", c.KeyVaultCAFile),
		slog.Bool("authzDevClient", c.AuthzDevClient),
		slog.Bool("egressAllowLoopback", c.EgressAllowLoopback),
		slog.String("authzAccessTokenTTL", c.AuthzAccessTokenTTL.String()),
		slog.String("authzKeyRotation", c.AuthzKeyRotation.String()),
		slog.Int64("maxBodyBytes", c.MaxBodyBytes),
		slog.Duration("cacheTTL", c.CacheTTL),
		slog.String("metricsAddr", c.MetricsAddr),
		slog.Bool("otlpMetrics", c.OTLPMetrics),
		slog.Bool("otlpTraces", c.OTLPTraces),
		slog.Int64("memoryLimit", c.MemoryLimit),
		slog.Group("notifications", slog.String("smtpAddr", c.Notifications.SMTPAddr),
			slog.String("smtpUsername", c.Notifications.SMTPUsername), slog.Bool("smtpPassword", c.Notifications.SMTPPassword != ""),
			slog.Int64("inlineBodyMax", c.Notifications.InlineBodyMax), slog.Float64("retryScale", c.Notifications.RetryScale),
			slog.Duration("endpointDisableAfter", c.Notifications.EndpointDisableAfter)),
		slog.Group("retention", slog.Float64("scale", c.RetentionScale), slog.Int("maxRows", c.RetentionMaxRows),
			slog.Duration("maxDuration", c.RetentionMaxDuration), slog.String("tableAccountURL", c.TableAccountURL)),
	}
	for _, s := range c.Enabled {
		db := c.DB[s]
		attrs = append(attrs, slog.Group("db."+s,
			slog.String("dialect", db.Dialect), slog.String("url", MaskURL(db.URL))))
	}
	return slog.GroupValue(attrs...)
}

// MaskURL keeps a DSN's scheme, host and path and masks its user info and query values. A value
// that does not parse as a URL (an ADO-style connection string) is masked by key.
func MaskURL(s string) string {
	if s == "" {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return MaskConnectionString(s)
	}
	masked := u.Scheme + "://"
	if u.User != nil {
		masked += "***@"
	}
	masked += u.Host + u.Path
	if u.RawQuery != "" {
		masked += "?***"
	}
	return masked
}

// MaskConnectionString masks the values of secret-bearing keys in a `k=v;k=v` connection string
// (AccountKey, Password, SharedAccessKey, SharedAccessSignature, ...).
func MaskConnectionString(s string) string {
	if s == "" {
		return ""
	}
	parts := strings.Split(s, ";")
	for i, p := range parts {
		k, _, ok := strings.Cut(p, "=")
		if !ok && strings.TrimSpace(p) == "" {
			continue
		}
		if !ok {
			parts[i] = "***"
			continue
		}
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "accountkey", "password", "pwd", "sharedaccesskey", "sharedaccesssignature", "user id", "uid":
			parts[i] = k + "=***"
		}
	}
	return strings.Join(parts, ";")
}

// loopbackURL reports whether raw is an absolute URL whose host is loopback (localhost, 127/8,
// ::1).
func loopbackURL(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return false
	}
	h := u.Hostname()
	ip := net.ParseIP(h)
	return strings.EqualFold(h, "localhost") || ip != nil && ip.IsLoopback()
}

// discoverableIssuer checks an issuer the signing keys are discovered from
// (<issuer>/.well-known/openid-configuration): an absolute https URL, or http on a loopback host,
// without query or fragment. shared/auth applies the same rules.
func discoverableIssuer(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return errors.New("must be an absolute URL")
	}
	if u.RawQuery != "" || u.ForceQuery || strings.Contains(raw, "#") {
		return errors.New("must have no query and no fragment")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if h := u.Hostname(); strings.EqualFold(h, "localhost") || net.ParseIP(h) != nil && net.ParseIP(h).IsLoopback() {
			return nil
		}
		return errors.New("must use https (plain http only on a loopback host)")
	}
	return fmt.Errorf("has unsupported scheme %q (use https)", u.Scheme)
}
