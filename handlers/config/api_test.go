package config

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	"spine/shared/entitlements"
	"spine/shared/tenancy"
)

func boolFlagBody() map[string]any {
	return map[string]any{"type": "boolean", "variants": map[string]any{"on": true, "off": false}, "defaultVariant": "off"}
}

// overridableFlagBody is boolFlagBody whose tenants may write their own overrides.
func overridableFlagBody() map[string]any {
	b := boolFlagBody()
	b["tenantOverridable"] = true
	return b
}

func TestPutFlag_201_CreatedThenReadBackWithETag(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	key := newKey("create")
	r := h.must(http.StatusCreated, "PUT", "/api/feature-flags/"+key, h.admin(), boolFlagBody())
	if r.Header.Get("ETag") != `"1"` || r.Header.Get("Location") != "/api/feature-flags/"+key {
		t.Fatalf("headers %v", r.Header)
	}
	tenant := tenancy.NewTenantID()
	g := h.must(http.StatusOK, "GET", "/api/feature-flags/"+key, h.tenantToken(tenant), nil)
	if m := g.JSON(t); m["key"] != key || m["defaultVariant"] != "off" || m["version"] != 1.0 {
		t.Fatalf("read back %s", g.Body)
	}
	l := h.must(http.StatusOK, "GET", "/api/feature-flags", h.tenantToken(tenant), nil)
	var page struct{ Value []struct{ Key string } }
	_ = json.Unmarshal(l.Body, &page)
	found := false
	for _, f := range page.Value {
		found = found || f.Key == key
	}
	if !found {
		t.Fatalf("list lacks %s: %s", key, l.Body)
	}
}

func TestGetFlag_200_TenantSeesNoRulesAdminDoes(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	key := newKey("rules")
	b := boolFlagBody()
	b["rules"] = []any{map[string]any{"when": []any{map[string]any{"attribute": "email", "op": "in", "values": []any{"ceo@other.example"}}}, "variant": "on"}}
	h.must(http.StatusCreated, "PUT", "/api/feature-flags/"+key, h.admin(), b)
	if m := h.must(http.StatusOK, "GET", "/api/feature-flags/"+key, h.tenantToken(tenancy.NewTenantID()), nil).JSON(t); m["rules"] != nil {
		t.Fatalf("a tenant sees the rules: %v", m)
	}
	if m := h.must(http.StatusOK, "GET", "/api/feature-flags/"+key, h.admin(), nil).JSON(t); m["rules"] == nil {
		t.Fatalf("the platform admin lacks the rules: %v", m)
	}
}

func TestPutFlag_200_ReplacedWithIfMatch(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	key := newKey("replace")
	h.must(http.StatusCreated, "PUT", "/api/feature-flags/"+key, h.admin(), boolFlagBody())
	b := boolFlagBody()
	b["defaultVariant"] = "on"
	r := h.must(http.StatusOK, "PUT", "/api/feature-flags/"+key, h.admin(), b, "If-Match", `"1"`)
	if r.Header.Get("ETag") != `"2"` {
		t.Fatalf("ETag %q", r.Header.Get("ETag"))
	}
}

func TestPutFlag_412_StaleIfMatch(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	key := newKey("stale")
	h.must(http.StatusCreated, "PUT", "/api/feature-flags/"+key, h.admin(), boolFlagBody())
	r := h.must(http.StatusPreconditionFailed, "PUT", "/api/feature-flags/"+key, h.admin(), boolFlagBody(), "If-Match", `"7"`)
	if c := r.ProblemCode(t); c != "version-mismatch" {
		t.Fatalf("code %s", c)
	}
}

func TestPutFlag_412_IfMatchOnAbsentFlag(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	key := newKey("absent")
	h.must(http.StatusPreconditionFailed, "PUT", "/api/feature-flags/"+key, h.admin(), boolFlagBody(), "If-Match", `"1"`)
	h.must(http.StatusNotFound, "GET", "/api/feature-flags/"+key, h.admin(), nil)
}

func TestPutFlag_403_TenantToken(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	r := h.must(http.StatusForbidden, "PUT", "/api/feature-flags/"+newKey("tenant"), h.tenantToken(tenancy.NewTenantID()), boolFlagBody())
	if c := r.ProblemCode(t); c != "platform-admin-required" {
		t.Fatalf("code %s", c)
	}
}

func TestPutFlag_400_InvalidDefinition(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	for name, mut := range map[string]func(map[string]any){
		"default variant unknown": func(b map[string]any) { b["defaultVariant"] = "maybe" },
		"variant of wrong type":   func(b map[string]any) { b["variants"] = map[string]any{"on": "yes", "off": false} },
		"bad type":                func(b map[string]any) { b["type"] = "integer" },
		"split without weights": func(b map[string]any) {
			b["rules"] = []any{map[string]any{"split": []any{map[string]any{"variant": "on", "weight": 0}}}}
		},
	} {
		t.Run(name, func(t *testing.T) {
			b := boolFlagBody()
			mut(b)
			r := h.must(http.StatusBadRequest, "PUT", "/api/feature-flags/"+newKey("bad"), h.admin(), b)
			if c := r.ProblemCode(t); c != "invalid-flag" {
				t.Fatalf("code %s", c)
			}
		})
	}
}

func TestGetFlag_404_Unknown(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	if c := h.must(http.StatusNotFound, "GET", "/api/feature-flags/"+newKey("none"), h.admin(), nil).ProblemCode(t); c != "flag-not-found" {
		t.Fatalf("code %s", c)
	}
}

func TestDeleteFlag_204_ThenNotFoundAndNotEvaluated(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	key := newKey("delete")
	tenant := tenancy.NewTenantID()
	h.must(http.StatusCreated, "PUT", "/api/feature-flags/"+key, h.admin(), boolFlagBody())
	h.must(http.StatusOK, "POST", "/api/ofrep/v1/evaluate/flags/"+key, h.tenantToken(tenant), map[string]any{"context": map[string]any{}})
	h.must(http.StatusNoContent, "DELETE", "/api/feature-flags/"+key, h.admin(), nil)
	h.must(http.StatusNotFound, "GET", "/api/feature-flags/"+key, h.admin(), nil)
	r := h.must(http.StatusNotFound, "POST", "/api/ofrep/v1/evaluate/flags/"+key, h.tenantToken(tenant), map[string]any{"context": map[string]any{}})
	if m := r.JSON(t); m["errorCode"] != "FLAG_NOT_FOUND" || m["key"] != key {
		t.Fatalf("after delete: %s", r.Body)
	}
}

func TestDeleteFlag_403_TenantToken(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	key := newKey("keep")
	h.must(http.StatusCreated, "PUT", "/api/feature-flags/"+key, h.admin(), boolFlagBody())
	h.must(http.StatusForbidden, "DELETE", "/api/feature-flags/"+key, h.tenantToken(tenancy.NewTenantID()), nil)
}

func evaluate(t *testing.T, h *harness, token, key string, ctx map[string]any) map[string]any {
	t.Helper()
	return h.must(http.StatusOK, "POST", "/api/ofrep/v1/evaluate/flags/"+key, token, map[string]any{"context": ctx}).JSON(t)
}

func TestPutOverride_201_ChangesOneTenantOnly(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	key := newKey("override")
	a, b := tenancy.NewTenantID(), tenancy.NewTenantID()
	h.must(http.StatusCreated, "PUT", "/api/feature-flags/"+key, h.admin(), overridableFlagBody())
	for _, tn := range []tenancy.TenantID{a, b} { // warm both tenants' copies
		if v := evaluate(t, h, h.tenantToken(tn), key, nil)["value"]; v != false {
			t.Fatalf("before: %v", v)
		}
	}
	r := h.must(http.StatusCreated, "PUT", "/api/feature-flags/"+key+"/overrides/"+a.String(), h.tenantToken(a), map[string]any{"variant": "on"})
	if m := r.JSON(t); m["variant"] != "on" || m["version"] != 1.0 {
		t.Fatalf("override %s", r.Body)
	}
	if m := evaluate(t, h, h.tenantToken(a), key, nil); m["value"] != true || m["reason"] != "STATIC" || m["variant"] != "on" {
		t.Fatalf("A after override: %v", m)
	}
	if m := evaluate(t, h, h.tenantToken(b), key, nil); m["value"] != false {
		t.Fatalf("B after A's override: %v", m)
	}
	// The tenant's kill switch, set by a platform admin naming the tenant.
	h.must(http.StatusOK, "PUT", "/api/feature-flags/"+key+"/overrides/"+a.String(), h.admin(), map[string]any{"disabled": true})
	if m := evaluate(t, h, h.tenantToken(a), key, nil); m["reason"] != "DISABLED" || m["value"] != false {
		t.Fatalf("A disabled: %v", m)
	}
	// Now the platform's override: the tenant may not remove it; the admin may.
	h.must(http.StatusForbidden, "DELETE", "/api/feature-flags/"+key+"/overrides/"+a.String(), h.tenantToken(a), nil)
	h.must(http.StatusNoContent, "DELETE", "/api/feature-flags/"+key+"/overrides/"+a.String(), h.admin(), nil)
	if m := evaluate(t, h, h.tenantToken(a), key, nil); m["reason"] != "STATIC" || m["value"] != false {
		t.Fatalf("A after delete: %v", m)
	}
}

func TestPutOverride_400_UnknownVariant(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	key := newKey("ovbad")
	a := tenancy.NewTenantID()
	h.must(http.StatusCreated, "PUT", "/api/feature-flags/"+key, h.admin(), overridableFlagBody())
	if c := h.must(http.StatusBadRequest, "PUT", "/api/feature-flags/"+key+"/overrides/"+a.String(), h.tenantToken(a),
		map[string]any{"variant": "maybe"}).ProblemCode(t); c != "invalid-flag" {
		t.Fatalf("code %s", c)
	}
}

func TestPutOverride_404_UnknownFlag(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	a := tenancy.NewTenantID()
	h.must(http.StatusNotFound, "PUT", "/api/feature-flags/"+newKey("nf")+"/overrides/"+a.String(), h.tenantToken(a), map[string]any{"disabled": true})
}

func TestDeleteOverride_404_None(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	key := newKey("ovnone")
	a := tenancy.NewTenantID()
	h.must(http.StatusCreated, "PUT", "/api/feature-flags/"+key, h.admin(), overridableFlagBody())
	if c := h.must(http.StatusNotFound, "DELETE", "/api/feature-flags/"+key+"/overrides/"+a.String(), h.tenantToken(a), nil).ProblemCode(t); c != "override-not-found" {
		t.Fatalf("code %s", c)
	}
}

func TestSettings_DefaultThenTenantValue(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	key := newKey("setting")
	a, b := tenancy.NewTenantID(), tenancy.NewTenantID()
	h.must(http.StatusCreated, "PUT", "/api/settings/"+key, h.admin(), map[string]any{"type": "number", "value": 30, "tenantWritable": true})
	if m := h.must(http.StatusOK, "GET", "/api/settings/"+key, h.tenantToken(a), nil).JSON(t); m["value"] != 30.0 || m["isDefault"] != true {
		t.Fatalf("default: %v", m)
	}
	h.must(http.StatusCreated, "PUT", "/api/settings/"+key, h.tenantToken(a), map[string]any{"value": 90})
	if m := h.must(http.StatusOK, "GET", "/api/settings/"+key, h.tenantToken(a), nil).JSON(t); m["value"] != 90.0 || m["isDefault"] != false || m["version"] != 1.0 {
		t.Fatalf("A's value: %v", m)
	}
	if m := h.must(http.StatusOK, "GET", "/api/settings/"+key+"?tenantId="+b.String(), h.admin(), nil).JSON(t); m["value"] != 30.0 {
		t.Fatalf("B still has the default: %v", m)
	}
	h.must(http.StatusPreconditionFailed, "PUT", "/api/settings/"+key, h.tenantToken(a), map[string]any{"value": 91}, "If-Match", `"5"`)
}

func TestPutSetting_400_WrongType(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	key := newKey("settype")
	a := tenancy.NewTenantID()
	h.must(http.StatusCreated, "PUT", "/api/settings/"+key, h.admin(), map[string]any{"type": "boolean", "value": true, "tenantWritable": true})
	if c := h.must(http.StatusBadRequest, "PUT", "/api/settings/"+key, h.tenantToken(a), map[string]any{"value": "yes"}).ProblemCode(t); c != "invalid-setting" {
		t.Fatalf("code %s", c)
	}
	if c := h.must(http.StatusBadRequest, "PUT", "/api/settings/"+newKey("s"), h.admin(), map[string]any{"type": "number", "value": "x"}).ProblemCode(t); c != "invalid-setting" {
		t.Fatalf("code %s", c)
	}
}

func TestGetSetting_404_Unknown(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	if c := h.must(http.StatusNotFound, "GET", "/api/settings/"+newKey("nos"), h.tenantToken(tenancy.NewTenantID()), nil).ProblemCode(t); c != "setting-not-found" {
		t.Fatalf("code %s", c)
	}
}

func TestEvaluate_EditionDefaultFromEntitlements(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	key := newKey("edition")
	h.ents.editions["pro"] = entitlements.Entitlements{Edition: "pro", FeatureDefaults: map[string]json.RawMessage{key: json.RawMessage("true")}}
	pro, free := tenancy.NewTenantID(), tenancy.NewTenantID()
	h.ents.set(pro, "pro")
	h.must(http.StatusCreated, "PUT", "/api/feature-flags/"+key, h.admin(), boolFlagBody())
	if m := evaluate(t, h, h.tenantToken(pro), key, nil); m["value"] != true || m["variant"] != "on" {
		t.Fatalf("pro: %v", m)
	}
	if m := evaluate(t, h, h.tenantToken(free), key, nil); m["value"] != false {
		t.Fatalf("no subscription: %v", m)
	}
}

// The isolation matrix: tenant A's token on every tenant-level route with B's tenant id.
func TestIsolation_TenantTokenNeverReachesAnotherTenant(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	key := newKey("iso")
	setting := newKey("iso-setting")
	a, b := tenancy.NewTenantID(), tenancy.NewTenantID()
	h.must(http.StatusCreated, "PUT", "/api/feature-flags/"+key, h.admin(), boolFlagBody())
	h.must(http.StatusCreated, "PUT", "/api/settings/"+setting, h.admin(), map[string]any{"type": "string", "value": "x"})
	h.must(http.StatusCreated, "PUT", "/api/feature-flags/"+key+"/overrides/"+b.String(), h.admin(), map[string]any{"variant": "on"})
	tokA := h.tenantToken(a)
	for _, rq := range []struct {
		method, path string
		body         any
	}{
		{"PUT", "/api/feature-flags/" + key + "/overrides/" + b.String(), map[string]any{"disabled": true}},
		{"DELETE", "/api/feature-flags/" + key + "/overrides/" + b.String(), nil},
		{"GET", "/api/settings/" + setting + "?tenantId=" + b.String(), nil},
		{"PUT", "/api/settings/" + setting + "?tenantId=" + b.String(), map[string]any{"value": "y"}},
		{"POST", "/api/ofrep/v1/evaluate/flags/" + key + "?tenantId=" + b.String(), map[string]any{"context": map[string]any{}}},
		{"POST", "/api/ofrep/v1/evaluate/flags?tenantId=" + b.String(), map[string]any{"context": map[string]any{}}},
	} {
		t.Run(rq.method+" "+rq.path, func(t *testing.T) {
			r := h.do(rq.method, rq.path, tokA, rq.body)
			if r.Code != http.StatusForbidden || r.ProblemCode(t) != "tenant-mismatch" {
				t.Fatalf("%d %s, want 403 tenant-mismatch", r.Code, r.Body)
			}
		})
	}
	// B's override is untouched and B still sees it.
	if m := evaluate(t, h, h.tenantToken(b), key, nil); m["value"] != true {
		t.Fatalf("B's override: %v", m)
	}
}

// failingEntitlements fails every question (billing unreachable, or not enabled).
type failingEntitlements struct{ memEntitlements }

func (*failingEntitlements) Of(context.Context, tenancy.TenantID) (entitlements.Entitlements, error) {
	return entitlements.Entitlements{}, errors.New("billing unreachable")
}

// The entitlements source failing is no failed evaluation: the definitions' defaults answer.
func TestEvaluate_200_EntitlementsUnavailable(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.svc.ents = &failingEntitlements{}
	key := newKey("noents")
	h.must(http.StatusCreated, "PUT", "/api/feature-flags/"+key, h.admin(), boolFlagBody())
	if m := evaluate(t, h, h.tenantToken(tenancy.NewTenantID()), key, nil); m["value"] != false || m["reason"] != "STATIC" {
		t.Fatalf("%v", m)
	}
}

// An override carries its version as ETag: created is 201, replaced 200, and If-Match naming
// another version (or any version before the override exists) is 412 and changes nothing.
func TestPutOverride_412_StaleIfMatchAnd201ThenETag(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	key := newKey("ovim")
	a := tenancy.NewTenantID()
	tok := h.tenantToken(a)
	path := "/api/feature-flags/" + key + "/overrides/" + a.String()
	h.must(http.StatusCreated, "PUT", "/api/feature-flags/"+key, h.admin(), overridableFlagBody())
	if c := h.must(http.StatusPreconditionFailed, "PUT", path, tok, map[string]any{"variant": "on"}, "If-Match", `"1"`).ProblemCode(t); c != "version-mismatch" {
		t.Fatalf("If-Match before the override exists: code %s", c)
	}
	r := h.must(http.StatusCreated, "PUT", path, tok, map[string]any{"variant": "on"})
	if r.Header.Get("ETag") != `"1"` {
		t.Fatalf("created: ETag %q", r.Header.Get("ETag"))
	}
	h.must(http.StatusPreconditionFailed, "PUT", path, tok, map[string]any{"disabled": true}, "If-Match", `"7"`)
	if m := evaluate(t, h, tok, key, nil); m["reason"] != "STATIC" || m["value"] != true {
		t.Fatalf("a stale If-Match changed the override: %v", m)
	}
	r = h.must(http.StatusOK, "PUT", path, tok, map[string]any{"disabled": true}, "If-Match", `"1"`)
	if r.Header.Get("ETag") != `"2"` {
		t.Fatalf("replaced: ETag %q", r.Header.Get("ETag"))
	}
	h.must(http.StatusPreconditionFailed, "DELETE", path, tok, nil, "If-Match", `"1"`)
	h.must(http.StatusNoContent, "DELETE", path, tok, nil, "If-Match", `"2"`)
}

// A setting's type cannot change while a tenant holds a value of it (the value would no longer be
// of the setting's type): 409 setting-type-in-use, and the tenant's value reads back as it was.
// The same type with a new default, and a type change of a setting no tenant set, still work.
func TestPutSettingDefinition_409_TypeChangeWhileTenantValuesExist(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	key := newKey("settype-in-use")
	a := tenancy.NewTenantID()
	h.must(http.StatusCreated, "PUT", "/api/settings/"+key, h.admin(), map[string]any{"type": "number", "value": 1, "tenantWritable": true})
	h.must(http.StatusCreated, "PUT", "/api/settings/"+key, h.tenantToken(a), map[string]any{"value": 42})
	if c := h.must(http.StatusConflict, "PUT", "/api/settings/"+key, h.admin(), map[string]any{"type": "string", "value": "x"}).ProblemCode(t); c != "setting-type-in-use" {
		t.Fatalf("code %s", c)
	}
	if m := h.must(http.StatusOK, "GET", "/api/settings/"+key, h.tenantToken(a), nil).JSON(t); m["type"] != "number" || m["value"] != 42.0 {
		t.Fatalf("after the refused type change: %v", m)
	}
	h.must(http.StatusOK, "PUT", "/api/settings/"+key, h.admin(), map[string]any{"type": "number", "value": 2})
	unused := newKey("settype-free")
	h.must(http.StatusCreated, "PUT", "/api/settings/"+unused, h.admin(), map[string]any{"type": "number", "value": 1})
	if m := h.must(http.StatusOK, "PUT", "/api/settings/"+unused, h.admin(), map[string]any{"type": "string", "value": "x"}).JSON(t); m["type"] != "string" {
		t.Fatalf("type change of an unused setting: %v", m)
	}
}
