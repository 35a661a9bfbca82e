package config

import (
	"log/slog"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) Getenv { return func(k string) string { return m[k] } }

func valid() map[string]string {
	return map[string]string{
		"SPINE_TENANTS_DB_URL":            "postgres://tenants_app:s3cret@127.0.0.1:5432/tenants?sslmode=disable",
		"SPINE_AUDIT_DB_URL":              "postgres://audit_app:s3cret@127.0.0.1:5432/audit?sslmode=disable",
		"SPINE_REDIS_URL":                 "redis://:redispw@127.0.0.1:6379/0",
		"SPINE_STORAGE_CONNECTION_STRING": "DefaultEndpointsProtocol=http;AccountName=dev;AccountKey=c2VjcmV0a2V5;BlobEndpoint=http://127.0.0.1:1/dev",
		"SPINE_AUTH_ISSUER":               "https://issuer",
		"SPINE_AUTH_AUDIENCE":             "spine",
		"SPINE_AUTH_JWKS_FILE":            "/tmp/jwks.json",
	}
}

func TestLoad_DefaultsApplied(t *testing.T) {
	c, err := Load(env(valid()), services)
	if err != nil {
		t.Fatal(err)
	}
	if c.Port != 7071 || c.Standalone || c.MaxBodyBytes != 1<<20 || c.RequestTimeout != 20*time.Second || c.CacheTTL != time.Minute ||
		c.DB["tenants"].Dialect != "postgres" || len(c.Enabled) != len(services) || c.LogLevel != slog.LevelInfo ||
		c.MetricsAddr != "" || c.MetricsTenantLimit != 1000 || c.OTLPMetrics || c.OTLPTraces || c.MemoryLimit != 128<<20 ||
		c.AuthzAccessTokenTTL != 10*time.Minute || c.AuthzKeyRotation != 30*24*time.Hour {
		t.Fatalf("%+v", c)
	}
}

func TestLoad_Telemetry(t *testing.T) {
	m := valid()
	m["SPINE_METRICS_ADDR"], m["SPINE_METRICS_TENANT_LIMIT"] = "127.0.0.1:9464", "50"
	m["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = "http://127.0.0.1:4318/v1/traces"
	c, err := Load(env(m), services)
	if err != nil || c.MetricsAddr != "127.0.0.1:9464" || c.MetricsTenantLimit != 50 || c.OTLPMetrics || !c.OTLPTraces {
		t.Fatalf("%+v %v", c, err)
	}
}

func TestLoad_HostPortWins(t *testing.T) {
	m := valid()
	m["PORT"], m["FUNCTIONS_CUSTOMHANDLER_PORT"] = "8080", "9090"
	c, err := Load(env(m), services)
	if err != nil || c.Port != 9090 {
		t.Fatalf("%d %v", c.Port, err)
	}
}

func TestLoad_NoJWKSSettingMeansDiscovery(t *testing.T) {
	for _, issuer := range []string{"https://spine.example/api/connect", "http://127.0.0.1:7071/api/connect", "http://localhost:7071/api/connect"} {
		m := valid()
		delete(m, "SPINE_AUTH_JWKS_FILE")
		m["SPINE_AUTH_ISSUER"] = issuer
		c, err := Load(env(m), services)
		if err != nil || c.AuthJWKSFile != "" || c.AuthJWKSURL != "" || c.AuthIssuer != issuer {
			t.Fatalf("issuer %s: %+v %v", issuer, c, err)
		}
	}
}

func TestLoad_RateLimitShadowReadsTenantAndRoutes(t *testing.T) {
	m := valid()
	m["SPINE_RATELIMIT_SHADOW"] = " tenant, /api/audit-entries "
	c, err := Load(env(m), services)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.RateLimitShadow) != 2 || c.RateLimitShadow[0] != "" || c.RateLimitShadow[1] != "/api/audit-entries" {
		t.Fatalf("RateLimitShadow = %q", c.RateLimitShadow)
	}
}

func TestLoad_ErrorsNameEverySetting(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(map[string]string)
		wants []string
	}{
		{"nothing set", func(m map[string]string) {
			for k := range m {
				delete(m, k)
			}
		}, []string{"SPINE_TENANTS_DB_URL", "SPINE_AUTH_ISSUER", "SPINE_AUTH_AUDIENCE", "SPINE_STORAGE_CONNECTION_STRING"}},
		{"bad port", func(m map[string]string) { m["PORT"] = "http" }, []string{"PORT"}},
		{"bad dialect", func(m map[string]string) { m["SPINE_TENANTS_DB_DIALECT"] = "oracle" }, []string{"SPINE_TENANTS_DB_DIALECT"}},
		{"bad redis", func(m map[string]string) { m["SPINE_REDIS_URL"] = "http://x" }, []string{"SPINE_REDIS_URL"}},
		{"both jwks", func(m map[string]string) { m["SPINE_AUTH_JWKS_URL"] = "https://x/jwks" }, []string{"SPINE_AUTH_JWKS_URL or SPINE_AUTH_JWKS_FILE"}},
		{"discovery from a remote http issuer", func(m map[string]string) {
			delete(m, "SPINE_AUTH_JWKS_FILE")
			m["SPINE_AUTH_ISSUER"] = "http://auth.example/api/connect"
		}, []string{"SPINE_AUTH_ISSUER", "https", "discovered"}},
		{"discovery from a bare name", func(m map[string]string) {
			delete(m, "SPINE_AUTH_JWKS_FILE")
			m["SPINE_AUTH_ISSUER"] = "spine"
		}, []string{"SPINE_AUTH_ISSUER", "absolute"}},
		{"unknown service", func(m map[string]string) { m["SPINE_SERVICES"] = "tenants,payroll" }, []string{"SPINE_SERVICES", "payroll"}},
		{"bad bool", func(m map[string]string) { m["SPINE_STANDALONE"] = "maybe" }, []string{"SPINE_STANDALONE"}},
		{"bad dev client bool", func(m map[string]string) { m["SPINE_AUTHZ_DEV_CLIENT"] = "yes please" }, []string{"SPINE_AUTHZ_DEV_CLIENT"}},
		{"bad ttl", func(m map[string]string) { m["SPINE_CACHE_TTL"] = "-1s" }, []string{"SPINE_CACHE_TTL"}},
		{"access tokens over 15 minutes", func(m map[string]string) { m["SPINE_AUTHZ_ACCESS_TOKEN_TTL"] = "16m" }, []string{"SPINE_AUTHZ_ACCESS_TOKEN_TTL"}},
		{"key rotation not a duration", func(m map[string]string) { m["SPINE_AUTHZ_KEY_ROTATION"] = "monthly" }, []string{"SPINE_AUTHZ_KEY_ROTATION"}},
		{"bad level", func(m map[string]string) { m["SPINE_LOG_LEVEL"] = "loud" }, []string{"SPINE_LOG_LEVEL"}},
		{"metrics on the network", func(m map[string]string) { m["SPINE_METRICS_ADDR"] = "0.0.0.0:9464" }, []string{"SPINE_METRICS_ADDR"}},
		{"bad tenant limit", func(m map[string]string) { m["SPINE_METRICS_TENANT_LIMIT"] = "0" }, []string{"SPINE_METRICS_TENANT_LIMIT"}},
		{"memory limit not a size", func(m map[string]string) { m["SPINE_MEMORY_LIMIT"] = "lots" }, []string{"SPINE_MEMORY_LIMIT"}},
		{"shadow route outside /api", func(m map[string]string) { m["SPINE_RATELIMIT_SHADOW"] = "tenant,/audit-entries" }, []string{"SPINE_RATELIMIT_SHADOW", "/audit-entries"}},
		{"request timeout too long", func(m map[string]string) { m["SPINE_REQUEST_TIMEOUT"] = "5m" }, []string{"SPINE_REQUEST_TIMEOUT"}},
		{"memory limit too small", func(m map[string]string) { m["SPINE_MEMORY_LIMIT"] = "1MiB" }, []string{"SPINE_MEMORY_LIMIT"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := valid()
			tc.edit(m)
			_, err := Load(env(m), services)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not name %q: %v", w, err)
				}
			}
		})
	}
}

func TestLogValue_MasksSecrets(t *testing.T) {
	c, err := Load(env(valid()), services)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	slog.New(slog.NewJSONHandler(&b, nil)).Info("cfg", "config", c)
	out := b.String()
	for _, secret := range []string{"s3cret", "redispw", "c2VjcmV0a2V5", "tenants_app"} {
		if strings.Contains(out, secret) {
			t.Errorf("log line holds %q: %s", secret, out)
		}
	}
	for _, kept := range []string{"127.0.0.1:5432", "AccountName=dev", "https://issuer"} {
		if !strings.Contains(out, kept) {
			t.Errorf("log line lost %q: %s", kept, out)
		}
	}
}

func TestMaskConnectionString_ADOStyle(t *testing.T) {
	got := MaskURL("server=x.database.windows.net;user id=app;password=hunter2;database=tenants")
	if strings.Contains(got, "hunter2") || strings.Contains(got, "=app") || !strings.Contains(got, "database=tenants") {
		t.Fatal(got)
	}
}

// services is the module list's names as the binary passes them.
var services = []string{"tenants", "audit"}

// An OTLP endpoint the exporters cannot parse is a settings error naming it: the exporters would
// fall back to https://localhost:4318 and fail every export, with a log line nobody reads.
func TestLoad_OTLPEndpointNotAURLIsASettingsError(t *testing.T) {
	for _, k := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"} {
		for _, v := range []string{"::", "127.0.0.1:4318", "ftp://collector:21"} {
			m := valid()
			m[k] = v
			if _, err := Load(env(m), services); err == nil || !strings.Contains(err.Error(), k) {
				t.Errorf("%s=%q: %v, want an error naming it", k, v, err)
			}
		}
	}
	m := valid()
	m["OTEL_EXPORTER_OTLP_ENDPOINT"] = "https://collector.example:4318"
	if c, err := Load(env(m), services); err != nil || !c.OTLPTraces {
		t.Fatalf("a valid endpoint: %v", err)
	}
}

func TestLoad_MemoryLimitReadsGOMEMLIMITSizesAndOff(t *testing.T) {
	for v, want := range map[string]int64{"256MiB": 256 << 20, "1GiB": 1 << 30, "67108864": 64 << 20, "65536KiB": 64 << 20, "off": 0, "OFF": 0} {
		m := valid()
		m["SPINE_MEMORY_LIMIT"] = v
		c, err := Load(env(m), services)
		if err != nil || c.MemoryLimit != want {
			t.Errorf("SPINE_MEMORY_LIMIT=%s: %d %v, want %d", v, c.MemoryLimit, err, want)
		}
	}
}

func TestLoad_ReportingTTLs_DefaultsAndBounds(t *testing.T) {
	c, err := Load(env(valid()), services)
	if err != nil || c.ReportingArtifactTTL != 365*24*time.Hour || c.ReportingSASTTL != 5*time.Minute {
		t.Fatalf("defaults: %v %v %v", c.ReportingArtifactTTL, c.ReportingSASTTL, err)
	}
	m := valid()
	m["SPINE_REPORTING_ARTIFACT_TTL"], m["SPINE_REPORTING_SAS_TTL"] = "720h", "1h"
	if c, err := Load(env(m), services); err != nil || c.ReportingArtifactTTL != 720*time.Hour || c.ReportingSASTTL != time.Hour {
		t.Fatalf("set: %v %v %v", c.ReportingArtifactTTL, c.ReportingSASTTL, err)
	}
	for k, v := range map[string]string{"SPINE_REPORTING_ARTIFACT_TTL": "30m", "SPINE_REPORTING_SAS_TTL": "2h"} {
		m := valid()
		m[k] = v
		if _, err := Load(env(m), services); err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("%s=%s: %v", k, v, err)
		}
	}
	m = valid()
	m["SPINE_REPORTING_SAS_TTL"] = "5s"
	if _, err := Load(env(m), services); err == nil {
		t.Error("a 5s SAS TTL was accepted")
	}
}
