package text

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestCheckAndCheckLine(t *testing.T) {
	for _, tc := range []struct {
		name       string
		s          string
		text, line error // nil: accepted
	}{
		{"plain", "Contoso Ltd.", nil, nil},
		{"unicode", "Zoë — 東京 🚀", nil, nil},
		{"empty", "", nil, nil},
		{"NUL", "a\x00b", ErrControl, ErrControl},
		{"escape", "a\x1bb", ErrControl, ErrControl},
		{"DEL", "a\x7fb", ErrControl, ErrControl},
		{"C1 NEL", "a\u0085b", ErrControl, ErrControl},
		{"tab", "a\tb", nil, ErrControl},
		{"line breaks", "a\r\nb", nil, ErrControl},
		{"invalid UTF-8", "a\xffb", ErrUTF8, ErrUTF8},
		{"truncated UTF-8", "\xe6\x9d", ErrUTF8, ErrUTF8},
		{"U+FFFD itself", "a\uFFFDb", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, c := range []struct {
				f    func(string) error
				want error
			}{{Check, tc.text}, {CheckLine, tc.line}} {
				err := c.f(tc.s)
				if (c.want == nil) != (err == nil) || (c.want != nil && (!errors.Is(err, c.want) || !errors.Is(err, ErrInvalid))) {
					t.Fatalf("%q: got %v, want %v", tc.s, err, c.want)
				}
			}
		})
	}
}

func TestWalk_NamesTheFirstRefusedMember(t *testing.T) {
	type inner struct {
		ID   string   `json:"id"`
		Tags []string `json:"tags"`
	}
	type Embedded struct {
		Note string `json:"note"`
	}
	type body struct {
		Embedded
		Name    string            `json:"name"`
		Opt     *string           `json:"opt,omitempty"`
		Inner   inner             `json:"inner"`
		Labels  map[string]string `json:"labels"`
		Payload json.RawMessage   `json:"payload"`
		Any     any               `json:"any"`
		Bytes   []byte            `json:"bytes"`
		Skipped string            `json:"-"`
		NoTag   string
	}
	nul := "x\x00"
	for _, tc := range []struct {
		name string
		b    body
		path string // "" = accepted
	}{
		{"clean", body{Name: "ok", Labels: map[string]string{"k": "v"}, Payload: json.RawMessage(`{"a":"b\nc"}`), Bytes: []byte{0}}, ""},
		{"top level", body{Name: nul}, "name"},
		{"pointer", body{Opt: &nul}, "opt"},
		{"nested", body{Inner: inner{ID: nul}}, "inner.id"},
		{"slice", body{Inner: inner{Tags: []string{"a", nul}}}, "inner.tags[1]"},
		{"map value", body{Labels: map[string]string{"k": nul}}, "labels.k"},
		{"map key", body{Labels: map[string]string{nul: "v"}}, "labels." + nul},
		{"raw JSON string", body{Payload: json.RawMessage(`{"a":"b\u0000"}`)}, "payload"},
		{"raw JSON key", body{Payload: json.RawMessage(`{"\u001b":1}`)}, "payload"},
		{"raw JSON escaped backslash is text", body{Payload: json.RawMessage(`{"a":"\\u0000"}`)}, ""},
		{"interface", body{Any: map[string]any{"deep": []any{nul}}}, "any.deep[0]"},
		{"embedded", body{Embedded: Embedded{Note: nul}}, "note"},
		{"json:- is not input", body{Skipped: nul}, ""},
		{"untagged member", body{NoTag: nul}, "NoTag"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path, err := Walk(&tc.b)
			if tc.path == "" {
				if err != nil {
					t.Fatalf("refused %q: %v", path, err)
				}
				return
			}
			if err == nil || path != tc.path {
				t.Fatalf("Walk = %q, %v; want %q refused", path, err, tc.path)
			}
		})
	}
}
