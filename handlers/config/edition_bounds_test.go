package config

import (
	"encoding/json"
	"net/http"
	"testing"

	"spine/shared/entitlements"
	"spine/shared/tenancy"
)

// An edition default nested deeper than MaxValueDepth is left out (the flag evaluates to its
// definition's default, other edition defaults still apply); one at the bound applies.
func TestEvaluate_EditionDefaultPastValueBoundLeftOut(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	deep, ok, other := newKey("deep"), newKey("ok"), newKey("other")
	objFlag := map[string]any{"type": "object", "variants": map[string]any{"empty": map[string]any{}}, "defaultVariant": "empty"}
	for _, k := range []string{deep, ok} {
		h.must(http.StatusCreated, "PUT", "/api/feature-flags/"+k, h.admin(), objFlag)
	}
	h.must(http.StatusCreated, "PUT", "/api/feature-flags/"+other, h.admin(), boolFlagBody())
	h.ents.mu.Lock()
	h.ents.editions["deep"] = entitlements.Entitlements{Edition: "deep", FeatureDefaults: map[string]json.RawMessage{
		deep:  json.RawMessage(`{"a":` + nested(MaxValueDepth, "1") + `}`),
		ok:    json.RawMessage(nested(MaxValueDepth, "1")),
		other: json.RawMessage("true"),
	}}
	h.ents.mu.Unlock()
	tenant := tenancy.NewTenantID()
	h.ents.set(tenant, "deep")
	tok := h.tenantToken(tenant)
	if m := evaluate(t, h, tok, deep, nil); m["variant"] != "empty" || m["reason"] != "STATIC" {
		t.Fatalf("deep: %v, want the definition's default", m)
	}
	if m := evaluate(t, h, tok, ok, nil); m["metadata"].(map[string]any)["source"] != "edition" {
		t.Fatalf("at the bound: %v, want the edition's default", m)
	}
	if m := evaluate(t, h, tok, other, nil); m["value"] != true {
		t.Fatalf("other: %v", m)
	}
}
