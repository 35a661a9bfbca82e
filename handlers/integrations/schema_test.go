package integrations

import (
	"errors"
	"strings"
	"testing"
)

func TestParseSchema_RefusesKeywordsOutsideTheSubset(t *testing.T) {
	bad := map[string]string{
		"unknown keyword":           `{"type":"object","additionalProperties":false,"properties":{"a":{"type":"string","oneOf":[]}}}`,
		"open object":               `{"type":"object","properties":{}}`,
		"additionalProperties true": `{"type":"object","additionalProperties":true}`,
		"required not a property":   `{"type":"object","additionalProperties":false,"required":["x"]}`,
		"unsupported type":          `{"type":"number"}`,
		"bad pattern":               `{"type":"string","pattern":"("}`,
		"unsupported format":        `{"type":"string","format":"email"}`,
		"string keyword on integer": `{"type":"integer","maxLength":3}`,
		"array without items":       `{"type":"array"}`,
	}
	for name, raw := range bad {
		if _, err := ParseSchema([]byte(raw)); err == nil {
			t.Errorf("%s: parsed %s", name, raw)
		}
	}
}

func TestSchemaValidate_NamesTheFailingMember(t *testing.T) {
	s := MustParseSchema(`{"type":"object","additionalProperties":false,"required":["u"],"properties":{
		"u": {"type":"string","format":"uri"},
		"n": {"type":"integer","minimum":1,"maximum":10},
		"b": {"type":"boolean"},
		"e": {"type":"string","enum":["x","y"]},
		"p": {"type":"string","pattern":"^/","minLength":2,"maxLength":4},
		"l": {"type":"array","maxItems":2,"items":{"type":"object","additionalProperties":false,"properties":{"k":{"type":"string"}}}}
	}}`)
	cases := []struct{ doc, path, detail string }{
		{`[]`, "settings", "must be an object"},
		{`{}`, "settings.u", "is required"},
		{`{"u":"https://x.example","z":1}`, "settings.z", "not a setting"},
		{`{"u":"mailto:a@b"}`, "settings.u", "http or https"},
		{`{"u":"https://a:b@x.example"}`, "settings.u", "user information"},
		{`{"u":"https://x.example","n":0}`, "settings.n", "at least 1"},
		{`{"u":"https://x.example","n":1.5}`, "settings.n", "integer"},
		{`{"u":"https://x.example","b":"true"}`, "settings.b", "true or false"},
		{`{"u":"https://x.example","e":"z"}`, "settings.e", "one of"},
		{`{"u":"https://x.example","p":"ab"}`, "settings.p", "does not match"},
		{`{"u":"https://x.example","p":"/abcd"}`, "settings.p", "at most 4"},
		{`{"u":"https://x.example","l":[{},{},{}]}`, "settings.l", "at most 2 items"},
		{`{"u":"https://x.example","l":[{"k":1}]}`, "settings.l[0].k", "string"},
	}
	for _, tc := range cases {
		err := s.Validate([]byte(tc.doc), "settings")
		var se *SettingsError
		if !errors.Is(err, ErrInvalidSettings) || !errors.As(err, &se) || se.Path != tc.path || !strings.Contains(se.Detail, tc.detail) {
			t.Errorf("Validate(%s) = %v, want %s %s", tc.doc, err, tc.path, tc.detail)
		}
	}
	if err := s.Validate([]byte(`{"u":"https://x.example/a?b=c","n":10,"b":false,"e":"y","p":"/ab","l":[{"k":"v"}]}`), "settings"); err != nil {
		t.Errorf("a valid document: %v", err)
	}
}
