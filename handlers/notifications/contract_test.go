package notifications

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"spine/shared/blob"
	"spine/shared/secrets/kvfake"
)

// Tests of the README's Notifications API contract, found by an outside-in run.

const inAppUser = "0193a7b0-0000-7000-8000-00000000000a"

// PATCH eventTypes null removes the filter (every type is accepted again), as the README says.
func TestPatchEndpoint_NullEventTypes_ClearsTheFilter(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	ep := h.createEndpoint(f, "https://hooks.example.com/a")
	h.must(http.StatusOK, "PATCH", "/api/webhook-endpoints/"+ep.ID, f.admin, map[string]any{"eventTypes": []string{"invoice.issued"}})
	r := h.must(http.StatusOK, "PATCH", "/api/webhook-endpoints/"+ep.ID, f.admin, json.RawMessage(`{"eventTypes": null}`))
	if m := r.JSON(t); m["eventTypes"] != nil {
		t.Fatalf("eventTypes after null: %v", m["eventTypes"])
	}
	got := decode[endpointJSON](t, h.must(http.StatusOK, "GET", "/api/webhook-endpoints/"+ep.ID, f.reader, nil).Body)
	if got.EventTypes != nil || got.Version != 3 {
		t.Fatalf("stored %+v", got)
	}
	h.must(http.StatusAccepted, "POST", "/api/notifications", f.admin, map[string]any{"channel": "webhook", "recipient": ep.ID,
		"eventType": "user.invited", "body": "b"})
}

// A null for url or enabled, which every endpoint has, is 400 invalid-input naming the member,
// and nothing changes (the version stays); description is optional: null removes it.
func TestPatchEndpoint_400_NullForARequiredMember_DescriptionNullRemovesIt(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	ep := h.createEndpoint(f, "https://hooks.example.com/a")
	for _, member := range []string{"url", "enabled"} {
		r := h.do("PATCH", "/api/webhook-endpoints/"+ep.ID, f.admin, json.RawMessage(`{"`+member+`": null}`))
		var p struct {
			Code   string
			Errors []struct{ Field, Detail string }
		}
		_ = json.Unmarshal(r.Body, &p)
		if r.Code != http.StatusBadRequest || p.Code != "invalid-input" || len(p.Errors) != 1 || p.Errors[0].Field != member ||
			p.Errors[0].Detail != "required; null would remove it" {
			t.Errorf("%s null: %d %s", member, r.Code, r.Body)
		}
	}
	if r := h.do("PATCH", "/api/webhook-endpoints/"+ep.ID, f.admin, json.RawMessage(`{"enabled": "yes"}`)); r.Code != http.StatusBadRequest {
		t.Errorf("enabled a string: %d %s", r.Code, r.Body)
	}
	got := decode[endpointJSON](t, h.must(http.StatusOK, "GET", "/api/webhook-endpoints/"+ep.ID, f.reader, nil).Body)
	if got.Version != 1 || got.URL != "https://hooks.example.com/a" || !got.Enabled {
		t.Fatalf("refused patches changed the endpoint: %+v", got)
	}
	h.must(http.StatusOK, "PATCH", "/api/webhook-endpoints/"+ep.ID, f.admin, map[string]any{"description": "billing"})
	r := h.must(http.StatusOK, "PATCH", "/api/webhook-endpoints/"+ep.ID, f.admin, json.RawMessage(`{"description": null}`))
	if m := r.JSON(t); m["description"] != nil || m["version"] != float64(3) {
		t.Fatalf("description null: %s", r.Body)
	}
}

// Every cursor the API did not issue is 400 invalid-cursor on both lists: garbage, and base64
// of a well-formed prefix with no id after it.
func TestLists_400_InvalidCursor_ForEveryBadCursor(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	bad := []string{"garbage", base64.StdEncoding.EncodeToString([]byte("k1:zzz")), base64.RawURLEncoding.EncodeToString([]byte("k1:")),
		base64.RawURLEncoding.EncodeToString([]byte("k1:0193a7b0-0000-7000-8000"))}
	for _, route := range []string{"/api/notifications", "/api/webhook-endpoints"} {
		for _, c := range bad {
			r := h.do("GET", route+"?cursor="+c, f.reader, nil)
			if r.Code != http.StatusBadRequest || r.ProblemCode(t) != "invalid-cursor" {
				t.Errorf("%s cursor %q: %d %s", route, c, r.Code, r.Body)
			}
		}
	}
}

// With Key Vault failing, create and rotate-secret answer 503 vault-unavailable with
// Retry-After, as integrations does; nothing is created.
func TestEndpoints_503_VaultUnavailable_WithRetryAfter(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	ep := h.createEndpoint(f, "https://hooks.example.com/a")
	h.kv.InjectFault(kvfake.Fault{Status: http.StatusServiceUnavailable, Count: 1})
	r := h.do("POST", "/api/webhook-endpoints", f.admin, map[string]any{"url": "https://hooks.example.com/b"})
	if r.Code != http.StatusServiceUnavailable || r.ProblemCode(t) != "vault-unavailable" || r.Header.Get("Retry-After") == "" {
		t.Errorf("create: %d %v %s", r.Code, r.Header, r.Body)
	}
	h.kv.InjectFault(kvfake.Fault{Status: http.StatusServiceUnavailable, Count: 1})
	r = h.do("POST", "/api/webhook-endpoints/"+ep.ID+"/rotate-secret", f.admin, nil)
	if r.Code != http.StatusServiceUnavailable || r.ProblemCode(t) != "vault-unavailable" || r.Header.Get("Retry-After") == "" {
		t.Errorf("rotate: %d %v %s", r.Code, r.Header, r.Body)
	}
	// Delete: the vault goes first, so its failure leaves the endpoint (and its secret) as they were.
	h.kv.InjectFault(kvfake.Fault{Status: http.StatusServiceUnavailable, Count: 1})
	r = h.do("DELETE", "/api/webhook-endpoints/"+ep.ID, f.admin, nil)
	if r.Code != http.StatusServiceUnavailable || r.ProblemCode(t) != "vault-unavailable" || r.Header.Get("Retry-After") == "" {
		t.Errorf("delete: %d %v %s", r.Code, r.Header, r.Body)
	}
	list := decode[struct{ Value []endpointJSON }](t, h.must(http.StatusOK, "GET", "/api/webhook-endpoints", f.reader, nil).Body)
	if len(list.Value) != 1 || list.Value[0].Version != 1 {
		t.Errorf("endpoints after the refusals %+v", list.Value)
	}
}

// unreadableBlobs is the real store whose reads fail as storage being unavailable.
type unreadableBlobs struct{ Blobs }

func (unreadableBlobs) Open(context.Context, string, string) (io.ReadCloser, blob.Properties, error) {
	return nil, blob.Properties{}, blob.ErrUnavailable
}

func (unreadableBlobs) Get(context.Context, string, string) ([]byte, error) {
	return nil, blob.ErrUnavailable
}

// When Blob cannot be read, GET of a notification and of an attachment answer 503
// store-unavailable with Retry-After, and do not claim that something was not accepted.
func TestGetNotification_503_BlobUnreadable_RetryAfterAndAReadersDetail(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	n := h.send(f, map[string]any{"channel": "inApp", "recipient": inAppUser, "subject": "s", "body": strings.Repeat("b", 9<<10),
		"attachments": []map[string]any{{"name": "a.txt", "contentBase64": "eA=="}}})
	h.mount(NewService(h.svc.store, unreadableBlobs{h.blobs}, h.vault, nil, h.dir, nil, ServiceConfig{Now: h.clock.now}, nil), nil)
	for _, path := range []string{"/api/notifications/" + n.ID, "/api/notifications/" + n.ID + "/attachments/a.txt"} {
		r := h.do("GET", path, f.reader, nil)
		if r.Code != http.StatusServiceUnavailable || r.ProblemCode(t) != "store-unavailable" || r.Header.Get("Retry-After") == "" ||
			strings.Contains(string(r.Body), "accepted") {
			t.Errorf("GET %s: %d %v %s", path, r.Code, r.Header, r.Body)
		}
	}
}

// A send refused because Blob is down answers 503 with Retry-After too.
func TestSend_503_BlobWriteFails_RetryAfter(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	h.mount(NewService(h.svc.store, &failingBlobs{Blobs: h.blobs, failOn: 1}, h.vault, nil, h.dir, nil, ServiceConfig{Now: h.clock.now}, nil), nil)
	r := h.do("POST", "/api/notifications", f.admin, map[string]any{"channel": "inApp", "recipient": inAppUser, "body": strings.Repeat("b", 9<<10)})
	if r.Code != http.StatusServiceUnavailable || r.ProblemCode(t) != "store-unavailable" || r.Header.Get("Retry-After") == "" {
		t.Errorf("send: %d %v %s", r.Code, r.Header, r.Body)
	}
}

// If-None-Match is compared weakly (RFC 9110 §13.1.2): the weak form of the ETag and * (any
// current representation) are 304; another tag is 200.
func TestAttachment_304_IfNoneMatchStarOrWeakETag(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	n := h.send(f, map[string]any{"channel": "inApp", "recipient": inAppUser, "body": "b",
		"attachments": []map[string]any{{"name": "a.txt", "contentBase64": "eA=="}}})
	path := "/api/notifications/" + n.ID + "/attachments/a.txt"
	etag := h.must(http.StatusOK, "GET", path, f.reader, nil).Header.Get("ETag")
	for _, inm := range []string{etag, "W/" + etag, "*", `"other", W/` + etag} {
		if r := h.do("GET", path, f.reader, nil, "If-None-Match", inm); r.Code != http.StatusNotModified || r.Header.Get("ETag") != etag {
			t.Errorf("If-None-Match %s: %d", inm, r.Code)
		}
	}
	if r := h.do("GET", path, f.reader, nil, "If-None-Match", `"other", W/"sha256-00"`); r.Code != http.StatusOK || string(r.Body) != "x" {
		t.Errorf("another tag: %d", r.Code)
	}
}

// The answers list every member of the README's shapes: unset ones are null, attachments and
// the delivery log are [] when empty (never left out).
func TestAnswers_UnsetMembersAreNull_EmptyListsAreEmptyArrays(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	ep := h.createEndpoint(f, "https://hooks.example.com/a")
	assertNull := func(where string, m map[string]any, members ...string) {
		t.Helper()
		for _, k := range members {
			if v, ok := m[k]; !ok || v != nil {
				t.Errorf("%s: %s = %v (present %v), want null", where, k, v, ok)
			}
		}
	}
	assertEmpty := func(where string, m map[string]any, members ...string) {
		t.Helper()
		for _, k := range members {
			if v, ok := m[k].([]any); !ok || len(v) != 0 {
				t.Errorf("%s: %s = %v, want []", where, k, m[k])
			}
		}
	}
	endpointNulls := []string{"description", "eventTypes", "failingSince", "disabledReason", "disabledAt"}
	assertNull("GET endpoint", h.must(http.StatusOK, "GET", "/api/webhook-endpoints/"+ep.ID, f.reader, nil).JSON(t), endpointNulls...)
	var page struct{ Value []map[string]any }
	_ = json.Unmarshal(h.must(http.StatusOK, "GET", "/api/webhook-endpoints", f.reader, nil).Body, &page)
	if len(page.Value) != 1 {
		t.Fatalf("endpoints %v", page.Value)
	}
	assertNull("endpoint list", page.Value[0], endpointNulls...)

	r := h.must(http.StatusAccepted, "POST", "/api/notifications", f.admin, map[string]any{"channel": "inApp", "recipient": inAppUser, "body": "b"})
	notificationNulls := []string{"eventType", "lastErrorClass", "deliveredAt", "failedAt"}
	sent := r.JSON(t)
	assertNull("POST notification", sent, notificationNulls...)
	assertEmpty("POST notification", sent, "attachments", "deliveryLog")
	if _, ok := sent["body"]; ok {
		t.Errorf("POST answer has a body")
	}
	id := sent["id"].(string)
	one := h.must(http.StatusOK, "GET", "/api/notifications/"+id, f.reader, nil).JSON(t)
	assertNull("GET notification", one, notificationNulls...)
	assertEmpty("GET notification", one, "attachments", "deliveryLog")
	if _, ok := one["nextAttemptAt"]; !ok {
		t.Errorf("GET notification has no nextAttemptAt")
	}
	page.Value = nil
	_ = json.Unmarshal(h.must(http.StatusOK, "GET", "/api/notifications", f.reader, nil).Body, &page)
	if len(page.Value) != 1 {
		t.Fatalf("notifications %v", page.Value)
	}
	assertNull("notification list", page.Value[0], notificationNulls...)
	for _, k := range []string{"body", "attachments", "deliveryLog"} {
		if _, ok := page.Value[0][k]; ok {
			t.Errorf("list item has %s", k)
		}
	}
	// Delivered in-app: nextAttemptAt is null, and the attempt has no status code and no error class.
	h.dispatch(h.requested(f.id, id))
	done := h.must(http.StatusOK, "GET", "/api/notifications/"+id, f.reader, nil).JSON(t)
	assertNull("delivered notification", done, "nextAttemptAt", "lastErrorClass", "failedAt")
	log, _ := done["deliveryLog"].([]any)
	if len(log) != 1 {
		t.Fatalf("deliveryLog %v", done["deliveryLog"])
	}
	assertNull("attempt", log[0].(map[string]any), "statusCode", "errorClass")
}

// A notification without eventType to an endpoint with a filter is 409 event-type-not-accepted
// saying that the endpoint takes only its listed types and the notification named none.
func TestSend_409_NoEventTypeToAFilteredEndpoint_DetailSaysNoneWasNamed(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	ep := h.createEndpoint(f, "https://hooks.example.com/a")
	h.must(http.StatusOK, "PATCH", "/api/webhook-endpoints/"+ep.ID, f.admin, map[string]any{"eventTypes": []string{"invoice.issued"}})
	r := h.do("POST", "/api/notifications", f.admin, map[string]any{"channel": "webhook", "recipient": ep.ID, "body": "b"})
	detail, _ := r.JSON(t)["detail"].(string)
	if r.Code != http.StatusConflict || r.ProblemCode(t) != "event-type-not-accepted" || !strings.Contains(detail, "names no eventType") ||
		!strings.Contains(detail, "only") {
		t.Errorf("no eventType: %d %s", r.Code, r.Body)
	}
	r = h.do("POST", "/api/notifications", f.admin, map[string]any{"channel": "webhook", "recipient": ep.ID, "eventType": "user.invited", "body": "b"})
	detail, _ = r.JSON(t)["detail"].(string)
	if r.Code != http.StatusConflict || strings.Contains(detail, "names no eventType") {
		t.Errorf("another eventType: %d %s", r.Code, r.Body)
	}
}
