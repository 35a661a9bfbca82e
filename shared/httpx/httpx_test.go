package httpx

import (
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"spine/shared/events"
	"spine/shared/problem"
)

func ctx(method, body string, hdr map[string]string) echo.Context {
	req := httptest.NewRequest(method, "/api/x?limit=5", strings.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	return echo.New().NewContext(req, httptest.NewRecorder())
}

func code(t *testing.T, err error) string {
	t.Helper()
	p, ok := problem.As(err)
	if !ok {
		t.Fatalf("err = %v, want a problem", err)
	}
	return p.Code
}

func TestIfMatch(t *testing.T) {
	for h, want := range map[string]struct {
		v     int64
		ok    bool
		wrong bool
	}{
		"":      {0, false, false},
		"*":     {0, false, false},
		`"7"`:   {7, true, false},
		`W/"7"`: {7, true, false},
		`"abc"`: {-1, true, false}, // a tag we never issued can never match
		`7`:     {0, false, true},
		`"`:     {0, false, true},
	} {
		v, ok, err := IfMatch(ctx("PATCH", "", map[string]string{"If-Match": h}))
		if (err != nil) != want.wrong || ok != want.ok || v != want.v {
			t.Errorf("If-Match %q: %d %v %v", h, v, ok, err)
		}
	}
}

func TestCursor_RoundTripsAndRejectsForeignValues(t *testing.T) {
	key, err := DecodeCursor(EncodeCursor("01936a52-8f7e-7c3a-9d4e-000000000001"))
	if err != nil || key != "01936a52-8f7e-7c3a-9d4e-000000000001" {
		t.Fatal(key, err)
	}
	for _, bad := range []string{"", "abc", "eyJrIjoxfQ", EncodeCursor("x")[1:]} {
		if _, err := DecodeCursor(bad); err == nil {
			t.Errorf("cursor %q accepted", bad)
		} else if code(t, err) != "invalid-cursor" {
			t.Errorf("cursor %q: %v", bad, err)
		}
	}
}

func TestDecodeJSON_StrictAndLimited(t *testing.T) {
	type body struct {
		Name string `json:"name"`
	}
	run := func(raw, ct string, limit int64) error {
		c := ctx("POST", raw, map[string]string{"Content-Type": ct})
		var b body
		return BodyLimit(limit)(func(c echo.Context) error { return DecodeJSON(c, &b) })(c)
	}
	if err := run(`{"name":"x"}`, "application/json; charset=utf-8", 1024); err != nil {
		t.Fatal(err)
	}
	if err := run(`{"name":"x"}`, "application/merge-patch+json", 1024); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ raw, ct, code string }{
		{`{"name":"x","extra":1}`, "application/json", "unknown-field"},
		{`{"name":1}`, "application/json", "invalid-json"},
		{`{"name":"x"} []`, "application/json", "invalid-json"},
		{``, "application/json", "invalid-json"},
		{`{"name":"x"}`, "text/plain", "unsupported-media-type"},
		{`{"name":"` + strings.Repeat("x", 2000) + `"}`, "application/json", "body-too-large"},
	} {
		if got := code(t, run(tc.raw, tc.ct, 1024)); got != tc.code {
			t.Errorf("%.40q (%s): %s, want %s", tc.raw, tc.ct, got, tc.code)
		}
	}
}

// A string member is read as sent: bytes that are not UTF-8 and unpaired surrogate escapes are a
// 400 invalid-input naming the member, never stored as U+FFFD.
func TestDecodeJSON_400_InvalidUTF8NamesTheMember(t *testing.T) {
	type body struct {
		Name  string                  `json:"name"`
		Inner struct{ Tags []string } `json:"inner"`
	}
	for _, tc := range []struct{ raw, field string }{
		{"{\"name\":\"a\xffb\"}", "name"},
		{`{"name":"a\ud800b"}`, "name"},
		{"{\"name\":\"ok\",\"inner\":{\"Tags\":[\"x\",\"\xc3\"]}}", "inner.Tags[1]"},
		{`{"inner":{"Tags":["\udc00"]}}`, "inner.Tags[0]"},
	} {
		c := ctx("POST", tc.raw, map[string]string{"Content-Type": "application/json"})
		var b body
		err := DecodeJSON(c, &b)
		p, ok := problem.As(err)
		if !ok || p.Code != "invalid-input" || len(p.Errors) != 1 || p.Errors[0].Field != tc.field {
			t.Errorf("%q: %v, want invalid-input naming %s", tc.raw, err, tc.field)
		}
	}
	c := ctx("POST", `{"name":"Zoë \ud83d\ude80 \ufffd"}`, map[string]string{"Content-Type": "application/json"})
	var b body
	if err := DecodeJSON(c, &b); err != nil || b.Name != "Zoë 🚀 \ufffd" {
		t.Fatalf("valid text refused or changed: %q, %v", b.Name, err)
	}
}

func TestLimit(t *testing.T) {
	if n, err := Limit(ctx("GET", "", nil), 50, 200); err != nil || n != 5 {
		t.Fatal(n, err)
	}
	c := echo.New().NewContext(httptest.NewRequest("GET", "/?limit=0", nil), httptest.NewRecorder())
	if _, err := Limit(c, 50, 200); code(t, err) != "invalid-limit" {
		t.Fatal(err)
	}
}

func TestTrace_ContinuesTheCallersTraceOrStartsOne(t *testing.T) {
	parent := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for in, sameTrace := range map[string]bool{parent: true, "": false, "garbage": false,
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01": false} {
		c := ctx("GET", "", map[string]string{"traceparent": in})
		var got events.Meta
		if err := Trace()(func(c echo.Context) error { got = events.MetaFrom(c.Request().Context()); return nil })(c); err != nil {
			t.Fatal(err)
		}
		tp, ok := ParseTraceParent(got.TraceParent)
		if !ok || c.Response().Header().Get("traceparent") != got.TraceParent {
			t.Fatalf("%q: meta %q", in, got.TraceParent)
		}
		if (tp.TraceID == "4bf92f3577b34da6a3ce929d0e0e4736") != sameTrace || tp.SpanID == "00f067aa0ba902b7" {
			t.Fatalf("%q → %q", in, got.TraceParent)
		}
	}
}

func TestPage_EmptyListIsArrayNeverNull(t *testing.T) {
	for _, p := range []Page[int]{{}, {Value: []int{}}} {
		b, err := json.Marshal(p)
		if err != nil || string(b) != `{"value":[]}` {
			t.Fatalf("%s, %v", b, err)
		}
	}
	b, _ := json.Marshal(Page[int]{Value: []int{1}, NextLink: "/x?cursor=a"})
	if string(b) != `{"value":[1],"nextLink":"/x?cursor=a"}` {
		t.Fatalf("%s", b)
	}
}

func TestTimeParam_BoundedInUTC(t *testing.T) {
	for q, want := range map[string]string{ // want: "" = accepted (UTC RFC 3339), else the problem code
		"2026-01-31T23:00:00Z":      "2026-01-31T23:00:00Z",
		"2026-01-31T23:00:00 01:00": "2026-01-31T22:00:00Z", // an unencoded '+'
		"9999-12-31T23:59:59Z":      "9999-12-31T23:59:59Z",
		"9999-12-31T23:59:59-23:59": "invalid-time",
		"0001-01-01T00:00:00+00:01": "invalid-time",
		"2026-13-01T00:00:00Z":      "invalid-time",
		"yesterday":                 "invalid-time",
	} {
		req := httptest.NewRequest("GET", "/api/x?to="+url.QueryEscape(q), nil)
		if strings.Contains(q, " ") { // sent unencoded: the space is what arrives
			req = httptest.NewRequest("GET", "/api/x?to="+strings.ReplaceAll(q, " ", "+"), nil)
		}
		c := echo.New().NewContext(req, httptest.NewRecorder())
		got, err := TimeParam(c, "to")
		if strings.HasPrefix(want, "invalid") {
			if err == nil || code(t, err) != want {
				t.Fatalf("%s: %v, %v; want %s", q, got, err, want)
			}
			continue
		}
		if err != nil || got.Format(time.RFC3339) != want || got.Location() != time.UTC {
			t.Fatalf("%s: %v, %v; want %s", q, got, err, want)
		}
	}
}

func TestQueryText_400_ControlCharacterInAParameter(t *testing.T) {
	e := echo.New()
	e.HTTPErrorHandler = (&problem.Handler{}).ServeError
	e.GET("/x", func(c echo.Context) error { return c.NoContent(204) }, QueryText())
	for q, want := range map[string]int{"a=b": 204, "a=b%09c": 400, "a=%00": 400, "a%00=b": 400, "a=%FF": 400, "": 204} {
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, httptest.NewRequest("GET", "/x?"+q, nil))
		if rec.Code != want {
			t.Fatalf("?%s: %d, want %d: %s", q, rec.Code, want, rec.Body)
		}
	}
}

// A JSON value of the wrong kind is 400 invalid-json naming the member and the JSON kind it must
// be; the problem never shows the server's Go types ("[]string", "struct { … }", "int64").
func TestDecodeJSON_WrongKind_NamesJSONKindNeverGoType(t *testing.T) {
	type body struct {
		Name  *string            `json:"name"`
		Tags  []string           `json:"tags"`
		Count int64              `json:"count"`
		Flag  bool               `json:"flag"`
		Meta  map[string]string  `json:"meta"`
		Inner struct{ X string } `json:"inner"`
	}
	for _, tc := range []struct{ raw, field, kind string }{
		{`[]`, "", "The body must be an object."},
		{`"x"`, "", "The body must be an object."},
		{`{"name":1}`, "name", "a string"},
		{`{"tags":"x"}`, "tags", "an array"},
		{`{"tags":[1]}`, "tags[0]", "a string"},
		{`{"count":"1"}`, "count", "a whole number in range"},
		{`{"count":1e40}`, "count", "a whole number in range"},
		{`{"flag":"yes"}`, "flag", "true or false"},
		{`{"meta":[]}`, "meta", "an object"},
		{`{"inner":1}`, "inner", "an object"},
	} {
		c := ctx("POST", tc.raw, map[string]string{"Content-Type": "application/json"})
		var b body
		p, ok := problem.As(DecodeJSON(c, &b))
		if !ok || p.Code != "invalid-json" || !strings.Contains(p.Detail, tc.kind) ||
			strings.ContainsAny(strings.Replace(p.Detail, tc.field, "", 1), "[]{}") || strings.Contains(p.Detail, "int64") || strings.Contains(p.Detail, "struct") {
			t.Errorf("%s: %+v, want invalid-json saying %q", tc.raw, p, tc.kind)
			continue
		}
		if tc.field != "" && (len(p.Errors) != 1 || p.Errors[0].Field != tc.field) {
			t.Errorf("%s: errors %+v, want the member %s", tc.raw, p.Errors, tc.field)
		}
	}
}

// A merge patch's string member: absent is left, null is a removal (refused for a required
// member with 400 invalid-input naming it), a string replaces, anything else is 400 invalid-json.
func TestPatchString_AbsentNullStringOther(t *testing.T) {
	if v, null, err := PatchString("name", nil); v != nil || null || err != nil {
		t.Fatalf("absent: %v %v %v", v, null, err)
	}
	if v, null, err := PatchString("name", json.RawMessage(` null `)); v != nil || !null || err != nil {
		t.Fatalf("null: %v %v %v", v, null, err)
	}
	if v, null, err := PatchString("name", json.RawMessage(`"Ana"`)); v == nil || *v != "Ana" || null || err != nil {
		t.Fatalf("string: %v %v %v", v, null, err)
	}
	if _, _, err := PatchString("name", json.RawMessage(`5`)); code(t, err) != "invalid-json" {
		t.Fatalf("number: %v", err)
	}
	_, err := RequiredPatchString("name", json.RawMessage(`null`))
	if p, ok := problem.As(err); !ok || p.Code != "invalid-input" || len(p.Errors) != 1 || p.Errors[0].Field != "name" {
		t.Fatalf("required null: %v", err)
	}
	if v, err := RequiredPatchString("name", json.RawMessage(`"B"`)); err != nil || *v != "B" {
		t.Fatalf("required string: %v %v", v, err)
	}
}
