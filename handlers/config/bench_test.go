package config

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"spine/shared/tenancy"
)

// BenchmarkOFREP_Single is one evaluation of a flag with a targeting rule and a split, served by
// the API (edge, token verification, local copy, JSON) — no SQL, no Redis once warm.
func BenchmarkOFREP_Single(b *testing.B) { benchServe(b, false) }

// BenchmarkOFREP_Bulk is a bulk evaluation of the tenant's set (every flag of the package
// database: the tests' and these).
func BenchmarkOFREP_Bulk(b *testing.B) { benchServe(b, true) }

func benchServe(b *testing.B, bulk bool) {
	h := newHarness(b, harnessOpts{})
	key := newKey("bench")
	body := map[string]any{"type": "string", "variants": map[string]any{"a": "A", "b": "B"}, "defaultVariant": "a",
		"rules": []any{
			map[string]any{"when": []any{map[string]any{"attribute": "email", "op": "endsWith", "values": []any{"@internal.example"}}}, "variant": "b"},
			map[string]any{"split": []any{map[string]any{"variant": "a", "weight": 50}, map[string]any{"variant": "b", "weight": 50}}},
		}}
	if r := h.do("PUT", "/api/feature-flags/"+key, h.admin(), body); r.Code != http.StatusCreated {
		b.Fatalf("PUT: %d %s", r.Code, r.Body)
	}
	tok := h.tenantToken(tenancy.NewTenantID())
	path := "/api/ofrep/v1/evaluate/flags/" + key
	if bulk {
		path = "/api/ofrep/v1/evaluate/flags"
	}
	req := []byte(`{"context":{"targetingKey":"user-123456","email":"someone@example.com"}}`)
	// One parsed request, copied per iteration with a fresh body (as the server hands each
	// request over), so the figures are the API's, not httptest's request parsing.
	tmpl := httptest.NewRequest("POST", path, nil)
	tmpl.Header.Set("Content-Type", "application/json")
	tmpl.Header.Set("Authorization", "Bearer "+tok)
	tmpl.ContentLength = int64(len(req))
	br := bytes.NewReader(req)
	b.ReportAllocs()
	for b.Loop() {
		br.Reset(req)
		r := new(http.Request)
		*r = *tmpl
		r.Body = io.NopCloser(br)
		w := httptest.NewRecorder()
		h.e.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatalf("%d %s", w.Code, w.Body)
		}
	}
}
