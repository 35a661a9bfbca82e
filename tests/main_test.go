// Package tests holds Spine's end-to-end tests: they build the handler binary, start it as the
// Azure Functions host would (FUNCTIONS_CUSTOMHANDLER_PORT, host-shaped invocations, forwarded
// HTTP requests) against the local stack's PostgreSQL, Redis and Azurite, and drive it over HTTP.
package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"spine/migrations"
	"spine/shared/auth"
	"spine/shared/secrets/kvfake"
	"spine/shared/testenv"
)

var (
	binary string // the built handler
	repo   string // the repository root
)

func TestMain(m *testing.M) {
	wd, _ := os.Getwd()
	repo = filepath.Dir(wd)
	dir, err := os.MkdirTemp("", "spine-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "handler")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Dir, build.Stdout, build.Stderr = repo, os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the handler:", err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// audience is every test server's SPINE_AUTH_AUDIENCE; its issuer is its own /api/connect.
const audience = "spine-api"

// server is one running handler process.
type server struct {
	t      *testing.T
	base   string
	issuer string // SPINE_AUTH_ISSUER: <base>/api/connect, the authorization server in the binary
	cmd    *exec.Cmd
	signer *auth.DevSigner
	dbs    map[string]*testenv.Database // by service
	logs   *syncBuffer
	admin  string
	// settings are the process's environment (startInstance starts another with the same).
	settings map[string]string
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startServer creates a fresh database per service and starts the binary on them in host mode
// (the port comes in FUNCTIONS_CUSTOMHANDLER_PORT), with a Key Vault fake of its own (the
// authorization server's keys; in process, over TLS) and its issuer at <base>/api/connect. The
// API trusts the authorization server's keys (in process) and the dev key (SPINE_AUTH_JWKS_FILE),
// which the tests mint their operators' tokens with. extra overrides settings.
func startServer(t *testing.T, extra map[string]string) *server {
	t.Helper()
	ctx := context.Background()
	// One fresh database per service: the services are the migrations folders, which a test of
	// the binary checks against the module list.
	dbs := map[string]*testenv.Database{}
	for _, svc := range migrations.Services() {
		db, err := testenv.FreshDatabase(ctx, svc)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(db.Drop)
		dbs[svc] = db
	}
	keys := t.TempDir()
	signer, err := auth.EnsureDevKey(keys)
	if err != nil {
		t.Fatal(err)
	}
	redisURL, err := testenv.Require("SPINE_REDIS_URL")
	if err != nil {
		t.Fatal(err)
	}
	storage, err := testenv.Require("SPINE_STORAGE_CONNECTION_STRING")
	if err != nil {
		t.Fatal(err)
	}
	kv := kvfake.NewTLSServer(t)
	port := freePort(t)
	if p, ok := extra["FUNCTIONS_CUSTOMHANDLER_PORT"]; ok { // a test that needs the address before the server
		fmt.Sscan(p, &port)
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	settings := map[string]string{
		"FUNCTIONS_CUSTOMHANDLER_PORT":    fmt.Sprint(port),
		"SPINE_REDIS_URL":                 redisURL,
		"SPINE_STORAGE_CONNECTION_STRING": storage,
		"SPINE_AUTH_ISSUER":               base + "/api/connect",
		"SPINE_KEYVAULT_URL":              kv.URL,
		"SPINE_KEYVAULT_CA_FILE":          kv.CAFile,
		"SPINE_AUTH_AUDIENCE":             audience,
		"SPINE_AUTH_JWKS_FILE":            filepath.Join(keys, auth.DevJWKSFile),
		"SPINE_DEV_KEY_DIR":               keys,
		"SPINE_PROVISIONING_RETRY_AFTER":  "1ms",
	}
	for svc, db := range dbs {
		settings["SPINE_"+strings.ToUpper(svc)+"_DB_URL"] = db.RuntimeURL
		settings["SPINE_"+strings.ToUpper(svc)+"_DB_MIGRATE_URL"] = db.OwnerURL
	}
	for k, v := range extra {
		settings[k] = v
	}
	s := &server{t: t, base: base, issuer: settings["SPINE_AUTH_ISSUER"], signer: signer, dbs: dbs, settings: settings}
	s.launch()
	return s
}

// startInstance starts another instance of first's deployment: the same databases, Redis, Key
// Vault (the same signing keys) and issuer (SPINE_AUTH_ISSUER names first's address, as one
// public URL names every instance of a deployment), on a port of its own.
func startInstance(t *testing.T, first *server) *server {
	t.Helper()
	settings := maps.Clone(first.settings)
	port := freePort(t)
	settings["FUNCTIONS_CUSTOMHANDLER_PORT"] = fmt.Sprint(port)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	s := &server{t: t, base: base, issuer: first.issuer, signer: first.signer, dbs: first.dbs, settings: settings}
	s.launch()
	return s
}

// launch starts the binary with s.settings and waits until it answers.
func (s *server) launch() {
	t := s.t
	t.Helper()
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range s.settings {
		env = append(env, k+"="+v)
	}
	s.logs = &syncBuffer{}
	s.cmd = exec.Command(binary, "serve")
	s.cmd.Env, s.cmd.Stdout, s.cmd.Stderr = env, s.logs, s.logs
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = s.cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = s.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("handler logs:\n%s", s.logs.String())
		}
	})
	// The host pings GET / until any answer comes back; so do we.
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(s.base + "/")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("handler did not answer GET /: %v\n%s", err, s.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.admin = s.token("", true)
}

func (s *server) token(tenant string, admin bool) string {
	s.t.Helper()
	tok, err := s.signer.Mint(auth.TokenClaims{Issuer: s.issuer, Audience: audience, Subject: "e2e",
		TenantID: tenant, Scopes: []string{"tenant.read", "tenant.manage", "audit.read", "audit.write", "platform.ops"}, PlatformAdmin: admin}, time.Hour)
	if err != nil {
		s.t.Fatal(err)
	}
	return tok
}

type reply struct {
	Code int
	Hdr  http.Header
	Body []byte
}

func (r reply) JSON(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("body %q: %v", r.Body, err)
	}
	return m
}

// call sends a forwarded HTTP request (the original path under /api, as the host forwards it).
func (s *server) call(method, path, token string, body any, hdr map[string]string) reply {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		rd = bytes.NewReader(raw)
	}
	req, _ := http.NewRequest(method, s.base+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{Code: resp.StatusCode, Hdr: resp.Header, Body: b}
}

// invoke posts a host-shaped invocation to /<function> with the host's headers.
func (s *server) invoke(function string, body []byte) reply {
	s.t.Helper()
	req, _ := http.NewRequest("POST", s.base+"/"+function, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Azure-Functions-InvocationId", "6f1c3b0e-2b7c-4f7e-9d61-6a0e1d2c3b4a")
	req.Header.Set("X-Azure-Functions-HostVersion", "4.1037.0")
	req.Header.Set("User-Agent", "Azure-Functions-Host/4.1037.0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{Code: resp.StatusCode, Hdr: resp.Header, Body: b}
}

var seq atomic.Int64

func init() { seq.Store(time.Now().UnixNano() % 1_000_000) }

func slug(prefix string) string { return fmt.Sprintf("%s-%d", prefix, seq.Add(1)) }

func (s *server) register(slugValue, edition string) string {
	s.t.Helper()
	r := s.call("POST", "/api/tenants", s.admin, map[string]string{"name": "E2E " + slugValue, "slug": slugValue,
		"editionCode": edition, "ownerEmail": "owner@" + slugValue + ".example"}, nil)
	if r.Code != http.StatusCreated {
		s.t.Fatalf("register: %d %s", r.Code, r.Body)
	}
	return r.JSON(s.t)["id"].(string)
}

func hostTimerBody(t *testing.T, method string) []byte {
	t.Helper()
	// The host's example, kept in the repository (a clone has no ../shared beside it).
	raw, err := os.ReadFile(filepath.Join(repo, "shared", "functions", "testdata", "host-protocol", "timer-invocation.json"))
	if err != nil {
		t.Fatalf("the host example: %v", err)
	}
	return bytes.Replace(raw, []byte(`"OutboxDrain"`), []byte(`"`+method+`"`), 1)
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
