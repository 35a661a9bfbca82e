package tenants

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/redis/go-redis/v9"

	"spine/shared/auth"
	"spine/shared/blob"
	"spine/shared/cache"
	"spine/shared/httpx"
	"spine/shared/problem"
	"spine/shared/tenancy"
	"spine/shared/testenv"
)

const (
	testIssuer   = "https://spine.test/issuer"
	testAudience = "spine-api"
)

// harness is the tenants API wired as app.go wires it, over the real stack.
type harness struct {
	t      *testing.T
	e      *echo.Echo
	svc    *Service
	cache  *cache.Cache
	signer *auth.DevSigner
	admin  string // platform-admin token with both scopes
}

type harnessOpts struct {
	redisURL string
	steps    []StepRunner
}

func newHarness(t *testing.T, o harnessOpts) *harness {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	signer, err := auth.EnsureDevKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier(ctx, auth.Config{Issuer: testIssuer, Audience: testAudience, JWKSFile: dir + "/jwks.json"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	if o.redisURL == "" {
		if o.redisURL, err = testenv.Require("SPINE_REDIS_URL"); err != nil {
			t.Fatal(err)
		}
	}
	opt, err := redis.ParseURL(o.redisURL)
	if err != nil {
		t.Fatal(err)
	}
	opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout, opt.MaxRetries = 200*time.Millisecond, 200*time.Millisecond, 200*time.Millisecond, 0
	rdb := redis.NewClient(opt)
	c := cache.New(rdb, cache.Config{Cooldown: 100 * time.Millisecond, RetryInterval: 50 * time.Millisecond}, nil)
	t.Cleanup(func() { c.Close(); _ = rdb.Close() })
	if o.steps == nil {
		conn, err := testenv.Require("SPINE_STORAGE_CONNECTION_STRING")
		if err != nil {
			t.Fatal(err)
		}
		bs, err := blob.Open(conn, "")
		if err != nil {
			t.Fatal(err)
		}
		if err := bs.EnsureContainer(ctx, ManifestContainer); err != nil {
			t.Fatal(err)
		}
		o.steps = []StepRunner{EditionStep{Editions: []string{"free", "standard"}}, StorageStep{Blobs: bs}}
	}
	svc, err := NewService(NewPostgresStore(openRuntime(t)), c, o.steps, ServiceConfig{RetryAfter: time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := echo.New()
	ph := &problem.Handler{Mappers: []problem.Mapper{MapError, auth.ProblemFor}}
	e.HTTPErrorHandler = ph.ServeError
	api := e.Group("/api", httpx.Trace(), httpx.BodyLimit(64<<10), auth.Middleware(v))
	NewAPI(svc).Routes(api)
	h := &harness{t: t, e: e, svc: svc, cache: c, signer: signer}
	h.admin = h.token("", true, ScopeRead, ScopeManage)
	return h
}

func (h *harness) token(tenant string, admin bool, scopes ...string) string {
	h.t.Helper()
	tok, err := h.signer.Mint(auth.TokenClaims{Issuer: testIssuer, Audience: testAudience, Subject: "user-" + tenant,
		TenantID: tenant, Scopes: scopes, PlatformAdmin: admin}, time.Hour)
	if err != nil {
		h.t.Fatal(err)
	}
	return tok
}

type resp struct {
	code int
	hdr  http.Header
	body []byte
}

func (r resp) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
	return m
}

// problemCode returns the stable code of a problem+json body, failing if it is not one.
func (r resp) problemCode(t *testing.T) string {
	t.Helper()
	if ct := r.hdr.Get("Content-Type"); ct != problem.ContentType {
		t.Fatalf("Content-Type = %q, want %s (body %s)", ct, problem.ContentType, r.body)
	}
	code, _ := r.json(t)["code"].(string)
	return code
}

func (h *harness) do(method, path, token string, body any, hdr ...string) resp {
	h.t.Helper()
	var rd *bytes.Reader
	switch b := body.(type) {
	case nil:
		rd = bytes.NewReader(nil)
	case string:
		rd = bytes.NewReader([]byte(b))
	default:
		raw, _ := json.Marshal(b)
		rd = bytes.NewReader(raw)
	}
	req := httptest.NewRequest(method, path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.e.ServeHTTP(rec, req)
	return resp{code: rec.Code, hdr: rec.Header(), body: rec.Body.Bytes()}
}

var slugSeq = time.Now().UnixNano() % 1_000_000

func uniqueSlug(prefix string) string {
	slugSeq++
	return fmt.Sprintf("%s-%d", prefix, slugSeq)
}

// register creates a tenant as platform admin and returns its JSON.
func (h *harness) register(slug, edition string) map[string]any {
	h.t.Helper()
	r := h.do("POST", "/api/tenants", h.admin, map[string]string{"name": "Tenant " + slug, "slug": slug,
		"editionCode": edition, "ownerEmail": "owner@" + slug + ".example"})
	if r.code != http.StatusCreated {
		h.t.Fatalf("register %s: %d %s", slug, r.code, r.body)
	}
	return r.json(h.t)
}

// active registers and provisions a tenant.
func (h *harness) active(slug string) string {
	h.t.Helper()
	id := h.register(slug, "standard")["id"].(string)
	if r := h.do("POST", "/api/tenants/"+id+"/provision", h.admin, nil); r.code != http.StatusOK {
		h.t.Fatalf("provision: %d %s", r.code, r.body)
	}
	return id
}

func TestCreateTenant_201_ProvisioningWithStepsAndLocation(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	slug := uniqueSlug("contoso")
	r := h.do("POST", "/api/tenants", h.admin, map[string]string{"name": "Contoso", "slug": slug, "editionCode": "standard", "ownerEmail": "a@contoso.example"})
	if r.code != http.StatusCreated {
		t.Fatalf("%d %s", r.code, r.body)
	}
	m := r.json(t)
	if m["status"] != "Provisioning" || m["slug"] != slug || r.hdr.Get("Location") != "/api/tenants/"+m["id"].(string) || r.hdr.Get("ETag") != `"1"` {
		t.Fatalf("body %v, headers %v", m, r.hdr)
	}
	steps := m["provisioningSteps"].([]any)
	if len(steps) != 2 || steps[0].(map[string]any)["name"] != "edition" || steps[1].(map[string]any)["status"] != "Pending" {
		t.Fatalf("steps = %v", steps)
	}
}

func TestCreateTenant_409_SlugTaken(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	slug := uniqueSlug("dup")
	h.register(slug, "standard")
	r := h.do("POST", "/api/tenants", h.admin, map[string]string{"name": "Other", "slug": slug, "editionCode": "standard", "ownerEmail": "b@x.example"})
	if r.code != http.StatusConflict || r.problemCode(t) != "slug-taken" {
		t.Fatalf("%d %s", r.code, r.body)
	}
}

func TestCreateTenant_400_BadInput(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	for _, tc := range []struct {
		name, body, code string
	}{
		{"uppercase slug", `{"name":"A","slug":"Contoso","editionCode":"standard","ownerEmail":"a@b.example"}`, "invalid-slug"},
		{"short slug", `{"name":"A","slug":"ab","editionCode":"standard","ownerEmail":"a@b.example"}`, "invalid-slug"},
		{"trailing hyphen", `{"name":"A","slug":"abc-","editionCode":"standard","ownerEmail":"a@b.example"}`, "invalid-slug"},
		{"unknown field", `{"name":"A","slug":"abcd","editionCode":"standard","ownerEmail":"a@b.example","plan":"x"}`, "unknown-field"},
		{"bad email", `{"name":"A","slug":"abcd","editionCode":"standard","ownerEmail":"not-an-email"}`, "invalid-input"},
		{"empty name", `{"name":"","slug":"abcd","editionCode":"standard","ownerEmail":"a@b.example"}`, "invalid-input"},
		{"malformed json", `{"name":`, "invalid-json"},
		{"two values", `{} {}`, "invalid-json"},
		{"wrong type", `{"name":5}`, "invalid-json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := h.do("POST", "/api/tenants", h.admin, tc.body)
			if r.code != http.StatusBadRequest || r.problemCode(t) != tc.code {
				t.Fatalf("%d %s, want 400 %s", r.code, r.body, tc.code)
			}
		})
	}
}

func TestCreateTenant_413_BodyTooLarge(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	big := `{"name":"` + strings.Repeat("x", 70<<10) + `"}`
	r := h.do("POST", "/api/tenants", h.admin, big)
	if r.code != http.StatusRequestEntityTooLarge || r.problemCode(t) != "body-too-large" {
		t.Fatalf("%d %s", r.code, r.body)
	}
}

func TestCreateTenant_415_NotJSON(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	r := h.do("POST", "/api/tenants", h.admin, "name=x", "Content-Type", "application/x-www-form-urlencoded")
	if r.code != http.StatusUnsupportedMediaType || r.problemCode(t) != "unsupported-media-type" {
		t.Fatalf("%d %s", r.code, r.body)
	}
}

func TestCreateTenant_401_NoOrBadToken(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	for _, tok := range []string{"", "garbage.token.value"} {
		r := h.do("GET", "/api/tenants", tok, nil)
		if r.code != http.StatusUnauthorized || r.hdr.Get("WWW-Authenticate") == "" {
			t.Fatalf("token %q: %d %v %s", tok, r.code, r.hdr, r.body)
		}
		r.problemCode(t)
	}
}

func TestCreateTenant_403_TenantTokenIsNotPlatformAdmin(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	id := h.active(uniqueSlug("self"))
	tok := h.token(id, false, ScopeRead, ScopeManage)
	r := h.do("POST", "/api/tenants", tok, map[string]string{"name": "X", "slug": uniqueSlug("x"), "editionCode": "standard", "ownerEmail": "a@b.example"})
	if r.code != http.StatusForbidden || r.problemCode(t) != "platform-admin-required" {
		t.Fatalf("%d %s", r.code, r.body)
	}
}

func TestCreateTenant_403_MissingScope(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	readOnly := h.token("", true, ScopeRead)
	r := h.do("POST", "/api/tenants", readOnly, map[string]string{"name": "X", "slug": uniqueSlug("x"), "editionCode": "standard", "ownerEmail": "a@b.example"})
	if r.code != http.StatusForbidden || r.problemCode(t) != "insufficient-scope" {
		t.Fatalf("%d %s", r.code, r.body)
	}
}

func TestCreateTenant_IdempotencyKey_ReplaysAndRejectsOtherBody(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	slug := uniqueSlug("idem")
	body := map[string]string{"name": "Idem", "slug": slug, "editionCode": "standard", "ownerEmail": "a@b.example"}
	key := "key-" + slug
	first := h.do("POST", "/api/tenants", h.admin, body, "Idempotency-Key", key)
	second := h.do("POST", "/api/tenants", h.admin, body, "Idempotency-Key", key)
	if first.code != 201 || second.code != 201 || !bytes.Equal(bytes.TrimSpace(first.body), bytes.TrimSpace(second.body)) ||
		second.hdr.Get("Idempotent-Replayed") != "true" || second.hdr.Get("Location") != first.hdr.Get("Location") {
		t.Fatalf("first %d %s\nsecond %d %s %v", first.code, first.body, second.code, second.body, second.hdr)
	}
	body["name"] = "Different"
	third := h.do("POST", "/api/tenants", h.admin, body, "Idempotency-Key", key)
	if third.code != http.StatusUnprocessableEntity || third.problemCode(t) != "idempotency-key-reused" {
		t.Fatalf("%d %s", third.code, third.body)
	}
	list := h.do("GET", "/api/tenants?limit=200", h.admin, nil).json(t)["value"].([]any)
	n := 0
	for _, x := range list {
		if x.(map[string]any)["slug"] == slug {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d tenants with slug %s, want exactly 1", n, slug)
	}
}

func TestProvision_502_StepFailedThenRetrySucceeds(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	m := h.register(uniqueSlug("retry"), "platinum") // not on sale: the edition step fails
	id := m["id"].(string)
	r := h.do("POST", "/api/tenants/"+id+"/provision", h.admin, nil)
	if r.code != http.StatusBadGateway || r.problemCode(t) != "provisioning-step-failed" {
		t.Fatalf("%d %s", r.code, r.body)
	}
	got := h.do("GET", "/api/tenants/"+id, h.admin, nil).json(t)
	step := got["provisioningSteps"].([]any)[0].(map[string]any)
	if got["status"] != "Provisioning" || step["status"] != "Failed" || step["lastError"] != "unknown-edition" || step["attempts"] != 1.0 {
		t.Fatalf("after failure: %v", got)
	}
	if r := h.do("PATCH", "/api/tenants/"+id, h.admin, map[string]string{"editionCode": "standard"}); r.code != 200 {
		t.Fatalf("patch: %d %s", r.code, r.body)
	}
	r = h.do("POST", "/api/tenants/"+id+"/provision", h.admin, nil)
	if r.code != http.StatusOK {
		t.Fatalf("retry: %d %s", r.code, r.body)
	}
	done := r.json(t)
	if done["status"] != "Active" || done["provisionedAt"] == nil {
		t.Fatalf("after retry: %v", done)
	}
	for _, s := range done["provisioningSteps"].([]any) {
		if s.(map[string]any)["status"] != "Succeeded" {
			t.Fatalf("steps: %v", done["provisioningSteps"])
		}
	}
	if r := h.do("POST", "/api/tenants/"+id+"/provision", h.admin, nil); r.code != http.StatusConflict || r.problemCode(t) != "illegal-transition" {
		t.Fatalf("provisioning an Active tenant: %d %s", r.code, r.body)
	}
}

func TestProvisioningSweep_RetriesFailedSteps(t *testing.T) {
	flaky := &flakyStep{failures: 1}
	h := newHarness(t, harnessOpts{steps: []StepRunner{flaky}})
	id := h.register(uniqueSlug("sweep"), "standard")["id"].(string)
	if r := h.do("POST", "/api/tenants/"+id+"/provision", h.admin, nil); r.code != http.StatusBadGateway {
		t.Fatalf("first run: %d %s", r.code, r.body)
	}
	time.Sleep(5 * time.Millisecond) // RetryAfter is 1ms in the harness
	tried, activated, err := h.svc.SweepProvisioning(context.Background(), 1000)
	if err != nil || tried < 1 || activated < 1 {
		t.Fatalf("sweep: tried %d activated %d err %v", tried, activated, err)
	}
	if got := h.do("GET", "/api/tenants/"+id, h.admin, nil).json(t); got["status"] != "Active" {
		t.Fatalf("after sweep: %v", got)
	}
}

type flakyStep struct{ failures int }

func (f *flakyStep) Name() string { return "flaky" }
func (f *flakyStep) Run(context.Context, Tenant) error {
	if f.failures > 0 {
		f.failures--
		return codedError{"flaky-failure"}
	}
	return nil
}

func TestLifecycle_SuspendReactivateDecommission(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	id := h.active(uniqueSlug("life"))
	for _, step := range []struct {
		action string
		code   int
		status string
		pcode  string
	}{
		{"reactivate", 409, "", "illegal-transition"},
		{"suspend", 200, "Suspended", ""},
		{"suspend", 409, "", "illegal-transition"},
		{"reactivate", 200, "Active", ""},
		{"decommission", 409, "", "illegal-transition"}, // Active must be suspended first
		{"suspend", 200, "Suspended", ""},
		{"decommission", 200, "Decommissioned", ""},
		{"reactivate", 409, "", "illegal-transition"},
	} {
		r := h.do("POST", "/api/tenants/"+id+"/"+step.action, h.admin, nil)
		if r.code != step.code {
			t.Fatalf("%s: %d %s, want %d", step.action, r.code, r.body, step.code)
		}
		if step.code == 200 && r.json(t)["status"] != step.status {
			t.Fatalf("%s: %s", step.action, r.body)
		}
		if step.pcode != "" && r.problemCode(t) != step.pcode {
			t.Fatalf("%s: %s", step.action, r.body)
		}
	}
	r := h.do("PATCH", "/api/tenants/"+id, h.admin, map[string]string{"name": "Zombie"})
	if r.code != http.StatusConflict || r.problemCode(t) != "tenant-decommissioned" {
		t.Fatalf("patch decommissioned: %d %s", r.code, r.body)
	}
}

func TestPatchTenant_412_StaleIfMatch(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	id := h.register(uniqueSlug("etag"), "standard")["id"].(string)
	get := h.do("GET", "/api/tenants/"+id, h.admin, nil)
	etag := get.hdr.Get("ETag")
	ok := h.do("PATCH", "/api/tenants/"+id, h.admin, map[string]string{"name": "First"}, "If-Match", etag)
	if ok.code != 200 || ok.hdr.Get("ETag") == etag {
		t.Fatalf("first patch: %d %s %v", ok.code, ok.body, ok.hdr)
	}
	stale := h.do("PATCH", "/api/tenants/"+id, h.admin, map[string]string{"name": "Second"}, "If-Match", etag)
	if stale.code != http.StatusPreconditionFailed || stale.problemCode(t) != "precondition-failed" {
		t.Fatalf("stale patch: %d %s", stale.code, stale.body)
	}
	if got := h.do("GET", "/api/tenants/"+id, h.admin, nil).json(t); got["name"] != "First" {
		t.Fatalf("the stale patch must change nothing: %v", got)
	}
}

func TestPatchTenant_409_SlugImmutableOnceActive(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	prov := h.register(uniqueSlug("early"), "standard")["id"].(string)
	newSlug := uniqueSlug("renamed")
	if r := h.do("PATCH", "/api/tenants/"+prov, h.admin, map[string]string{"slug": newSlug}); r.code != 200 {
		t.Fatalf("slug change while Provisioning: %d %s", r.code, r.body)
	}
	if r := h.do("GET", "/api/tenants/by-slug/"+newSlug, h.admin, nil); r.code != 200 || r.json(t)["id"] != prov {
		t.Fatalf("by new slug: %d %s", r.code, r.body)
	}
	id := h.active(uniqueSlug("late"))
	r := h.do("PATCH", "/api/tenants/"+id, h.admin, map[string]string{"slug": uniqueSlug("other")})
	if r.code != http.StatusConflict || r.problemCode(t) != "slug-immutable" {
		t.Fatalf("%d %s", r.code, r.body)
	}
}

func TestWriteFence_403_TenantSuspended(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	id := h.active(uniqueSlug("fenced"))
	tok := h.token(id, false, ScopeRead, ScopeManage)
	if r := h.do("PATCH", "/api/tenants/"+id, tok, map[string]string{"name": "Mine"}); r.code != 200 {
		t.Fatalf("own patch while Active: %d %s", r.code, r.body)
	}
	h.do("POST", "/api/tenants/"+id+"/suspend", h.admin, map[string]string{"reason": "unpaid"})
	r := h.do("PATCH", "/api/tenants/"+id, tok, map[string]string{"name": "Again"})
	if r.code != http.StatusForbidden || r.problemCode(t) != "tenant-suspended" {
		t.Fatalf("patch while Suspended: %d %s", r.code, r.body)
	}
	if st, err := h.svc.TenantStatus(context.Background(), mustID(t, id)); err != nil || st != "Suspended" {
		t.Fatalf("directory: %v %v", st, err)
	}
}

// As tenant A's token, every tenant-scoped route with B's id answers 404 (or 403 where the route
// is platform-only), and A's list holds only A.
func TestIsolation_TenantTokenCannotReachOtherTenant(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	a, b := h.active(uniqueSlug("iso-a")), h.active(uniqueSlug("iso-b"))
	bSlug := h.do("GET", "/api/tenants/"+b, h.admin, nil).json(t)["slug"].(string)
	tok := h.token(a, false, ScopeRead, ScopeManage)
	for _, tc := range []struct {
		method, path string
		body         any
		want         int
	}{
		{"GET", "/api/tenants/" + b, nil, 404},
		{"GET", "/api/tenants/by-slug/" + bSlug, nil, 404},
		{"PATCH", "/api/tenants/" + b, map[string]string{"name": "pwned"}, 404},
		{"POST", "/api/tenants/" + b + "/provision", nil, 403},
		{"POST", "/api/tenants/" + b + "/suspend", nil, 403},
		{"POST", "/api/tenants/" + b + "/reactivate", nil, 403},
		{"POST", "/api/tenants/" + b + "/decommission", nil, 403},
	} {
		r := h.do(tc.method, tc.path, tok, tc.body)
		if r.code != tc.want {
			t.Errorf("%s %s as A: %d %s, want %d", tc.method, tc.path, r.code, r.body, tc.want)
		}
	}
	list := h.do("GET", "/api/tenants", tok, nil).json(t)["value"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["id"] != a {
		t.Fatalf("A's list: %v", list)
	}
	if got := h.do("GET", "/api/tenants/"+b, h.admin, nil).json(t); got["name"] == "pwned" {
		t.Fatal("A changed B")
	}
}

func TestListTenants_PagesWithNextLink(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	for i := 0; i < 3; i++ {
		h.register(uniqueSlug("list"), "standard")
	}
	seen := map[string]bool{}
	path := "/api/tenants?limit=2"
	pages := 0
	for path != "" && pages < 100 {
		r := h.do("GET", path, h.admin, nil)
		if r.code != 200 {
			t.Fatalf("%s: %d %s", path, r.code, r.body)
		}
		var page struct {
			Value    []map[string]any `json:"value"`
			NextLink string           `json:"nextLink"`
		}
		_ = json.Unmarshal(r.body, &page)
		for _, v := range page.Value {
			if seen[v["id"].(string)] {
				t.Fatalf("id %s twice", v["id"])
			}
			seen[v["id"].(string)] = true
		}
		path = page.NextLink
		pages++
	}
	if len(seen) < 3 || pages < 2 {
		t.Fatalf("saw %d tenants over %d pages", len(seen), pages)
	}
	if r := h.do("GET", "/api/tenants?cursor=not-ours", h.admin, nil); r.code != 400 || r.problemCode(t) != "invalid-cursor" {
		t.Fatalf("bad cursor: %d %s", r.code, r.body)
	}
	if r := h.do("GET", "/api/tenants?status=Gone", h.admin, nil); r.code != 400 || r.problemCode(t) != "invalid-status" {
		t.Fatalf("bad status: %d %s", r.code, r.body)
	}
}

func mustID(t *testing.T, s string) tenancy.TenantID {
	t.Helper()
	id, err := tenancy.ParseTenantID(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}
