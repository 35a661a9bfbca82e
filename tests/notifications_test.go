package tests

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"spine/shared/mail/smtpsink"
)

// Notifications through the binary as the host drives it: the request only records the
// notification (202); NotificationRequested goes through the outbox to the in-process transport,
// which invokes NotificationDispatch (POST /NotificationDispatch, as the host would); its first
// attempt at the webhook receiver gets 500, and NotificationRetries (invoked as the host's timer
// would, POST /NotificationRetries) delivers it on the compressed schedule with the same
// webhook-id, signed so the Standard Webhooks reference implementation verifies it. An e-mail
// notification reaches an SMTP sink, and the audit trail records the notifications' events.
func TestNotifications_WebhookRetriedThenDelivered_EmailThroughSink(t *testing.T) {
	sink, err := smtpsink.Start("127.0.0.1:0", t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sink.Close() })
	var mu sync.Mutex
	var got []*http.Request
	var bodies [][]byte
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got, bodies = append(got, r), append(bodies, b)
		first := len(got) == 1
		mu.Unlock()
		if first {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rcv.Close)

	s := startServer(t, map[string]string{"SPINE_SMTP_ADDR": sink.Addr(), "SPINE_EGRESS_ALLOW_LOOPBACK": "true",
		"SPINE_NOTIFICATIONS_RETRY_SCALE": "0.0001"})
	tenant := s.register(slug("ntf"), "standard")
	if r := s.call("POST", "/api/tenants/"+tenant+"/provision", s.admin, nil, nil); r.Code != http.StatusOK {
		t.Fatalf("provision: %d %s", r.Code, r.Body)
	}
	tok := s.mint("e2e", tenant, false, "notifications.read", "notifications.send", "notifications.manage", "audit.read")

	r := s.call("POST", "/api/webhook-endpoints", tok, map[string]any{"url": rcv.URL + "/hook"}, nil)
	if r.Code != http.StatusCreated {
		t.Fatalf("create endpoint: %d %s", r.Code, r.Body)
	}
	ep := r.JSON(t)
	secret, _ := ep["secret"].(string)
	r = s.call("POST", "/api/notifications", tok, map[string]any{"channel": "webhook", "recipient": ep["id"], "eventType": "e2e.test",
		"subject": "hello", "body": "from the binary"}, map[string]string{"Idempotency-Key": "e2e-1"})
	if r.Code != http.StatusAccepted {
		t.Fatalf("send: %d %s", r.Code, r.Body)
	}
	id := r.JSON(t)["id"].(string)

	status := func() map[string]any { return s.call("GET", "/api/notifications/"+id, tok, nil, nil).JSON(t) }
	eventually(t, "the first attempt (NotificationDispatch through the outbox and the transport)", func() bool {
		return status()["attempts"].(float64) >= 1
	})
	eventually(t, "the retry (NotificationRetries, as the host's timer invokes it)", func() bool {
		if inv := s.invoke("NotificationRetries", hostTimerBody(t, "NotificationRetries")); inv.Code != http.StatusOK {
			t.Fatalf("NotificationRetries: %d %s", inv.Code, inv.Body)
		}
		return status()["status"] == "Delivered"
	})
	n := status()
	if n["attempts"].(float64) != 2 || len(n["deliveryLog"].([]any)) != 2 {
		t.Fatalf("notification %v", n)
	}
	mu.Lock()
	defer mu.Unlock()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	for i, req := range got {
		if req.Header.Get("webhook-id") != id {
			t.Errorf("delivery %d: webhook-id %q, want %s", i+1, req.Header.Get("webhook-id"), id)
		}
		if err := wh.Verify(bodies[i], req.Header); err != nil {
			t.Errorf("delivery %d: %v", i+1, err)
		}
	}

	r = s.call("POST", "/api/notifications", tok, map[string]any{"channel": "email", "recipient": "ann@example.test",
		"subject": "Report ready", "body": "It is ready."}, nil)
	if r.Code != http.StatusAccepted {
		t.Fatalf("send e-mail: %d %s", r.Code, r.Body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	msgs, err := sink.Wait(ctx, 1)
	if err != nil || msgs[0].To[0] != "ann@example.test" {
		t.Fatalf("sink: %v %+v", err, msgs)
	}
	// The audit trail has the notifications' events (AuditOnNotificationsEvent).
	eventually(t, "NotificationSent in the audit trail", func() bool {
		var page struct{ Value []map[string]any }
		_ = json.Unmarshal(s.call("GET", "/api/audit-entries", tok, nil, nil).Body, &page)
		for _, e := range page.Value {
			if e["action"] == "NotificationSent" {
				return true
			}
		}
		return false
	})
}
