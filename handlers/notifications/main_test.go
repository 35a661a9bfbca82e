package notifications

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"spine/shared/blob"
	"spine/shared/events"
	"spine/shared/functions"
	"spine/shared/httpx"
	spinemail "spine/shared/mail"
	"spine/shared/mail/smtpsink"
	"spine/shared/problem"
	"spine/shared/secrets"
	"spine/shared/secrets/kvfake"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
	"spine/shared/testenv"
	"spine/shared/testenv/apitest"
)

// testDB is this package's fresh database (platform schema + notifications' migrations).
var testDB *testenv.Database

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, service, &testDB)) }

// clock is a settable clock: tests move it past retry delays instead of sleeping.
type clock struct{ offset atomic.Int64 }

func (c *clock) now() time.Time       { return sqlstore.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) move(d time.Duration) { c.offset.Add(int64(d)) }

// harness is the notifications API wired as the module wires it: the package database, Azurite
// (the stack's), the Key Vault fake over TLS, an in-process SMTP sink, and a log buffer.
type harness struct {
	t      *testing.T
	e      *echo.Echo
	svc    *Service
	api    *API
	rt     *sqlstore.DB
	blobs  *blob.Store
	vault  *secrets.Vault
	kv     *kvfake.TestServer
	sink   *smtpsink.Sink
	tokens *apitest.Tokens
	dir    *testenv.Directory
	clock  *clock
	logs   *bytes.Buffer
}

// retryScale compresses the Svix schedule in tests (27.7 h → about 100 s of clock moves).
const retryScale = 0.001

func newHarness(t *testing.T, tweak ...func(*ServiceConfig)) *harness {
	t.Helper()
	bs := testenv.Blobs(t, BodiesContainer, AttachmentsContainer)
	kv := kvfake.NewTLSServer(t)
	vault, err := secrets.Open(secrets.Config{VaultURL: kv.URL, CAFile: kv.CAFile, MaxRetries: -1, Service: service})
	if err != nil {
		t.Fatal(err)
	}
	sink, err := smtpsink.Start("127.0.0.1:0", t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sink.Close() })
	rt := testDB.OpenRuntime(t, sqlstore.PoolConfig{})
	clk := &clock{}
	dir := testenv.NewDirectory()
	logs := &bytes.Buffer{}
	logger := slog.New(slog.NewJSONHandler(&lockedWriter{w: logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg := ServiceConfig{RetryScale: retryScale, AllowLoopback: true, VaultName: kv.URL, Now: clk.now, EndpointDisableAfter: 120 * time.Hour}
	for _, f := range tweak {
		f(&cfg)
	}
	svc := NewService(NewStore(rt), bs, vault, spinemail.NewSMTP(spinemail.SMTPConfig{Addr: sink.Addr()}), dir, nil, cfg, logger)
	h := &harness{t: t, rt: rt, blobs: bs, vault: vault, kv: kv, sink: sink, tokens: apitest.NewTokens(t), dir: dir, clock: clk, logs: logs}
	h.mount(svc, logger)
	return h
}

// mount serves svc's API as the harness's routes (a test swaps in a service over failing parts).
func (h *harness) mount(svc *Service, logger *slog.Logger) {
	h.svc, h.api, h.e = svc, NewAPI(svc, h.rt), echo.New()
	_, sec := httpx.NewAPI(h.e, httpx.APIConfig{Verifier: h.tokens.Verifier(h.t), MaxBodyBytes: 16 << 20, Mappers: []problem.Mapper{MapError},
		Logger: logger})
	h.api.Routes(sec)
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (h *harness) do(method, path, token string, body any, hdr ...string) apitest.Response {
	h.t.Helper()
	return apitest.Do(h.t, h.e, method, path, token, body, hdr...)
}

func (h *harness) must(want int, method, path, token string, body any, hdr ...string) apitest.Response {
	h.t.Helper()
	r := h.do(method, path, token, body, hdr...)
	if r.Code != want {
		h.t.Fatalf("%s %s: %d %s, want %d", method, path, r.Code, r.Body, want)
	}
	return r
}

func decode[T any](t *testing.T, body []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	return v
}

// tenantFixture is an Active tenant with an administrator's token (every scope) and a reader's.
type tenantFixture struct {
	id     tenancy.TenantID
	admin  string
	reader string
}

func (h *harness) tenant() tenantFixture {
	h.t.Helper()
	id := tenancy.NewTenantID()
	h.dir.Set(id, tenancy.StatusActive)
	return tenantFixture{id: id, admin: h.tokens.Mint(h.t, id.String(), false, ScopeRead, ScopeSend, ScopeManage),
		reader: h.tokens.Mint(h.t, id.String(), false, ScopeRead)}
}

// receiver is a local webhook receiver: it records every request and answers the statuses
// queued (200 once the queue is empty).
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	statuses []int
	got      []received
}

type received struct {
	Header http.Header
	Body   []byte
}

func newReceiver(t *testing.T, statuses ...int) *receiver {
	r := &receiver{statuses: statuses}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.got = append(r.got, received{Header: req.Header.Clone(), Body: body})
		code := http.StatusOK
		if len(r.statuses) > 0 {
			code, r.statuses = r.statuses[0], r.statuses[1:]
		}
		r.mu.Unlock()
		w.WriteHeader(code)
		_, _ = w.Write([]byte("receiver-response-body-never-logged"))
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) requests() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

// createEndpoint creates a webhook endpoint at url through the API and returns it with its secret.
func (h *harness) createEndpoint(f tenantFixture, url string) endpointJSON {
	h.t.Helper()
	r := h.must(http.StatusCreated, "POST", "/api/webhook-endpoints", f.admin, map[string]any{"url": url})
	return decode[endpointJSON](h.t, r.Body)
}

// send posts a notification and returns the answer.
func (h *harness) send(f tenantFixture, body map[string]any) notificationJSON {
	h.t.Helper()
	r := h.must(http.StatusAccepted, "POST", "/api/notifications", f.admin, body)
	return decode[notificationJSON](h.t, r.Body)
}

// get reads a notification through the API.
func (h *harness) get(f tenantFixture, id string) notificationJSON {
	h.t.Helper()
	return decode[notificationJSON](h.t, h.must(http.StatusOK, "GET", "/api/notifications/"+id, f.reader, nil).Body)
}

// outboxEvents returns the tenant's events in the outbox, in order (nothing drains them here).
func (h *harness) outboxEvents(tenant tenancy.TenantID) []events.Event {
	return testenv.Outbox(h.t, h.rt, tenant)
}

func (h *harness) outboxTypes(tenant tenancy.TenantID) []string {
	var out []string
	for _, ev := range h.outboxEvents(tenant) {
		out = append(out, ev.Type)
	}
	return out
}

// requested returns the NotificationRequested event of notification id from the outbox.
func (h *harness) requested(tenant tenancy.TenantID, id string) events.Event {
	h.t.Helper()
	for _, ev := range h.outboxEvents(tenant) {
		if ev.Type == "NotificationRequested" && ev.Subject == id {
			return ev
		}
	}
	h.t.Fatalf("no NotificationRequested for %s in the outbox", id)
	return events.Event{}
}

// dispatch hands NotificationDispatch one event in the host's encoding, as the host does.
func (h *harness) dispatch(ev events.Event) {
	h.t.Helper()
	body, _ := json.Marshal(ev)
	d, meta := functions.ServiceBusMessage(body, functions.EncodingString, functions.ServiceBusMetadata{MessageID: ev.ID,
		DeliveryCount: 1, EnqueuedTimeUTC: time.Now(), ApplicationProperties: map[string]any{"tenantId": ev.TenantID}})
	raw, _ := json.Marshal(map[string]any{"Data": map[string]any{functions.ServiceBusBinding: d}, "Metadata": meta})
	var inv functions.Invocation
	if err := json.Unmarshal(raw, &inv); err != nil {
		h.t.Fatal(err)
	}
	inv.FunctionName = "NotificationDispatch"
	if _, err := h.api.dispatch(context.Background(), &inv); err != nil {
		h.t.Fatal(err)
	}
}

// sendAndDispatch sends a notification and runs its first attempt as NotificationDispatch.
func (h *harness) sendAndDispatch(f tenantFixture, body map[string]any) notificationJSON {
	h.t.Helper()
	n := h.send(f, body)
	h.dispatch(h.requested(f.id, n.ID))
	return h.get(f, n.ID)
}

// retryAfter moves the clock past the notification's next attempt and runs NotificationRetries.
func (h *harness) retryAfter(f tenantFixture, id string) notificationJSON {
	h.t.Helper()
	n := h.get(f, id)
	if n.NextAttemptAt == nil {
		h.t.Fatalf("notification %s has no next attempt (status %s)", id, n.Status)
	}
	if d := n.NextAttemptAt.Sub(h.clock.now()); d > 0 {
		h.clock.move(d + time.Millisecond)
	}
	return h.retriesUntilAttempted(f, id, n.Attempts)
}

// retriesUntilAttempted runs NotificationRetries until notification id has more than attempts
// attempts and returns it. The package's tests share one database: rows other tests left due may
// be older and fill a run's batch (RetryBatch, RetryPerTenant), so it may take a few runs.
func (h *harness) retriesUntilAttempted(f tenantFixture, id string, attempts int) notificationJSON {
	h.t.Helper()
	for range 50 {
		if _, err := h.api.retries(context.Background(), &functions.Invocation{FunctionName: "NotificationRetries"}); err != nil {
			h.t.Fatal(err)
		}
		if n := h.get(f, id); n.Attempts > attempts {
			return n
		}
	}
	h.t.Fatalf("notification %s not attempted again in 50 NotificationRetries runs", id)
	return notificationJSON{}
}
