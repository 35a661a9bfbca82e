package functions

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"spine/shared/problem"
)

var allEncodings = []Encoding{EncodingObject, EncodingString, EncodingDoubleQuoted, EncodingBase64}

// stringOfJSON reports whether v is the JSON text of a string whose content is itself JSON text:
// the one kind of body that Payload, by its documented rule, reads as one more quoting layer.
func stringOfJSON(v []byte) bool {
	t := trimJSONSpace(v)
	if len(t) == 0 || t[0] != '"' {
		return false
	}
	var s string
	return json.Unmarshal(t, &s) == nil && json.Valid([]byte(s))
}

// FuzzPayload checks Payload's invariants on an arbitrary input b:
//   - b as a raw Data value: no panic; invalid JSON is a 400 problem; a JSON non-string is returned as is.
//   - b as a message body, when it is JSON text v: for every Encoding, the host-shaped invocation built
//     with ServiceBusMessage, sent through DecodeInvocation, gives back a payload that is JSON-equal to
//     v — except for a string whose content is JSON text, which must still unwrap to valid JSON.
func FuzzPayload(f *testing.F) {
	for _, s := range []string{
		cloudEvent, `{"a":1}`, `[1,"two",null]`, `42`, `-1.5e3`, `true`, `null`, `"plain"`, `"42"`, `""`,
		`"\"{\\\"a\\\":1}\""`, `"MTIz"`, `"aGVsbG8="`, `  {"a" : [ ] }  `, `{"a":"<&>\u2028"}`, `{"a":`, "hello", "",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		// b as the raw value the host put in Data.
		inv := &Invocation{Data: map[string]json.RawMessage{ServiceBusBinding: b}}
		got, err := inv.Payload(ServiceBusBinding)
		trimmed := trimJSONSpace(b)
		switch {
		case !json.Valid(b):
			if p, ok := problem.As(err); !ok || p.Status != http.StatusBadRequest {
				t.Fatalf("invalid raw value %q: Payload = %q, %v; want a 400 problem", b, got, err)
			}
		case trimmed[0] != '"':
			if err != nil || !bytes.Equal(got, trimmed) {
				t.Fatalf("raw JSON %q: Payload = %q, %v; want it unchanged", b, got, err)
			}
		case err != nil:
			if p, ok := problem.As(err); !ok || p.Code != CodeBindingMalformed {
				t.Fatalf("raw string %q: Payload error %v is not a binding-malformed problem", b, err)
			}
		}

		// b as a message body, encoded as the host would.
		if !json.Valid(b) {
			return
		}
		ambiguous := stringOfJSON(b)
		for _, enc := range allEncodings {
			data, md := ServiceBusMessage(b, enc, ServiceBusMetadata{MessageID: "m", DeliveryCount: 1})
			body, err := json.Marshal(map[string]any{"Data": map[string]any{ServiceBusBinding: data}, "Metadata": md})
			if err != nil {
				t.Fatalf("%s: marshal invocation: %v", enc, err)
			}
			inv, err := DecodeInvocation(httptest.NewRequest(http.MethodPost, "/Fn", bytes.NewReader(body)), int64(len(body)))
			if err != nil {
				t.Fatalf("%s: DecodeInvocation(%s): %v", enc, body, err)
			}
			got, err := inv.Payload(ServiceBusBinding)
			if ambiguous {
				if err == nil && !json.Valid(got) {
					t.Fatalf("%s of %q: payload %q is not JSON", enc, b, got)
				}
				continue
			}
			if err != nil {
				t.Fatalf("%s of %q: Payload: %v (wire %s)", enc, b, err, body)
			}
			if !jsonEqual(got, b) {
				t.Fatalf("%s of %q: payload %q is not JSON-equal (wire %s)", enc, b, got, body)
			}
		}
	})
}

// FuzzDecodeInvocation feeds arbitrary request bodies through DecodeInvocation and every accessor:
// nothing panics, errors are 400/413 problems, and what decodes can be read without panicking.
func FuzzDecodeInvocation(f *testing.F) {
	for _, name := range []string{"host-protocol/servicebus-invocation.json", "host-protocol/timer-invocation.json", "host-protocol/invocation-response.json"} {
		f.Add(readTestdata(f, name))
	}
	for _, s := range []string{
		`{"Data":{"timer":{"ScheduleStatus":{"Last":"x"}}},"Metadata":{"sys":"{}"}}`,
		`{"Data":{"message":"\"\\\"x\\\"\""},"Metadata":{"DeliveryCount":"7","UserProperties":"{\"a\":1}"}}`,
		`{"Data":null,"Metadata":null}`, `[]`, `{`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		const limit = 1 << 16
		inv, err := DecodeInvocation(httptest.NewRequest(http.MethodPost, "/Fn", bytes.NewReader(body)), limit)
		if err != nil {
			p, ok := problem.As(err)
			if !ok || (p.Status != http.StatusBadRequest && p.Status != http.StatusRequestEntityTooLarge) {
				t.Fatalf("DecodeInvocation error %v is not a 400/413 problem", err)
			}
			if (p.Status == http.StatusRequestEntityTooLarge) != (len(body) > limit) {
				t.Fatalf("413 for a %d-byte body with limit %d", len(body), limit)
			}
			return
		}
		if inv.Data == nil || inv.Metadata == nil {
			t.Fatal("decoded invocation has nil Data or Metadata")
		}
		check := func(what string, err error) {
			if err == nil {
				return
			}
			if p, ok := problem.As(err); !ok || p.Status != http.StatusBadRequest {
				t.Fatalf("%s error %v is not a 400 problem", what, err)
			}
		}
		for name := range inv.Data {
			_, err := inv.Payload(name)
			check("Payload", err)
			var v any
			check("Bind", inv.Bind(name, &v))
			_, err = inv.Timer(name)
			check("Timer", err)
		}
		_, err = inv.ServiceBus()
		check("ServiceBus", err)
		_, err = inv.Sys()
		check("Sys", err)
	})
}
