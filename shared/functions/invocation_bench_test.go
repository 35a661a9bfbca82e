package functions

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"
)

// benchInvocationBody is the host's Service Bus invocation for cloudEvent in encoding enc, as
// DecodeInvocation receives it.
func benchInvocationBody(b *testing.B, enc Encoding) []byte {
	b.Helper()
	data, md := ServiceBusMessage([]byte(cloudEvent), enc, ServiceBusMetadata{
		MessageID: "01936a52-8f7e-7c3a-9d4e-5b6a7c8d9e0f", DeliveryCount: 1,
		EnqueuedTimeUTC: time.Date(2026, 11, 26, 20, 0, 9, 0, time.UTC), ContentType: "application/cloudevents+json",
		Subject: "TenantRegistered", ApplicationProperties: map[string]any{"eventType": "TenantRegistered"},
	})
	md["sys"] = SysMetadata("AuditOnEvent", time.Date(2026, 11, 26, 20, 0, 10, 0, time.UTC))["sys"]
	body, err := json.Marshal(map[string]any{"Data": map[string]any{ServiceBusBinding: data}, "Metadata": md})
	if err != nil {
		b.Fatal(err)
	}
	return body
}

// BenchmarkDecodeInvocation decodes the host's Service Bus invocation request (the example file:
// a CloudEvent quoted twice, plus the trigger metadata), the per-message cost of every Service
// Bus-triggered function before its handler runs.
func BenchmarkDecodeInvocation(b *testing.B) {
	body := readTestdata(b, filepath.Join("host-protocol", "servicebus-invocation.json"))
	req := httptest.NewRequest(http.MethodPost, "/AuditOnEvent", nil)
	req.Header.Set(HeaderInvocationID, "6f3e2a8c-3c1b-4bde-9f5e-1d2c3b4a5f60")
	rd := bytes.NewReader(body)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		rd.Reset(body)
		req.Body = readCloser{rd}
		if _, err := DecodeInvocation(req, 0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeInvocationAndPayload is DecodeInvocation followed by Payload and ServiceBus
// metadata, for each encoding the host uses: what a Service Bus-triggered function pays per message.
func BenchmarkDecodeInvocationAndPayload(b *testing.B) {
	for _, enc := range []Encoding{EncodingObject, EncodingString, EncodingDoubleQuoted, EncodingBase64} {
		b.Run(enc.String(), func(b *testing.B) {
			body := benchInvocationBody(b, enc)
			req := httptest.NewRequest(http.MethodPost, "/AuditOnEvent", nil)
			rd := bytes.NewReader(body)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				rd.Reset(body)
				req.Body = readCloser{rd}
				inv, err := DecodeInvocation(req, 0)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := inv.Payload(ServiceBusBinding); err != nil {
					b.Fatal(err)
				}
				if _, err := inv.ServiceBus(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPayload removes the host's encoding from an already decoded Data binding, for each
// encoding: the cost of Payload alone.
func BenchmarkPayload(b *testing.B) {
	for _, enc := range []Encoding{EncodingObject, EncodingString, EncodingDoubleQuoted, EncodingBase64} {
		b.Run(enc.String(), func(b *testing.B) {
			data, _ := ServiceBusMessage([]byte(cloudEvent), enc, ServiceBusMetadata{})
			raw, err := json.Marshal(data)
			if err != nil {
				b.Fatal(err)
			}
			inv := &Invocation{Data: map[string]json.RawMessage{ServiceBusBinding: raw}}
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := inv.Payload(ServiceBusBinding); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// readCloser lets a reused bytes.Reader stand in for a request body.
type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }
