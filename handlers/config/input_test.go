package config

import (
	"net/http"
	"strings"
	"testing"

	"spine/shared/tenancy"
)

func nested(levels int, inner string) string {
	return strings.Repeat(`{"a":`, levels) + inner + strings.Repeat(`}`, levels)
}

// A tenant's setting value nested 5,000 levels deep would be stored, and its SettingChanged
// event refused by the audit trail (64 levels): the value is refused at the API instead, naming
// the member; MaxValueDepth levels are accepted.
func TestPutSetting_400_ValueNestedDeeperThanTheInputRules(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	key := newKey("deep")
	a := tenancy.NewTenantID()
	h.must(http.StatusCreated, "PUT", "/api/settings/"+key, h.admin(), map[string]any{"type": "object", "value": map[string]any{}, "tenantWritable": true})
	for _, levels := range []int{5000, MaxValueDepth + 1} {
		r := h.must(http.StatusBadRequest, "PUT", "/api/settings/"+key, h.tenantToken(a), `{"value":`+nested(levels, "1")+`}`)
		if r.ProblemCode(t) != "invalid-input" || !strings.Contains(string(r.Body), `"value"`) {
			t.Fatalf("%d levels: %s", levels, r.Body)
		}
	}
	h.must(http.StatusBadRequest, "PUT", "/api/settings/"+newKey("deepdef"), h.admin(), `{"type":"object","value":`+nested(MaxValueDepth+1, "1")+`}`)
	h.must(http.StatusCreated, "PUT", "/api/settings/"+key, h.tenantToken(a), `{"value":`+nested(MaxValueDepth, "1")+`}`)
}

// Member names are matched exactly, as every shared body rule reads them: {"TYPE": …} is not
// "type" but an unknown member, on every config body.
func TestConfigBodies_400_MemberNamesAreCaseSensitive(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	key := newKey("case")
	a := tenancy.NewTenantID()
	h.must(http.StatusCreated, "PUT", "/api/feature-flags/"+key, h.admin(), boolFlagBody())
	h.must(http.StatusCreated, "PUT", "/api/settings/"+key, h.admin(), map[string]any{"type": "number", "value": 1, "tenantWritable": true})
	for _, tc := range []struct{ name, path, token, body string }{
		{"setting definition", "/api/settings/" + newKey("case"), h.admin(), `{"TYPE":"number","VALUE":1}`},
		{"tenant value", "/api/settings/" + key, h.tenantToken(a), `{"Value":2}`},
		{"flag definition", "/api/feature-flags/" + newKey("case"), h.admin(),
			`{"type":"boolean","variants":{"on":true,"off":false},"DefaultVariant":"off"}`},
		{"rule condition", "/api/feature-flags/" + newKey("case"), h.admin(),
			`{"type":"boolean","variants":{"on":true,"off":false},"defaultVariant":"off","rules":[{"when":[{"Attribute":"x","op":"equals","values":["y"]}],"variant":"on"}]}`},
		{"override", "/api/feature-flags/" + key + "/overrides/" + a.String(), h.tenantToken(a), `{"Variant":"on"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if c := h.must(http.StatusBadRequest, "PUT", tc.path, tc.token, tc.body).ProblemCode(t); c != "unknown-field" {
				t.Fatalf("code %s", c)
			}
		})
	}
	// Variant names are data (map keys), not member names: any case is kept as sent.
	h.must(http.StatusCreated, "PUT", "/api/feature-flags/"+newKey("case"), h.admin(),
		`{"type":"boolean","variants":{"ON":true,"off":false},"defaultVariant":"ON"}`)
}

// Flag variants and setting values obey the shared rules: a number no float64 holds (1e400, +Inf
// to every SDK), a value nested too deeply or too large, and NUL in a string are 400.
func TestPutFlag_400_VariantsBreakingTheInputRules(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	for _, tc := range []struct{ name, body, code string }{
		{"number beyond float64", `{"type":"number","variants":{"big":1e400,"one":1},"defaultVariant":"one"}`, "invalid-input"},
		{"negative number beyond float64", `{"type":"number","variants":{"big":-2e308,"one":1},"defaultVariant":"one"}`, "invalid-input"},
		{"number beyond float64 in an object", `{"type":"object","variants":{"o":{"n":[1e999]}},"defaultVariant":"o"}`, "invalid-input"},
		{"object nested too deeply", `{"type":"object","variants":{"o":` + nested(MaxValueDepth+1, "1") + `},"defaultVariant":"o"}`, "invalid-input"},
		{"object too large", `{"type":"object","variants":{"o":{"s":"` + strings.Repeat("x", MaxValueBytes) + `"}},"defaultVariant":"o"}`, "invalid-input"},
		{"NUL in a string variant", `{"type":"string","variants":{"s":"a\u0000b"},"defaultVariant":"s"}`, "invalid-input"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := h.must(http.StatusBadRequest, "PUT", "/api/feature-flags/"+newKey("rules"), h.admin(), tc.body)
			if c := r.ProblemCode(t); c != tc.code {
				t.Fatalf("code %s: %s", c, r.Body)
			}
		})
	}
	h.must(http.StatusCreated, "PUT", "/api/feature-flags/"+newKey("rules"), h.admin(),
		`{"type":"number","variants":{"max":1.7976931348623157e308,"tiny":1e-400},"defaultVariant":"max"}`)
	h.must(http.StatusBadRequest, "PUT", "/api/settings/"+newKey("big"), h.admin(), `{"type":"number","value":1e400}`)
}

// A variant name longer than an override can store (or not one line) is refused with the
// definition, so pinning it later can never fail in the store; so is an overlong description.
func TestPutFlag_400_VariantNameOrDescriptionTooLong(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	for name, body := range map[string]map[string]any{
		"long variant name":     {"type": "boolean", "variants": map[string]any{strings.Repeat("v", MaxVariantName+1): true, "off": false}, "defaultVariant": "off"},
		"two-line variant name": {"type": "boolean", "variants": map[string]any{"a\nb": true, "off": false}, "defaultVariant": "off"},
		"long description": {"type": "boolean", "variants": map[string]any{"on": true, "off": false}, "defaultVariant": "off",
			"description": strings.Repeat("d", MaxDescription+1)},
	} {
		t.Run(name, func(t *testing.T) {
			if c := h.must(http.StatusBadRequest, "PUT", "/api/feature-flags/"+newKey("long"), h.admin(), body).ProblemCode(t); c != "invalid-input" {
				t.Fatalf("code %s", c)
			}
		})
	}
	key := newKey("long")
	longest := strings.Repeat("v", MaxVariantName)
	h.must(http.StatusCreated, "PUT", "/api/feature-flags/"+key, h.admin(), map[string]any{"type": "boolean", "variants": map[string]any{longest: true, "off": false}, "defaultVariant": "off", "tenantOverridable": true})
	a := tenancy.NewTenantID()
	h.must(http.StatusCreated, "PUT", "/api/feature-flags/"+key+"/overrides/"+a.String(), h.tenantToken(a), map[string]any{"variant": longest})
}
