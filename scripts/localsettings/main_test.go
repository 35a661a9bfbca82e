package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"spine/migrations"
	"spine/shared/config"
)

// stackEnv writes an env file shaped like scripts/stack.sh's (one password holds a quote).
func stackEnv(t *testing.T) (path, storage string) {
	t.Helper()
	storage = "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;" +
		"BlobEndpoint=http://127.0.0.1:21001/devstoreaccount1;QueueEndpoint=http://127.0.0.1:21002/devstoreaccount1;" +
		"TableEndpoint=http://127.0.0.1:21003/devstoreaccount1;"
	lines := []string{"# written by scripts/stack.sh up --name dev", "export SPINE_REDIS_URL='redis://127.0.0.1:21004/0'",
		"export SPINE_STORAGE_CONNECTION_STRING='" + storage + "'",
		"export SPINE_KEYVAULT_URL='https://127.0.0.1:21007'", "export SPINE_KEYVAULT_CA_FILE='/stack/dev/keyvault/cert.pem'"}
	for _, svc := range migrations.Services() {
		p := "export SPINE_" + strings.ToUpper(svc) + "_DB_"
		lines = append(lines, p+"DIALECT='postgres'",
			p+"URL='postgres://"+svc+"_app:pw'\\''1@127.0.0.1:21005/"+svc+"?sslmode=disable'",
			p+"MIGRATE_URL='postgres://"+svc+"_owner:pw2@127.0.0.1:21005/"+svc+"?sslmode=disable'")
	}
	path = filepath.Join(t.TempDir(), "env")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, storage
}

func devKeys(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "jwks.json"), []byte(`{"keys":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

func noEnv(string) string { return "" }

// What `make package` writes for func start: every sample setting, the stack's values, the
// custom-handler runtime, host storage on Azurite, absolute key paths, and the Service Bus trigger
// disabled for the host when no real connection string is given.
func TestRun_WritesSettingsFromTheStack(t *testing.T) {
	env, storage := stackEnv(t)
	keys := devKeys(t)
	out := filepath.Join(t.TempDir(), "local.settings.json")
	var stdout strings.Builder
	err := run([]string{"-env", env, "-sample", "../../local.settings.sample.json", "-functions", "../../functions",
		"-keys", keys, "-port", "7099", "-metrics-addr", "127.0.0.1:21006", "-out", out}, noEnv, &stdout)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(out); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600 (it holds the stack's passwords)", fi.Mode().Perm())
	}
	var got settings
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	sampleRaw, _ := os.ReadFile("../../local.settings.sample.json")
	var sample settings
	if err := json.Unmarshal(sampleRaw, &sample); err != nil {
		t.Fatal(err)
	}
	for k := range sample.Values {
		if _, ok := got.Values[k]; !ok && k != "ServiceBusConnection" {
			t.Errorf("lacks the sample's %s", k)
		}
	}
	want := map[string]string{
		"FUNCTIONS_WORKER_RUNTIME":                  "custom",
		"AzureWebJobsStorage":                       storage,
		"SPINE_STORAGE_CONNECTION_STRING":           storage,
		"SPINE_STANDALONE":                          "false",
		"SPINE_TENANTS_DB_URL":                      "postgres://tenants_app:pw'1@127.0.0.1:21005/tenants?sslmode=disable",
		"SPINE_REDIS_URL":                           "redis://127.0.0.1:21004/0",
		"SPINE_AUTH_JWKS_FILE":                      filepath.Join(keys, "jwks.json"),
		"SPINE_DEV_KEY_DIR":                         keys,
		"SPINE_METRICS_ADDR":                        "127.0.0.1:21006",
		"SPINE_SERVICEBUS_CONNECTION_STRING":        "",
		"SPINE_KEYVAULT_URL":                        "https://127.0.0.1:21007",
		"SPINE_KEYVAULT_CA_FILE":                    "/stack/dev/keyvault/cert.pem",
		"AzureWebJobs.AuditOnTenantsEvent.Disabled": "true",
	}
	for k, w := range want {
		if g, ok := got.Values[k]; !ok || g != w {
			t.Errorf("%s = %q, want %q", k, g, w)
		}
	}
	if _, ok := got.Values["ServiceBusConnection"]; ok {
		t.Errorf("ServiceBusConnection = %q: without a real connection string it must be absent", got.Values["ServiceBusConnection"])
	}
	if !filepath.IsAbs(got.Values["SPINE_AUTH_JWKS_FILE"]) {
		t.Errorf("SPINE_AUTH_JWKS_FILE %q is not absolute", got.Values["SPINE_AUTH_JWKS_FILE"])
	}
	if p, _ := got.Host["LocalHttpPort"].(float64); p != 7099 {
		t.Errorf("Host.LocalHttpPort = %v", got.Host["LocalHttpPort"])
	}
	if _, err := config.Load(func(k string) string { return got.Values[k] }, migrations.Services()); err != nil {
		t.Errorf("the handler would refuse these settings: %v", err)
	}
}

// With a real connection string the trigger stays enabled and the outbox publishes there too.
func TestBuild_RealServiceBusConnection(t *testing.T) {
	env, _ := stackEnv(t)
	const conn = "Endpoint=sb://example.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=v"
	s, err := build(options{env: env, sample: "../../local.settings.sample.json", functions: "../../functions",
		keys: devKeys(t), port: 7072}, func(k string) string {
		if k == "ServiceBusConnection" {
			return conn
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	if s.Values["ServiceBusConnection"] != conn || s.Values["SPINE_SERVICEBUS_CONNECTION_STRING"] != conn {
		t.Errorf("ServiceBusConnection = %q, SPINE_SERVICEBUS_CONNECTION_STRING = %q",
			s.Values["ServiceBusConnection"], s.Values["SPINE_SERVICEBUS_CONNECTION_STRING"])
	}
	for k := range s.Values {
		if strings.HasSuffix(k, ".Disabled") {
			t.Errorf("%s is set although the trigger can listen", k)
		}
	}
}

func TestBuild_RefusesAnIncompleteEnvFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "env")
	if err := os.WriteFile(path, []byte("export SPINE_REDIS_URL='redis://127.0.0.1:1/0'\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := build(options{env: path, sample: "../../local.settings.sample.json", functions: "../../functions",
		keys: devKeys(t)}, noEnv)
	if err == nil || !strings.Contains(err.Error(), "SPINE_STORAGE_CONNECTION_STRING") {
		t.Fatalf("err = %v, want it to name the missing setting", err)
	}
}

func TestUnquote(t *testing.T) {
	for in, want := range map[string]string{
		`'plain'`:         "plain",
		`'it'\''s'`:       "it's",
		`''`:              "",
		`'a;b=c'\'''\'''`: "a;b=c''",
		`bare`:            "bare",
	} {
		got, err := unquote(in)
		if err != nil || got != want {
			t.Errorf("unquote(%s) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := unquote(`'open`); err == nil {
		t.Error("an unterminated quote must fail")
	}
}
