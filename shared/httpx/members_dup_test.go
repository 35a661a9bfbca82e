package httpx

import (
	"encoding/json"
	"testing"

	"spine/shared/problem"
)

// A member name twice in one object, at any depth and in free-form members too, is 400
// duplicate-member naming it; the same name in sibling objects is not a duplicate.
func TestDecodeJSON_400_DuplicateMemberAtAnyDepth(t *testing.T) {
	for _, tc := range []struct{ raw, field string }{
		{`{"name":"A","name":"B"}`, "name"},
		{`{"kind":"x","name":"A","kind":"y"}`, "kind"},
		{`{"inner":{"Tags":[{"label":"a"},{"label":"b","label":"c"}]}}`, "inner.Tags[1].label"},
		{`{"any":{"x":1,"x":2}}`, "any.x"},
		{`{"free":[{"a":{"b":1,"b":1}}]}`, "free[0].a.b"},
		{`{"labels":{"k":"1","\u006b":"2"}}`, "labels.k"},
	} {
		_, err := decodeMembers(t, tc.raw)
		p, ok := err.(*problem.Problem)
		if !ok || p.Code != "duplicate-member" || p.Status != 400 || len(p.Errors) != 1 || p.Errors[0].Field != tc.field {
			t.Errorf("%s: %v, want 400 duplicate-member %q", tc.raw, err, tc.field)
		}
	}
	if _, err := decodeMembers(t, `{"inner":{"Tags":[{"label":"a"},{"label":"b"}]},"labels":{"label":"c"},"any":[{"x":1},{"x":2}]}`); err != nil {
		t.Fatalf("sibling objects with one name: %v", err)
	}
}

// DecodeJSON into a free-form value (any) refuses duplicates too: every service's body does.
func TestDecodeJSON_400_DuplicateMemberInFreeFormBody(t *testing.T) {
	var v map[string]any
	err := DecodeJSON(ctx("POST", `{"context":{},"context":{"x":1}}`, map[string]string{"Content-Type": "application/json"}), &v)
	if p, ok := err.(*problem.Problem); !ok || p.Code != "duplicate-member" || p.Errors[0].Field != "context" {
		t.Fatalf("%v", err)
	}
}

type typeErrBody struct {
	embeddedMembers
	Rules []struct {
		Split []struct {
			Weight int32 `json:"weight"`
		} `json:"split"`
	} `json:"rules"`
}

// A value of the wrong kind or out of range is named by its JSON path with array indexes, never
// by Go field names.
func TestDecodeJSON_400_TypeErrorNamesJSONPath(t *testing.T) {
	for _, tc := range []struct{ raw, field string }{
		{`{"rules":[{"split":[{"weight":1}]},{"split":[{"weight":1},{"weight":4294967296}]}]}`, "rules[1].split[1].weight"},
		{`{"kind":5}`, "kind"},
		{`{"rules":{"split":[]}}`, "rules"},
	} {
		var b typeErrBody
		err := DecodeJSON(ctx("POST", tc.raw, map[string]string{"Content-Type": "application/json"}), &b)
		p, ok := err.(*problem.Problem)
		if !ok || p.Status != 400 || len(p.Errors) != 1 || p.Errors[0].Field != tc.field {
			t.Errorf("%s: %v, want 400 naming %q", tc.raw, err, tc.field)
			continue
		}
		if js, _ := json.Marshal(p); json.Valid(js) && containsAny(string(js), "Definition", "embeddedMembers", "Split", "Weight") {
			t.Errorf("%s: Go names in %s", tc.raw, js)
		}
	}
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		for i := 0; i+len(sub) <= len(s); i++ {
			if s[i:i+len(sub)] == sub {
				return true
			}
		}
	}
	return false
}
