package idempotency_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

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

// The package runs against a real service database (any: every one has the platform schema's
// idempotency_keys); identity's is used here.
var db *testenv.Database

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, "identity", &db)) }

// harness is an authenticated API with one creating route behind the Middleware: each request
// that gets through writes one outbox row (its effect) and claims its key in that transaction.
type harness struct {
	e      *echo.Echo
	rt     *sqlstore.DB
	tokens *apitest.Tokens
	tenant tenancy.TenantID
	// gate, when set, holds every effect until it is closed (concurrency tests).
	gate chan struct{}
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{e: echo.New(), rt: db.OpenRuntime(t, sqlstore.PoolConfig{}), tokens: apitest.NewTokens(t), tenant: tenancy.NewTenantID()}
	_, api := httpx.NewAPI(h.e, httpx.APIConfig{Verifier: h.tokens.Verifier(t), MaxBodyBytes: 1 << 16})
	api.POST("/things", func(c echo.Context) error {
		var body map[string]any
		if err := httpx.DecodeJSON(c, &body); err != nil {
			return err
		}
		ctx := c.Request().Context()
		id := time.Now().UTC().Format(time.RFC3339Nano)
		err := h.rt.InTx(ctx, sqlstore.TenantScope(h.tenant), func(tx *sqlstore.Tx) error {
			if err := idempotency.Claim(ctx, tx); err != nil {
				return err
			}
			if h.gate != nil {
				<-h.gate
			}
			ev, err := events.New("test", "ThingCreated", id, h.tenant.String(), body, events.Meta{})
			if err != nil {
				return err
			}
			return outbox.Emit(ctx, tx, ev)
		})
		if err != nil {
			return err
		}
		if body["secret"] != nil {
			idempotency.ReplayBody(ctx, []byte(`{"id":"`+id+`"}`))
		}
		c.Response().Header().Set("Location", "/api/things/"+id)
		httpx.SetETag(c, 1)
		return c.JSON(http.StatusCreated, map[string]any{"id": id, "secret": body["secret"]})
	}, idempotency.Middleware(h.rt))
	return h
}

func (h *harness) effects(t *testing.T) int {
	t.Helper()
	var n int
	if err := h.rt.InReadTx(context.Background(), sqlstore.TenantScope(h.tenant), func(tx *sqlstore.Tx) error {
		return tx.QueryRowContext(context.Background(), `SELECT count(*) FROM outbox WHERE tenant_id = $1`, h.tenant.String()).Scan(&n)
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

func (h *harness) post(t *testing.T, token, key string, body any) apitest.Response {
	t.Helper()
	return apitest.Do(t, h.e, "POST", "/api/things", token, body, "Idempotency-Key", key)
}

func TestMiddleware_ReplaysTheFirstResponse(t *testing.T) {
	h := newHarness(t)
	tok := h.tokens.Mint(t, h.tenant.String(), false)
	first := h.post(t, tok, "k-replay", map[string]any{"n": 1, "s": "a"})
	if first.Code != http.StatusCreated || first.Header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("first: %d %s %v", first.Code, first.Body, first.Header)
	}
	// The same request written differently (member order, spacing) is the same request.
	again := h.post(t, tok, "k-replay", `{ "s": "a",  "n": 1 }`)
	if again.Code != http.StatusCreated || string(again.Body) != string(first.Body) || again.Header.Get("Idempotent-Replayed") != "true" ||
		again.Header.Get("Location") != first.Header.Get("Location") || again.Header.Get("ETag") != `"1"` {
		t.Fatalf("replay: %d %s %v", again.Code, again.Body, again.Header)
	}
	if n := h.effects(t); n != 1 {
		t.Fatalf("%d effects, want 1", n)
	}
	// Keys belong to their caller: another subject's same key is a new request.
	other := h.post(t, h.tokens.MintAs(t, "someone-else", h.tenant.String(), false), "k-replay", map[string]any{"n": 1, "s": "a"})
	if other.Code != http.StatusCreated || other.Header.Get("Idempotent-Replayed") != "" || h.effects(t) != 2 {
		t.Fatalf("another caller's key: %d %s", other.Code, other.Body)
	}
}

func TestMiddleware_422OnAnotherBody(t *testing.T) {
	h := newHarness(t)
	tok := h.tokens.Mint(t, h.tenant.String(), false)
	if r := h.post(t, tok, "k-422", map[string]any{"n": 1}); r.Code != http.StatusCreated {
		t.Fatalf("%d %s", r.Code, r.Body)
	}
	r := h.post(t, tok, "k-422", map[string]any{"n": 2})
	if r.Code != http.StatusUnprocessableEntity || r.ProblemCode(t) != "idempotency-key-reused" || h.effects(t) != 1 {
		t.Fatalf("%d %s, %d effects", r.Code, r.Body, h.effects(t))
	}
	if r := h.post(t, tok, "bad key with spaces", map[string]any{"n": 1}); r.Code != http.StatusBadRequest || r.ProblemCode(t) != "invalid-idempotency-key" {
		t.Fatalf("%d %s", r.Code, r.Body)
	}
}

// Concurrent requests with one key have one effect: the first claims the key in its change's
// transaction, the others wait on the claim and are answered as repeats (the stored response,
// or 409 while the first has not answered yet).
func TestMiddleware_ConcurrentSameKeyHaveOneEffect(t *testing.T) {
	h := newHarness(t)
	tok := h.tokens.Mint(t, h.tenant.String(), false)
	h.gate = make(chan struct{})
	const n = 8
	var wg sync.WaitGroup
	codes := make([]int, n)
	bodies := make([]string, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := h.post(t, tok, "k-race", map[string]any{"n": 1})
			codes[i], bodies[i] = r.Code, string(r.Body)
		}()
	}
	time.Sleep(300 * time.Millisecond) // every request is inside its transaction or waiting on the claim
	close(h.gate)
	wg.Wait()
	if got := h.effects(t); got != 1 {
		t.Fatalf("%d effects, want 1 (codes %v)", got, codes)
	}
	created := 0
	for i, c := range codes {
		switch c {
		case http.StatusCreated:
			created++
		case http.StatusConflict: // still in progress when it looked
		default:
			t.Errorf("request %d: %d %s", i, c, bodies[i])
		}
	}
	if created == 0 {
		t.Fatalf("no request answered 201: %v", codes)
	}
	// Once the first has answered, every repeat replays it.
	r := h.post(t, tok, "k-race", map[string]any{"n": 1})
	if r.Code != http.StatusCreated || r.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("after the race: %d %s", r.Code, r.Body)
	}
}

// A route that shows a secret once records its replay without it.
func TestReplayBody_KeepsTheSecretOutOfTheRecord(t *testing.T) {
	h := newHarness(t)
	tok := h.tokens.Mint(t, h.tenant.String(), false)
	first := h.post(t, tok, "k-secret", map[string]any{"secret": "s3cr3t"})
	var m map[string]any
	if err := json.Unmarshal(first.Body, &m); err != nil || m["secret"] != "s3cr3t" {
		t.Fatalf("first: %d %s", first.Code, first.Body)
	}
	again := h.post(t, tok, "k-secret", map[string]any{"secret": "s3cr3t"})
	if again.Code != http.StatusCreated || again.Header.Get("Idempotent-Replayed") != "true" || string(again.Body) != `{"id":"`+m["id"].(string)+`"}` {
		t.Fatalf("replay: %d %s", again.Code, again.Body)
	}
	owner := db.OpenOwner(t, sqlstore.PoolConfig{MaxOpen: 1})
	var stored string
	if err := owner.QueryRow(`SELECT convert_from(response_body, 'UTF8') FROM idempotency_keys WHERE key = 'k-secret'`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored != `{"id":"`+m["id"].(string)+`"}` {
		t.Fatalf("stored %q", stored)
	}
}
