package config

import (
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"spine/shared/sqlstore"
	"spine/shared/tenancy"
	"spine/shared/testenv/apitest"
)

// silentDB is a runtime pool whose server accepts connections and never answers (a frozen
// PostgreSQL, without freezing the shared one): every statement waits until its context ends.
func silentDB(t *testing.T) *sqlstore.DB {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var held []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	cfg, err := pgx.ParseConfig("postgres://config_app:x@" + ln.Addr().String() + "/config?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	db := stdlib.OpenDB(*cfg)
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range held {
			_ = c.Close()
		}
		mu.Unlock()
		_ = db.Close()
	})
	return &sqlstore.DB{DB: db, Dialect: sqlstore.Postgres, Service: service}
}

// answered runs a request and fails the test if it has not answered within a bound far above the
// configured timeouts: the point is "an answer, not a hang", not how fast.
func answered(t *testing.T, h *harness, method, path, token string, body any) apitest.Response {
	t.Helper()
	ch := make(chan apitest.Response, 1)
	go func() { ch <- apitest.Do(t, h.e, method, path, token, body) }()
	select {
	case r := <-ch:
		return r
	case <-time.After(30 * time.Second):
		t.Fatalf("%s %s: no answer within 30s while the database does not answer", method, path)
		return apitest.Response{}
	}
}

// A database that never answers and no copy of the tenant's set: OFREP answers its 500
// {errorDetails} once SetLoadTimeout runs out, instead of waiting on the database.
func TestOFREP_500_DatabaseNotAnsweringIsBoundedBySetLoadTimeout(t *testing.T) {
	h := newHarness(t, harnessOpts{redisURL: "redis://127.0.0.1:1/0"})
	h.svc.store = NewStore(silentDB(t))
	h.svc.cfg.SetLoadTimeout = 200 * time.Millisecond
	tok := h.tenantToken(tenancy.NewTenantID())
	for _, path := range []string{"/api/ofrep/v1/evaluate/flags/x", "/api/ofrep/v1/evaluate/flags"} {
		r := answered(t, h, "POST", path, tok, map[string]any{"context": map[string]any{}})
		if m := r.JSON(t); r.Code != http.StatusInternalServerError || m["errorDetails"] != "flag evaluation is unavailable; retry later" || len(m) != 1 {
			t.Fatalf("%s: %d %s", path, r.Code, r.Body)
		}
	}
}

// The same database on the other routes: 503 once the edge's request deadline runs out (the
// deadline every service's /api requests get).
func TestConfigRoutes_503_DatabaseNotAnsweringIsBoundedByTheRequestDeadline(t *testing.T) {
	h := newHarness(t, harnessOpts{redisURL: "redis://127.0.0.1:1/0", requestTimeout: 200 * time.Millisecond})
	h.svc.store = NewStore(silentDB(t))
	a := tenancy.NewTenantID()
	for _, rq := range []struct {
		method, path, token string
		body                any
	}{
		{"GET", "/api/feature-flags", h.admin(), nil},
		{"PUT", "/api/feature-flags/" + newKey("slow"), h.admin(), boolFlagBody()},
		{"GET", "/api/settings/s", h.tenantToken(a), nil},
		{"PUT", "/api/settings/s", h.tenantToken(a), map[string]any{"value": 1}},
	} {
		r := answered(t, h, rq.method, rq.path, rq.token, rq.body)
		if r.Code != http.StatusServiceUnavailable || r.ProblemCode(t) != "timeout" {
			t.Fatalf("%s %s: %d %s, want 503 timeout", rq.method, rq.path, r.Code, r.Body)
		}
	}
}
