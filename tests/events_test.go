package tests

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// auditEntries lists a tenant's audit entries (as platform admin) in chain order.
func (s *server) auditEntries(tenant string) []map[string]any {
	s.t.Helper()
	r := s.call("GET", "/api/audit-entries?limit=200&tenantId="+tenant, s.admin, nil, nil)
	if r.Code != http.StatusOK {
		s.t.Fatalf("audit query: %d %s", r.Code, r.Body)
	}
	var out []map[string]any
	for _, v := range r.JSON(s.t)["value"].([]any) {
		out = append(out, v.(map[string]any))
	}
	return out
}

// waitEntries polls until tenant has n audit entries (bounded), and returns them.
func (s *server) waitEntries(tenant string, n int) []map[string]any {
	s.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := s.auditEntries(tenant)
		if len(got) >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// tenantsEntries keeps the entries of the tenants topic's events (a provisioned tenant's trail
// also holds identity's, which its consumer causes: the owner's invitation, the users disabled).
func tenantsEntries(es []map[string]any) []map[string]any {
	var out []map[string]any
	for _, e := range es {
		if a, _ := e["action"].(string); strings.HasPrefix(a, "Tenant") {
			out = append(out, e)
		}
	}
	return out
}

// waitTenantsEntries polls until tenant has n entries of the tenants topic (bounded), and returns
// them.
func (s *server) waitTenantsEntries(tenant string, n int) []map[string]any {
	s.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := tenantsEntries(s.auditEntries(tenant))
		if len(got) >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Every tenant change reaches the Audit Trail through outbox → drainer → transport →
// AuditOnTenantsEvent, exactly once and in order per tenant, carrying the request's trace id.
func TestEvents_TenantChangesBecomeAuditEntriesOnceInOrder(t *testing.T) {
	s := startServer(t, map[string]string{"SPINE_LOG_LEVEL": "debug"})
	want := []string{"TenantRegistered", "TenantProvisioned", "TenantSuspended", "TenantReactivated", "TenantSuspended", "TenantDecommissioned"}
	const tenants = 4
	ids := make([]string, tenants)
	traces := make([]string, tenants)
	var wg sync.WaitGroup
	for i := 0; i < tenants; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sl := slug("evt")
			traces[i] = "4bf92f3577b34da6a3ce929d0e0e47" + []string{"00", "01", "02", "03"}[i]
			r := s.call("POST", "/api/tenants", s.admin, map[string]string{"name": "Evt", "slug": sl, "editionCode": "standard",
				"ownerEmail": "o@" + sl + ".example"}, map[string]string{"traceparent": "00-" + traces[i] + "-00f067aa0ba902b7-01"})
			if r.Code != http.StatusCreated {
				t.Errorf("register: %d %s", r.Code, r.Body)
				return
			}
			id := r.JSON(t)["id"].(string)
			ids[i] = id
			for _, action := range []string{"provision", "suspend", "reactivate", "suspend", "decommission"} {
				if r := s.call("POST", "/api/tenants/"+id+"/"+action, s.admin, nil, nil); r.Code != http.StatusOK {
					t.Errorf("%s: %d %s", action, r.Code, r.Body)
					return
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for i, id := range ids {
		got := s.waitTenantsEntries(id, len(want))
		if len(got) != len(want) {
			t.Fatalf("tenant %s: %d audit entries, want %d: %v", id, len(got), len(want), got)
		}
		for j, e := range got {
			if e["action"] != want[j] {
				t.Fatalf("tenant %s entry %d: action %v, want %s (order)", id, j, e["action"], want[j])
			}
			if e["sourceEventId"] == nil || e["sourceEventId"] == "" {
				t.Fatalf("entry without its source event: %v", e)
			}
		}
		if got[0]["traceId"] != traces[i] {
			t.Fatalf("TenantRegistered entry has traceId %v, want the request's %s", got[0]["traceId"], traces[i])
		}
		if !contains(s.logs.String(), `"msg":"audit: event recorded","eventId":"`+got[0]["sourceEventId"].(string)) ||
			!contains(s.logs.String(), `"traceId":"`+traces[i]+`","invocationId"`) {
			t.Fatalf("the consumer's log lines do not carry the request's trace %s", traces[i])
		}
		if actor, _ := got[0]["actor"].(map[string]any); actor["type"] != "admin" || actor["id"] != "e2e" {
			t.Fatalf("actor = %v, want the registering admin", got[0]["actor"])
		}
	}
	time.Sleep(300 * time.Millisecond) // any duplicate delivery would land by now
	for _, id := range ids {
		if n := len(tenantsEntries(s.auditEntries(id))); n != len(want) {
			t.Fatalf("tenant %s: %d entries after settling, want exactly %d", id, n, len(want))
		}
	}
	r := s.call("GET", "/api/ops/outbox", s.admin, nil, nil)
	if r.Code != http.StatusOK {
		t.Fatalf("outbox counts: %d %s", r.Code, r.Body)
	}
	for _, v := range r.JSON(t)["value"].([]any) {
		c := v.(map[string]any)
		if c["topic"] == "tenants" && (c["pending"] != 0.0 || c["parked"] != 0.0) {
			t.Fatalf("tenants outbox not drained: %v", c)
		}
	}
	// Nothing was dead-lettered, and an empty list is [], never null.
	if r := s.call("GET", "/api/ops/dead-letters", s.admin, nil, nil); r.Code != http.StatusOK || !bytes.Contains(r.Body, []byte(`"value":[]`)) {
		t.Fatalf("dead letters: %d %s; want 200 with \"value\":[]", r.Code, r.Body)
	}
	// The operator API lives under /api/ops: /api/admin is the host's.
	if r := s.call("GET", "/api/admin/outbox", s.admin, nil, nil); r.Code != http.StatusNotFound {
		t.Fatalf("GET /api/admin/outbox: %d, want 404", r.Code)
	}
}

// The exact Service Bus invocation the host sends (host-protocol/servicebus-invocation.json, kept
// in shared/functions/testdata: a CloudEvent quoted twice), delivered twice, yields one audit entry.
func TestServiceBusInvocation_HostExampleIsIdempotent(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(repo, "shared", "functions", "testdata", "host-protocol", "servicebus-invocation.json"))
	if err != nil {
		t.Fatalf("the host example: %v", err)
	}
	raw = bytes.Replace(raw, []byte(`"MethodName": "AuditOnEvent"`), []byte(`"MethodName": "AuditOnTenantsEvent"`), 1)
	s := startServer(t, nil)
	for i := 0; i < 2; i++ {
		r := s.invoke("AuditOnTenantsEvent", raw)
		if r.Code != http.StatusOK {
			t.Fatalf("delivery %d: %d %s", i+1, r.Code, r.Body)
		}
	}
	got := s.auditEntries("01936a52-8f7e-7c3a-9d4e-000000000001")
	if len(got) != 1 || got[0]["action"] != "TenantRegistered" || got[0]["traceId"] != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Fatalf("entries = %v", got)
	}
	// A message whose body is not a CloudEvent fails the invocation (non-2xx: the host retries,
	// then dead-letters), without touching the trail.
	bad := []byte(`{"Data":{"message":"\"not an event\""},"Metadata":{"MessageId":"m1","DeliveryCount":1}}`)
	if r := s.invoke("AuditOnTenantsEvent", bad); r.Code < 400 {
		t.Fatalf("a poisoned message answered %d", r.Code)
	}
}
