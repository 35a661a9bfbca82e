package authz

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
	"testing"

	"github.com/labstack/echo/v4"

	"spine/shared/httpx"
	"spine/shared/problem"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
	"spine/shared/testenv"
	"spine/shared/testenv/apitest"
)

// fakeDir is the tenant directory the tests control (the tenants service answers it in the app).
type fakeDir = testenv.Directory

// harness is the authz admin API wired as app.go wires it (the /api edge, the authenticated group,
// the shared error mappers), over the package database and the stack's Redis.
type harness struct {
	t      *testing.T
	e      *echo.Echo
	svc    *Service
	api    *API
	store  Store
	rt     *sqlstore.DB
	tokens *apitest.Tokens
	dir    *fakeDir
	clock  *testClock
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	tokens := apitest.NewTokens(t)
	dir := testenv.NewDirectory()
	rt := testDB.OpenRuntime(t, sqlstore.PoolConfig{})
	clk := &testClock{}
	store := NewStore(rt, newTestCache(t), StoreConfig{Now: clk.now})
	svc, err := NewService(store, dir, ServiceConfig{Now: clk.now}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	api := NewAPI(svc, rt)
	e := echo.New()
	_, sec := httpx.NewAPI(e, httpx.APIConfig{Verifier: tokens.Verifier(t), MaxBodyBytes: 64 << 10, Mappers: []problem.Mapper{MapError}})
	api.Routes(sec)
	return &harness{t: t, e: e, svc: svc, api: api, store: store, rt: rt, tokens: tokens, dir: dir, clock: clk}
}

func (h *harness) do(method, path, token string, body any, hdr ...string) apitest.Response {
	h.t.Helper()
	return apitest.Do(h.t, h.e, method, path, token, body, hdr...)
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

// tenantFixture is an active tenant and its admin's token: client.manage and every other API
// scope a tenant client may hold, so it may give its clients any of them.
type tenantFixture struct {
	id    tenancy.TenantID
	admin string
}

func (h *harness) tenant() tenantFixture {
	h.t.Helper()
	id := tenancy.NewTenantID()
	h.dir.Set(id, tenancy.StatusActive)
	return tenantFixture{id: id, admin: h.tokens.MintAs(h.t, "admin-"+id.String(), id.String(), false, tenantAPIScopes()...)}
}

// tenantAPIScopes is every API scope of the catalog a tenant client may hold (client.manage
// included).
func tenantAPIScopes() []string {
	var out []string
	for _, s := range Catalog() {
		if !IsOIDCScope(s) && !slices.Contains(platformOnlyScopes, s) {
			out = append(out, string(s))
		}
	}
	return out
}

// platformAdmin is a platform admin's token with client.manage.
func (h *harness) platformAdmin() string {
	return h.tokens.MintAs(h.t, "platform-admin", "", true, ScopeClientManage)
}

// confidentialBody and publicBody are valid creation requests.
func confidentialBody() map[string]any {
	return map[string]any{"name": "Reporting", "clientType": "confidential", "grantTypes": []string{"client_credentials"},
		"scopes": []string{"tenant.read", "user.read"}}
}

func publicBody() map[string]any {
	return map[string]any{"name": "SPA", "clientType": "public", "grantTypes": []string{"authorization_code", "refresh_token"},
		"redirectUris": []string{"https://app.example/callback", "http://127.0.0.1:8765/cb"},
		"scopes":       []string{"openid", "offline_access", "profile", "user.read"}}
}

// created is a client created through the API, with its secret.
type created struct {
	clientJSON
	etag string
}

// create creates a client as token (query: "?tenantId=..." or "?platform=true" or "") and fails
// the test unless it answers 201.
func (h *harness) create(token, query string, body map[string]any) created {
	h.t.Helper()
	r := h.must(http.StatusCreated, "POST", "/api/clients"+query, token, body)
	var c clientJSON
	if err := json.Unmarshal(r.Body, &c); err != nil {
		h.t.Fatal(err)
	}
	return created{clientJSON: c, etag: r.Header.Get("ETag")}
}
