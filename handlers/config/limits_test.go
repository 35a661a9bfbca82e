package config

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"spine/shared/flags"
)

// problemField returns the first errors[].field of a problem body.
func problemField(t *testing.T, m map[string]any) string {
	t.Helper()
	errs, _ := m["errors"].([]any)
	if len(errs) == 0 {
		t.Fatalf("no errors[] in %v", m)
	}
	f, _ := errs[0].(map[string]any)["field"].(string)
	return f
}

// A definition past a count bound is 400 invalid-input naming the member; at the bound it is stored.
func TestPutFlag_400_InvalidInputPastCountBounds(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	values := func(n int) []any {
		v := make([]any, n)
		for i := range v {
			v[i] = fmt.Sprintf("u%d", i)
		}
		return v
	}
	variants := func(n int) map[string]any {
		v := map[string]any{"off": false}
		for i := 1; i < n; i++ {
			v[fmt.Sprintf("v%d", i)] = true
		}
		return v
	}
	split := func(n int) []any {
		s := make([]any, n)
		for i := range s {
			s[i] = map[string]any{"variant": "on", "weight": 1}
		}
		return s
	}
	rule := func(conds, vals int) map[string]any {
		w := make([]any, conds)
		for i := range w {
			w[i] = map[string]any{"attribute": "a", "op": "in", "values": values(vals)}
		}
		return map[string]any{"when": w, "variant": "on"}
	}
	rules := func(n int) []any {
		r := make([]any, n)
		for i := range r {
			r[i] = map[string]any{"variant": "on"}
		}
		return r
	}
	for _, tc := range []struct {
		name, field string
		over, at    func(map[string]any)
	}{
		{"variants", "variants",
			func(b map[string]any) { b["variants"] = variants(flags.MaxVariants + 1) },
			func(b map[string]any) { b["variants"] = variants(flags.MaxVariants) }},
		{"rules", "rules",
			func(b map[string]any) { b["rules"] = rules(flags.MaxRules + 1) },
			func(b map[string]any) { b["rules"] = rules(flags.MaxRules) }},
		{"conditions", "rules[0].when",
			func(b map[string]any) { b["rules"] = []any{rule(flags.MaxConditions+1, 1)} },
			func(b map[string]any) { b["rules"] = []any{rule(flags.MaxConditions, 1)} }},
		{"values", "rules[1].when[0].values",
			func(b map[string]any) { b["rules"] = []any{rule(1, 1), rule(1, flags.MaxConditionValues+1)} },
			func(b map[string]any) { b["rules"] = []any{rule(1, 1), rule(1, flags.MaxConditionValues)} }},
		{"split", "rules[0].split",
			func(b map[string]any) { b["rules"] = []any{map[string]any{"split": split(flags.MaxSplit + 1)}} },
			func(b map[string]any) { b["rules"] = []any{map[string]any{"split": split(flags.MaxSplit)}} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := boolFlagBody()
			b["variants"] = map[string]any{"on": true, "off": false}
			tc.over(b)
			r := h.must(http.StatusBadRequest, "PUT", "/api/feature-flags/"+newKey("big"), h.admin(), b)
			m := r.JSON(t)
			if m["code"] != "invalid-input" || problemField(t, m) != tc.field {
				t.Fatalf("code %v field %q, want invalid-input %q", m["code"], problemField(t, m), tc.field)
			}
			b = boolFlagBody()
			tc.at(b)
			h.must(http.StatusCreated, "PUT", "/api/feature-flags/"+newKey("big"), h.admin(), b)
		})
	}
}

// An invalid definition's problem names the JSON member (never a Go field or a package prefix)
// and says what is wrong.
func TestPutFlag_400_DetailNamesJSONMember(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	for _, tc := range []struct {
		name, field, detail string
		mut                 func(map[string]any)
	}{
		{"type", "type", "must be one of boolean, string, number, object", func(b map[string]any) { b["type"] = "date" }},
		{"no type", "type", "must be one of boolean, string, number, object", func(b map[string]any) { delete(b, "type") }},
		{"split variant", "rules[0].split[1].variant", "names no variant", func(b map[string]any) {
			b["rules"] = []any{map[string]any{"split": []any{map[string]any{"variant": "on", "weight": 1}, map[string]any{"variant": "x", "weight": 1}}}}
		}},
		{"condition op", "rules[0].when[0].op", "must be one of", func(b map[string]any) {
			b["rules"] = []any{map[string]any{"when": []any{map[string]any{"attribute": "a", "op": "like", "values": []any{"x"}}}, "variant": "on"}}
		}},
		{"variant value", "variants.on", "must be a boolean value", func(b map[string]any) { b["variants"] = map[string]any{"on": "yes", "off": false} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := boolFlagBody()
			tc.mut(b)
			m := h.must(http.StatusBadRequest, "PUT", "/api/feature-flags/"+newKey("bad"), h.admin(), b).JSON(t)
			detail, _ := m["detail"].(string)
			if m["code"] != "invalid-flag" || problemField(t, m) != tc.field || !strings.Contains(detail, tc.detail) || strings.Contains(detail, "flags:") {
				t.Fatalf("problem %v, want invalid-flag %q %q", m, tc.field, tc.detail)
			}
		})
	}
}

// A split weight beyond int32 is 400 naming rules[i].split[j].weight (never the Go path
// "Definition.rules.split.weight").
func TestPutFlag_400_WeightBeyondInt32NamesJSONPath(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	b := boolFlagBody()
	b["rules"] = []any{map[string]any{"variant": "on"}, map[string]any{"split": []any{
		map[string]any{"variant": "on", "weight": 1}, map[string]any{"variant": "off", "weight": 1 << 31}}}}
	m := h.must(http.StatusBadRequest, "PUT", "/api/feature-flags/"+newKey("w"), h.admin(), b).JSON(t)
	if f := problemField(t, m); f != "rules[1].split[1].weight" || strings.Contains(fmt.Sprint(m), "Definition") {
		t.Fatalf("%v, want the member rules[1].split[1].weight", m)
	}
}

// A setting definition of an unknown or missing type is 400 invalid-setting naming "type" and
// listing the types; a value not of the type names "value".
func TestPutSetting_400_DetailNamesTypeOrValue(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	for _, tc := range []struct {
		body          map[string]any
		field, detail string
	}{
		{map[string]any{"type": "date", "value": "2026-01-01"}, "type", "type must be one of boolean, string, number, object."},
		{map[string]any{"value": 1}, "type", "type must be one of boolean, string, number, object."},
		{map[string]any{"type": "number", "value": "x"}, "value", "value must be a number value (the setting's type)."},
	} {
		m := h.must(http.StatusBadRequest, "PUT", "/api/settings/"+newKey("s"), h.admin(), tc.body).JSON(t)
		if m["code"] != "invalid-setting" || problemField(t, m) != tc.field || m["detail"] != tc.detail {
			t.Errorf("%v: %v, want invalid-setting %q %q", tc.body, m, tc.field, tc.detail)
		}
	}
}
