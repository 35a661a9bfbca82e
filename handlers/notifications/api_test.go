package notifications

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/mail"
	"strings"
	"testing"

	"spine/shared/secrets"
)

// A large body (> 8 KiB) goes to Blob under <tenantId>/notifications/<yyyy>/<mm>/<dd>/<id>.body
// and an attachment to notification-attachments; both read back byte for byte, with the SHA-256
// the row recorded (and the attachment's ETag and Digest).
func TestSend_LargeBodyAndAttachment_RoundTripThroughBlob(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	body := strings.Repeat("0123456789abcdef", 1300) // 20800 bytes
	att := make([]byte, 300<<10)
	_, _ = rand.Read(att)
	n := h.send(f, map[string]any{"channel": "inApp", "recipient": "0193a7b0-0000-7000-8000-00000000000a", "subject": "big",
		"body": body, "attachments": []map[string]any{{"name": "report-1.pdf", "contentType": "application/pdf",
			"contentBase64": base64.StdEncoding.EncodeToString(att)}}})
	bodySum, attSum := sha256.Sum256([]byte(body)), sha256.Sum256(att)
	if n.BodyStorage != "blob" || n.BodySize != int64(len(body)) || n.BodySHA256 != hex.EncodeToString(bodySum[:]) {
		t.Fatalf("notification %+v", n)
	}
	if n.Attachments == nil || len(*n.Attachments) != 1 || (*n.Attachments)[0].SHA256 != hex.EncodeToString(attSum[:]) || (*n.Attachments)[0].Size != int64(len(att)) {
		t.Fatalf("attachments %+v", n.Attachments)
	}
	d, err := h.svc.store.Notification(context.Background(), tenantScope(f), f.id.String(), n.ID)
	if err != nil {
		t.Fatal(err)
	}
	wantPrefix := f.id.String() + "/notifications/"
	if !strings.HasPrefix(d.BodyBlob, wantPrefix) || !strings.HasSuffix(d.BodyBlob, "/"+n.ID+".body") ||
		!strings.HasPrefix(d.Attachments[0].BlobName, wantPrefix) || d.Body != "" {
		t.Fatalf("blob names %q %q", d.BodyBlob, d.Attachments[0].BlobName)
	}
	stored, err := h.blobs.Get(context.Background(), BodiesContainer, d.BodyBlob)
	if err != nil || string(stored) != body {
		t.Fatalf("body blob: %v", err)
	}
	got := h.get(f, n.ID)
	if got.Body == nil || *got.Body != body {
		t.Fatal("GET does not return the body from Blob")
	}
	r := h.must(http.StatusOK, "GET", "/api/notifications/"+n.ID+"/attachments/report-1.pdf", f.reader, nil)
	if !bytes.Equal(r.Body, att) || r.Header.Get("Content-Type") != "application/pdf" {
		t.Fatalf("attachment: %d bytes, %q", len(r.Body), r.Header.Get("Content-Type"))
	}
	if r.Header.Get("ETag") != `"sha256-`+hex.EncodeToString(attSum[:])+`"` ||
		r.Header.Get("Digest") != "sha-256="+base64.StdEncoding.EncodeToString(attSum[:]) {
		t.Errorf("ETag %q Digest %q", r.Header.Get("ETag"), r.Header.Get("Digest"))
	}
	h.must(http.StatusNotModified, "GET", "/api/notifications/"+n.ID+"/attachments/report-1.pdf", f.reader, nil,
		"If-None-Match", r.Header.Get("ETag"))
	if r := h.do("GET", "/api/notifications/"+n.ID+"/attachments/other.pdf", f.reader, nil); r.Code != http.StatusNotFound {
		t.Errorf("unknown attachment: %d", r.Code)
	}
}

// A body up to the inline maximum stays in the row.
func TestSend_202_SmallBodyInline(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	n := h.send(f, map[string]any{"channel": "inApp", "recipient": "0193a7b0-0000-7000-8000-00000000000a", "subject": "s",
		"body": strings.Repeat("x", 8<<10)})
	if n.BodyStorage != "inline" || n.Status != "Pending" {
		t.Fatalf("%+v", n)
	}
}

// An e-mail notification goes through the SMTP adapter to the sink, with its attachment.
func TestEmail_DeliveredThroughSMTPSink_WithAttachment(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	n := h.sendAndDispatch(f, map[string]any{"channel": "email", "recipient": "Ann <ann@example.test>", "subject": "Your report",
		"body": "See attached.", "attachments": []map[string]any{{"name": "r.csv", "contentType": "text/csv",
			"contentBase64": base64.StdEncoding.EncodeToString([]byte("a,b\n1,2\n"))}}})
	if n.Status != "Delivered" || n.Recipient != "ann@example.test" || (*n.DeliveryLog)[0].StatusCode != 250 {
		t.Fatalf("notification %+v", n)
	}
	msgs := h.sink.Messages()
	if len(msgs) != 1 || msgs[0].To[0] != "ann@example.test" {
		t.Fatalf("sink %+v", msgs)
	}
	m, err := mail.ReadMessage(bytes.NewReader(msgs[0].Data))
	if err != nil {
		t.Fatal(err)
	}
	if m.Header.Get("Subject") != "Your report" || m.Header.Get("Message-ID") != "<"+n.ID+"@spine>" {
		t.Errorf("headers %v", m.Header)
	}
	_, params, _ := mime.ParseMediaType(m.Header.Get("Content-Type"))
	mr := multipart.NewReader(m.Body, params["boundary"])
	parts := map[string]string{}
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(p)
		dec, _ := base64.StdEncoding.DecodeString(strings.ReplaceAll(string(raw), "\r\n", ""))
		parts[p.FileName()] = string(dec)
	}
	if parts[""] != "See attached." || parts["r.csv"] != "a,b\n1,2\n" {
		t.Errorf("parts %q", parts)
	}
}

// An e-mail to a server that refuses the connection is retried (connect), not failed.
func TestEmail_ServerDown_IsRetried(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	_ = h.sink.Close()
	n := h.sendAndDispatch(f, map[string]any{"channel": "email", "recipient": "bob@example.test", "subject": "s", "body": "b"})
	if n.Status != "Sending" || n.LastErrorClass != "connect" || n.NextAttemptAt == nil {
		t.Fatalf("notification %+v", n)
	}
}

// An in-app notification is Delivered on its first attempt (stored for the user to read).
func TestInApp_DeliveredOnDispatch_ListedByStatus(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	a := h.sendAndDispatch(f, map[string]any{"channel": "inApp", "recipient": "0193a7b0-0000-7000-8000-00000000000a", "subject": "a", "body": "1"})
	b := h.send(f, map[string]any{"channel": "inApp", "recipient": "0193a7b0-0000-7000-8000-00000000000a", "subject": "b", "body": "2"})
	if a.Status != "Delivered" {
		t.Fatalf("%+v", a)
	}
	type page struct {
		Value    []notificationJSON
		NextLink string
	}
	all := decode[page](t, h.must(http.StatusOK, "GET", "/api/notifications", f.reader, nil).Body)
	if len(all.Value) != 2 || all.Value[0].ID != b.ID || all.Value[1].ID != a.ID || all.Value[0].Body != nil {
		t.Fatalf("list %+v", all.Value)
	}
	delivered := decode[page](t, h.must(http.StatusOK, "GET", "/api/notifications?status=Delivered", f.reader, nil).Body)
	if len(delivered.Value) != 1 || delivered.Value[0].ID != a.ID {
		t.Fatalf("Delivered %+v", delivered.Value)
	}
	first := decode[page](t, h.must(http.StatusOK, "GET", "/api/notifications?limit=1", f.reader, nil).Body)
	if len(first.Value) != 1 || first.NextLink == "" {
		t.Fatalf("page 1 %+v", first)
	}
	second := decode[page](t, h.must(http.StatusOK, "GET", first.NextLink, f.reader, nil).Body)
	if len(second.Value) != 1 || second.Value[0].ID != a.ID {
		t.Fatalf("page 2 %+v", second)
	}
	if r := h.do("GET", "/api/notifications?status=Lost", f.reader, nil); r.Code != http.StatusBadRequest {
		t.Errorf("bad status: %d", r.Code)
	}
	// A user's in-app list: channel and recipient filter.
	h.send(f, map[string]any{"channel": "inApp", "recipient": "0193a7b0-0000-7000-8000-00000000000b", "subject": "c", "body": "3"})
	h.send(f, map[string]any{"channel": "email", "recipient": "x@example.test", "subject": "d", "body": "4"})
	mine := decode[page](t, h.must(http.StatusOK, "GET", "/api/notifications?channel=inApp&recipient=0193A7B0-0000-7000-8000-00000000000A", f.reader, nil).Body)
	if len(mine.Value) != 2 || mine.Value[0].ID != b.ID || mine.Value[1].ID != a.ID {
		t.Fatalf("the user's in-app list %+v", mine.Value)
	}
	if r := h.do("GET", "/api/notifications?channel=sms", f.reader, nil); r.Code != http.StatusBadRequest {
		t.Errorf("bad channel: %d", r.Code)
	}
}

// Validation: the problem codes of refused requests.
func TestSend_Refusals(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	big := base64.StdEncoding.EncodeToString(make([]byte, MaxAttachmentBytes/2+1))
	cases := []struct {
		name string
		body map[string]any
		code int
		want string
	}{
		{"bad channel", map[string]any{"channel": "sms", "recipient": "x", "subject": "s", "body": "b"}, 400, "invalid-input"},
		{"email recipient", map[string]any{"channel": "email", "recipient": "not-an-address", "subject": "s", "body": "b"}, 400, "invalid-input"},
		{"inApp recipient", map[string]any{"channel": "inApp", "recipient": "bob", "subject": "s", "body": "b"}, 400, "invalid-input"},
		{"subject on two lines", map[string]any{"channel": "inApp", "recipient": "01a22d1b-07b0-7df9-a2e0-db051cfd6554", "subject": "a\nb", "body": "b"}, 400, "invalid-input"},
		{"subject with U+2028", map[string]any{"channel": "inApp", "recipient": "01a22d1b-07b0-7df9-a2e0-db051cfd6554", "subject": "a\u2028b", "body": "b"}, 400, "invalid-input"},
		{"subject with a tab", map[string]any{"channel": "inApp", "recipient": "01a22d1b-07b0-7df9-a2e0-db051cfd6554", "subject": "a\tb", "body": "b"}, 400, "invalid-input"},
		{"unknown endpoint", map[string]any{"channel": "webhook", "recipient": "0193a7b0-0000-7000-8000-00000000000b", "body": "b"}, 404, "not-found"},
		{"dot name", map[string]any{"channel": "inApp", "recipient": "0193a7b0-0000-7000-8000-00000000000a", "body": "b",
			"attachments": []map[string]any{{"name": ".hidden", "contentBase64": "AA=="}}}, 400, "invalid-attachment-name"},
		{"slash name", map[string]any{"channel": "inApp", "recipient": "0193a7b0-0000-7000-8000-00000000000a", "body": "b",
			"attachments": []map[string]any{{"name": "../x", "contentBase64": "AA=="}}}, 400, "invalid-attachment-name"},
		{"duplicate name", map[string]any{"channel": "inApp", "recipient": "0193a7b0-0000-7000-8000-00000000000a", "body": "b",
			"attachments": []map[string]any{{"name": "a", "contentBase64": "AA=="}, {"name": "a", "contentBase64": "AA=="}}}, 400, "invalid-attachment-name"},
		{"too large", map[string]any{"channel": "inApp", "recipient": "0193a7b0-0000-7000-8000-00000000000a", "body": "b",
			"attachments": []map[string]any{{"name": "a", "contentBase64": big}, {"name": "b", "contentBase64": big}}}, 413, "attachment-too-large"},
		{"not base64", map[string]any{"channel": "inApp", "recipient": "0193a7b0-0000-7000-8000-00000000000a", "body": "b",
			"attachments": []map[string]any{{"name": "a", "contentBase64": "!!"}}}, 400, "invalid-input"},
	}
	for _, c := range cases {
		r := h.do("POST", "/api/notifications", f.admin, c.body)
		if r.Code != c.code || r.ProblemCode(t) != c.want {
			t.Errorf("%s: %d %s, want %d %s", c.name, r.Code, r.Body, c.code, c.want)
		}
	}
	// Nothing was accepted.
	if types := h.outboxTypes(f.id); len(types) != 0 {
		t.Errorf("events %v", types)
	}
	if r := h.do("POST", "/api/notifications", f.reader, map[string]any{"channel": "inApp"}); r.Code != http.StatusForbidden {
		t.Errorf("reader sends: %d", r.Code)
	}
}

// A repeated POST with the same Idempotency-Key answers the first notification, once.
func TestSend_IdempotencyKey_ReplaysTheFirst(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	body := map[string]any{"channel": "inApp", "recipient": "0193a7b0-0000-7000-8000-00000000000a", "subject": "s", "body": "b"}
	a := decode[notificationJSON](t, h.must(http.StatusAccepted, "POST", "/api/notifications", f.admin, body, "Idempotency-Key", "k1").Body)
	b := decode[notificationJSON](t, h.must(http.StatusAccepted, "POST", "/api/notifications", f.admin, body, "Idempotency-Key", "k1").Body)
	if a.ID != b.ID || len(h.outboxTypes(f.id)) != 1 {
		t.Fatalf("%s vs %s, events %v", a.ID, b.ID, h.outboxTypes(f.id))
	}
}

// Webhook endpoints: create shows the secret once; get and list never; patch with If-Match;
// delete removes the row and soft-deletes the Key Vault secret.
func TestWebhookEndpoints_Lifecycle(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	ep := h.createEndpoint(f, "https://hooks.example.com/a")
	if ep.Secret == "" || ep.SecretRef.Name != "webhook-"+f.id.String()+"-"+ep.ID || ep.SecretRef.Version == "" || !ep.Enabled {
		t.Fatalf("created %+v", ep)
	}
	s, err := h.vault.GetVersion(context.Background(), ep.SecretRef.Name, ep.SecretRef.Version)
	if err != nil || s.Value() != ep.Secret {
		t.Fatalf("vault: %v", err)
	}
	r := h.must(http.StatusOK, "GET", "/api/webhook-endpoints/"+ep.ID, f.reader, nil)
	if strings.Contains(string(r.Body), ep.Secret) || strings.Contains(string(r.Body), `"secret":`) {
		t.Fatalf("GET shows the secret: %s", r.Body)
	}
	list := decode[struct{ Value []endpointJSON }](t, h.must(http.StatusOK, "GET", "/api/webhook-endpoints", f.reader, nil).Body)
	if len(list.Value) != 1 || list.Value[0].Secret != "" {
		t.Fatalf("list %+v", list)
	}
	h.must(http.StatusPreconditionFailed, "PATCH", "/api/webhook-endpoints/"+ep.ID, f.admin, map[string]any{"description": "x"}, "If-Match", `"7"`)
	p := decode[endpointJSON](t, h.must(http.StatusOK, "PATCH", "/api/webhook-endpoints/"+ep.ID, f.admin,
		map[string]any{"description": "billing hooks", "eventTypes": []string{"invoice.issued"}}, "If-Match", `"1"`).Body)
	if p.Description != "billing hooks" || len(p.EventTypes) != 1 || p.Version != 2 {
		t.Fatalf("patched %+v", p)
	}
	// The filter refuses other event types.
	r = h.do("POST", "/api/notifications", f.admin, map[string]any{"channel": "webhook", "recipient": ep.ID, "eventType": "user.invited", "body": "b"})
	if r.Code != http.StatusConflict || r.ProblemCode(t) != "event-type-not-accepted" {
		t.Errorf("filtered: %d %s", r.Code, r.Body)
	}
	h.must(http.StatusNoContent, "DELETE", "/api/webhook-endpoints/"+ep.ID, f.admin, nil)
	h.must(http.StatusNotFound, "GET", "/api/webhook-endpoints/"+ep.ID, f.reader, nil)
	if _, err := h.vault.Get(context.Background(), ep.SecretRef.Name); err == nil || !isNotFound(err) {
		t.Errorf("the secret is still readable after delete: %v", err)
	}
	if err := h.vault.Recover(context.Background(), ep.SecretRef.Name); err != nil {
		t.Errorf("the deleted secret is not recoverable: %v", err)
	}
}

// A suspended tenant sends nothing (the write fence).
func TestSend_403_TenantSuspended(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	h.dir.Set(f.id, "Suspended")
	r := h.do("POST", "/api/notifications", f.admin, map[string]any{"channel": "inApp", "recipient": "0193a7b0-0000-7000-8000-00000000000a", "body": "b"})
	if r.Code != http.StatusForbidden {
		t.Fatalf("%d %s", r.Code, r.Body)
	}
}

func isNotFound(err error) bool { return err != nil && errorsIs(err, secrets.ErrNotFound) }
