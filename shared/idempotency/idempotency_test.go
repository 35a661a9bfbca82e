package idempotency_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/labstack/echo/v4"

	"spine/shared/events"
	"spine/shared/httpx"
	"spine/shared/idempotency"
	"spine/shared/outbox"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
	"spine/shared/testenv"
	"spine/shared/testenv/apitest"
)

var testDB *testenv.Database

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, "tenants", &testDB)) }

// harness serves POST /api/things, whose effect (one outbox row) claims the key in its
// transaction, behind the Middleware, wired as a service wires it.
type harness struct {
	t       *testing.T
	e       *echo.Echo
	db      *sqlstore.DB
	tokens  *apitest.Tokens
	token   string
	effects atomic.Int32
	tenant  tenancy.TenantID
}

func newHarness(t *testing.T) *harness {
	db := testDB.OpenRuntime(t, sqlstore.PoolConfig{})
	tokens := apitest.NewTokens(t)
	h := &harness{t: t, e: echo.New(), db: db, tokens: tokens, tenant: tenancy.NewTenantID()}
	h.token = tokens.Mint(t, h.tenant.String(), false, "things.write")
	_, api := httpx.NewAPI(h.e, httpx.APIConfig{Verifier: tokens.Verifier(t), MaxBodyBytes: 64 << 10})
	api.POST("/things", func(c echo.Context) error {
		var body struct {
			Name string      `json:"name"` // member names are case-sensitive (httpx.DecodeJSON)
			N    json.Number `json:"n,omitempty"`
		}
		if err := httpx.DecodeJSON(c, &body); err != nil {
			return err
		}
		ctx := c.Request().Context()
		ev, err := events.New("tenants", "ThingCreated", h.tenant.String(), h.tenant.String(), body, events.Meta{})
		if err != nil {
			return err
		}
		if err := db.InTx(ctx, sqlstore.TenantScope(h.tenant), func(tx *sqlstore.Tx) error {
			if err := idempotency.Claim(ctx, tx); err != nil {
				return err
			}
			return outbox.Emit(ctx, tx, ev)
		}); err != nil {
			return err
		}
		h.effects.Add(1)
		c.Response().Header().Set("Location", "/api/things/"+ev.ID)
		return c.JSON(http.StatusCreated, map[string]string{"id": ev.ID, "name": body.Name})
	}, idempotency.Middleware(db))
	return h
}

func (h *harness) post(body, key string) apitest.Response {
	h.t.Helper()
	return h.postAs(h.token, "/api/things", body, key)
}

func (h *harness) postAs(token, path, body, key string) apitest.Response {
	h.t.Helper()
	hdr := []string{}
	if key != "" {
		hdr = append(hdr, "Idempotency-Key", key)
	}
	return apitest.Do(h.t, h.e, "POST", path, token, body, hdr...)
}

func TestIdempotencyKey_ReplaysTheFirstResponseOnce(t *testing.T) {
	h := newHarness(t)
	first := h.post(`{"name":"a"}`, "k1")
	// The same request written differently is the same request.
	again := h.post("{ \"name\" : \"a\" }", "k1")
	if first.Code != 201 || again.Code != 201 || string(first.Body) != string(again.Body) ||
		again.Header.Get("Idempotent-Replayed") != "true" || again.Header.Get("Location") != first.Header.Get("Location") ||
		again.Header.Get("Content-Type") != first.Header.Get("Content-Type") {
		t.Fatalf("first %d %s %v\nagain %d %s %v", first.Code, first.Body, first.Header, again.Code, again.Body, again.Header)
	}
	if n := h.effects.Load(); n != 1 {
		t.Fatalf("%d effects, want 1", n)
	}
	if r := h.post(`{"name":"b"}`, "k1"); r.Code != http.StatusUnprocessableEntity || r.ProblemCode(t) != "idempotency-key-reused" {
		t.Fatalf("another body, same key: %d %s", r.Code, r.Body)
	}
	if r := h.post(`{"name":"b"}`, ""); r.Code != 201 || h.effects.Load() != 2 {
		t.Fatalf("no key: %d %s", r.Code, r.Body)
	}
	for _, bad := range []string{"has space", string(make([]byte, 201))} {
		if r := h.post(`{"name":"c"}`, bad); r.Code != http.StatusBadRequest || r.ProblemCode(t) != "invalid-idempotency-key" {
			t.Fatalf("key %q: %d %s", bad, r.Code, r.Body)
		}
	}
}

// Concurrent requests with one key: exactly one effect; every answer is the first response
// replayed, or 409 while the first has not answered yet.
func TestIdempotencyKey_ConcurrentRequestsHaveOneEffect(t *testing.T) {
	h := newHarness(t)
	const n = 8
	var wg sync.WaitGroup
	answers := make([]apitest.Response, n)
	for i := range n {
		wg.Go(func() { answers[i] = h.post(`{"name":"same"}`, "race") })
	}
	wg.Wait()
	if got := h.effects.Load(); got != 1 {
		t.Fatalf("%d effects for one key, want 1", got)
	}
	var id string
	for _, r := range answers {
		switch r.Code {
		case http.StatusCreated:
			var b struct{ ID string }
			_ = json.Unmarshal(r.Body, &b)
			if id != "" && b.ID != id {
				t.Fatalf("two different resources answered: %s and %s", id, b.ID)
			}
			id = b.ID
		case http.StatusConflict:
			if r.ProblemCode(t) != "idempotency-request-in-progress" || r.Header.Get("Retry-After") == "" {
				t.Fatalf("409 without its code or Retry-After: %s", r.Body)
			}
		default:
			t.Fatalf("unexpected answer %d %s", r.Code, r.Body)
		}
	}
	if id == "" {
		t.Fatal("no request answered 201")
	}
	if r := h.post(`{"name":"same"}`, "race"); r.Code != 201 {
		t.Fatalf("after the race the key replays: %d %s", r.Code, r.Body)
	}
}

// A key belongs to its caller — tenant and subject — and names one request: tokens of two tenants
// that share a subject never share a key, the same body aimed elsewhere (?tenantId=) is another
// request, and so are numbers that differ past float64's precision.
func TestIdempotencyKey_OwnedByTenantAndSubjectAndWholeRequest(t *testing.T) {
	h := newHarness(t)
	other := h.tokens.MintAs(t, "same-subject", tenancy.NewTenantID().String(), false, "things.write")
	mine := h.tokens.MintAs(t, "same-subject", h.tenant.String(), false, "things.write")
	a := h.postAs(mine, "/api/things", `{"name":"x"}`, "shared")
	b := h.postAs(other, "/api/things", `{"name":"x"}`, "shared")
	if a.Code != 201 || b.Code != 201 || string(a.Body) == string(b.Body) || b.Header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("two tenants, one subject and key: %d %s / %d %s", a.Code, a.Body, b.Code, b.Body)
	}
	if r := h.postAs(mine, "/api/things?tenantId=elsewhere", `{"name":"x"}`, "shared"); r.Code != http.StatusUnprocessableEntity {
		t.Fatalf("same key and body, another query: %d %s, want 422", r.Code, r.Body)
	}
	if r := h.post(`{"name":"n","n":9007199254740993}`, "big"); r.Code != 201 {
		t.Fatalf("%d %s", r.Code, r.Body)
	}
	if r := h.post(`{"name":"n","n":9007199254740992}`, "big"); r.Code != http.StatusUnprocessableEntity {
		t.Fatalf("a number past float64's precision: %d %s, want 422", r.Code, r.Body)
	}
}

// A claimed key whose response was never recorded (the process stopped between the commit and
// the record) answers "in progress" for a while, then a final 409 that says to read the resource.
func TestIdempotencyKey_409_ResponseLostAfterAWhile(t *testing.T) {
	h := newHarness(t)
	caller := h.tenant.String() + "|user-" + h.tenant.String()
	for _, tc := range []struct {
		age  string
		code string
	}{{"1 second", "idempotency-request-in-progress"}, {"1 minute", "idempotency-response-lost"}} {
		key := "orphan-" + tc.code
		// The request as the Middleware fingerprints it; only its claim is left behind.
		if probe := h.post(`{"name":"o"}`, "probe-"+key); probe.Code != 201 {
			t.Fatalf("probe: %d %s", probe.Code, probe.Body)
		}
		var hash []byte
		if err := h.db.InReadTx(context.Background(), sqlstore.PlatformScope(), func(tx *sqlstore.Tx) error {
			return tx.QueryRowContext(context.Background(), `SELECT request_hash FROM idempotency_keys WHERE key = $1`, "probe-"+key).Scan(&hash)
		}); err != nil {
			t.Fatal(err)
		}
		if err := h.db.InTx(context.Background(), sqlstore.PlatformScope(), func(tx *sqlstore.Tx) error {
			_, err := tx.ExecContext(context.Background(), `INSERT INTO idempotency_keys (caller, key, scope, request_hash, status_code, response_body, headers, created_at)
				VALUES ($1, $2, 'POST /api/things', $3, 0, ''::bytea, '', now() - $4::interval)`, caller, key, hash, tc.age)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		r := h.post(`{"name":"o"}`, key)
		if r.Code != http.StatusConflict || r.ProblemCode(t) != tc.code {
			t.Fatalf("claim aged %s: %d %s, want 409 %s", tc.age, r.Code, r.Body, tc.code)
		}
	}
}
