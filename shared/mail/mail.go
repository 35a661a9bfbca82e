// Package mail sends e-mail through an interface (Sender) with one adapter: SMTP over the standard
// library (net/smtp), STARTTLS when the server offers it, optional PLAIN authentication. No vendor
// SDK: any SMTP relay (Azure Communication Services' SMTP endpoint, SendGrid's, a company relay, the
// local stack's sink in shared/mail/smtpsink) works behind the same Sender.
//
// Errors are classified for the caller's delivery log and retry decision (Class, Permanent); their
// text never carries the message, the credentials or the server's free-text answer.
package mail

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"strings"
	"time"
)

// Message is one e-mail: one sender, one or more recipients, a subject, a plain-text body and
// attachments.
type Message struct {
	From        string
	To          []string
	Subject     string
	Body        string
	Attachments []Attachment
	// MessageID, when set, is the Message-ID's local part (e.g. the notification id), stable across
	// retries so receivers can tell a resend.
	MessageID string
}

// Attachment is a file attached to a Message.
type Attachment struct {
	Name        string
	ContentType string
	Data        []byte
}

// Sender sends a Message. Implementations are safe for concurrent use.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// Error is a failed Send: its Class (timeout, connect, tls, smtp-4xx, smtp-5xx, invalid) and, for
// an SMTP reply, its code. Permanent errors (smtp-5xx, invalid) will fail again on a retry.
type Error struct {
	Class string
	Code  int
	op    string
}

func (e *Error) Error() string {
	if e.Code != 0 {
		return fmt.Sprintf("mail: %s: %s (%d)", e.op, e.Class, e.Code)
	}
	return fmt.Sprintf("mail: %s: %s", e.op, e.Class)
}

// Permanent reports whether retrying cannot help.
func (e *Error) Permanent() bool { return e.Class == "smtp-5xx" || e.Class == "invalid" }

// ErrInvalidMessage is the Error class "invalid": a sender or recipient that is not an address.
var ErrInvalidMessage = errors.New("mail: invalid message")

// SMTPConfig configures the SMTP adapter.
type SMTPConfig struct {
	// Addr is host:port of the SMTP server (SPINE_SMTP_ADDR).
	Addr string
	// Username and Password, when Username is set, authenticate with PLAIN (only over TLS, or to
	// a loopback server — net/smtp's rule).
	Username, Password string
	// Timeout bounds one Send (dial to QUIT); default 30 s.
	Timeout time.Duration
	// TLSConfig is used for STARTTLS; nil verifies the server's name against Addr's host.
	TLSConfig *tls.Config
	// RequireTLS refuses to send when the server does not offer STARTTLS.
	RequireTLS bool
}

// SMTP is the SMTP Sender.
type SMTP struct{ cfg SMTPConfig }

// NewSMTP returns the SMTP Sender over cfg.
func NewSMTP(cfg SMTPConfig) *SMTP {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	return &SMTP{cfg: cfg}
}

var _ Sender = (*SMTP)(nil)

// Send implements Sender: one connection per message.
func (s *SMTP) Send(ctx context.Context, m Message) error {
	from, err := mail.ParseAddress(m.From)
	if err != nil {
		return &Error{Class: "invalid", op: "from"}
	}
	if len(m.To) == 0 {
		return &Error{Class: "invalid", op: "to"}
	}
	var to []string
	for _, t := range m.To {
		a, err := mail.ParseAddress(t)
		if err != nil {
			return &Error{Class: "invalid", op: "to"}
		}
		to = append(to, a.Address)
	}
	data, err := Compose(m)
	if err != nil {
		return &Error{Class: "invalid", op: "compose"}
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return netError("dial", err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	host, _, _ := net.SplitHostPort(s.cfg.Addr)
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		return replyError("greeting", err)
	}
	defer c.Close()
	if err := c.Hello("localhost"); err != nil {
		return replyError("hello", err)
	}
	if ok, _ := c.Extension("STARTTLS"); ok {
		tc := s.cfg.TLSConfig
		if tc == nil {
			tc = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
		}
		if err := c.StartTLS(tc); err != nil {
			return &Error{Class: "tls", op: "starttls"}
		}
	} else if s.cfg.RequireTLS {
		return &Error{Class: "tls", op: "starttls"}
	}
	if s.cfg.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", s.cfg.Username, s.cfg.Password, host)); err != nil {
			return replyError("auth", err)
		}
	}
	if err := c.Mail(from.Address); err != nil {
		return replyError("mail", err)
	}
	for _, t := range to {
		if err := c.Rcpt(t); err != nil {
			return replyError("rcpt", err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return replyError("data", err)
	}
	if _, err := w.Write(data); err != nil {
		return netError("data", err)
	}
	if err := w.Close(); err != nil {
		return replyError("data", err)
	}
	if err := c.Quit(); err != nil {
		// The message was accepted at the end of DATA; a failed QUIT does not undo that.
		return nil
	}
	return nil
}

func netError(op string, err error) error {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return &Error{Class: "timeout", op: op}
	}
	return &Error{Class: "connect", op: op}
}

func replyError(op string, err error) error {
	var te *textproto.Error
	if errors.As(err, &te) {
		class := "smtp-4xx"
		if te.Code >= 500 {
			class = "smtp-5xx"
		}
		return &Error{Class: class, Code: te.Code, op: op}
	}
	return netError(op, err)
}

// Compose renders m as an RFC 5322 message (CRLF line ends): headers, then the text body alone
// (text/plain, quoted-printable) or a multipart/mixed of the body and the attachments (base64).
func Compose(m Message) ([]byte, error) {
	var b bytes.Buffer
	h := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	h("From", m.From)
	h("To", strings.Join(m.To, ", "))
	h("Subject", mime.QEncoding.Encode("utf-8", strings.NewReplacer("\r", " ", "\n", " ").Replace(m.Subject)))
	h("Date", time.Now().UTC().Format(time.RFC1123Z))
	id := m.MessageID
	if id == "" {
		var r [16]byte
		_, _ = rand.Read(r[:])
		id = hex.EncodeToString(r[:])
	}
	h("Message-ID", "<"+id+"@spine>")
	h("MIME-Version", "1.0")
	if len(m.Attachments) == 0 {
		h("Content-Type", `text/plain; charset="utf-8"`)
		h("Content-Transfer-Encoding", "base64")
		b.WriteString("\r\n")
		writeBase64(&b, []byte(m.Body))
		return b.Bytes(), nil
	}
	mw := multipart.NewWriter(&b)
	h("Content-Type", `multipart/mixed; boundary="`+mw.Boundary()+`"`)
	b.WriteString("\r\n")
	pw, err := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {`text/plain; charset="utf-8"`},
		"Content-Transfer-Encoding": {"base64"}})
	if err != nil {
		return nil, err
	}
	var body bytes.Buffer
	writeBase64(&body, []byte(m.Body))
	if _, err := pw.Write(body.Bytes()); err != nil {
		return nil, err
	}
	for _, a := range m.Attachments {
		ct := a.ContentType
		if ct == "" {
			ct = "application/octet-stream"
		}
		pw, err := mw.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {ct},
			"Content-Transfer-Encoding": {"base64"},
			"Content-Disposition":       {mime.FormatMediaType("attachment", map[string]string{"filename": a.Name})},
		})
		if err != nil {
			return nil, err
		}
		var enc bytes.Buffer
		writeBase64(&enc, a.Data)
		if _, err := pw.Write(enc.Bytes()); err != nil {
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// writeBase64 writes data base64-encoded in lines of 76 characters (RFC 2045).
func writeBase64(b *bytes.Buffer, data []byte) {
	s := base64.StdEncoding.EncodeToString(data)
	for len(s) > 76 {
		b.WriteString(s[:76])
		b.WriteString("\r\n")
		s = s[76:]
	}
	b.WriteString(s)
	b.WriteString("\r\n")
}
