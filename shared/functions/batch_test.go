package functions

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"spine/shared/problem"
)

// decodeBody decodes an invocation request body the way Mount does.
func decodeBody(t *testing.T, v any) *Invocation {
	t.Helper()
	body, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	inv, err := DecodeInvocation(httptest.NewRequest(http.MethodPost, "/Fn", bytes.NewReader(body)), int64(len(body)))
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

// A batch built the way the host sends one (every array wrapped in a JSON string) reads back
// message by message: bodies, ids, delivery counts, times, subjects, properties, in order.
func TestServiceBusBatch_RoundTripsTheHostsShape(t *testing.T) {
	when := time.Date(2026, 11, 30, 7, 0, 0, 123456700, time.UTC)
	bodies := [][]byte{[]byte(`{"id":"a","n":1}`), []byte(`{"id":"b","s":"quote \" and \\u0000-free"}`), []byte(`not json at all`)}
	metas := []ServiceBusMetadata{
		{MessageID: "m1", DeliveryCount: 1, EnqueuedTimeUTC: when, ContentType: "application/cloudevents+json", Subject: "T1",
			ApplicationProperties: map[string]any{"tenantId": "t-1"}},
		{MessageID: "m2", DeliveryCount: 3, EnqueuedTimeUTC: when.Add(time.Second), CorrelationID: "c-2", Subject: "T2"},
		{MessageID: "m3", DeliveryCount: 2, EnqueuedTimeUTC: when.Add(2 * time.Second)},
	}
	data, meta := ServiceBusBatch(bodies, metas)
	if _, ok := data.(string); !ok {
		t.Fatalf("the batch binding is %T, want the host's JSON string", data)
	}
	inv := decodeBody(t, map[string]any{"Data": map[string]any{ServiceBusBinding: data}, "Metadata": meta})
	if !inv.IsServiceBusBatch() {
		t.Fatal("a batch was not recognised")
	}
	got, err := inv.Payloads(ServiceBusBinding)
	if err != nil || len(got) != 3 {
		t.Fatalf("payloads: %q %v", got, err)
	}
	for i := range bodies {
		if !bytes.Equal(got[i], bodies[i]) {
			t.Errorf("body %d = %q, want %q", i, got[i], bodies[i])
		}
	}
	md, err := inv.ServiceBusBatch(len(got))
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range metas {
		m := md[i]
		if m.MessageID != want.MessageID || m.DeliveryCount != want.DeliveryCount || m.Subject != want.Subject ||
			m.CorrelationID != want.CorrelationID || m.ContentType != want.ContentType ||
			!m.EnqueuedTimeUTC.Equal(want.EnqueuedTimeUTC) {
			t.Errorf("metadata %d = %+v, want %+v", i, m, want)
		}
	}
	if md[0].ApplicationProperties["tenantId"] != "t-1" || len(md[1].ApplicationProperties) != 0 {
		t.Errorf("properties = %v, %v", md[0].ApplicationProperties, md[1].ApplicationProperties)
	}
}

// The arrays are also read when sent as plain JSON arrays; a single message is not a batch.
func TestServiceBusBatch_PlainArraysAndSingles(t *testing.T) {
	inv := decodeBody(t, map[string]any{
		"Data":     map[string]any{ServiceBusBinding: []any{map[string]any{"id": "a"}, `{"id":"b"}`}},
		"Metadata": map[string]any{"MessageIdArray": []string{"m1", "m2"}, "DeliveryCountArray": []int{1, 2}},
	})
	got, err := inv.Payloads(ServiceBusBinding)
	if err != nil || len(got) != 2 || string(got[0]) != `{"id":"a"}` || string(got[1]) != `{"id":"b"}` {
		t.Fatalf("payloads: %q %v", got, err)
	}
	if md, err := inv.ServiceBusBatch(2); err != nil || md[1].MessageID != "m2" || md[1].DeliveryCount != 2 {
		t.Fatalf("metadata: %+v %v", md, err)
	}
	data, meta := ServiceBusMessage([]byte(`{"id":"a"}`), EncodingString, ServiceBusMetadata{MessageID: "m"})
	if decodeBody(t, map[string]any{"Data": map[string]any{ServiceBusBinding: data}, "Metadata": meta}).IsServiceBusBatch() {
		t.Fatal("a single message was taken for a batch")
	}
}

// A batch whose arrays disagree in length, or whose binding is not an array, is a 400 naming what
// is wrong.
func TestServiceBusBatch_400_Malformed(t *testing.T) {
	inv := decodeBody(t, map[string]any{
		"Data":     map[string]any{ServiceBusBinding: `{"not":"an array"}`},
		"Metadata": map[string]any{"MessageIdArray": `["m1"]`, "DeliveryCountArray": `[1,2]`},
	})
	var p *problem.Problem
	if _, err := inv.Payloads(ServiceBusBinding); !errors.As(err, &p) || p.Status != http.StatusBadRequest {
		t.Fatalf("payloads of a non-array: %v", err)
	}
	if _, err := inv.ServiceBusBatch(1); !errors.As(err, &p) || p.Status != http.StatusBadRequest ||
		!strings.Contains(errors.Unwrap(err).Error()+p.Detail+err.Error(), "DeliveryCountArray") {
		t.Fatalf("metadata of disagreeing lengths: %v", err)
	}
}

// A trigger with CardinalityMany declares it in function.json with dataType string; the default
// declares neither.
func TestFunctionJSON_CardinalityMany(t *testing.T) {
	fn := Function{Name: "OnEvents", ServiceBus: &ServiceBusTrigger{Topic: "tenants", Subscription: "audit",
		Connection: "ServiceBusConnection", Cardinality: CardinalityMany}, Handler: func(ctx context.Context, inv *Invocation) (*Result, error) { return nil, nil }}
	b, err := FunctionJSON(fn)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"cardinality": "many"`) || !strings.Contains(string(b), `"dataType": "string"`) {
		t.Fatalf("function.json:\n%s", b)
	}
	fn.ServiceBus.Cardinality = CardinalityOne
	if b, _ = FunctionJSON(fn); strings.Contains(string(b), "cardinality") || strings.Contains(string(b), "dataType") {
		t.Fatalf("function.json of a single-message trigger:\n%s", b)
	}
	fn.ServiceBus.Cardinality = "some"
	if _, err := FunctionJSON(fn); err == nil {
		t.Fatal("an unknown cardinality was accepted")
	}
}

// BenchmarkServiceBusBatch64 decodes a batch of 64 CloudEvent messages in the host's shape: the
// request, the bodies and the metadata, as a batch-taking consumer reads them once per invocation.
func BenchmarkServiceBusBatch64(b *testing.B) {
	bodies := make([][]byte, 64)
	metas := make([]ServiceBusMetadata, 64)
	for i := range bodies {
		bodies[i] = []byte(`{"specversion":"1.0","id":"01a22b77-cf37-7d51-b844-6df883b25e69","source":"/services/tenants","type":"TenantRegistered","subject":"01a22b77-cf37-7d0d-82c8-5dcd58fc0486","time":"2026-11-30T08:00:01.813249Z","tenantid":"01a22b77-cf37-7d0d-82c8-5dcd58fc0486","traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01","data":{"tenantId":"01a22b77-cf37-7d0d-82c8-5dcd58fc0486","name":"Bench","slug":"bench-1","editionCode":"standard"}}`)
		metas[i] = ServiceBusMetadata{MessageID: "01a22b77-cf37-7d51-b844-6df883b25e69", DeliveryCount: 1, EnqueuedTimeUTC: time.Now(),
			ContentType: "application/cloudevents+json", Subject: "TenantRegistered",
			ApplicationProperties: map[string]any{"eventType": "TenantRegistered", "tenantId": "01a22b77-cf37-7d0d-82c8-5dcd58fc0486",
				"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}
	}
	data, meta := ServiceBusBatch(bodies, metas)
	body, _ := json.Marshal(map[string]any{"Data": map[string]any{ServiceBusBinding: data}, "Metadata": meta})
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		inv, err := DecodeInvocation(httptest.NewRequest(http.MethodPost, "/Fn", bytes.NewReader(body)), int64(len(body)))
		if err != nil {
			b.Fatal(err)
		}
		got, err := inv.Payloads(ServiceBusBinding)
		if err != nil || len(got) != 64 {
			b.Fatal(err)
		}
		if _, err := inv.ServiceBusBatch(len(got)); err != nil {
			b.Fatal(err)
		}
	}
}
