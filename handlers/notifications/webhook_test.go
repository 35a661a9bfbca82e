package notifications

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"spine/shared/contracts"
	"spine/shared/functions"
)

// verify checks a received delivery with the Standard Webhooks reference implementation.
func verify(t *testing.T, secret string, r received) error {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	return wh.Verify(r.Body, r.Header)
}

// A webhook notification is delivered once, signed so that the reference implementation
// verifies it, with webhook-id = the notification id; Delivered, NotificationSent, one log row.
func TestWebhook_Delivered_SignatureVerifiesWithReferenceImplementation(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	rcv := newReceiver(t)
	ep := h.createEndpoint(f, rcv.URL+"/hook")
	if len(ep.Secret) < 10 || ep.Secret[:6] != "whsec_" {
		t.Fatalf("secret %q", ep.Secret)
	}
	n := h.sendAndDispatch(f, map[string]any{"channel": "webhook", "recipient": ep.ID, "eventType": "invoice.issued",
		"subject": "Invoice", "body": "hello"})
	if n.Status != "Delivered" || n.Attempts != 1 || n.DeliveredAt == nil {
		t.Fatalf("notification %+v", n)
	}
	got := rcv.requests()
	if len(got) != 1 {
		t.Fatalf("%d deliveries", len(got))
	}
	if err := verify(t, ep.Secret, got[0]); err != nil {
		t.Fatalf("reference verification: %v", err)
	}
	if got[0].Header.Get("webhook-id") != n.ID {
		t.Errorf("webhook-id %q, want %s", got[0].Header.Get("webhook-id"), n.ID)
	}
	payload := decode[webhookPayload](t, got[0].Body)
	if payload.Type != "invoice.issued" || payload.Data.Body != "hello" || payload.Data.NotificationID != n.ID {
		t.Errorf("payload %+v", payload)
	}
	log := *n.DeliveryLog
	if len(log) != 1 || log[0].StatusCode != 200 || log[0].ErrorClass != "" {
		t.Errorf("delivery log %+v", log)
	}
	if types := h.outboxTypes(f.id); !slices.Equal(types, []string{contracts.NotificationRequested, contracts.NotificationSent}) {
		t.Errorf("events %v", types)
	}
	// A wrong secret does not verify.
	if err := verify(t, "whsec_"+"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", got[0]); err == nil {
		t.Error("a wrong secret verified")
	}
}

// 500s are retried on the (compressed) Svix schedule, each delay within ±10% of its entry, with
// the same webhook-id every time and a valid signature on each attempt, until the receiver
// answers 200.
func TestWebhook_RetriedOn500_OnScheduleWithSameWebhookID(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	rcv := newReceiver(t, 500, 500, 503, 500)
	ep := h.createEndpoint(f, rcv.URL)
	n := h.sendAndDispatch(f, map[string]any{"channel": "webhook", "recipient": ep.ID, "subject": "s", "body": "b"})
	for i := 0; i < 4; i++ {
		if n.Status != "Sending" || n.NextAttemptAt == nil || n.LastErrorClass != "http-5xx" {
			t.Fatalf("after attempt %d: %+v", i+1, n)
		}
		last := (*n.DeliveryLog)[len(*n.DeliveryLog)-1]
		delay := n.NextAttemptAt.Sub(n.UpdatedAt)
		want := time.Duration(float64(retrySchedule[i]) * retryScale)
		if delay < want*9/10-time.Millisecond || delay > want*11/10+time.Millisecond {
			t.Errorf("delay after attempt %d: %v, want %v ±10%%", i+1, delay, want)
		}
		if last.Attempt != i+1 || last.StatusCode/100 != 5 {
			t.Errorf("log row %+v", last)
		}
		n = h.retryAfter(f, n.ID)
	}
	if n.Status != "Delivered" || n.Attempts != 5 {
		t.Fatalf("after the fifth attempt: %+v", n)
	}
	got := rcv.requests()
	if len(got) != 5 {
		t.Fatalf("%d deliveries, want 5", len(got))
	}
	for i, r := range got {
		if r.Header.Get("webhook-id") != n.ID {
			t.Errorf("attempt %d: webhook-id %q", i+1, r.Header.Get("webhook-id"))
		}
		if err := verify(t, ep.Secret, r); err != nil {
			t.Errorf("attempt %d: %v", i+1, err)
		}
		if i > 0 && r.Header.Get("webhook-timestamp") == got[i-1].Header.Get("webhook-timestamp") {
			ts, _ := strconv.ParseInt(r.Header.Get("webhook-timestamp"), 10, 64)
			if ts == 0 {
				t.Errorf("attempt %d: no timestamp", i+1)
			}
		}
	}
	if types := h.outboxTypes(f.id); types[len(types)-1] != contracts.NotificationSent {
		t.Errorf("events %v", types)
	}
}

// After the eighth failed attempt the notification is Failed with NotificationFailed.
func TestWebhook_Failed_AfterTheLastAttempt(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	rcv := newReceiver(t, 500, 500, 500, 500, 500, 500, 500, 500, 500)
	ep := h.createEndpoint(f, rcv.URL)
	n := h.sendAndDispatch(f, map[string]any{"channel": "webhook", "recipient": ep.ID, "subject": "s", "body": "b"})
	for n.Status == "Sending" {
		n = h.retryAfter(f, n.ID)
	}
	if n.Status != "Failed" || n.Attempts != MaxAttempts || n.FailedAt == nil || len(rcv.requests()) != MaxAttempts {
		t.Fatalf("notification %+v after %d deliveries", n, len(rcv.requests()))
	}
	evs := h.outboxEvents(f.id)
	last := evs[len(evs)-1]
	var data contracts.NotificationFailedData
	if last.Type != contracts.NotificationFailed || decodeInto(t, last.Data, &data) != nil || data.ErrorClass != "http-5xx" || data.Attempts != 8 {
		t.Errorf("last event %s %s", last.Type, last.Data)
	}
}

// 410 Gone fails the notification at once and disables the endpoint (WebhookEndpointDisabled,
// reason gone); a new notification to it is refused with 409 endpoint-disabled.
func TestWebhook_410_DisablesEndpoint(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	rcv := newReceiver(t, http.StatusGone)
	ep := h.createEndpoint(f, rcv.URL)
	n := h.sendAndDispatch(f, map[string]any{"channel": "webhook", "recipient": ep.ID, "subject": "s", "body": "b"})
	if n.Status != "Failed" || n.LastErrorClass != "http-4xx" || n.Attempts != 1 {
		t.Fatalf("notification %+v", n)
	}
	e := decode[endpointJSON](t, h.must(http.StatusOK, "GET", "/api/webhook-endpoints/"+ep.ID, f.reader, nil).Body)
	if e.Enabled || e.DisabledReason != "gone" || e.DisabledAt == nil {
		t.Fatalf("endpoint %+v", e)
	}
	types := h.outboxTypes(f.id)
	if !slices.Contains(types, contracts.WebhookEndpointDisabled) || !slices.Contains(types, contracts.NotificationFailed) {
		t.Errorf("events %v", types)
	}
	r := h.do("POST", "/api/notifications", f.admin, map[string]any{"channel": "webhook", "recipient": ep.ID, "subject": "s", "body": "b"})
	if r.Code != http.StatusConflict || r.ProblemCode(t) != "endpoint-disabled" {
		t.Fatalf("send to a disabled endpoint: %d %s", r.Code, r.Body)
	}
	// Enabling it again clears the reason.
	e = decode[endpointJSON](t, h.must(http.StatusOK, "PATCH", "/api/webhook-endpoints/"+ep.ID, f.admin, map[string]any{"enabled": true}).Body)
	if !e.Enabled || e.DisabledReason != "" {
		t.Errorf("re-enabled endpoint %+v", e)
	}
}

// An endpoint whose deliveries keep failing past SPINE_NOTIFICATIONS_ENDPOINT_DISABLE_AFTER is
// disabled (reason failing, with its failingSince) and the notification fails.
func TestWebhook_EndpointFailingPastDisableAfter_IsAutoDisabled(t *testing.T) {
	h := newHarness(t, func(c *ServiceConfig) { c.EndpointDisableAfter = time.Second })
	f := h.tenant()
	rcv := newReceiver(t, 500, 500, 500, 500, 500, 500, 500, 500)
	ep := h.createEndpoint(f, rcv.URL)
	n := h.sendAndDispatch(f, map[string]any{"channel": "webhook", "recipient": ep.ID, "subject": "s", "body": "b"})
	for n.Status == "Sending" {
		n = h.retryAfter(f, n.ID)
	}
	// Delays 5 ms, 300 ms, 1.8 s (±10%): the third attempt is within 1 s of the first failure, the
	// fourth more than 1 s after it.
	if n.Status != "Failed" || n.LastErrorClass != "endpoint-disabled" || n.Attempts != 4 {
		t.Fatalf("notification %+v", n)
	}
	e := decode[endpointJSON](t, h.must(http.StatusOK, "GET", "/api/webhook-endpoints/"+ep.ID, f.reader, nil).Body)
	if e.Enabled || e.DisabledReason != "failing" || e.FailingSince == nil {
		t.Fatalf("endpoint %+v", e)
	}
	var data contracts.WebhookEndpointDisabledData
	for _, ev := range h.outboxEvents(f.id) {
		if ev.Type == contracts.WebhookEndpointDisabled {
			_ = decodeInto(t, ev.Data, &data)
		}
	}
	if data.Reason != "failing" || data.EndpointID != ep.ID || data.FailingSince == nil {
		t.Errorf("WebhookEndpointDisabled %+v", data)
	}
}

// A success ends the endpoint's failure run.
func TestWebhook_SuccessClearsFailingSince(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	rcv := newReceiver(t, 500)
	ep := h.createEndpoint(f, rcv.URL)
	n := h.sendAndDispatch(f, map[string]any{"channel": "webhook", "recipient": ep.ID, "subject": "s", "body": "b"})
	e := decode[endpointJSON](t, h.must(http.StatusOK, "GET", "/api/webhook-endpoints/"+ep.ID, f.reader, nil).Body)
	if e.FailingSince == nil {
		t.Fatal("no failingSince after a failure")
	}
	if n = h.retryAfter(f, n.ID); n.Status != "Delivered" {
		t.Fatalf("notification %+v", n)
	}
	e = decode[endpointJSON](t, h.must(http.StatusOK, "GET", "/api/webhook-endpoints/"+ep.ID, f.reader, nil).Body)
	if e.FailingSince != nil || !e.Enabled {
		t.Fatalf("endpoint %+v", e)
	}
}

// A redelivered NotificationRequested (same event id) and a duplicate (another event for the
// same notification) never send a Delivered notification again.
func TestDispatch_RedeliveredRequest_DoesNotSendTwice(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	rcv := newReceiver(t)
	ep := h.createEndpoint(f, rcv.URL)
	n := h.send(f, map[string]any{"channel": "webhook", "recipient": ep.ID, "subject": "s", "body": "b"})
	ev := h.requested(f.id, n.ID)
	h.dispatch(ev)
	h.dispatch(ev)
	dup := ev
	dup.ID = "0193a7b0-0000-7000-8000-000000000001"
	h.dispatch(dup)
	if _, err := h.api.retries(context.Background(), &functions.Invocation{}); err != nil {
		t.Fatal(err)
	}
	if got := len(rcv.requests()); got != 1 {
		t.Fatalf("%d deliveries, want 1", got)
	}
	if n = h.get(f, n.ID); n.Status != "Delivered" || n.Attempts != 1 {
		t.Fatalf("notification %+v", n)
	}
}

// A notification whose first dispatch never happened (the instance died after the commit) is
// attempted by NotificationRetries.
func TestRetries_AttemptsANotificationNeverDispatched(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	rcv := newReceiver(t)
	ep := h.createEndpoint(f, rcv.URL)
	n := h.send(f, map[string]any{"channel": "webhook", "recipient": ep.ID, "subject": "s", "body": "b"})
	if n = h.retriesUntilAttempted(f, n.ID, 0); n.Status != "Delivered" || len(rcv.requests()) != 1 {
		t.Fatalf("notification %+v, %d deliveries", n, len(rcv.requests()))
	}
}

// After rotate-secret, deliveries verify with the new secret and no longer with the old one;
// the answer shows the new secret once, its Idempotency-Key replay does not.
func TestRotateSecret_NewSecretSigns_ReplayHidesIt(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	rcv := newReceiver(t)
	ep := h.createEndpoint(f, rcv.URL)
	r := h.must(http.StatusOK, "POST", "/api/webhook-endpoints/"+ep.ID+"/rotate-secret", f.admin, nil, "Idempotency-Key", "rot-1")
	rot := decode[endpointJSON](t, r.Body)
	if rot.Secret == "" || rot.Secret == ep.Secret || rot.SecretRef.Version == ep.SecretRef.Version || rot.SecretRef.Name != ep.SecretRef.Name {
		t.Fatalf("rotation %+v (before %+v)", rot, ep)
	}
	replay := decode[endpointJSON](t, h.must(http.StatusOK, "POST", "/api/webhook-endpoints/"+ep.ID+"/rotate-secret", f.admin, nil,
		"Idempotency-Key", "rot-1").Body)
	if replay.Secret != "" || replay.SecretRef.Version != rot.SecretRef.Version {
		t.Fatalf("replay %+v", replay)
	}
	h.sendAndDispatch(f, map[string]any{"channel": "webhook", "recipient": ep.ID, "subject": "s", "body": "b"})
	got := rcv.requests()
	if len(got) != 1 {
		t.Fatalf("%d deliveries", len(got))
	}
	if err := verify(t, rot.Secret, got[0]); err != nil {
		t.Errorf("new secret: %v", err)
	}
	if err := verify(t, ep.Secret, got[0]); err == nil {
		t.Error("the old secret still verifies")
	}
	// The previous version is disabled in Key Vault.
	if _, err := h.vault.GetVersion(context.Background(), ep.SecretRef.Name, ep.SecretRef.Version); err == nil {
		t.Error("the previous secret version is still readable")
	}
}

// Webhook URLs: https only (http to loopback only when allowed), never a private, link-local or
// metadata address.
func TestCreateEndpoint_400_RefusedURLs(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	for _, u := range []string{"http://example.com/hook", "https://10.1.2.3/", "https://169.254.169.254/latest/meta-data",
		"https://192.168.1.1/", "https://172.16.0.1/", "https://[fc00::1]/", "https://[::ffff:10.0.0.1]/", "ftp://example.com/",
		"https://user:pw@example.com/", "/relative"} {
		r := h.do("POST", "/api/webhook-endpoints", f.admin, map[string]any{"url": u})
		if r.Code != http.StatusBadRequest || r.ProblemCode(t) != "invalid-url" {
			t.Errorf("%s: %d %s", u, r.Code, r.Body)
		}
	}
	strict := newHarness(t, func(c *ServiceConfig) { c.AllowLoopback = false })
	g := strict.tenant()
	for _, u := range []string{"http://127.0.0.1:8080/", "https://localhost/", "https://[::1]/"} {
		if r := strict.do("POST", "/api/webhook-endpoints", g.admin, map[string]any{"url": u}); r.Code != http.StatusBadRequest {
			t.Errorf("loopback not allowed, %s: %d %s", u, r.Code, r.Body)
		}
	}
}

// At delivery the resolved address is checked again: a target that resolves to loopback is
// refused (ssrf-refused) by a service that does not allow loopback, and nothing is sent.
func TestDelivery_SSRF_ResolvedAddressRefused(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	rcv := newReceiver(t)
	ep := h.createEndpoint(f, "http://localhost:"+rcv.URL[len("http://127.0.0.1:"):]+"/hook")
	n := h.send(f, map[string]any{"channel": "webhook", "recipient": ep.ID, "subject": "s", "body": "b"})
	strict := NewService(h.svc.store, h.blobs, h.vault, nil, h.dir, nil, ServiceConfig{RetryScale: retryScale, Now: h.clock.now}, nil)
	if err := strict.Attempt(context.Background(), f.id, n.ID); err != nil {
		t.Fatal(err)
	}
	n = h.get(f, n.ID)
	if n.Status != "Sending" || n.LastErrorClass != "ssrf-refused" || len(rcv.requests()) != 0 {
		t.Fatalf("notification %+v, %d deliveries", n, len(rcv.requests()))
	}
}

// A suspended tenant's notification is not sent (the write fence holds for the worker too) and
// does not count against its endpoint; once reactivated, the next retry delivers it.
func TestDispatch_SuspendedTenant_NotSentUntilReactivated(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	rcv := newReceiver(t)
	ep := h.createEndpoint(f, rcv.URL)
	n := h.send(f, map[string]any{"channel": "webhook", "recipient": ep.ID, "subject": "s", "body": "b"})
	h.dir.Set(f.id, "Suspended")
	h.dispatch(h.requested(f.id, n.ID))
	n = h.get(f, n.ID)
	if n.Status != "Sending" || n.LastErrorClass != "tenant-suspended" || len(rcv.requests()) != 0 {
		t.Fatalf("notification %+v, %d deliveries", n, len(rcv.requests()))
	}
	e := decode[endpointJSON](t, h.must(http.StatusOK, "GET", "/api/webhook-endpoints/"+ep.ID, f.reader, nil).Body)
	if e.FailingSince != nil {
		t.Errorf("the tenant's suspension counted against the endpoint: %+v", e)
	}
	h.dir.Set(f.id, "Active")
	if n = h.retryAfter(f, n.ID); n.Status != "Delivered" || len(rcv.requests()) != 1 {
		t.Fatalf("after reactivation: %+v", n)
	}
}
