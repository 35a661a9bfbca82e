package config

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"spine/shared/tenancy"
)

// allTypesFlags defines one flag of each type and returns their keys.
func allTypesFlags(t *testing.T, h *harness) (boolKey, strKey, numKey, objKey string) {
	t.Helper()
	boolKey, strKey, numKey, objKey = newKey("b"), newKey("s"), newKey("n"), newKey("o")
	h.must(http.StatusCreated, "PUT", "/api/feature-flags/"+boolKey, h.admin(), map[string]any{"type": "boolean",
		"variants": map[string]any{"on": true, "off": false}, "defaultVariant": "off",
		"rules": []any{map[string]any{"when": []any{map[string]any{"attribute": "plan", "op": "in", "values": []any{"gold"}}}, "variant": "on"}}})
	h.must(http.StatusCreated, "PUT", "/api/feature-flags/"+strKey, h.admin(), map[string]any{"type": "string",
		"variants": map[string]any{"red": "#f00", "blue": "#00f"}, "defaultVariant": "red"})
	h.must(http.StatusCreated, "PUT", "/api/feature-flags/"+numKey, h.admin(), map[string]any{"type": "number",
		"variants": map[string]any{"small": 10, "big": 1000}, "defaultVariant": "big",
		"rules": []any{map[string]any{"split": []any{map[string]any{"variant": "small", "weight": 25}, map[string]any{"variant": "big", "weight": 75}}}}})
	h.must(http.StatusCreated, "PUT", "/api/feature-flags/"+objKey, h.admin(), map[string]any{"type": "object",
		"variants": map[string]any{"v1": map[string]any{"limit": 5, "mode": "a"}}, "defaultVariant": "v1"})
	return
}

func TestOFREP_200_EvaluatesEveryTypeWithReasons(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	b, s, n, o := allTypesFlags(t, h)
	tok := h.tenantToken(tenancy.NewTenantID())
	for _, tc := range []struct {
		key    string
		ctx    map[string]any
		value  string
		reason string
	}{
		{b, map[string]any{"plan": "gold"}, "true", "TARGETING_MATCH"},
		{b, map[string]any{"plan": "free"}, "false", "DEFAULT"},
		{s, nil, `"#f00"`, "STATIC"},
		{o, nil, `{"limit":5,"mode":"a"}`, "STATIC"},
	} {
		m := evaluate(t, h, tok, tc.key, tc.ctx)
		v, _ := json.Marshal(m["value"])
		if string(v) != tc.value || m["reason"] != tc.reason || m["key"] != tc.key {
			t.Errorf("%s %v: %v, want %s %s", tc.key, tc.ctx, m, tc.value, tc.reason)
		}
	}
	if m := evaluate(t, h, tok, n, map[string]any{"targetingKey": "user-1"}); m["reason"] != "SPLIT" {
		t.Errorf("split: %v", m)
	}
}

func TestOFREP_404_FlagNotFound(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	key := newKey("missing")
	r := h.must(http.StatusNotFound, "POST", "/api/ofrep/v1/evaluate/flags/"+key, h.tenantToken(tenancy.NewTenantID()), map[string]any{"context": map[string]any{}})
	if m := r.JSON(t); m["errorCode"] != "FLAG_NOT_FOUND" || m["key"] != key {
		t.Fatalf("%s", r.Body)
	}
}

func TestOFREP_400_Errors(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	_, _, n, _ := allTypesFlags(t, h)
	tok := h.tenantToken(tenancy.NewTenantID())
	for _, tc := range []struct {
		name string
		body any
		code string
	}{
		{"split without targeting key", map[string]any{"context": map[string]any{"plan": "x"}}, "TARGETING_KEY_MISSING"},
		{"targeting key not a string", map[string]any{"context": map[string]any{"targetingKey": 7}}, "INVALID_CONTEXT"},
		{"context not an object", map[string]any{"context": []any{1}}, "INVALID_CONTEXT"},
		{"malformed JSON", `{"context": {`, "PARSE_ERROR"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := h.must(http.StatusBadRequest, "POST", "/api/ofrep/v1/evaluate/flags/"+n, tok, tc.body)
			if m := r.JSON(t); m["errorCode"] != tc.code || m["key"] != n {
				t.Fatalf("%s, want %s", r.Body, tc.code)
			}
		})
	}
}

func TestOFREP_401_NoToken(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.must(http.StatusUnauthorized, "POST", "/api/ofrep/v1/evaluate/flags/x", "", map[string]any{"context": map[string]any{}})
	h.must(http.StatusUnauthorized, "POST", "/api/ofrep/v1/evaluate/flags", "", map[string]any{"context": map[string]any{}})
}

// The tenant is the token's: a tenantId (or anything else) in the context changes nothing.
func TestOFREP_TenantFromTokenNeverFromContext(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	key := newKey("ctxtenant")
	a, b := tenancy.NewTenantID(), tenancy.NewTenantID()
	h.must(http.StatusCreated, "PUT", "/api/feature-flags/"+key, h.admin(), boolFlagBody())
	h.must(http.StatusCreated, "PUT", "/api/feature-flags/"+key+"/overrides/"+b.String(), h.admin(), map[string]any{"variant": "on"})
	m := evaluate(t, h, h.tenantToken(a), key, map[string]any{"tenantId": b.String(), "tenant_id": b.String()})
	if m["value"] != false {
		t.Fatalf("A's token with B in the context got B's override: %v", m)
	}
}

func TestOFREPBulk_200_ThenIfNoneMatch304(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	b, _, n, _ := allTypesFlags(t, h)
	tok := h.tenantToken(tenancy.NewTenantID())
	body := map[string]any{"context": map[string]any{"plan": "gold"}} // no targetingKey: the split flag errs alone
	r := h.must(http.StatusOK, "POST", "/api/ofrep/v1/evaluate/flags", tok, body)
	etag := r.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	var out struct {
		Flags []map[string]any `json:"flags"`
	}
	if err := json.Unmarshal(r.Body, &out); err != nil {
		t.Fatal(err)
	}
	seen := map[string]map[string]any{}
	for _, f := range out.Flags {
		seen[f["key"].(string)] = f
	}
	if seen[b]["value"] != true || seen[b]["reason"] != "TARGETING_MATCH" {
		t.Errorf("bool in bulk: %v", seen[b])
	}
	if seen[n]["errorCode"] != "TARGETING_KEY_MISSING" {
		t.Errorf("split in bulk without targetingKey: %v", seen[n])
	}
	r2 := h.must(http.StatusNotModified, "POST", "/api/ofrep/v1/evaluate/flags", tok, body, "If-None-Match", etag)
	if len(r2.Body) != 0 {
		t.Errorf("304 with a body: %s", r2.Body)
	}
	// Another context, another answer: the old ETag no longer matches.
	h.must(http.StatusOK, "POST", "/api/ofrep/v1/evaluate/flags", tok, map[string]any{"context": map[string]any{"plan": "free"}}, "If-None-Match", etag)
}

func TestOFREPBulk_400_InvalidContext(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	r := h.must(http.StatusBadRequest, "POST", "/api/ofrep/v1/evaluate/flags", h.tenantToken(tenancy.NewTenantID()), map[string]any{"context": "x"})
	if m := r.JSON(t); m["errorCode"] != "INVALID_CONTEXT" {
		t.Fatalf("%s", r.Body)
	}
}

func TestOFREP_Split10000KeysWithin2PercentOfWeights(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	_, _, n, _ := allTypesFlags(t, h) // small 25, big 75
	tok := h.tenantToken(tenancy.NewTenantID())
	const total = 10000
	small := 0
	for i := range total {
		r := h.must(http.StatusOK, "POST", "/api/ofrep/v1/evaluate/flags/"+n, tok, map[string]any{"context": map[string]any{"targetingKey": fmt.Sprintf("user-%d", i)}})
		var m struct{ Variant string }
		_ = json.Unmarshal(r.Body, &m)
		if m.Variant == "small" {
			small++
		}
	}
	if got := float64(small) / total * 100; math.Abs(got-25) > 2 {
		t.Fatalf("small: %.2f %% of keys, want 25 %% ± 2", got)
	}
}

// After the first evaluation, evaluations send no SQL (local copies), until a change.
func TestOFREP_HotPathSendsNoSQL(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	key := newKey("hot")
	h.must(http.StatusCreated, "PUT", "/api/feature-flags/"+key, h.admin(), boolFlagBody())
	tok := h.tenantToken(tenancy.NewTenantID())
	evaluate(t, h, tok, key, nil)
	before := h.log.count()
	for range 200 {
		evaluate(t, h, tok, key, map[string]any{"targetingKey": "u"})
	}
	if n := h.log.count() - before; n != 0 {
		t.Fatalf("%d statements over 200 warm evaluations, want 0", n)
	}
}

// A change made through one instance is seen by the next evaluation on another instance (its own
// cache and local copies, the same Redis and database) once the invalidation arrives; the test
// waits at most the stated bound (SetTTL, 60s) and logs the measured propagation.
func TestOFREP_PutSeenByAnotherInstance(t *testing.T) {
	a := newHarness(t, harnessOpts{})
	b := newHarness(t, harnessOpts{tokens: a.tokens})
	key := newKey("propagate")
	tenant := tenancy.NewTenantID()
	tok := a.tenantToken(tenant)
	a.must(http.StatusCreated, "PUT", "/api/feature-flags/"+key, a.admin(), overridableFlagBody())
	if m := evaluate(t, b, tok, key, nil); m["value"] != false { // B holds a local copy now
		t.Fatalf("before: %v", m)
	}
	for _, change := range []struct {
		name string
		do   func()
		want any
	}{
		{"tenant override", func() {
			a.must(http.StatusCreated, "PUT", "/api/feature-flags/"+key+"/overrides/"+tenant.String(), tok, map[string]any{"variant": "on"})
		}, true},
		{"platform definition", func() {
			body := boolFlagBody()
			body["disabled"] = true
			a.must(http.StatusOK, "PUT", "/api/feature-flags/"+key, a.admin(), body)
		}, false},
	} {
		start := time.Now()
		change.do()
		deadline := start.Add(60 * time.Second)
		for {
			if evaluate(t, b, tok, key, nil)["value"] == change.want {
				t.Logf("%s: seen on the other instance %v after the PUT returned", change.name, time.Since(start))
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not seen on the other instance within the 60s bound", change.name)
			}
			time.Sleep(time.Millisecond)
		}
	}
}

// Redis unreachable: evaluations still answer, from SQL.
func TestOFREP_200_RedisDown(t *testing.T) {
	h := newHarness(t, harnessOpts{redisURL: "redis://127.0.0.1:1/0"})
	key := newKey("noredis")
	h.must(http.StatusCreated, "PUT", "/api/feature-flags/"+key, h.admin(), boolFlagBody())
	for range 3 {
		if m := evaluate(t, h, h.tenantToken(tenancy.NewTenantID()), key, nil); m["value"] != false {
			t.Fatalf("%v", m)
		}
	}
}

// The database unreachable and no copy of the set: OFREP's 500 with errorDetails, no cause leaked.
func TestOFREP_500_SetUnavailable(t *testing.T) {
	h := newHarness(t, harnessOpts{redisURL: "redis://127.0.0.1:1/0"})
	db := h.svc.store.db
	_ = db.Close() // this harness's own pool
	r := h.must(http.StatusInternalServerError, "POST", "/api/ofrep/v1/evaluate/flags/x", h.tenantToken(tenancy.NewTenantID()), map[string]any{"context": map[string]any{}})
	if m := r.JSON(t); m["errorDetails"] != "flag evaluation is unavailable; retry later" || len(m) != 1 {
		t.Fatalf("%s", r.Body)
	}
}

// The context obeys the shared input rules: a control character in a string or a member name,
// an unpaired surrogate escape, or nesting deeper than MaxValueDepth is 400 INVALID_CONTEXT (single
// and bulk), naming the attribute; tabs and line breaks are text.
func TestOFREP_400_ContextBreakingTheInputRules(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	b, _, _, _ := allTypesFlags(t, h)
	tok := h.tenantToken(tenancy.NewTenantID())
	for _, tc := range []struct{ name, body, path string }{
		{"NUL in a value", `{"context":{"targetingKey":"u","plan":"a\u0000b"}}`, "context.plan "},
		{"C1 control in a nested value", `{"context":{"targetingKey":"u","tags":["ok","\u0085"]}}`, "context.tags[1] "},
		{"control character in a member name", `{"context":{"targetingKey":"u","a\u0001":"x"}}`, "context member names "},
		{"unpaired surrogate", `{"context":{"targetingKey":"u","plan":"\ud800"}}`, "context.plan "},
		{"nested too deeply", `{"context":{"targetingKey":"u","deep":` + nested(MaxValueDepth, "1") + `}}`, "context.deep.a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, path := range []string{"/api/ofrep/v1/evaluate/flags/" + b, "/api/ofrep/v1/evaluate/flags"} {
				r := h.must(http.StatusBadRequest, "POST", path, tok, tc.body)
				m := r.JSON(t)
				if details, _ := m["errorDetails"].(string); m["errorCode"] != "INVALID_CONTEXT" || !strings.HasPrefix(details, tc.path) {
					t.Fatalf("%s: %s, want INVALID_CONTEXT naming %s", path, r.Body, tc.path)
				}
			}
		})
	}
	h.must(http.StatusOK, "POST", "/api/ofrep/v1/evaluate/flags/"+b, tok, `{"context":{"targetingKey":"u","note":"two\tlines\r\n"}}`)
	h.must(http.StatusOK, "POST", "/api/ofrep/v1/evaluate/flags/"+b, tok, `{"context":{"targetingKey":"u","deep":`+nested(MaxValueDepth-1, "1")+`}}`)
}

// The body's member is "context" exactly: {"Context": …} is an unknown member, ignored as OFREP
// allows, never read as the context (so a rollout still lacks its targetingKey).
func TestOFREP_ContextMemberIsCaseSensitive(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	_, _, n, _ := allTypesFlags(t, h)
	tok := h.tenantToken(tenancy.NewTenantID())
	r := h.must(http.StatusBadRequest, "POST", "/api/ofrep/v1/evaluate/flags/"+n, tok, `{"Context":{"targetingKey":"user-1"}}`)
	if m := r.JSON(t); m["errorCode"] != "TARGETING_KEY_MISSING" {
		t.Fatalf("%s", r.Body)
	}
	h.must(http.StatusOK, "POST", "/api/ofrep/v1/evaluate/flags/"+n, tok, `{"context":{"targetingKey":"user-1"},"Context":{}}`)
}
