package integrations

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"spine/shared/events"
	"spine/shared/functions"
	"spine/shared/httpx"
	"spine/shared/problem"
	"spine/shared/secrets"
	"spine/shared/secrets/kvfake"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
	"spine/shared/testenv"
	"spine/shared/testenv/apitest"
)

// testDB is this package's fresh database (platform schema + integrations' migrations).
var testDB *testenv.Database

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, "integrations", &testDB)) }

// lockedBuffer collects the logs (slog at debug level) of the service and the API edge.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// recordingVault is the real Vault (over the Key Vault fake) noting the names it was asked to
// write, so a test can look for a secret whose connection was never created.
type recordingVault struct {
	*secrets.Vault
	mu  sync.Mutex
	set []string
}

func (v *recordingVault) Set(ctx context.Context, name, value, ct string, tags map[string]string) (secrets.Secret, error) {
	v.mu.Lock()
	v.set = append(v.set, name)
	v.mu.Unlock()
	return v.Vault.Set(ctx, name, value, ct, tags)
}

func (v *recordingVault) names() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]string(nil), v.set...)
}

// harness is the integrations API wired as app.go wires it, over the package database and a Key
// Vault fake over TLS; loopback targets allowed (the test servers listen there).
type harness struct {
	t      *testing.T
	e      *echo.Echo
	svc    *Service
	api    *API
	rt     *sqlstore.DB
	tokens *apitest.Tokens
	dir    *testenv.Directory
	kv     *kvfake.TestServer
	vault  *recordingVault
	logs   *lockedBuffer
	// responses are every response's headers and body, for the secret scan.
	responses *lockedBuffer
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	kv := kvfake.NewTLSServer(t)
	v, err := secrets.Open(secrets.Config{VaultURL: kv.URL, CAFile: kv.CAFile, MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	vault := &recordingVault{Vault: v.For(service)}
	logs := &lockedBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	rt := testDB.OpenRuntime(t, sqlstore.PoolConfig{})
	dir := testenv.NewDirectory()
	svc := NewService(NewStore(rt), vault, DefaultRegistry(), dir, ServiceConfig{VaultURL: kv.URL, AllowLoopback: true}, logger)
	api := NewAPI(svc, rt)
	tokens := apitest.NewTokens(t)
	e := echo.New()
	_, sec := httpx.NewAPI(e, httpx.APIConfig{Verifier: tokens.Verifier(t), MaxBodyBytes: 64 << 10,
		Mappers: []problem.Mapper{MapError}, Logger: logger})
	api.Routes(sec)
	return &harness{t: t, e: e, svc: svc, api: api, rt: rt, tokens: tokens, dir: dir, kv: kv, vault: vault, logs: logs,
		responses: &lockedBuffer{}}
}

func (h *harness) do(method, path, token string, body any, hdr ...string) apitest.Response {
	h.t.Helper()
	r := apitest.Do(h.t, h.e, method, path, token, body, hdr...)
	fmt.Fprintf(h.responses, "%d %v\n%s\n", r.Code, r.Header, r.Body)
	return r
}

// must sends a request and fails the test unless it answers want.
func (h *harness) must(want int, method, path, token string, body any, hdr ...string) apitest.Response {
	h.t.Helper()
	r := h.do(method, path, token, body, hdr...)
	if r.Code != want {
		h.t.Fatalf("%s %s: %d %s, want %d", method, path, r.Code, r.Body, want)
	}
	return r
}

// tenantFixture is an Active tenant with tokens of its administrator (tenant.read and
// tenant.manage) and of a reader (tenant.read only).
type tenantFixture struct {
	id     tenancy.TenantID
	admin  string
	reader string
}

func (h *harness) tenant() tenantFixture {
	h.t.Helper()
	id := tenancy.NewTenantID()
	h.dir.Set(id, tenancy.StatusActive)
	return tenantFixture{id: id, admin: h.tokens.Mint(h.t, id.String(), false, ScopeRead, ScopeManage),
		reader: h.tokens.Mint(h.t, id.String(), false, ScopeRead)}
}

func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return v
}

// target is a local HTTP API the http connector calls: it answers 200 on every path when the
// request carries the credential it expects, 401 otherwise, and counts the requests by path.
type target struct {
	*httptest.Server
	mu     sync.Mutex
	auth   string // the Authorization header it expects
	hits   map[string]int
	status int // answered to an authorised request (default 200)
}

func newTarget(t *testing.T) *target {
	tg := &target{hits: map[string]int{}, status: http.StatusOK}
	tg.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tg.mu.Lock()
		defer tg.mu.Unlock()
		tg.hits[r.URL.Path]++
		if r.Header.Get("Authorization") != tg.auth {
			// The body repeats what it got: the service must never show or keep it.
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprintf(w, "unauthorised: %s", r.Header.Get("Authorization"))
			return
		}
		w.WriteHeader(tg.status)
		fmt.Fprintf(w, "ok, you sent %s", r.Header.Get("Authorization"))
	}))
	t.Cleanup(tg.Close)
	return tg
}

func (tg *target) expectBearer(token string) {
	tg.mu.Lock()
	tg.auth = "Bearer " + token
	tg.mu.Unlock()
}
func (tg *target) expectBasic(user, pw string) {
	tg.mu.Lock()
	tg.auth = "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pw))
	tg.mu.Unlock()
}
func (tg *target) hitsOf(path string) int { tg.mu.Lock(); defer tg.mu.Unlock(); return tg.hits[path] }

// bearerBody is a create request of an http connection with bearer auth against base.
func bearerBody(name, base, secret string) map[string]any {
	return map[string]any{"type": "http", "name": name, "secret": secret,
		"settings": map[string]any{"baseUrl": base, "healthPath": "/health", "syncPath": "/sync", "authScheme": "bearer"}}
}

// create creates a connection through the API and returns it.
func (h *harness) create(f tenantFixture, body map[string]any) connectionJSON {
	h.t.Helper()
	return decode[connectionJSON](h.t, h.must(http.StatusCreated, "POST", "/api/integrations", f.admin, body).Body)
}

// outbox returns the tenant's outbox rows (type and data) in order.
func (h *harness) outbox(tenant tenancy.TenantID) []events.Event {
	return testenv.Outbox(h.t, h.rt, tenant)
}

// deliver hands IntegrationSync one event, in the host's encoding, and returns its answer.
func (h *harness) deliver(ev events.Event) (*functions.Result, error) {
	h.t.Helper()
	body, _ := json.Marshal(ev)
	d, meta := functions.ServiceBusMessage(body, functions.EncodingString, functions.ServiceBusMetadata{MessageID: ev.ID,
		DeliveryCount: 1, EnqueuedTimeUTC: time.Now(), ApplicationProperties: map[string]any{"tenantId": ev.TenantID}})
	raw, _ := json.Marshal(map[string]any{"Data": map[string]any{functions.ServiceBusBinding: d}, "Metadata": meta})
	var inv functions.Invocation
	if err := json.Unmarshal(raw, &inv); err != nil {
		h.t.Fatal(err)
	}
	inv.FunctionName = "IntegrationSync"
	return h.api.onSyncRequested(context.Background(), &inv)
}

// lastOfType is the tenant's last outbox event of typ.
func (h *harness) lastOfType(tenant tenancy.TenantID, typ string) events.Event {
	h.t.Helper()
	evs := h.outbox(tenant)
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].Type == typ {
			return evs[i]
		}
	}
	h.t.Fatalf("no %s in the outbox: %d events", typ, len(evs))
	return events.Event{}
}

// fault503 makes the vault's next request answer 503 (the harness's vault client does not
// retry: one failed call).
var fault503 = kvfake.Fault{Status: http.StatusServiceUnavailable, Count: 1}
