package tenants

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/redis/go-redis/v9"

	"spine/shared/blob"
	"spine/shared/cache"
	"spine/shared/httpx"
	"spine/shared/problem"
	"spine/shared/tenancy"
	"spine/shared/testenv"
	"spine/shared/testenv/apitest"
)

// harness is the tenants API wired as app.go wires it, over the real stack.
type harness struct {
	t      testing.TB
	e      *echo.Echo
	svc    *Service
	cache  *cache.Cache
	tokens *apitest.Tokens
	admin  string // platform-admin token with both scopes
}

type harnessOpts struct {
	redisURL string
	steps    []StepRunner
}

func newHarness(t testing.TB, o harnessOpts) *harness {
	t.Helper()
	ctx := context.Background()
	tokens := apitest.NewTokens(t)
	v := tokens.Verifier(t)
	var err error
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
	db := openRuntime(t)
	svc, err := NewService(NewPostgresStore(db), c, o.steps, ServiceConfig{RetryAfter: time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := echo.New()
	_, api := httpx.NewAPI(e, httpx.APIConfig{Verifier: v, MaxBodyBytes: 64 << 10, Mappers: []problem.Mapper{MapError}})
	NewAPI(svc, db).Routes(api)
	h := &harness{t: t, e: e, svc: svc, cache: c, tokens: tokens}
	h.admin = h.token("", true, ScopeRead, ScopeManage)
	return h
}

func (h *harness) token(tenant string, admin bool, scopes ...string) string {
	h.t.Helper()
	return h.tokens.Mint(h.t, tenant, admin, scopes...)
}

func (h *harness) do(method, path, token string, body any, hdr ...string) apitest.Response {
	h.t.Helper()
	return apitest.Do(h.t, h.e, method, path, token, body, hdr...)
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
	if r.Code != http.StatusCreated {
		h.t.Fatalf("register %s: %d %s", slug, r.Code, r.Body)
	}
	return r.JSON(h.t)
}

// active registers and provisions a tenant.
func (h *harness) active(slug string) string {
	h.t.Helper()
	id := h.register(slug, "standard")["id"].(string)
	if r := h.do("POST", "/api/tenants/"+id+"/provision", h.admin, nil); r.Code != http.StatusOK {
		h.t.Fatalf("provision: %d %s", r.Code, r.Body)
	}
	return id
}

func TestCreateTenant_201_ProvisioningWithStepsAndLocation(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	slug := uniqueSlug("contoso")
	r := h.do("POST", "/api/tenants", h.admin, map[string]string{"name": "Contoso", "slug": slug, "editionCode": "standard", "ownerEmail": "a@contoso.example"})
	if r.Code != http.StatusCreated {
		t.Fatalf("%d %s", r.Code, r.Body)
	}
	m := r.JSON(t)
	if m["status"] != "Provisioning" || m["slug"] != slug || r.Header.Get("Location") != "/api/tenants/"+m["id"].(string) || r.Header.Get("ETag") != `"1"` {
		t.Fatalf("body %v, headers %v", m, r.Header)
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
	if r.Code != http.StatusConflict || r.ProblemCode(t) != "slug-taken" {
		t.Fatalf("%d %s", r.Code, r.Body)
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
			if r.Code != http.StatusBadRequest || r.ProblemCode(t) != tc.code {
				t.Fatalf("%d %s, want 400 %s", r.Code, r.Body, tc.code)
			}
		})
	}
}

func TestCreateTenant_413_BodyTooLarge(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	big := `{"name":"` + strings.Repeat("x", 70<<10) + `"}`
	r := h.do("POST", "/api/tenants", h.admin, big)
	if r.Code != http.StatusRequestEntityTooLarge || r.ProblemCode(t) != "body-too-large" {
		t.Fatalf("%d %s", r.Code, r.Body)
	}
}

func TestCreateTenant_415_NotJSON(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	r := h.do("POST", "/api/tenants", h.admin, "name=x", "Content-Type", "application/x-www-form-urlencoded")
	if r.Code != http.StatusUnsupportedMediaType || r.ProblemCode(t) != "unsupported-media-type" {
		t.Fatalf("%d %s", r.Code, r.Body)
	}
}

func TestCreateTenant_401_NoOrBadToken(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	for _, tok := range []string{"", "garbage.token.value"} {
		r := h.do("GET", "/api/tenants", tok, nil)
		if r.Code != http.StatusUnauthorized || r.Header.Get("WWW-Authenticate") == "" {
			t.Fatalf("token %q: %d %v %s", tok, r.Code, r.Header, r.Body)
		}
		r.ProblemCode(t)
	}
}

func TestCreateTenant_403_TenantTokenIsNotPlatformAdmin(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	id := h.active(uniqueSlug("self"))
	tok := h.token(id, false, ScopeRead, ScopeManage)
	r := h.do("POST", "/api/tenants", tok, map[string]string{"name": "X", "slug": uniqueSlug("x"), "editionCode": "standard", "ownerEmail": "a@b.example"})
	if r.Code != http.StatusForbidden || r.ProblemCode(t) != "platform-admin-required" {
		t.Fatalf("%d %s", r.Code, r.Body)
	}
}

func TestCreateTenant_403_MissingScope(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	readOnly := h.token("", true, ScopeRead)
	r := h.do("POST", "/api/tenants", readOnly, map[string]string{"name": "X", "slug": uniqueSlug("x"), "editionCode": "standard", "ownerEmail": "a@b.example"})
	if r.Code != http.StatusForbidden || r.ProblemCode(t) != "insufficient-scope" {
		t.Fatalf("%d %s", r.Code, r.Body)
	}
}

func TestCreateTenant_IdempotencyKey_ReplaysAndRejectsOtherBody(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	slug := uniqueSlug("idem")
	body := map[string]string{"name": "Idem", "slug": slug, "editionCode": "standard", "ownerEmail": "a@b.example"}
	key := "key-" + slug
	first := h.do("POST", "/api/tenants", h.admin, body, "Idempotency-Key", key)
	second := h.do("POST", "/api/tenants", h.admin, body, "Idempotency-Key", key)
	if first.Code != 201 || second.Code != 201 || !bytes.Equal(bytes.TrimSpace(first.Body), bytes.TrimSpace(second.Body)) ||
		second.Header.Get("Idempotent-Replayed") != "true" || second.Header.Get("Location") != first.Header.Get("Location") {
		t.Fatalf("first %d %s\nsecond %d %s %v", first.Code, first.Body, second.Code, second.Body, second.Header)
	}
	body["name"] = "Different"
	third := h.do("POST", "/api/tenants", h.admin, body, "Idempotency-Key", key)
	if third.Code != http.StatusUnprocessableEntity || third.ProblemCode(t) != "idempotency-key-reused" {
		t.Fatalf("%d %s", third.Code, third.Body)
	}
	list := h.do("GET", "/api/tenants?limit=200", h.admin, nil).JSON(t)["value"].([]any)
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
	if r.Code != http.StatusBadGateway || r.ProblemCode(t) != "provisioning-step-failed" {
		t.Fatalf("%d %s", r.Code, r.Body)
	}
	got := h.do("GET", "/api/tenants/"+id, h.admin, nil).JSON(t)
	step := got["provisioningSteps"].([]any)[0].(map[string]any)
	if got["status"] != "Provisioning" || step["status"] != "Failed" || step["lastError"] != "unknown-edition" || step["attempts"] != 1.0 {
		t.Fatalf("after failure: %v", got)
	}
	if r := h.do("PATCH", "/api/tenants/"+id, h.admin, map[string]string{"editionCode": "standard"}); r.Code != 200 {
		t.Fatalf("patch: %d %s", r.Code, r.Body)
	}
	r = h.do("POST", "/api/tenants/"+id+"/provision", h.admin, nil)
	if r.Code != http.StatusOK {
		t.Fatalf("retry: %d %s", r.Code, r.Body)
	}
	done := r.JSON(t)
	if done["status"] != "Active" || done["provisionedAt"] == nil {
		t.Fatalf("after retry: %v", done)
	}
	for _, s := range done["provisioningSteps"].([]any) {
		if s.(map[string]any)["status"] != "Succeeded" {
			t.Fatalf("steps: %v", done["provisioningSteps"])
		}
	}
	if r := h.do("POST", "/api/tenants/"+id+"/provision", h.admin, nil); r.Code != http.StatusConflict || r.ProblemCode(t) != "illegal-transition" {
		t.Fatalf("provisioning an Active tenant: %d %s", r.Code, r.Body)
	}
}

func TestProvisioningSweep_RetriesFailedSteps(t *testing.T) {
	flaky := &flakyStep{failures: 1}
	h := newHarness(t, harnessOpts{steps: []StepRunner{flaky}})
	id := h.register(uniqueSlug("sweep"), "standard")["id"].(string)
	if r := h.do("POST", "/api/tenants/"+id+"/provision", h.admin, nil); r.Code != http.StatusBadGateway {
		t.Fatalf("first run: %d %s", r.Code, r.Body)
	}
	time.Sleep(5 * time.Millisecond) // RetryAfter is 1ms in the harness
	tried, activated, err := h.svc.SweepProvisioning(context.Background(), 1000)
	if err != nil || tried < 1 || activated < 1 {
		t.Fatalf("sweep: tried %d activated %d err %v", tried, activated, err)
	}
	if got := h.do("GET", "/api/tenants/"+id, h.admin, nil).JSON(t); got["status"] != "Active" {
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
		if r.Code != step.code {
			t.Fatalf("%s: %d %s, want %d", step.action, r.Code, r.Body, step.code)
		}
		if step.code == 200 && r.JSON(t)["status"] != step.status {
			t.Fatalf("%s: %s", step.action, r.Body)
		}
		if step.pcode != "" && r.ProblemCode(t) != step.pcode {
			t.Fatalf("%s: %s", step.action, r.Body)
		}
	}
	r := h.do("PATCH", "/api/tenants/"+id, h.admin, map[string]string{"name": "Zombie"})
	if r.Code != http.StatusConflict || r.ProblemCode(t) != "tenant-decommissioned" {
		t.Fatalf("patch decommissioned: %d %s", r.Code, r.Body)
	}
}

func TestPatchTenant_412_StaleIfMatch(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	id := h.register(uniqueSlug("etag"), "standard")["id"].(string)
	get := h.do("GET", "/api/tenants/"+id, h.admin, nil)
	etag := get.Header.Get("ETag")
	ok := h.do("PATCH", "/api/tenants/"+id, h.admin, map[string]string{"name": "First"}, "If-Match", etag)
	if ok.Code != 200 || ok.Header.Get("ETag") == etag {
		t.Fatalf("first patch: %d %s %v", ok.Code, ok.Body, ok.Header)
	}
	stale := h.do("PATCH", "/api/tenants/"+id, h.admin, map[string]string{"name": "Second"}, "If-Match", etag)
	if stale.Code != http.StatusPreconditionFailed || stale.ProblemCode(t) != "precondition-failed" {
		t.Fatalf("stale patch: %d %s", stale.Code, stale.Body)
	}
	if got := h.do("GET", "/api/tenants/"+id, h.admin, nil).JSON(t); got["name"] != "First" {
		t.Fatalf("the stale patch must change nothing: %v", got)
	}
}

func TestPatchTenant_409_SlugImmutableOnceActive(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	prov := h.register(uniqueSlug("early"), "standard")["id"].(string)
	newSlug := uniqueSlug("renamed")
	if r := h.do("PATCH", "/api/tenants/"+prov, h.admin, map[string]string{"slug": newSlug}); r.Code != 200 {
		t.Fatalf("slug change while Provisioning: %d %s", r.Code, r.Body)
	}
	if r := h.do("GET", "/api/tenants/by-slug/"+newSlug, h.admin, nil); r.Code != 200 || r.JSON(t)["id"] != prov {
		t.Fatalf("by new slug: %d %s", r.Code, r.Body)
	}
	id := h.active(uniqueSlug("late"))
	r := h.do("PATCH", "/api/tenants/"+id, h.admin, map[string]string{"slug": uniqueSlug("other")})
	if r.Code != http.StatusConflict || r.ProblemCode(t) != "slug-immutable" {
		t.Fatalf("%d %s", r.Code, r.Body)
	}
}

func TestWriteFence_403_TenantSuspended(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	id := h.active(uniqueSlug("fenced"))
	tok := h.token(id, false, ScopeRead, ScopeManage)
	if r := h.do("PATCH", "/api/tenants/"+id, tok, map[string]string{"name": "Mine"}); r.Code != 200 {
		t.Fatalf("own patch while Active: %d %s", r.Code, r.Body)
	}
	h.do("POST", "/api/tenants/"+id+"/suspend", h.admin, map[string]string{"reason": "unpaid"})
	r := h.do("PATCH", "/api/tenants/"+id, tok, map[string]string{"name": "Again"})
	if r.Code != http.StatusForbidden || r.ProblemCode(t) != "tenant-suspended" {
		t.Fatalf("patch while Suspended: %d %s", r.Code, r.Body)
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
	bSlug := h.do("GET", "/api/tenants/"+b, h.admin, nil).JSON(t)["slug"].(string)
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
		if r.Code != tc.want {
			t.Errorf("%s %s as A: %d %s, want %d", tc.method, tc.path, r.Code, r.Body, tc.want)
		}
	}
	list := h.do("GET", "/api/tenants", tok, nil).JSON(t)["value"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["id"] != a {
		t.Fatalf("A's list: %v", list)
	}
	if got := h.do("GET", "/api/tenants/"+b, h.admin, nil).JSON(t); got["name"] == "pwned" {
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
		if r.Code != 200 {
			t.Fatalf("%s: %d %s", path, r.Code, r.Body)
		}
		var page struct {
			Value    []map[string]any `json:"value"`
			NextLink string           `json:"nextLink"`
		}
		_ = json.Unmarshal(r.Body, &page)
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
	if r := h.do("GET", "/api/tenants?cursor=not-ours", h.admin, nil); r.Code != 400 || r.ProblemCode(t) != "invalid-cursor" {
		t.Fatalf("bad cursor: %d %s", r.Code, r.Body)
	}
	if r := h.do("GET", "/api/tenants?status=Gone", h.admin, nil); r.Code != 400 || r.ProblemCode(t) != "invalid-status" {
		t.Fatalf("bad status: %d %s", r.Code, r.Body)
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

// NUL and other control characters never reach PostgreSQL (SQLSTATE 22021 / 22P05 from the jsonb
// outbox envelope answered 500): every text member is refused at the edge with 400 invalid-input,
// and nothing changes.
func TestTenantText_400_ControlCharactersRefusedEverywhere(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	id := h.active(uniqueSlug("ctl"))
	before := h.do("GET", "/api/tenants/"+id, h.admin, nil)
	for _, tc := range []struct {
		name, method, path, body, field string
	}{
		{"create: NUL in name", "POST", "/api/tenants", `{"name":"Nul\u0000Co","slug":"` + uniqueSlug("nul") + `","editionCode":"standard","ownerEmail":"a@b.example"}`, "name"},
		{"create: escape in name", "POST", "/api/tenants", `{"name":"Esc\u001bCo","slug":"` + uniqueSlug("esc") + `","editionCode":"standard","ownerEmail":"a@b.example"}`, "name"},
		{"create: tab in name (one line)", "POST", "/api/tenants", `{"name":"Tab\tCo","slug":"` + uniqueSlug("tab") + `","editionCode":"standard","ownerEmail":"a@b.example"}`, ""},
		{"create: C1 control in name", "POST", "/api/tenants", `{"name":"C1\u0085Co","slug":"` + uniqueSlug("cone") + `","editionCode":"standard","ownerEmail":"a@b.example"}`, "name"},
		{"patch: NUL in name", "PATCH", "/api/tenants/" + id, `{"name":"Nul\u0000Co"}`, "name"},
		{"suspend: NUL in reason", "POST", "/api/tenants/" + id + "/suspend", `{"reason":"a\u0000b"}`, "reason"},
		{"create: a byte that is not UTF-8 in name", "POST", "/api/tenants", "{\"name\":\"Bad\xffCo\",\"slug\":\"" + uniqueSlug("utf") + "\",\"editionCode\":\"standard\",\"ownerEmail\":\"a@b.example\"}", "name"},
		{"patch: unpaired surrogate in name", "PATCH", "/api/tenants/" + id, `{"name":"Sur\ud800Co"}`, "name"},
		{"suspend: a byte that is not UTF-8 in reason", "POST", "/api/tenants/" + id + "/suspend", "{\"reason\":\"a\xc3\"}", "reason"},
		{"list: NUL in a query parameter", "GET", "/api/tenants?status=Active%00", "", "status"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body any
			if tc.body != "" {
				body = tc.body
			}
			r := h.do(tc.method, tc.path, h.admin, body)
			if r.Code != http.StatusBadRequest || r.ProblemCode(t) != "invalid-input" {
				t.Fatalf("%d %s, want 400 invalid-input", r.Code, r.Body)
			}
			if tc.field != "" && !strings.Contains(string(r.Body), `"field":"`+tc.field+`"`) {
				t.Fatalf("the problem does not name %s: %s", tc.field, r.Body)
			}
		})
	}
	after := h.do("GET", "/api/tenants/"+id, h.admin, nil)
	if after.Header.Get("ETag") != before.Header.Get("ETag") || after.JSON(t)["status"] != "Active" {
		t.Fatalf("a refused request changed the tenant: %s → %s", before.Body, after.Body)
	}
	// Line breaks are text in a free-text member.
	if r := h.do("POST", "/api/tenants/"+id+"/suspend", h.admin, `{"reason":"line one\nline two"}`); r.Code != http.StatusOK {
		t.Fatalf("multi-line reason: %d %s", r.Code, r.Body)
	}
}

// What a write returns is what every later read returns, to the microsecond the store keeps.
func TestCreateTenant_201_TimesEqualLaterReads(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	created := h.register(uniqueSlug("prec"), "standard")
	id := created["id"].(string)
	for i := 0; i < 2; i++ {
		got := h.do("GET", "/api/tenants/"+id, h.admin, nil).JSON(t)
		for _, k := range []string{"createdAt", "updatedAt"} {
			if got[k] != created[k] {
				t.Fatalf("read %d: %s = %v, the create answered %v", i, k, got[k], created[k])
			}
		}
		h.cache.Invalidate(context.Background(), tenantKey(tenancy.MustParseTenantID(id)))
	}
	p := h.do("PATCH", "/api/tenants/"+id, h.admin, map[string]string{"name": "Renamed"}).JSON(t)
	if got := h.do("GET", "/api/tenants/"+id, h.admin, nil).JSON(t); got["updatedAt"] != p["updatedAt"] {
		t.Fatalf("updatedAt: patch answered %v, read %v", p["updatedAt"], got["updatedAt"])
	}
}

// A merge patch's null removes a member (RFC 7396), and every member a PATCH may name is
// required: null is a 400 naming it, and nothing changes (before, it was ignored with a 200 that
// still bumped the version).
func TestPatchTenant_400_NullForARequiredMember(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	id := h.active(uniqueSlug("null"))
	before := h.do("GET", "/api/tenants/"+id, h.admin, nil)
	for _, field := range []string{"name", "ownerEmail", "slug", "editionCode"} {
		r := h.do("PATCH", "/api/tenants/"+id, h.admin, `{"`+field+`":null}`)
		if r.Code != http.StatusBadRequest || r.ProblemCode(t) != "invalid-input" || !strings.Contains(string(r.Body), `"field":"`+field+`"`) {
			t.Fatalf("%s null: %d %s, want 400 invalid-input naming it", field, r.Code, r.Body)
		}
	}
	if r := h.do("PATCH", "/api/tenants/"+id, h.admin, `{"name":7}`); r.Code != http.StatusBadRequest || r.ProblemCode(t) != "invalid-json" {
		t.Fatalf("a number for name: %d %s", r.Code, r.Body)
	}
	after := h.do("GET", "/api/tenants/"+id, h.admin, nil)
	if after.Header.Get("ETag") != before.Header.Get("ETag") {
		t.Fatalf("a refused patch changed the tenant: ETag %s → %s", before.Header.Get("ETag"), after.Header.Get("ETag"))
	}
	if r := h.do("PATCH", "/api/tenants/"+id, h.admin, `{"name":"Renamed","ownerEmail":"new@b.example"}`); r.Code != http.StatusOK || r.JSON(t)["name"] != "Renamed" {
		t.Fatalf("a valid patch: %d %s", r.Code, r.Body)
	}
}
