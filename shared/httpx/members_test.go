package httpx

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"spine/shared/problem"
)

type embeddedMembers struct {
	Kind string `json:"kind"`
}

type membersBody struct {
	embeddedMembers
	Name    string `json:"name"`
	Untaged string // JSON name "Untaged", exactly
	Inner   *struct {
		Tags []struct {
			Label string `json:"label"`
		}
	} `json:"inner"`
	Labels map[string]string `json:"labels"`
	Free   json.RawMessage   `json:"free"`
	Any    any               `json:"any"`
	At     time.Time         `json:"at"`
}

func decodeMembers(t *testing.T, raw string) (membersBody, error) {
	t.Helper()
	var b membersBody
	return b, DecodeJSON(ctx("POST", raw, map[string]string{"Content-Type": "application/json"}), &b)
}

// encoding/json matches member names case-insensitively; DecodeJSON does not: a member whose name
// differs from the resource's only in case is unknown-field naming it, at any depth, and never
// fills the member.
func TestDecodeJSON_400_MemberNamesAreCaseSensitive(t *testing.T) {
	for _, tc := range []struct{ raw, field string }{
		{`{"Name":"x"}`, "Name"},
		{`{"KIND":"x"}`, "KIND"},
		{`{"untaged":"x"}`, "untaged"},
		{`{"inner":{"tags":[]}}`, "inner.tags"},
		{`{"inner":{"Tags":[{"label":"a"},{"Label":"b"}]}}`, "inner.Tags[1].Label"},
	} {
		_, err := decodeMembers(t, tc.raw)
		p, ok := problem.As(err)
		if !ok || p.Code != "unknown-field" || len(p.Errors) != 1 || p.Errors[0].Field != tc.field {
			t.Errorf("%s: %v, want unknown-field naming %s", tc.raw, err, tc.field)
		}
	}
	// Exact names decode; map keys, raw JSON, interface values and a time's text are data.
	b, err := decodeMembers(t, `{"kind":"k","name":"n","Untaged":"u","inner":{"Tags":[{"label":"a"}]},`+
		`"labels":{"Any":"x"},"free":{"Whatever":1},"any":{"Some":{"Deep":true}},"at":"2026-01-02T03:04:05Z"}`)
	if err != nil || b.Kind != "k" || b.Name != "n" || b.Untaged != "u" || b.Inner.Tags[0].Label != "a" || b.Labels["Any"] != "x" {
		t.Fatalf("exact names: %+v %v", b, err)
	}
}

// A body's member nests at most MaxBodyDepth levels (the body's own object not counted): deeper
// is 400 invalid-input naming the member, also where no Go type bounds it (free-form JSON), and
// far below encoding/json's 10,000.
func TestDecodeJSON_400_NestedDeeperThanMaxBodyDepth(t *testing.T) {
	nested := func(levels int) string { return strings.Repeat("[", levels) + strings.Repeat("]", levels) }
	if _, err := decodeMembers(t, `{"free":`+nested(MaxBodyDepth)+`}`); err != nil {
		t.Fatalf("%d levels: %v", MaxBodyDepth, err)
	}
	for _, raw := range []string{`{"name":"a","free":` + nested(MaxBodyDepth+1) + `}`, `{"any":` + nested(5000) + `}`} {
		_, err := decodeMembers(t, raw)
		p, ok := problem.As(err)
		if !ok || p.Code != "invalid-input" || len(p.Errors) != 1 || (p.Errors[0].Field != "free" && p.Errors[0].Field != "any") {
			t.Errorf("%.40s…: %v, want invalid-input naming the member", raw, err)
		}
	}
}
