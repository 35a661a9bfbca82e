// Command localsettings writes the local.settings.json that Azure Functions Core Tools (`func start`)
// reads beside the packaged app, from the running local stack: its real ports and passwords (the
// stack's env file), FUNCTIONS_WORKER_RUNTIME=custom, AzureWebJobsStorage on the stack's Azurite,
// and absolute paths to the dev signing key. `make package` runs it when the dev stack runs:
//
//	go run ./scripts/localsettings -env .stack/dev/env -functions dist -keys $PWD/.stack/dev/keys \
//	    -port 7072 -metrics-addr 127.0.0.1:23456 -out dist/local.settings.json
//
// Every setting of local.settings.sample.json is written, the stack's values replacing the
// sample's placeholders, and the result is checked with the binary's own settings validation.
//
// Service Bus triggers: the host listens on a topic subscription only with a real connection
// string in the binding's connection setting (ServiceBusConnection); there is no emulator here.
// When the environment has it (export ServiceBusConnection='Endpoint=sb://…'), it is written, and
// the outbox publishes to the same namespace (SPINE_SERVICEBUS_CONNECTION_STRING, unless set
// itself). Without it, each Service Bus-triggered function is disabled for the host
// (AzureWebJobs.<Name>.Disabled) and the binary's in-process transport delivers the events to it
// through the same invocation path, as in standalone mode.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"spine/migrations"
	"spine/shared/config"
)

func main() {
	if err := run(os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "localsettings: %v\n", err)
		os.Exit(1)
	}
}

// options are the command's flags.
type options struct {
	env, sample, functions, keys, out string
	issuer, audience, metricsAddr     string
	port                              int
}

func run(args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("localsettings", flag.ContinueOnError)
	var o options
	fs.StringVar(&o.env, "env", ".stack/dev/env", "the local stack's env file (scripts/stack.sh up)")
	fs.StringVar(&o.sample, "sample", "local.settings.sample.json", "the sample every setting comes from")
	fs.StringVar(&o.functions, "functions", "dist", "folder of <Name>/function.json")
	fs.StringVar(&o.keys, "keys", "", "folder of the dev signing key and jwks.json (made absolute)")
	fs.StringVar(&o.issuer, "issuer", "https://spine.local/dev-issuer", "SPINE_AUTH_ISSUER")
	fs.StringVar(&o.audience, "audience", "spine-api", "SPINE_AUTH_AUDIENCE")
	fs.StringVar(&o.metricsAddr, "metrics-addr", "", "SPINE_METRICS_ADDR (loopback host:port; empty: unset)")
	fs.IntVar(&o.port, "port", 7072, "the host's HTTP port (Host.LocalHttpPort)")
	fs.StringVar(&o.out, "out", "dist/local.settings.json", "file to write")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.keys == "" {
		return errors.New("-keys: required")
	}
	s, err := build(o, getenv)
	if err != nil {
		return err
	}
	raw, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	// It holds the stack's passwords: readable by its owner only.
	if err := os.WriteFile(o.out, append(raw, '\n'), 0o600); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s (the local stack's settings for func start; host port %d)\n", o.out, o.port)
	return nil
}

// settings is the shape of local.settings.json.
type settings struct {
	IsEncrypted bool              `json:"IsEncrypted"`
	Values      map[string]string `json:"Values"`
	Host        map[string]any    `json:"Host,omitempty"`
}

func build(o options, getenv func(string) string) (settings, error) {
	var s settings
	raw, err := os.ReadFile(o.sample)
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return s, fmt.Errorf("%s: %w", o.sample, err)
	}
	env, err := readEnvFile(o.env)
	if err != nil {
		return s, err
	}
	required := []string{"SPINE_STORAGE_CONNECTION_STRING", "SPINE_REDIS_URL"}
	for _, svc := range migrations.Services() {
		p := "SPINE_" + strings.ToUpper(svc) + "_DB_"
		required = append(required, p+"DIALECT", p+"URL", p+"MIGRATE_URL")
	}
	for _, k := range required {
		if env[k] == "" {
			return s, fmt.Errorf("%s lacks %s: is it the env file of a stack brought up by this checkout's scripts/stack.sh?", o.env, k)
		}
	}
	keys, err := filepath.Abs(o.keys)
	if err != nil {
		return s, err
	}
	jwks := filepath.Join(keys, "jwks.json")
	if _, err := os.Stat(jwks); err != nil {
		return s, fmt.Errorf("no dev signing key (%v): `make run` creates it", err)
	}

	v := map[string]string{}
	for k, x := range s.Values {
		v[k] = x
		if e, ok := env[k]; ok {
			v[k] = e
		}
	}
	for _, k := range required {
		v[k] = env[k]
	}
	v["FUNCTIONS_WORKER_RUNTIME"] = "custom"
	v["AzureWebJobsStorage"] = env["SPINE_STORAGE_CONNECTION_STRING"]
	v["SPINE_STANDALONE"] = "false" // the host fires the timers
	v["SPINE_SERVICES"] = strings.Join(migrations.Services(), ",")
	if o.issuer != "" {
		v["SPINE_AUTH_ISSUER"] = o.issuer
	}
	if o.audience != "" {
		v["SPINE_AUTH_AUDIENCE"] = o.audience
	}
	v["SPINE_AUTH_JWKS_FILE"] = jwks
	v["SPINE_AUTH_JWKS_URL"] = ""
	v["SPINE_DEV_KEY_DIR"] = keys
	if o.metricsAddr != "" {
		v["SPINE_METRICS_ADDR"] = o.metricsAddr
	} else {
		delete(v, "SPINE_METRICS_ADDR")
	}

	triggers, err := serviceBusTriggers(o.functions)
	if err != nil {
		return s, err
	}
	conns := map[string]bool{}
	for _, t := range triggers {
		conns[t.connection] = true
	}
	for c := range conns {
		delete(v, c) // the sample's value is a note, not a connection string
		if x := getenv(c); x != "" {
			v[c] = x
		}
	}
	for _, t := range triggers {
		if v[t.connection] == "" {
			v["AzureWebJobs."+t.function+".Disabled"] = "true"
		}
	}
	if x := getenv("SPINE_SERVICEBUS_CONNECTION_STRING"); x != "" {
		v["SPINE_SERVICEBUS_CONNECTION_STRING"] = x
	} else if x := getenv("ServiceBusConnection"); x != "" {
		v["SPINE_SERVICEBUS_CONNECTION_STRING"] = x
	}

	// The binary must accept what the host will hand it.
	if _, err := config.Load(func(k string) string { return v[k] }, migrations.Services()); err != nil {
		return s, fmt.Errorf("the settings would not start the handler:\n%w", err)
	}
	s.Values = v
	if s.Host == nil {
		s.Host = map[string]any{}
	}
	s.Host["LocalHttpPort"] = o.port
	return s, nil
}

// trigger is one Service Bus-triggered function and the setting naming its connection.
type trigger struct{ function, connection string }

func serviceBusTriggers(dir string) ([]trigger, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*", "function.json"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no */function.json in %s", dir)
	}
	sort.Strings(files)
	var out []trigger
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var fn struct {
			Bindings []struct{ Type, Connection string } `json:"bindings"`
		}
		if err := json.Unmarshal(raw, &fn); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		for _, b := range fn.Bindings {
			if b.Type == "serviceBusTrigger" {
				c := b.Connection
				if c == "" {
					c = "AzureWebJobsServiceBus" // the binding's default
				}
				out = append(out, trigger{function: filepath.Base(filepath.Dir(f)), connection: c})
			}
		}
	}
	return out, nil
}

// readEnvFile reads the stack's env file: `export KEY='value'` lines, values single-quoted the
// POSIX-sh way ('\” for a quote); comments and blank lines are skipped.
func readEnvFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, rest, ok := strings.Cut(strings.TrimPrefix(line, "export "), "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%s:%d: not KEY=value", path, n)
		}
		val, err := unquote(rest)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %s: %w", path, n, k, err)
		}
		env[k] = val
	}
	return env, sc.Err()
}

// unquote undoes POSIX-sh quoting made of '…' segments and \' escapes.
func unquote(s string) (string, error) {
	var b strings.Builder
	for len(s) > 0 {
		switch {
		case s[0] == '\'':
			end := strings.IndexByte(s[1:], '\'')
			if end < 0 {
				return "", errors.New("unterminated quote")
			}
			b.WriteString(s[1 : 1+end])
			s = s[end+2:]
		case strings.HasPrefix(s, `\'`):
			b.WriteByte('\'')
			s = s[2:]
		default:
			end := strings.IndexAny(s, `'\`)
			if end < 0 {
				end = len(s)
			}
			b.WriteString(s[:end])
			s = s[end:]
			if end == 0 { // a lone backslash
				b.WriteByte(s[0])
				s = s[1:]
			}
		}
	}
	return b.String(), nil
}
