package functions

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func quote(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestDecodeInvocationExamples(t *testing.T) {
	inv := decodeExample(t, "AuditOnEvent", "servicebus-invocation.json")
	if inv.FunctionName != "AuditOnEvent" || inv.InvocationID != "6f3e2a8c-3c1b-4bde-9f5e-1d2c3b4a5f60" || inv.HostVersion != "4.x" {
		t.Fatalf("invocation header fields = %q %q %q", inv.FunctionName, inv.InvocationID, inv.HostVersion)
	}
	// The example sends the CloudEvent quoted twice.
	got, err := inv.Payload(ServiceBusBinding)
	if err != nil {
		t.Fatal(err)
	}
	if !jsonEqual(got, []byte(cloudEvent)) {
		t.Fatalf("payload = %s", got)
	}
	var ev struct {
		ID   string `json:"id"`
		Type string `json:"type"`
		Data struct {
			Slug string `json:"slug"`
		} `json:"data"`
	}
	if err := inv.Bind(ServiceBusBinding, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.ID != "01936a52-8f7e-7c3a-9d4e-5b6a7c8d9e0f" || ev.Type != "TenantRegistered" || ev.Data.Slug != "contoso" {
		t.Fatalf("bound event = %+v", ev)
	}

	md, err := inv.ServiceBus()
	if err != nil {
		t.Fatal(err)
	}
	if md.MessageID != "01936a52-8f7e-7c3a-9d4e-5b6a7c8d9e0f" || md.DeliveryCount != 1 ||
		md.ContentType != "application/cloudevents+json" || md.CorrelationID != "" || md.Subject != "TenantRegistered" {
		t.Fatalf("service bus metadata = %+v", md)
	}
	if want := time.Date(2026, 11, 26, 20, 0, 9, 900_000_000, time.UTC); !md.EnqueuedTimeUTC.Equal(want) {
		t.Fatalf("EnqueuedTimeUTC = %v, want %v", md.EnqueuedTimeUTC, want)
	}
	if md.ApplicationProperties["eventType"] != "TenantRegistered" || len(md.ApplicationProperties) != 3 {
		t.Fatalf("application properties = %v", md.ApplicationProperties)
	}
	sys, err := inv.Sys()
	if err != nil {
		t.Fatal(err)
	}
	if sys.MethodName != "AuditOnEvent" || sys.RandGuid != "0d6c2b8e-1f1e-4a51-9a0e-6f9f4c0b7a21" ||
		!sys.UtcNow.Equal(time.Date(2026, 11, 26, 20, 0, 10, 100_000_000, time.UTC)) {
		t.Fatalf("sys = %+v", sys)
	}

	tinv := decodeExample(t, "OutboxDrain", "timer-invocation.json")
	ti, err := tinv.Timer(TimerBinding)
	if err != nil {
		t.Fatal(err)
	}
	want := TimerInfo{
		Last:        time.Date(2026, 11, 26, 20, 0, 0, 0, time.UTC),
		Next:        time.Date(2026, 11, 26, 20, 0, 10, 0, time.UTC),
		LastUpdated: time.Date(2026, 11, 26, 20, 0, 0, 0, time.UTC),
	}
	if !ti.Last.Equal(want.Last) || !ti.Next.Equal(want.Next) || !ti.LastUpdated.Equal(want.LastUpdated) || ti.IsPastDue {
		t.Fatalf("timer = %+v, want %+v", ti, want)
	}
	tsys, err := tinv.Sys()
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 11, 26, 20, 0, 10, 12_345_600, time.UTC); !tsys.UtcNow.Equal(want) || tsys.MethodName != "OutboxDrain" {
		t.Fatalf("timer sys = %+v, want UtcNow %v", tsys, want)
	}
}

func TestPayloadEncodings(t *testing.T) {
	ev := []byte(cloudEvent)
	// A body whose standard base64 contains '+' and '/', so the URL alphabet really differs.
	binaryish := []byte(`{"k":"~~~???>>>"}`)
	std := base64.StdEncoding.EncodeToString(binaryish)
	if !strings.ContainsAny(std, "+/") {
		t.Fatalf("test body's base64 %q does not exercise the alphabets", std)
	}
	notUTF8 := []byte{0xff, 0xfe, 0x00, 0x81, 0x9c}
	deep := cloudEvent
	for range maxUnwrapDepth + 2 {
		deep = quote(deep)
	}

	tests := []struct {
		name string
		raw  string // the Data value as the host sends it
		want string // exact payload bytes expected
	}{
		{"object", cloudEvent, cloudEvent},
		{"object with surrounding space", "  " + cloudEvent + "\n", cloudEvent},
		{"array", `[1,{"a":2}]`, `[1,{"a":2}]`},
		{"number", `42`, `42`},
		{"null", `null`, `null`},
		{"bool", `true`, `true`},
		{"string holding JSON text", quote(cloudEvent), cloudEvent},
		{"string holding JSON text with spaces", quote(" " + cloudEvent + " "), " " + cloudEvent + " "},
		{"quoted twice", quote(quote(cloudEvent)), cloudEvent},
		{"quoted three times", quote(quote(quote(cloudEvent))), cloudEvent},
		{"base64 std padded", quote(std), string(binaryish)},
		{"base64 std raw", quote(base64.RawStdEncoding.EncodeToString(binaryish)), string(binaryish)},
		{"base64 url padded", quote(base64.URLEncoding.EncodeToString(binaryish)), string(binaryish)},
		{"base64 url raw", quote(base64.RawURLEncoding.EncodeToString(binaryish)), string(binaryish)},
		{"base64 of the cloud event", quote(base64.StdEncoding.EncodeToString(ev)), cloudEvent},
		{"base64 with MIME line breaks", quote(std[:8] + "\r\n" + std[8:]), string(binaryish)},
		{"plain text", quote("hello, world"), "hello, world"},
		{"empty string", `""`, ""},
		// A JSON string value whose content is not JSON is the payload itself, quotes included.
		{"JSON string value as body", quote(`"hello"`), `"hello"`},
		// Rule 2a before 2b: text that is both JSON and base64-looking is JSON.
		{"digits are JSON not base64", quote("1234"), "1234"},
		// Rule 2b: base64 whose bytes are JSON decodes — even when the sender meant text (documented).
		{"text that is base64 of JSON", quote("MTIz"), "123"},
		// Rule 2c: base64 whose bytes are text but not JSON stays undecoded.
		{"base64 of non-JSON text stays text", quote(base64.StdEncoding.EncodeToString([]byte("hello"))), "aGVsbG8="},
		{"base64 of binary stays text", quote(base64.StdEncoding.EncodeToString(notUTF8)), base64.StdEncoding.EncodeToString(notUTF8)},
		// A JSON string whose content is JSON text reads as one more quoting layer (documented).
		{"string holding a JSON string of JSON", quote(quote("42")), "42"},
		{"unicode text", quote("grüße ✓"), "grüße ✓"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv := &Invocation{Data: map[string]json.RawMessage{ServiceBusBinding: json.RawMessage(tt.raw)}}
			got, err := inv.Payload(ServiceBusBinding)
			if err != nil {
				t.Fatalf("Payload: %v", err)
			}
			if string(got) != tt.want {
				t.Fatalf("Payload = %q, want %q", got, tt.want)
			}
		})
	}

	t.Run("quoted too deeply", func(t *testing.T) {
		inv := &Invocation{Data: map[string]json.RawMessage{"message": json.RawMessage(deep)}}
		_, err := inv.Payload("message")
		wantProblem(t, err, http.StatusBadRequest, CodeBindingMalformed)
	})
	t.Run("invalid raw JSON", func(t *testing.T) {
		inv := &Invocation{Data: map[string]json.RawMessage{"message": json.RawMessage(`{"a":`)}}
		_, err := inv.Payload("message")
		wantProblem(t, err, http.StatusBadRequest, CodeBindingMalformed)
	})
	t.Run("missing binding", func(t *testing.T) {
		inv := &Invocation{Data: map[string]json.RawMessage{"other": json.RawMessage(`{}`)}}
		_, err := inv.Payload("message")
		p := wantProblem(t, err, http.StatusBadRequest, CodeBindingMissing)
		if !errors.Is(err, ErrBindingNotFound) || !strings.Contains(p.Detail, `"message"`) {
			t.Fatalf("missing binding error = %v (detail %q)", err, p.Detail)
		}
	})
	t.Run("binding name is case-insensitive", func(t *testing.T) {
		inv := &Invocation{Data: map[string]json.RawMessage{"Message": json.RawMessage(`{"a":1}`)}}
		got, err := inv.Payload("message")
		if err != nil || string(got) != `{"a":1}` {
			t.Fatalf("Payload = %q, %v", got, err)
		}
	})
}

func TestBind(t *testing.T) {
	type body struct {
		A int `json:"a"`
	}
	inv := &Invocation{Data: map[string]json.RawMessage{
		"json":  json.RawMessage(quote(`{"a":7,"extra":true}`)),
		"text":  json.RawMessage(quote("not json")),
		"wrong": json.RawMessage(`{"a":"seven"}`),
	}}
	var b body
	if err := inv.Bind("json", &b); err != nil || b.A != 7 {
		t.Fatalf("Bind = %+v, %v (unknown fields must be ignored)", b, err)
	}
	wantProblem(t, inv.Bind("text", &b), http.StatusBadRequest, CodeBindingMalformed)
	wantProblem(t, inv.Bind("wrong", &b), http.StatusBadRequest, CodeBindingMalformed)
	err := inv.Bind("absent", &b)
	wantProblem(t, err, http.StatusBadRequest, CodeBindingMissing)
	if !errors.Is(err, ErrBindingNotFound) {
		t.Fatalf("Bind of an absent binding: %v does not wrap ErrBindingNotFound", err)
	}
}

func TestServiceBusMetadataVariants(t *testing.T) {
	base := func() map[string]json.RawMessage {
		return map[string]json.RawMessage{
			"MessageId":       json.RawMessage(`"m-1"`),
			"DeliveryCount":   json.RawMessage(`3`),
			"EnqueuedTimeUtc": json.RawMessage(`"2026-11-26T20:00:09.9Z"`),
		}
	}
	tests := []struct {
		name  string
		edit  func(m map[string]json.RawMessage)
		check func(t *testing.T, md ServiceBusMetadata)
	}{
		{"UserProperties instead of ApplicationProperties", func(m map[string]json.RawMessage) {
			m["UserProperties"] = json.RawMessage(`{"eventType":"TenantRegistered","attempt":2}`)
		}, func(t *testing.T, md ServiceBusMetadata) {
			if md.ApplicationProperties["eventType"] != "TenantRegistered" || md.ApplicationProperties["attempt"] != json.Number("2") {
				t.Fatalf("properties = %#v", md.ApplicationProperties)
			}
		}},
		{"both, ApplicationProperties wins", func(m map[string]json.RawMessage) {
			m["UserProperties"] = json.RawMessage(`{"a":"user","u":"only-user"}`)
			m["ApplicationProperties"] = json.RawMessage(`{"a":"app"}`)
		}, func(t *testing.T, md ServiceBusMetadata) {
			if md.ApplicationProperties["a"] != "app" || md.ApplicationProperties["u"] != "only-user" {
				t.Fatalf("properties = %#v", md.ApplicationProperties)
			}
		}},
		{"properties as a JSON string", func(m map[string]json.RawMessage) {
			m["ApplicationProperties"] = json.RawMessage(quote(`{"eventType":"X"}`))
		}, func(t *testing.T, md ServiceBusMetadata) {
			if md.ApplicationProperties["eventType"] != "X" {
				t.Fatalf("properties = %#v", md.ApplicationProperties)
			}
		}},
		{"no properties gives an empty map", func(m map[string]json.RawMessage) {
			m["ApplicationProperties"] = json.RawMessage(`null`)
		}, func(t *testing.T, md ServiceBusMetadata) {
			if md.ApplicationProperties == nil || len(md.ApplicationProperties) != 0 {
				t.Fatalf("properties = %#v", md.ApplicationProperties)
			}
		}},
		{"delivery count as a string", func(m map[string]json.RawMessage) {
			m["DeliveryCount"] = json.RawMessage(`"5"`)
		}, func(t *testing.T, md ServiceBusMetadata) {
			if md.DeliveryCount != 5 {
				t.Fatalf("DeliveryCount = %d", md.DeliveryCount)
			}
		}},
		{"lower-case keys and Label", func(m map[string]json.RawMessage) {
			delete(m, "MessageId")
			m["messageId"] = json.RawMessage(`"m-2"`)
			m["Label"] = json.RawMessage(`"OldSubject"`)
			m["correlationId"] = json.RawMessage(`"c-1"`)
		}, func(t *testing.T, md ServiceBusMetadata) {
			if md.MessageID != "m-2" || md.Subject != "OldSubject" || md.CorrelationID != "c-1" {
				t.Fatalf("metadata = %+v", md)
			}
		}},
		{"seven fractional digits and offset", func(m map[string]json.RawMessage) {
			m["EnqueuedTimeUtc"] = json.RawMessage(`"2026-11-26T20:00:09.1234567+00:00"`)
		}, func(t *testing.T, md ServiceBusMetadata) {
			if want := time.Date(2026, 11, 26, 20, 0, 9, 123_456_700, time.UTC); !md.EnqueuedTimeUTC.Equal(want) {
				t.Fatalf("EnqueuedTimeUTC = %v", md.EnqueuedTimeUTC)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := base()
			tt.edit(m)
			inv := &Invocation{Metadata: m}
			md, err := inv.ServiceBus()
			if err != nil {
				t.Fatal(err)
			}
			if md.MessageID == "" || md.DeliveryCount == 0 || md.EnqueuedTimeUTC.IsZero() {
				t.Fatalf("base fields lost: %+v", md)
			}
			tt.check(t, md)
		})
	}

	for name, bad := range map[string]map[string]json.RawMessage{
		"delivery count not a number": {"DeliveryCount": json.RawMessage(`"many"`)},
		"time not a time":             {"EnqueuedTimeUtc": json.RawMessage(`"yesterday"`)},
		"properties not an object":    {"ApplicationProperties": json.RawMessage(`[1,2]`)},
		"message id an object":        {"MessageId": json.RawMessage(`{"a":1}`)},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := (&Invocation{Metadata: bad}).ServiceBus()
			wantProblem(t, err, http.StatusBadRequest, CodeBindingMalformed)
		})
	}
}

func TestTimerVariants(t *testing.T) {
	status := `{"Schedule":{"AdjustForDST":true},"ScheduleStatus":{"Last":"2026-11-26T20:00:00.0000000Z","Next":"2026-11-26T20:05:00","LastUpdated":"11/26/2026 20:00:01"},"IsPastDue":true}`
	for name, raw := range map[string]string{
		"object":      status,
		"as a string": quote(status),
	} {
		t.Run(name, func(t *testing.T) {
			inv := &Invocation{Data: map[string]json.RawMessage{"timer": json.RawMessage(raw)}}
			ti, err := inv.Timer("timer")
			if err != nil {
				t.Fatal(err)
			}
			if !ti.Last.Equal(time.Date(2026, 11, 26, 20, 0, 0, 0, time.UTC)) ||
				!ti.Next.Equal(time.Date(2026, 11, 26, 20, 5, 0, 0, time.UTC)) ||
				!ti.LastUpdated.Equal(time.Date(2026, 11, 26, 20, 0, 1, 0, time.UTC)) || !ti.IsPastDue {
				t.Fatalf("timer = %+v", ti)
			}
		})
	}
	t.Run("no schedule status", func(t *testing.T) {
		inv := &Invocation{Data: map[string]json.RawMessage{"timer": json.RawMessage(`{"ScheduleStatus":null,"IsPastDue":false}`)}}
		ti, err := inv.Timer("timer")
		if err != nil || !ti.Last.IsZero() || !ti.Next.IsZero() {
			t.Fatalf("timer = %+v, %v", ti, err)
		}
	})
	t.Run("bad time", func(t *testing.T) {
		inv := &Invocation{Data: map[string]json.RawMessage{"timer": json.RawMessage(`{"ScheduleStatus":{"Last":"soon"}}`)}}
		_, err := inv.Timer("timer")
		wantProblem(t, err, http.StatusBadRequest, CodeBindingMalformed)
	})
	t.Run("missing", func(t *testing.T) {
		_, err := (&Invocation{}).Timer("timer")
		wantProblem(t, err, http.StatusBadRequest, CodeBindingMissing)
	})
	t.Run("missing sys", func(t *testing.T) {
		_, err := (&Invocation{}).Sys()
		wantProblem(t, err, http.StatusBadRequest, CodeBindingMissing)
		if !errors.Is(err, ErrMetadataNotFound) {
			t.Fatalf("Sys error %v does not wrap ErrMetadataNotFound", err)
		}
	})
}

func TestParseHostTime(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
	}{
		{"2026-11-26T20:00:10.0123456Z", time.Date(2026, 11, 26, 20, 0, 10, 12_345_600, time.UTC)},
		{"2026-11-26T20:00:00+00:00", time.Date(2026, 11, 26, 20, 0, 0, 0, time.UTC)},
		{"2026-11-26T21:00:00.5+01:00", time.Date(2026, 11, 26, 20, 0, 0, 500_000_000, time.UTC)},
		{"2026-11-26T20:00:09.9Z", time.Date(2026, 11, 26, 20, 0, 9, 900_000_000, time.UTC)},
		{"2026-11-26T20:00:00.1234567", time.Date(2026, 11, 26, 20, 0, 0, 123_456_700, time.UTC)},
		{"2026-11-26 20:00:00Z", time.Date(2026, 11, 26, 20, 0, 0, 0, time.UTC)},
		{"11/26/2026 20:00:00", time.Date(2026, 11, 26, 20, 0, 0, 0, time.UTC)},
		{"11/26/2026 8:00:00 PM", time.Date(2026, 11, 26, 20, 0, 0, 0, time.UTC)},
		{"", time.Time{}},
	}
	for _, tt := range tests {
		got, err := parseHostTime(tt.in)
		if err != nil || !got.Equal(tt.want) || got.Location() != time.UTC {
			t.Errorf("parseHostTime(%q) = %v, %v; want %v UTC", tt.in, got, err, tt.want)
		}
	}
	if _, err := parseHostTime("26.11.2026"); err == nil {
		t.Error("parseHostTime accepted an unknown format")
	}
}

func TestDecodeInvocationErrors(t *testing.T) {
	post := func(body string) *http.Request {
		return httptest.NewRequest(http.MethodPost, "/Fn", strings.NewReader(body))
	}
	for name, body := range map[string]string{
		"empty":             "",
		"not JSON":          "Data=1",
		"array":             `[{"Data":{}}]`,
		"truncated":         `{"Data":{"message":"x"`,
		"Data not object":   `{"Data":[1],"Metadata":{}}`,
		"trailing garbage":  `{"Data":{},"Metadata":{}} x`,
		"null":              `null`,
		"Metadata a string": `{"Data":{},"Metadata":"x"}`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := DecodeInvocation(post(body), 1024)
			wantProblem(t, err, http.StatusBadRequest, CodeInvocationMalformed)
		})
	}

	t.Run("oversized", func(t *testing.T) {
		body := `{"Data":{"message":"` + strings.Repeat("x", 2000) + `"},"Metadata":{}}`
		_, err := DecodeInvocation(post(body), 1024)
		wantProblem(t, err, http.StatusRequestEntityTooLarge, CodeInvocationTooLarge)
	})
	t.Run("exactly at the limit", func(t *testing.T) {
		body := `{"Data":{},"Metadata":{}}`
		inv, err := DecodeInvocation(post(body), int64(len(body)))
		if err != nil || inv.Data == nil || inv.Metadata == nil {
			t.Fatalf("DecodeInvocation = %+v, %v", inv, err)
		}
	})
	t.Run("default limit", func(t *testing.T) {
		body := bytes.Repeat([]byte(" "), int(DefaultMaxBodyBytes)+1)
		_, err := DecodeInvocation(httptest.NewRequest(http.MethodPost, "/Fn", bytes.NewReader(body)), 0)
		wantProblem(t, err, http.StatusRequestEntityTooLarge, CodeInvocationTooLarge)
	})
	t.Run("absent members read as empty", func(t *testing.T) {
		inv, err := DecodeInvocation(post(`{"Data":null}`), 0)
		if err != nil || inv.Data == nil || inv.Metadata == nil || inv.FunctionName != "Fn" {
			t.Fatalf("DecodeInvocation = %+v, %v", inv, err)
		}
	})
}

func TestServiceBusMessageRoundTrip(t *testing.T) {
	meta := ServiceBusMetadata{
		MessageID:             "01936a52-8f7e-7c3a-9d4e-5b6a7c8d9e0f",
		DeliveryCount:         2,
		EnqueuedTimeUTC:       time.Date(2026, 11, 26, 20, 0, 9, 123_456_700, time.UTC),
		ContentType:           "application/cloudevents+json",
		CorrelationID:         "corr-1",
		Subject:               "TenantRegistered",
		ApplicationProperties: map[string]any{"eventType": "TenantRegistered"},
	}
	bodies := map[string][]byte{
		"cloud event":  []byte(cloudEvent),
		"array":        []byte(`[1,2,3]`),
		"number":       []byte(`12.50`),
		"json string":  []byte(`"plain"`),
		"text":         []byte("hello"),
		"text with \"": []byte(`say "hi"`),
	}
	for _, enc := range []Encoding{EncodingObject, EncodingString, EncodingDoubleQuoted, EncodingBase64} {
		for name, body := range bodies {
			t.Run(enc.String()+"/"+name, func(t *testing.T) {
				data, md := ServiceBusMessage(body, enc, meta)
				raw, err := json.Marshal(map[string]any{"Data": map[string]any{ServiceBusBinding: data}, "Metadata": md})
				if err != nil {
					t.Fatal(err)
				}
				inv, err := DecodeInvocation(httptest.NewRequest(http.MethodPost, "/Fn", bytes.NewReader(raw)), 0)
				if err != nil {
					t.Fatal(err)
				}
				got, err := inv.Payload(ServiceBusBinding)
				if err != nil {
					t.Fatal(err)
				}
				switch {
				case json.Valid(body):
					if !jsonEqual(got, body) {
						t.Fatalf("payload %q, want JSON equal to %q (wire %s)", got, body, raw)
					}
				// Text that is not JSON is only unwrapped from a single JSON string (the host quotes
				// twice and base64-encodes only JSON text); the other encodings leave their documented
				// outcome: the JSON string of the text, or the base64 text.
				case enc == EncodingDoubleQuoted:
					if string(got) != quote(string(body)) {
						t.Fatalf("payload %q, want the JSON string of %q", got, body)
					}
				case enc == EncodingBase64:
					if string(got) != base64.StdEncoding.EncodeToString(body) {
						t.Fatalf("payload %q, want the base64 of %q", got, body)
					}
				default:
					if !bytes.Equal(got, body) {
						t.Fatalf("payload %q, want %q (wire %s)", got, body, raw)
					}
				}
				gotMD, err := inv.ServiceBus()
				if err != nil {
					t.Fatal(err)
				}
				if gotMD.MessageID != meta.MessageID || gotMD.DeliveryCount != meta.DeliveryCount ||
					!gotMD.EnqueuedTimeUTC.Equal(meta.EnqueuedTimeUTC) || gotMD.ContentType != meta.ContentType ||
					gotMD.CorrelationID != meta.CorrelationID || gotMD.Subject != meta.Subject ||
					gotMD.ApplicationProperties["eventType"] != "TenantRegistered" {
					t.Fatalf("metadata = %+v, want %+v", gotMD, meta)
				}
			})
		}
	}
	t.Run("double-quoted matches the example file", func(t *testing.T) {
		data, _ := ServiceBusMessage([]byte(cloudEvent), EncodingDoubleQuoted, ServiceBusMetadata{})
		var example struct {
			Data map[string]json.RawMessage
		}
		if err := json.Unmarshal(readTestdata(t, "host-protocol/servicebus-invocation.json"), &example); err != nil {
			t.Fatal(err)
		}
		got, _ := json.Marshal(data)
		if !bytes.Equal(got, example.Data["message"]) {
			t.Fatalf("double-quoted encoding\n got %s\nwant %s", got, example.Data["message"])
		}
	})
	t.Run("empty correlation id is null", func(t *testing.T) {
		_, md := ServiceBusMessage(nil, EncodingString, ServiceBusMetadata{})
		if md["CorrelationId"] != nil {
			t.Fatalf("CorrelationId = %#v", md["CorrelationId"])
		}
		if props, ok := md["ApplicationProperties"].(map[string]any); !ok || props == nil {
			t.Fatalf("ApplicationProperties = %#v", md["ApplicationProperties"])
		}
	})
}

func TestHostShapedHelpers(t *testing.T) {
	last := time.Date(2026, 11, 26, 20, 0, 0, 0, time.UTC)
	next := last.Add(10 * time.Second)
	now := time.Date(2026, 11, 26, 20, 0, 10, 12_345_600, time.UTC)
	raw, err := json.Marshal(map[string]any{"Data": TimerData(last, next, false), "Metadata": SysMetadata("OutboxDrain", now)})
	if err != nil {
		t.Fatal(err)
	}
	got, err := jsonValue(raw)
	if err != nil {
		t.Fatal(err)
	}
	want, err := jsonValue(readTestdata(t, "host-protocol/timer-invocation.json"))
	if err != nil {
		t.Fatal(err)
	}
	// RandGuid is random; everything else must match the example exactly.
	gotSys := got.(map[string]any)["Metadata"].(map[string]any)["sys"].(map[string]any)
	wantSys := want.(map[string]any)["Metadata"].(map[string]any)["sys"].(map[string]any)
	if g, ok := gotSys["RandGuid"].(string); !ok || len(g) != 36 {
		t.Fatalf("RandGuid = %v", gotSys["RandGuid"])
	}
	gotSys["RandGuid"], wantSys["RandGuid"] = nil, nil
	if !jsonEqualValues(got, want) {
		t.Fatalf("timer invocation\n got %s\nwant %s", raw, readTestdata(t, "host-protocol/timer-invocation.json"))
	}
}

func jsonEqualValues(a, b any) bool {
	ab, _ := json.Marshal(a)
	bb, _ := json.Marshal(b)
	return bytes.Equal(ab, bb)
}
