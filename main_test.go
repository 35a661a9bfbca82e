package main

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"math"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"testing"

	"spine/migrations"
	"spine/shared/auth"
	"spine/shared/config"
	"spine/shared/functions"
	"spine/shared/kit"
)

// The committed functions/ folder is exactly what the registry generates.
func TestFunctionsFolder_MatchesRegistry(t *testing.T) {
	reg, err := declaredRegistry()
	if err != nil {
		t.Fatal(err)
	}
	if err := functions.CheckDir("functions", reg); err != nil {
		t.Fatalf("functions/ is out of date; run `make functions`:\n%v", err)
	}
}

// One catch-all HTTP function per service, and every timer/Service Bus function has a handler.
func TestRegistry_OneCatchAllPerService(t *testing.T) {
	reg, err := declaredRegistry()
	if err != nil {
		t.Fatal(err)
	}
	catchAll := map[string]string{}
	for _, fn := range reg.Functions() {
		if fn.HTTP != nil && strings.HasSuffix(fn.HTTP.Route, "/{*rest}") {
			svc := strings.TrimSuffix(fn.HTTP.Route, "/{*rest}")
			if prev, dup := catchAll[svc]; dup {
				t.Errorf("%s and %s both catch %s", prev, fn.Name, svc)
			}
			catchAll[svc] = fn.Name
		}
		if (fn.Timer != nil || fn.ServiceBus != nil) && fn.Handler == nil {
			t.Errorf("%s has no handler", fn.Name)
		}
	}
	if catchAll["tenants"] != "Tenants" {
		t.Errorf("catch-all functions = %v", catchAll)
	}
}

func TestRun_InvalidSettingsNameTheSetting(t *testing.T) {
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"serve"}, func(string) string { return "" }, &out, &errb)
	if code == 0 {
		t.Fatal("serve with no settings must fail")
	}
	for _, want := range []string{"SPINE_TENANTS_DB_URL", "SPINE_AUTH_ISSUER", "SPINE_STORAGE_CONNECTION_STRING"} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("error does not name %s:\n%s", want, errb.String())
		}
	}
}

func TestRun_UnknownCommand(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"frobnicate"}, func(string) string { return "" }, &out, &errb); code != 1 {
		t.Fatalf("exit %d", code)
	}
}

// local.settings.sample.json lists every setting the binary reads, for every service.
func TestSampleSettings_ListEverySetting(t *testing.T) {
	raw, err := os.ReadFile("local.settings.sample.json")
	if err != nil {
		t.Fatal(err)
	}
	var sample struct{ Values map[string]string }
	if err := json.Unmarshal(raw, &sample); err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("shared/config/config.go")
	if err != nil {
		t.Fatal(err)
	}
	names := regexp.MustCompile(`"(SPINE_[A-Z_]+)"`).FindAllStringSubmatch(string(src), -1)
	if len(names) < 10 {
		t.Fatalf("found only %d setting names in config.go", len(names))
	}
	for _, m := range names {
		if _, ok := sample.Values[m[1]]; !ok {
			t.Errorf("local.settings.sample.json lacks %s", m[1])
		}
	}
	for _, svc := range moduleNames() {
		for _, suffix := range []string{"_DB_DIALECT", "_DB_URL", "_DB_MIGRATE_URL"} {
			name := "SPINE_" + strings.ToUpper(svc) + suffix
			if _, ok := sample.Values[name]; !ok {
				t.Errorf("local.settings.sample.json lacks %s", name)
			}
		}
	}
}

// A start-up failure exits 1 with one line naming the setting or the dependency, never a panic.
func TestRun_StartupErrorIsOneLineNamingTheCause(t *testing.T) {
	keys := t.TempDir()
	if _, err := auth.EnsureDevKey(keys); err != nil {
		t.Fatal(err)
	}
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadDB := "postgres://spine:pw@" + closed.Addr().String() + "/x?sslmode=disable&connect_timeout=2"
	_ = closed.Close() // nothing listens there now
	base := map[string]string{
		"SPINE_AUTH_ISSUER": "https://issuer.example/api/connect", "SPINE_AUTH_AUDIENCE": "spine-api",
		"SPINE_KEYVAULT_URL":              "https://127.0.0.1:1/", // never reached: an earlier dependency fails
		"SPINE_AUTH_JWKS_FILE":            filepath.Join(keys, "jwks.json"),
		"SPINE_STORAGE_CONNECTION_STRING": "DefaultEndpointsProtocol=http;AccountName=dev;AccountKey=c2VjcmV0a2V5;BlobEndpoint=http://127.0.0.1:1/dev",
		"PORT":                            "1",
	}
	for _, svc := range moduleNames() { // every service's database, at the dead address
		base["SPINE_"+strings.ToUpper(svc)+"_DB_URL"] = deadDB
	}
	for _, tc := range []struct {
		name, key, value, want string
	}{
		{"jwks file missing", "SPINE_AUTH_JWKS_FILE", "/nonexistent/jwks.json", "SPINE_AUTH_JWKS_FILE"},
		{"database unreachable", "", "", "SPINE_TENANTS_DB_URL"},
		{"storage string malformed", "SPINE_STORAGE_CONNECTION_STRING", "not-a-connection-string", "SPINE_STORAGE_CONNECTION_STRING"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := maps.Clone(base)
			if tc.key != "" {
				env[tc.key] = tc.value
			}
			var out, errb bytes.Buffer
			code := run(context.Background(), []string{"serve"}, func(k string) string { return env[k] }, &out, &errb)
			if code != 1 {
				t.Fatalf("exit %d, want 1; stderr:\n%s", code, errb.String())
			}
			lines := strings.Split(strings.TrimSpace(errb.String()), "\n")
			last := lines[len(lines)-1]
			if !strings.HasPrefix(last, "handler serve: ") || !strings.Contains(last, tc.want) {
				t.Fatalf("last stderr line %q does not name %s", last, tc.want)
			}
			if strings.Contains(errb.String(), "panic") || strings.Contains(errb.String(), ":pw@") {
				t.Fatalf("stderr shows a panic or the password:\n%s", errb.String())
			}
		})
	}
}

// A start-up failure prints exactly one line besides the JSON log, even when the cause spans lines:
// pgx names every address and TLS mode it tried on a line of its own (no sslmode: TLS, then
// plain), and invalid settings name every problem at once.
func TestRun_StartupErrorIsExactlyOneLine(t *testing.T) {
	keys := t.TempDir()
	if _, err := auth.EnsureDevKey(keys); err != nil {
		t.Fatal(err)
	}
	var dead []string
	for i := 0; i < 2; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		dead = append(dead, ln.Addr().String())
		_ = ln.Close()
	}
	deadDB := "postgres://spine:pw@" + strings.Join(dead, ",") + "/x?connect_timeout=2"
	env := map[string]string{
		"SPINE_AUTH_ISSUER": "https://issuer.example/api/connect", "SPINE_AUTH_AUDIENCE": "spine-api",
		"SPINE_KEYVAULT_URL":              "https://127.0.0.1:1/", // never reached: an earlier dependency fails
		"SPINE_AUTH_JWKS_FILE":            filepath.Join(keys, "jwks.json"),
		"SPINE_STORAGE_CONNECTION_STRING": "DefaultEndpointsProtocol=http;AccountName=dev;AccountKey=c2VjcmV0a2V5;BlobEndpoint=http://127.0.0.1:1/dev",
		"PORT":                            "1",
	}
	for _, svc := range moduleNames() { // every service's database, at the dead addresses
		env["SPINE_"+strings.ToUpper(svc)+"_DB_URL"] = deadDB
	}
	for name, over := range map[string]map[string]string{
		"database unreachable at two addresses": nil,
		"two invalid settings":                  {"PORT": "99999", "SPINE_LOG_LEVEL": "loud"},
	} {
		t.Run(name, func(t *testing.T) {
			e := maps.Clone(env)
			maps.Copy(e, over)
			var out, errb bytes.Buffer
			if code := run(context.Background(), []string{"serve"}, func(k string) string { return e[k] }, &out, &errb); code != 1 {
				t.Fatalf("exit %d, want 1", code)
			}
			var plain []string
			for _, l := range strings.Split(strings.TrimSpace(errb.String()), "\n") {
				if !strings.HasPrefix(l, "{") {
					plain = append(plain, l)
				}
			}
			if len(plain) != 1 || !strings.HasPrefix(plain[0], "handler serve: ") {
				t.Fatalf("want one line, got %d:\n%s", len(plain), strings.Join(plain, "\n"))
			}
			for _, want := range []string{"SPINE_TENANTS_DB_URL", dead[1]} {
				if over == nil && !strings.Contains(plain[0], want) {
					t.Errorf("the line does not name %s: %s", want, plain[0])
				}
			}
			for _, want := range []string{"PORT", "SPINE_LOG_LEVEL"} {
				if over != nil && !strings.Contains(plain[0], want) {
					t.Errorf("the line does not name %s: %s", want, plain[0])
				}
			}
		})
	}
}

// host.json is what the registry and the forwarded routes assume: the current (YARP) forwarding
// setting and not the legacy one, the binary's name, and the /api route prefix.
func TestHostJSON_ProxiesHTTPToTheHandler(t *testing.T) {
	raw, err := os.ReadFile("host.json")
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Extensions struct {
			HTTP struct {
				RoutePrefix string `json:"routePrefix"`
			} `json:"http"`
			ServiceBus struct {
				MaxMessageBatchSize  int  `json:"maxMessageBatchSize"`
				AutoCompleteMessages bool `json:"autoCompleteMessages"`
			} `json:"serviceBus"`
		} `json:"extensions"`
		CustomHandler map[string]json.RawMessage `json:"customHandler"`
	}
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatal(err)
	}
	if string(h.CustomHandler["enableProxyingHttpRequest"]) != "true" {
		t.Error("customHandler.enableProxyingHttpRequest must be true")
	}
	if _, legacy := h.CustomHandler["enableForwardingHttpRequest"]; legacy {
		t.Error("customHandler.enableForwardingHttpRequest is the legacy setting; use enableProxyingHttpRequest alone")
	}
	if !strings.Contains(string(h.CustomHandler["description"]), `"defaultExecutablePath": "handler"`) {
		t.Errorf("customHandler.description = %s; want defaultExecutablePath handler", h.CustomHandler["description"])
	}
	if h.Extensions.HTTP.RoutePrefix != "api" {
		t.Errorf("extensions.http.routePrefix = %q; the echo routes live under /api", h.Extensions.HTTP.RoutePrefix)
	}
	// Batches of Service Bus-triggered functions with cardinality many: what one consumer group
	// holds (bus.GroupConsumer's default MaxGroup, the in-process transport's MaxBatch), completed
	// by the host when the invocation answers 2xx (a custom handler cannot settle messages itself).
	if sb := h.Extensions.ServiceBus; sb.MaxMessageBatchSize != 64 || !sb.AutoCompleteMessages {
		t.Errorf("extensions.serviceBus = %+v; want maxMessageBatchSize 64 and autoCompleteMessages true", sb)
	}
}

// infra/'s copy of the event catalog is what the module list and the declared consumers say
// (`go run . events --write` refreshes it); infra checks its topics and filters against it.
func TestEventCatalog_InfraCopyIsFresh(t *testing.T) {
	want, err := eventCatalogJSON()
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(EventsFile)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("%s is stale or missing (%v): run `go run . events --write`", EventsFile, err)
	}
}

// The module list is the one list of services: every module has its migrations for both engines
// (the local stack creates one database per migrations folder, infra one per folder it finds), and
// every migrations folder belongs to a module. The rest (settings sample, function.json, event
// catalog) have their own checks above.
func TestModules_AgreeWithMigrationsAndEachOther(t *testing.T) {
	if err := kit.Check(modules); err != nil {
		t.Fatal(err)
	}
	if got, want := migrations.Services(), slices.Sorted(slices.Values(moduleNames())); !slices.Equal(got, want) {
		t.Fatalf("migrations folders %v, modules %v: every module needs migrations/<name>/{postgres,sqlserver}/ and every folder a module", got, want)
	}
	for _, name := range moduleNames() {
		for _, dialect := range []string{"postgres", "sqlserver"} {
			if _, err := migrations.For(name, dialect); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
	}
	if modules[0].Name != "tenants" {
		t.Errorf("modules[0] = %s; tenants comes first (it answers the tenant directory)", modules[0].Name)
	}
}

func TestMemoryLimit_SettingOrDefaultUnlessGOMEMLIMITIsSet(t *testing.T) {
	none := func(string) string { return "" }
	if got, src := memoryLimit(config.Config{MemoryLimit: config.DefaultMemoryLimit}, none); got != 128<<20 || src != "SPINE_MEMORY_LIMIT" {
		t.Errorf("default: %d from %s, want 128 MiB from SPINE_MEMORY_LIMIT", got, src)
	}
	if got, _ := memoryLimit(config.Config{MemoryLimit: 0}, none); got != math.MaxInt64 {
		t.Errorf("off: %d, want no limit (MaxInt64)", got)
	}
	withRuntime := func(k string) string {
		if k == "GOMEMLIMIT" {
			return "1GiB"
		}
		return ""
	}
	// The runtime applied GOMEMLIMIT before main ran: serve reports its limit and sets none.
	if got, src := memoryLimit(config.Config{MemoryLimit: config.DefaultMemoryLimit}, withRuntime); got != debug.SetMemoryLimit(-1) || src != "GOMEMLIMIT" {
		t.Errorf("with GOMEMLIMIT: %d from %s, want the runtime's limit from GOMEMLIMIT", got, src)
	}
}
