package tenants

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"spine/shared/cache"
	"spine/shared/tenancy"
	"spine/shared/testenv"
)

// getRaw is a GET through the harness's echo, its status, headers and body as sent.
func (h *harness) getRaw(path, token string) (int, http.Header, []byte) {
	h.t.Helper()
	r := h.do("GET", path, token, nil)
	return r.Code, r.Header, r.Body
}

// A cached GET answers exactly what the uncached one does — body bytes, Content-Type, ETag — and
// ?pretty still indents as echo's c.JSON does.
func TestGetTenant_CachedAnswerEqualsTheRenderedView(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	id := h.active(uniqueSlug("bytes"))
	ctx := context.Background()
	v, err := h.svc.store.Get(ctx, tenancy.Caller{Platform: true}.Scope(), mustID(t, id))
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/api/tenants/" + id, "/api/tenants/" + id + "?pretty"} {
		h.cache.Invalidate(ctx, tenantKey(mustID(t, id)))
		hits := h.cache.Stats().Hits
		code1, hdr1, body1 := h.getRaw(path, h.admin) // a miss: loads and caches
		code2, hdr2, body2 := h.getRaw(path, h.admin) // a hit
		if h.cache.Stats().Hits != hits+1 {
			t.Fatalf("%s: the second GET was not a cache hit", path)
		}
		if code1 != http.StatusOK || code2 != http.StatusOK || !bytes.Equal(body1, body2) {
			t.Fatalf("%s: miss %d %s / hit %d %s", path, code1, body1, code2, body2)
		}
		wantBody, wantHdr := viewAnswer(t, h, path, v)
		if !bytes.Equal(body2, wantBody) {
			t.Fatalf("%s: cached body\n%s\nc.JSON of the view\n%s", path, body2, wantBody)
		}
		for _, k := range []string{"Content-Type", "ETag", "Cache-Control"} {
			if hdr1.Get(k) != wantHdr.Get(k) || hdr2.Get(k) != wantHdr.Get(k) {
				t.Fatalf("%s: %s miss %q hit %q, writeView %q", path, k, hdr1.Get(k), hdr2.Get(k), wantHdr.Get(k))
			}
		}
	}
}

// viewAnswer is what writeView answers for v on a request to path.
func viewAnswer(t *testing.T, h *harness, path string, v View) ([]byte, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, path, nil)
	rec := httptest.NewRecorder()
	c := h.e.NewContext(req, rec)
	if err := writeView(c, http.StatusOK, v); err != nil {
		t.Fatal(err)
	}
	return rec.Body.Bytes(), rec.Header()
}

// A tenant token asking for another tenant gets 404 even when that tenant's answer is cached:
// reach is checked before the cache is read.
func TestGetTenant_404_TenantTokenNeverGetsAnotherTenantsCachedBytes(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	a, b := h.active(uniqueSlug("reach-a")), h.active(uniqueSlug("reach-b"))
	if code, _, _ := h.getRaw("/api/tenants/"+b, h.admin); code != http.StatusOK { // b is now cached
		t.Fatalf("admin GET: %d", code)
	}
	tok := h.token(a, false, ScopeRead)
	hits := h.cache.Stats().Hits
	code, _, body := h.getRaw("/api/tenants/"+b, tok)
	if code != http.StatusNotFound || bytes.Contains(body, []byte(`"ownerEmail"`)) {
		t.Fatalf("tenant a reading b: %d %s", code, body)
	}
	if h.cache.Stats().Hits != hits {
		t.Fatal("the cache was read for a tenant the caller cannot see")
	}
	slug := h.do("GET", "/api/tenants/"+b, h.admin, nil).JSON(t)["slug"].(string)
	if code, _, body := h.getRaw("/api/tenants/by-slug/"+slug, tok); code != http.StatusNotFound {
		t.Fatalf("tenant a reading b by slug: %d %s", code, body)
	}
	if code, _, _ := h.getRaw("/api/tenants/"+a, tok); code != http.StatusOK {
		t.Fatalf("tenant a reading itself: %d", code)
	}
}

// Every write that changes a tenant invalidates its cached answer after the commit: the next GET
// shows the change and its new ETag, and the directory the new status.
func TestGetTenant_CachedAnswerFollowsPatchAndTransition(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	id := h.active(uniqueSlug("inval"))
	first := h.do("GET", "/api/tenants/"+id, h.admin, nil)
	_ = h.do("GET", "/api/tenants/"+id, h.admin, nil) // cached
	if r := h.do("PATCH", "/api/tenants/"+id, h.admin, map[string]string{"name": "Renamed"}); r.Code != http.StatusOK {
		t.Fatalf("patch: %d %s", r.Code, r.Body)
	}
	got := h.do("GET", "/api/tenants/"+id, h.admin, nil)
	if got.JSON(t)["name"] != "Renamed" || got.Header.Get("ETag") == first.Header.Get("ETag") {
		t.Fatalf("after patch: ETag %s → %s, %s", first.Header.Get("ETag"), got.Header.Get("ETag"), got.Body)
	}
	if r := h.do("POST", "/api/tenants/"+id+"/suspend", h.admin, nil); r.Code != http.StatusOK {
		t.Fatalf("suspend: %d %s", r.Code, r.Body)
	}
	if st := h.do("GET", "/api/tenants/"+id, h.admin, nil).JSON(t)["status"]; st != "Suspended" {
		t.Fatalf("after suspend the GET says %v", st)
	}
	if st, err := h.svc.TenantStatus(context.Background(), mustID(t, id)); err != nil || st != tenancy.StatusSuspended {
		t.Fatalf("after suspend the directory says %v %v", st, err)
	}
}

// With Redis unreachable every read is answered from SQL, with the same bytes and ETag.
func TestGetTenant_RedisDown_AnswersFromTheStore(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	id := h.active(uniqueSlug("down"))
	want := h.do("GET", "/api/tenants/"+id, h.admin, nil)
	r := testenv.StartRedis(t)
	down := newHarness(t, harnessOpts{redisURL: r.URL()}) // the same database, its own Redis
	r.Stop()
	for i := 0; i < 3; i++ {
		got := down.do("GET", "/api/tenants/"+id, down.admin, nil)
		if got.Code != http.StatusOK || !bytes.Equal(got.Body, want.Body) || got.Header.Get("ETag") != want.Header.Get("ETag") {
			t.Fatalf("read %d with Redis down: %d %s", i, got.Code, got.Body)
		}
	}
	if down.cache.Stats().RedisErrors == 0 {
		t.Fatal("Redis was not tried")
	}
}

// A value of the shape cached before this release (the JSON view) under the same key reads as a
// miss and is overwritten with the rendered answer.
func TestGetTenant_FormerCacheShapeIsReloaded(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	id := h.active(uniqueSlug("shape"))
	want := h.do("GET", "/api/tenants/"+id, h.admin, nil)
	ctx := context.Background()
	key := tenantKey(mustID(t, id))
	h.cache.Invalidate(ctx, key)
	old, err := cache.GetOrLoad(ctx, h.cache, key, time.Minute, func(context.Context) (View, error) {
		return View{Tenant: Tenant{Name: "stale shape"}}, nil
	})
	if err != nil || old.Tenant.Name != "stale shape" {
		t.Fatalf("seeding the former shape: %v %v", old, err)
	}
	got := h.do("GET", "/api/tenants/"+id, h.admin, nil)
	if got.Code != http.StatusOK || !bytes.Equal(got.Body, want.Body) {
		t.Fatalf("read over the former shape: %d %s", got.Code, got.Body)
	}
	hits := h.cache.Stats().Hits
	_ = h.do("GET", "/api/tenants/"+id, h.admin, nil)
	if h.cache.Stats().Hits != hits+1 {
		t.Fatal("the former shape was not overwritten")
	}
}

func TestRenderedCodec_RoundTripsAndRefusesOtherShapes(t *testing.T) {
	in := Rendered{Version: 12, Status: tenancy.StatusSuspended, Slug: "contoso-eu", Body: []byte("{\"id\":\"x\"}\n")}
	b, err := renderedCodec{}.Encode(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := renderedCodec{}.Decode(b)
	if err != nil || out.Version != in.Version || out.Status != in.Status || out.Slug != in.Slug || !bytes.Equal(out.Body, in.Body) {
		t.Fatalf("round trip: %+v %v", out, err)
	}
	for _, bad := range []string{`{"Tenant":{}}`, "t1 12 Suspended contoso", "t1 x Active a\n{}", "t1 1 Sleeping a\n{}", "t1 1 Active \n{}", ""} {
		if _, err := (renderedCodec{}).Decode([]byte(bad)); err == nil {
			t.Fatalf("%q decoded", bad)
		}
	}
}
