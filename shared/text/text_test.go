package text

import (
	"encoding/json"
	"errors"
	"strings"
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
		{"line separator", "a\u2028b", nil, ErrControl},
		{"paragraph separator", "a\u2029b", nil, ErrControl},
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

// CheckJSON reads strings as sent: what a decoder would silently turn into U+FFFD (bytes that are
// not UTF-8, unpaired surrogate escapes) is refused like a control character, at any depth, in
// member names too, and the path names where.
func TestCheckJSON_RefusesInvalidUTF8AndControlsAsSentNamingThePath(t *testing.T) {
	for _, tc := range []struct {
		name, raw, path string // path "" = accepted
		want            error
	}{
		{"clean", `{"a":"b","c":[1,"d\n\te",{"f":null}],"g":"Zoë 🚀 \ud83d\ude80 \ufffd \\u0000"}`, "", nil},
		{"raw byte not UTF-8", "{\"name\":\"a\xffb\"}", "name", ErrUTF8},
		{"truncated sequence", "{\"a\":{\"b\":[\"x\",\"\xe6\x9d\"]}}", "a.b[1]", ErrUTF8},
		{"lone high surrogate", `{"a":"x\ud800"}`, "a", ErrUTF8},
		{"lone low surrogate", `{"a":["\uDC00"]}`, "a[0]", ErrUTF8},
		{"high surrogate then other escape", `{"a":"\ud800\u0041"}`, "a", ErrUTF8},
		{"escaped NUL", `{"a":{"b":"\u0000"}}`, "a.b", ErrControl},
		{"literal DEL", "{\"a\":\"\x7f\"}", "a", ErrControl},
		{"literal C1", "{\"a\":[0,true,\"\u0085\"]}", "a[2]", ErrControl},
		{"escaped C1", `{"a":"\u009f"}`, "a", ErrControl},
		{"backspace escape", `{"a":"\b"}`, "a", ErrControl},
		{"member name", "{\"k\xff\":1}", "k\ufffd", ErrUTF8},
		{"member name with an escaped control", `{"o":{"k\u001b":1}}`, "o.k\x1b", ErrControl},
		{"array at the top", `["ok",["\u0001"]]`, "[1][0]", ErrControl},
		{"string at the top", `"\ud800"`, "", ErrUTF8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path, err := CheckJSON([]byte(tc.raw), "")
			if tc.want == nil {
				if err != nil {
					t.Fatalf("refused %q: %v", path, err)
				}
				return
			}
			if !errors.Is(err, tc.want) || !errors.Is(err, ErrInvalid) || path != tc.path {
				t.Fatalf("CheckJSON = %q, %v; want %q refused with %v", path, err, tc.path, tc.want)
			}
		})
	}
	if path, err := CheckJSON([]byte(`{"x":["\ud800"]}`), "payload"); err == nil || path != "payload.x[0]" {
		t.Fatalf("below a base: %q, %v", path, err)
	}
}

// A free-form raw JSON member holds no DEL or C1 control character even unescaped, and no byte
// that is not UTF-8 (they can stand in a JSON string as they are).
func TestWalk_RawJSONRefusesUnescapedDELAndC1(t *testing.T) {
	type body struct {
		Payload json.RawMessage `json:"payload"`
	}
	for _, raw := range []string{"{\"a\":\"\x7f\"}", "{\"a\":\"\u0085\"}", "[\"\u009b\"]", "{\"a\":\"\xff\"}", `{"a":"\udfff"}`} {
		if path, err := Walk(&body{Payload: json.RawMessage(raw)}); err == nil || path != "payload" {
			t.Errorf("%q: Walk = %q, %v; want payload refused", raw, path, err)
		}
	}
	if path, err := Walk(&body{Payload: json.RawMessage("{\"a\":\"tab\tand line\nbreaks, Zoë\"}")}); err != nil {
		t.Errorf("refused %q: %v", path, err)
	}
}

// CheckJSON over a string encoded by encoding/json refuses exactly what Check refuses in the
// string it holds (the encoder writes invalid UTF-8 as U+FFFD, and escapes <, >, &, U+2028...).
func FuzzCheckJSON_AgreesWithCheck(f *testing.F) {
	for _, s := range []string{"", "plain", "a\x00b", "\t\n\r", "\x7f", "\u0085", "<&>\u2028\u2029", "🚀\ufffd", "\xff", `\u0000`, `"\`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		raw, err := json.Marshal(map[string]any{"k": []string{s}, s: 1})
		if err != nil {
			t.Skip("encoding/json cannot encode this input; nothing to compare")
		}
		want := Check(strings.ToValidUTF8(s, "\ufffd"))
		if _, got := CheckJSON(raw, ""); (got == nil) != (want == nil) {
			t.Fatalf("%q: CheckJSON %v, Check %v (%s)", s, got, want, raw)
		}
	})
}
