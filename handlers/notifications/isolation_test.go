package notifications

import (
	"context"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
)

// Tenant A's token on every notifications route with tenant B's ids: 404 not-found (B's rows do
// not exist for A), never 200 or 403; naming B with ?tenantId=: 403 tenant-mismatch on every
// route, whether or not B exists. B's data is unchanged afterwards, A's lists never show it.
func TestIsolation_TenantTokenOnEveryRouteWithAnotherTenantsIDs(t *testing.T) {
	h := newHarness(t)
	a, b := h.tenant(), h.tenant()
	rcv := newReceiver(t)
	bEp := h.createEndpoint(b, rcv.URL)
	bN := h.send(b, map[string]any{"channel": "webhook", "recipient": bEp.ID, "subject": "s", "body": "b",
		"attachments": []map[string]any{{"name": "a.txt", "contentBase64": base64.StdEncoding.EncodeToString([]byte("x"))}}})
	h.createEndpoint(a, rcv.URL)

	type route struct {
		method, path string
		body         any
	}
	byID := []route{
		{"GET", "/api/notifications/" + bN.ID, nil},
		{"GET", "/api/notifications/" + bN.ID + "/attachments/a.txt", nil},
		{"GET", "/api/webhook-endpoints/" + bEp.ID, nil},
		{"PATCH", "/api/webhook-endpoints/" + bEp.ID, map[string]any{"enabled": false}},
		{"DELETE", "/api/webhook-endpoints/" + bEp.ID, nil},
		{"POST", "/api/webhook-endpoints/" + bEp.ID + "/rotate-secret", nil},
		{"POST", "/api/notifications", map[string]any{"channel": "webhook", "recipient": bEp.ID, "subject": "s", "body": "b"}},
	}
	for _, rt := range byID {
		r := h.do(rt.method, rt.path, a.admin, rt.body)
		if r.Code != http.StatusNotFound || r.ProblemCode(t) != "not-found" {
			t.Errorf("A's token, %s %s: %d %s, want 404 not-found", rt.method, rt.path, r.Code, r.Body)
		}
	}
	all := append(byID, []route{
		{"GET", "/api/notifications", nil},
		{"GET", "/api/notifications?status=Pending", nil},
		{"GET", "/api/webhook-endpoints", nil},
		{"POST", "/api/webhook-endpoints", map[string]any{"url": "https://x.example/"}},
		{"POST", "/api/notifications", map[string]any{"channel": "inApp", "recipient": bEp.ID, "body": "b"}},
	}...)
	for _, rt := range all {
		sep := "?"
		if strings.Contains(rt.path, "?") {
			sep = "&"
		}
		r := h.do(rt.method, rt.path+sep+"tenantId="+b.id.String(), a.admin, rt.body)
		if r.Code != http.StatusForbidden || r.ProblemCode(t) != "tenant-mismatch" {
			t.Errorf("A's token naming B, %s %s: %d %s", rt.method, rt.path, r.Code, r.Body)
		}
	}
	for _, path := range []string{"/api/notifications", "/api/webhook-endpoints"} {
		body := string(h.must(http.StatusOK, "GET", path, a.reader, nil).Body)
		if strings.Contains(body, bN.ID) || strings.Contains(body, bEp.ID) {
			t.Errorf("A's %s shows B's rows: %s", path, body)
		}
	}
	// B is untouched: its endpoint enabled on version 1 with its secret version, its notification Pending.
	e, err := h.svc.Endpoint(context.Background(), b.id, bEp.ID)
	if err != nil || !e.Enabled || e.Version != 1 || e.Secret.Version != bEp.SecretRef.Version {
		t.Errorf("B's endpoint %+v %v", e, err)
	}
	if n := h.get(b, bN.ID); n.Status != "Pending" {
		t.Errorf("B's notification %+v", n)
	}
}
