package smtpsink_test

import (
	"context"
	"errors"
	"net/mail"
	"os"
	"strings"
	"testing"
	"time"

	spinemail "spine/shared/mail"
	"spine/shared/mail/smtpsink"
)

// The SMTP adapter delivers a message with an attachment to the sink, which stores it as an .eml
// whose headers and parts read back as sent.
func TestSMTP_DeliversToSink_WithAttachment(t *testing.T) {
	dir := t.TempDir()
	sink, err := smtpsink.Start("127.0.0.1:0", dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sink.Close() })
	s := spinemail.NewSMTP(spinemail.SMTPConfig{Addr: sink.Addr()})
	body := "Hello,\n.a line starting with a dot\nbye"
	err = s.Send(context.Background(), spinemail.Message{From: "spine@example.test", To: []string{"Ann <ann@example.test>"},
		Subject: "Grüße", Body: body, MessageID: "n1",
		Attachments: []spinemail.Attachment{{Name: "a.txt", ContentType: "text/plain", Data: []byte("attached")}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msgs, err := sink.Wait(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	m := msgs[0]
	if m.From != "spine@example.test" || len(m.To) != 1 || m.To[0] != "ann@example.test" {
		t.Fatalf("envelope %q %q", m.From, m.To)
	}
	raw, err := os.ReadFile(m.File)
	if err != nil || string(raw) != string(m.Data) {
		t.Fatalf("eml file: %v", err)
	}
	pm, err := mail.ReadMessage(strings.NewReader(string(m.Data)))
	if err != nil {
		t.Fatal(err)
	}
	if subj, _ := new(mimeDecoder).dec(pm.Header.Get("Subject")); subj != "Grüße" {
		t.Errorf("subject %q", subj)
	}
	if pm.Header.Get("Message-ID") != "<n1@spine>" {
		t.Errorf("message id %q", pm.Header.Get("Message-ID"))
	}
	parts := spinemailParts(t, pm)
	if parts["body"] != body || parts["a.txt"] != "attached" {
		t.Errorf("parts %q", parts)
	}
}

// A server that is not there is a connect error, retryable.
func TestSMTP_ConnectError_IsRetryable(t *testing.T) {
	sink, err := smtpsink.Start("127.0.0.1:0", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := sink.Addr()
	_ = sink.Close()
	err = spinemail.NewSMTP(spinemail.SMTPConfig{Addr: addr}).Send(context.Background(),
		spinemail.Message{From: "a@example.test", To: []string{"b@example.test"}, Body: "x"})
	var me *spinemail.Error
	if !errors.As(err, &me) || me.Class != "connect" || me.Permanent() {
		t.Fatalf("err %v", err)
	}
}

// A recipient that is not an address is refused before connecting, permanently.
func TestSMTP_InvalidRecipient_IsPermanent(t *testing.T) {
	err := spinemail.NewSMTP(spinemail.SMTPConfig{Addr: "127.0.0.1:1"}).Send(context.Background(),
		spinemail.Message{From: "a@example.test", To: []string{"not an address"}, Body: "x"})
	var me *spinemail.Error
	if !errors.As(err, &me) || !me.Permanent() {
		t.Fatalf("err %v", err)
	}
}

// The sink refuses a non-loopback address.
func TestSinkStart_RefusesNonLoopback(t *testing.T) {
	if _, err := smtpsink.Start("0.0.0.0:0", "", nil); err == nil {
		t.Fatal("listening on every interface")
	}
}
