package config

import (
	"net/http"
	"testing"

	"spine/shared/tenancy"
)

// A tenant's own callers cannot pin a variant of, or switch off, a flag whose definition is not
// tenantOverridable (the default): 403 override-not-allowed, and evaluation is unchanged. A
// platform admin naming the tenant still may, and the tenant cannot delete the admin's override.
func TestOverride_403_TenantOnFlagNotTenantOverridable(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	key := newKey("notoverridable")
	a := tenancy.NewTenantID()
	tok := h.tenantToken(a)
	path := "/api/feature-flags/" + key + "/overrides/" + a.String()
	h.must(http.StatusCreated, "PUT", "/api/feature-flags/"+key, h.admin(), boolFlagBody())
	if m := h.must(http.StatusOK, "GET", "/api/feature-flags/"+key, tok, nil).JSON(t); m["tenantOverridable"] != false {
		t.Fatalf("tenantOverridable defaults to false: %v", m)
	}
	for _, body := range []map[string]any{{"variant": "on"}, {"disabled": true}} {
		if c := h.must(http.StatusForbidden, "PUT", path, tok, body).ProblemCode(t); c != "override-not-allowed" {
			t.Fatalf("%v: code %s", body, c)
		}
	}
	if m := evaluate(t, h, tok, key, nil); m["value"] != false || m["reason"] != "STATIC" {
		t.Fatalf("a refused override changed the evaluation: %v", m)
	}
	if m := h.must(http.StatusCreated, "PUT", path, h.admin(), map[string]any{"variant": "on"}).JSON(t); m["setByPlatform"] != true {
		t.Fatalf("the admin's override: %v", m)
	}
	if m := evaluate(t, h, tok, key, nil); m["value"] != true {
		t.Fatalf("the admin's override is not applied: %v", m)
	}
	if c := h.must(http.StatusForbidden, "DELETE", path, tok, nil).ProblemCode(t); c != "override-not-allowed" {
		t.Fatalf("tenant delete: code %s", c)
	}
	h.must(http.StatusNoContent, "DELETE", path, h.admin(), nil)
}

// An override a tenant wrote while the flag was tenantOverridable lapses when a platform admin
// makes it non-overridable (evaluation ignores it; a platform admin's override of another tenant
// still applies), and comes back when the flag is made overridable again.
func TestEvaluate_TenantOverrideLapsesWhileFlagIsNotTenantOverridable(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	key := newKey("lapse")
	a, b := tenancy.NewTenantID(), tenancy.NewTenantID()
	h.must(http.StatusCreated, "PUT", "/api/feature-flags/"+key, h.admin(), overridableFlagBody())
	if m := h.must(http.StatusCreated, "PUT", "/api/feature-flags/"+key+"/overrides/"+a.String(), h.tenantToken(a), map[string]any{"variant": "on"}).JSON(t); m["setByPlatform"] != false {
		t.Fatalf("the tenant's override: %v", m)
	}
	h.must(http.StatusCreated, "PUT", "/api/feature-flags/"+key+"/overrides/"+b.String(), h.admin(), map[string]any{"variant": "on"})
	if v := evaluate(t, h, h.tenantToken(a), key, nil)["value"]; v != true {
		t.Fatalf("A while overridable: %v", v)
	}
	h.must(http.StatusOK, "PUT", "/api/feature-flags/"+key, h.admin(), boolFlagBody())
	if m := evaluate(t, h, h.tenantToken(a), key, nil); m["value"] != false || m["reason"] != "STATIC" {
		t.Fatalf("A's own override still applies after the flag stopped being overridable: %v", m)
	}
	if v := evaluate(t, h, h.tenantToken(b), key, nil)["value"]; v != true {
		t.Fatalf("B's platform-set override: %v", v)
	}
	h.must(http.StatusOK, "PUT", "/api/feature-flags/"+key, h.admin(), overridableFlagBody())
	if v := evaluate(t, h, h.tenantToken(a), key, nil)["value"]; v != true {
		t.Fatalf("A once overridable again: %v", v)
	}
}
