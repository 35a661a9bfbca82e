package tests

import (
	"net/http"
	"testing"

	"spine/shared/mail/smtpsink"
)

// The notification archive through the binary as the host drives it: with SPINE_RETENTION_SCALE
// shrinking 90 days to milliseconds, NotificationArchive (invoked as the host's timer would, POST
// /NotificationArchive) archives a delivered notification; GET answers it from the archive
// (archived: true, the same members), and the list shows hot notifications only.
func TestNotifications_ArchivedByTheTimer_GetAnswersFromTheArchive(t *testing.T) {
	sink, err := smtpsink.Start("127.0.0.1:0", t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sink.Close() })
	s := startServer(t, map[string]string{"SPINE_SMTP_ADDR": sink.Addr(), "SPINE_RETENTION_SCALE": "1e-9"})
	tenant := s.register(slug("arc"), "standard")
	if r := s.call("POST", "/api/tenants/"+tenant+"/provision", s.admin, nil, nil); r.Code != http.StatusOK {
		t.Fatalf("provision: %d %s", r.Code, r.Body)
	}
	tok := s.mint("e2e", tenant, false, "notification.read", "notification.send")
	r := s.call("POST", "/api/notifications", tok, map[string]any{"channel": "email", "recipient": "ann@example.test",
		"subject": "Old news", "body": "kept 90 days, then archived"}, nil)
	if r.Code != http.StatusAccepted {
		t.Fatalf("send: %d %s", r.Code, r.Body)
	}
	id := r.JSON(t)["id"].(string)
	get := func() map[string]any { return s.call("GET", "/api/notifications/"+id, tok, nil, nil).JSON(t) }
	eventually(t, "the delivery (NotificationDispatch through the outbox)", func() bool { return get()["status"] == "Delivered" })
	hot := get()

	eventually(t, "the archive (NotificationArchive, as the host's timer invokes it)", func() bool {
		if inv := s.invoke("NotificationArchive", hostTimerBody(t, "NotificationArchive")); inv.Code != http.StatusOK {
			t.Fatalf("NotificationArchive: %d %s", inv.Code, inv.Body)
		}
		return get()["archived"] == true
	})
	archived := get()
	for _, k := range []string{"id", "tenantId", "channel", "recipient", "subject", "body", "bodySha256", "status", "attempts", "createdAt"} {
		if archived[k] != hot[k] {
			t.Errorf("%s: archived %v, hot %v", k, archived[k], hot[k])
		}
	}
	if log, _ := archived["deliveryLog"].([]any); len(log) != 1 {
		t.Errorf("archived delivery log %v", archived["deliveryLog"])
	}
	list := s.call("GET", "/api/notifications", tok, nil, nil).JSON(t)
	if v, _ := list["value"].([]any); len(v) != 0 {
		t.Fatalf("the list shows archived notifications: %v", v)
	}
}
