package smtpsink_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"testing"
	"time"

	spinemail "spine/shared/mail"
	"spine/shared/mail/smtpsink"
)

// selfSigned returns a server certificate for 127.0.0.1 and a pool that trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "smtp sink"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

// A server that offers STARTTLS gets the message over TLS, authenticated with PLAIN.
func TestSMTP_StartTLSOffered_SendsOverTLSWithPlainAuth(t *testing.T) {
	cert, pool := selfSigned(t)
	sink, err := smtpsink.StartWith(smtpsink.Options{Addr: "127.0.0.1:0", TLS: &tls.Config{Certificates: []tls.Certificate{cert}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sink.Close() })
	s := spinemail.NewSMTP(spinemail.SMTPConfig{Addr: sink.Addr(), Username: "relay-user", Password: "relay-pass",
		TLSConfig: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}, RequireTLS: true})
	if err := s.Send(context.Background(), spinemail.Message{From: "a@example.test", To: []string{"b@example.test"}, Subject: "s", Body: "b"}); err != nil {
		t.Fatal(err)
	}
	m := sink.Messages()
	if len(m) != 1 || !m[0].TLS || m[0].User != "relay-user" {
		t.Fatalf("messages %+v", m)
	}
}

// A certificate the client does not trust fails the send as tls, before any credential is sent.
func TestSMTP_UntrustedCertificate_IsTLSError(t *testing.T) {
	cert, _ := selfSigned(t)
	sink, err := smtpsink.StartWith(smtpsink.Options{Addr: "127.0.0.1:0", TLS: &tls.Config{Certificates: []tls.Certificate{cert}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sink.Close() })
	err = spinemail.NewSMTP(spinemail.SMTPConfig{Addr: sink.Addr(), Username: "u", Password: "p"}).Send(context.Background(),
		spinemail.Message{From: "a@example.test", To: []string{"b@example.test"}, Body: "b"})
	var me *spinemail.Error
	if !errors.As(err, &me) || me.Class != "tls" || len(sink.Messages()) != 0 {
		t.Fatalf("err %v, %d messages", err, len(sink.Messages()))
	}
}

// RequireTLS refuses a server that does not offer STARTTLS.
func TestSMTP_RequireTLS_RefusesPlainServer(t *testing.T) {
	sink, err := smtpsink.Start("127.0.0.1:0", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sink.Close() })
	err = spinemail.NewSMTP(spinemail.SMTPConfig{Addr: sink.Addr(), RequireTLS: true}).Send(context.Background(),
		spinemail.Message{From: "a@example.test", To: []string{"b@example.test"}, Body: "b"})
	var me *spinemail.Error
	if !errors.As(err, &me) || me.Class != "tls" || len(sink.Messages()) != 0 {
		t.Fatalf("err %v", err)
	}
}
