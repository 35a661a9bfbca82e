package config

import (
	"net/http"
	"testing"

	"spine/shared/tenancy"
)

// A tenant's own callers cannot write the value of a setting whose definition is not
// tenantWritable (the default): 403 setting-not-writable, and the value is unchanged. A platform
// admin naming the tenant still may.
func TestPutSetting_403_TenantOnSettingNotTenantWritable(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	key := newKey("notwritable")
	a := tenancy.NewTenantID()
	tok := h.tenantToken(a)
	if m := h.must(http.StatusCreated, "PUT", "/api/settings/"+key, h.admin(), map[string]any{"type": "number", "value": 30}).JSON(t); m["tenantWritable"] != false {
		t.Fatalf("tenantWritable defaults to false: %v", m)
	}
	if c := h.must(http.StatusForbidden, "PUT", "/api/settings/"+key, tok, map[string]any{"value": 90}).ProblemCode(t); c != "setting-not-writable" {
		t.Fatalf("code %s", c)
	}
	if m := h.must(http.StatusOK, "GET", "/api/settings/"+key, tok, nil).JSON(t); m["value"] != 30.0 || m["isDefault"] != true {
		t.Fatalf("a refused write changed the value: %v", m)
	}
	h.must(http.StatusCreated, "PUT", "/api/settings/"+key+"?tenantId="+a.String(), h.admin(), map[string]any{"value": 60})
	if m := h.must(http.StatusOK, "GET", "/api/settings/"+key, tok, nil).JSON(t); m["value"] != 60.0 || m["isDefault"] != false {
		t.Fatalf("the admin's value: %v", m)
	}
	if c := h.must(http.StatusBadRequest, "PUT", "/api/settings/"+key, tok, map[string]any{"value": 1, "tenantWritable": true}).ProblemCode(t); c != "invalid-setting" {
		t.Fatalf("a tenant naming tenantWritable: code %s", c)
	}
}

// A value a tenant wrote while the setting was tenantWritable is not read back while it is not
// (the platform default is), and is again once the setting is made writable again; a platform
// admin's value for another tenant is read back either way.
func TestGetSetting_TenantValueLapsesWhileSettingIsNotTenantWritable(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	key := newKey("lapse-setting")
	a, b := tenancy.NewTenantID(), tenancy.NewTenantID()
	h.must(http.StatusCreated, "PUT", "/api/settings/"+key, h.admin(), map[string]any{"type": "string", "value": "default", "tenantWritable": true})
	h.must(http.StatusCreated, "PUT", "/api/settings/"+key, h.tenantToken(a), map[string]any{"value": "mine"})
	h.must(http.StatusCreated, "PUT", "/api/settings/"+key+"?tenantId="+b.String(), h.admin(), map[string]any{"value": "pinned"})
	h.must(http.StatusOK, "PUT", "/api/settings/"+key, h.admin(), map[string]any{"type": "string", "value": "default"})
	if m := h.must(http.StatusOK, "GET", "/api/settings/"+key, h.tenantToken(a), nil).JSON(t); m["value"] != "default" || m["isDefault"] != true {
		t.Fatalf("A's own value still read back after the setting stopped being writable: %v", m)
	}
	if m := h.must(http.StatusOK, "GET", "/api/settings/"+key, h.tenantToken(b), nil).JSON(t); m["value"] != "pinned" {
		t.Fatalf("B's platform-set value: %v", m)
	}
	h.must(http.StatusOK, "PUT", "/api/settings/"+key, h.admin(), map[string]any{"type": "string", "value": "default", "tenantWritable": true})
	if m := h.must(http.StatusOK, "GET", "/api/settings/"+key, h.tenantToken(a), nil).JSON(t); m["value"] != "mine" {
		t.Fatalf("A once writable again: %v", m)
	}
}
