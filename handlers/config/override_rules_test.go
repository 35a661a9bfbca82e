package config

import (
	"net/http"
	"strings"
	"testing"

	"spine/shared/tenancy"
)

// An override that pins no variant and does not disable ({} or {"variant":""}), or whose variant
// name is too long, is 400 invalid-input naming "variant"; nothing is stored.
func TestPutOverride_400_NeitherVariantNorDisabled(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	key := newKey("ov")
	h.must(http.StatusCreated, "PUT", "/api/feature-flags/"+key, h.admin(), boolFlagBody())
	tenant := tenancy.NewTenantID()
	path := "/api/feature-flags/" + key + "/overrides/" + tenant.String()
	for _, body := range []string{`{}`, `{"variant":""}`, `{"disabled":false}`, `{"variant":"","disabled":true}`, `{"variant":"` + strings.Repeat("v", MaxVariantName+1) + `"}`} {
		m := h.must(http.StatusBadRequest, "PUT", path, h.admin(), body).JSON(t)
		if m["code"] != "invalid-input" || problemField(t, m) != "variant" {
			t.Errorf("%s: %v, want invalid-input naming variant", body, m)
		}
	}
	h.must(http.StatusNotFound, "DELETE", path, h.admin(), nil)
	h.must(http.StatusCreated, "PUT", path, h.admin(), `{"disabled":true}`)
	h.must(http.StatusOK, "PUT", path, h.admin(), `{"variant":"on"}`)
}

// An override a platform admin wrote is the platform's: the tenant's token may neither replace nor
// remove it (403 override-set-by-platform, the override unchanged); the admin still may.
func TestOverride_403_TenantCannotChangePlatformOverride(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	key := newKey("forced")
	h.must(http.StatusCreated, "PUT", "/api/feature-flags/"+key, h.admin(), overridableFlagBody())
	tenant := tenancy.NewTenantID()
	path := "/api/feature-flags/" + key + "/overrides/" + tenant.String()
	h.must(http.StatusCreated, "PUT", path, h.admin(), `{"variant":"on"}`)
	tok := h.tenantToken(tenant)
	if c := h.must(http.StatusForbidden, "PUT", path, tok, `{"variant":"off"}`).ProblemCode(t); c != "override-set-by-platform" {
		t.Fatalf("put: %s", c)
	}
	if c := h.must(http.StatusForbidden, "DELETE", path, tok, nil).ProblemCode(t); c != "override-set-by-platform" {
		t.Fatalf("delete: %s", c)
	}
	if m := evaluate(t, h, tok, key, map[string]any{}); m["variant"] != "on" {
		t.Fatalf("evaluated %v, want the platform's variant", m)
	}
	h.must(http.StatusOK, "PUT", path, h.admin(), `{"variant":"off"}`)
	h.must(http.StatusNoContent, "DELETE", path, h.admin(), nil)
	// one the tenant wrote stays the tenant's
	h.must(http.StatusCreated, "PUT", path, tok, `{"variant":"on"}`)
	h.must(http.StatusNoContent, "DELETE", path, tok, nil)
}

// A setting value a platform admin wrote for the tenant: the tenant's token may not replace it
// (403 setting-set-by-platform); one the tenant wrote it may.
func TestPutSetting_403_TenantCannotChangePlatformValue(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	key := newKey("s")
	tenant := tenancy.NewTenantID()
	h.must(http.StatusCreated, "PUT", "/api/settings/"+key, h.admin(), map[string]any{"type": "number", "value": 1, "tenantWritable": true})
	h.must(http.StatusCreated, "PUT", "/api/settings/"+key+"?tenantId="+tenant.String(), h.admin(), map[string]any{"value": 5})
	tok := h.tenantToken(tenant)
	if c := h.must(http.StatusForbidden, "PUT", "/api/settings/"+key, tok, map[string]any{"value": 6}).ProblemCode(t); c != "setting-set-by-platform" {
		t.Fatalf("code %s", c)
	}
	if m := h.must(http.StatusOK, "GET", "/api/settings/"+key, tok, nil).JSON(t); m["value"] != 5.0 {
		t.Fatalf("%v", m)
	}
	other := tenancy.NewTenantID()
	h.must(http.StatusCreated, "PUT", "/api/settings/"+key, h.tenantToken(other), map[string]any{"value": 7})
	h.must(http.StatusOK, "PUT", "/api/settings/"+key, h.tenantToken(other), map[string]any{"value": 8})
}

// A setting definition and a tenant's first value answer 201 with a Location; replacing either
// answers 200.
func TestPutSetting_201_CreatedThen200Replaced(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	key := newKey("s")
	tenant := tenancy.NewTenantID()
	r := h.must(http.StatusCreated, "PUT", "/api/settings/"+key, h.admin(), map[string]any{"type": "number", "value": 1, "tenantWritable": true})
	if r.Header.Get("Location") != "/api/settings/"+key || r.Header.Get("ETag") != `"1"` {
		t.Fatalf("headers %v", r.Header)
	}
	h.must(http.StatusOK, "PUT", "/api/settings/"+key, h.admin(), map[string]any{"type": "number", "value": 2, "tenantWritable": true})
	tok := h.tenantToken(tenant)
	if r := h.must(http.StatusCreated, "PUT", "/api/settings/"+key, tok, map[string]any{"value": 3}); r.Header.Get("Location") != "/api/settings/"+key {
		t.Fatalf("headers %v", r.Header)
	}
	if r := h.must(http.StatusOK, "PUT", "/api/settings/"+key, tok, map[string]any{"value": 4}); r.Header.Get("Location") != "" {
		t.Fatalf("a replace has no Location: %v", r.Header)
	}
}

// An override naming a variant the flag does not have is 400 invalid-flag naming "variant",
// without package prefixes.
func TestPutOverride_400_UnknownVariantNamesMember(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	key := newKey("ovname")
	h.must(http.StatusCreated, "PUT", "/api/feature-flags/"+key, h.admin(), boolFlagBody())
	m := h.must(http.StatusBadRequest, "PUT", "/api/feature-flags/"+key+"/overrides/"+tenancy.NewTenantID().String(), h.admin(), `{"variant":"maybe"}`).JSON(t)
	if m["code"] != "invalid-flag" || problemField(t, m) != "variant" || m["detail"] != `variant names no variant of the flag ("maybe").` {
		t.Fatalf("%v", m)
	}
}
