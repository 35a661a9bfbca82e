package integrations

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"spine/shared/secrets"
)

func settingsJSON(t *testing.T, m map[string]any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Without loopback allowed, the connector never reaches 127.0.0.1: refused before the call
// (checkTarget) and at the dial (allowedIP), where a name resolving to loopback is caught too.
func TestHTTPCheck_LoopbackRefusedUnlessAllowed_SSRFClass(t *testing.T) {
	hit := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { hit = true }))
	defer srv.Close()
	c := httpConnector{}
	s := settingsJSON(t, map[string]any{"baseUrl": srv.URL, "authScheme": "bearer"})
	if o := c.Check(context.Background(), s, secrets.Secret{}, NewEnv(false)); o.ErrorClass != ClassSSRFRefused {
		t.Errorf("check of %s without loopback: %+v", srv.URL, o)
	}
	// The dial-time guard alone (the URL check bypassed): a request to a loopback address fails.
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	for _, u := range []string{srv.URL, "http://localhost:" + port} {
		if _, err := NewEnv(false).HTTP.Get(u); err == nil || classify(err) != ClassSSRFRefused {
			t.Errorf("GET %s without loopback: %v (class %s)", u, err, classify(err))
		}
	}
	if hit {
		t.Error("the loopback server was reached")
	}
	// The server answers 200 to anything: with loopback allowed the call goes through.
	if o := c.Check(context.Background(), s, secrets.Secret{}, NewEnv(true)); !o.OK() {
		t.Errorf("with loopback allowed: %+v", o)
	}
	if !hit {
		t.Error("with loopback allowed the server was not reached")
	}
}

func TestAllowedIP_RefusesPrivateLinkLocalMetadataAndPlatformAddresses(t *testing.T) {
	refused := []string{"10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254", "168.63.129.16", "100.64.0.1",
		"0.0.0.0", "127.0.0.1", "::1", "fc00::1", "fd12:3456::1", "fe80::1", "::", "224.0.0.1", "::ffff:10.0.0.1", "::ffff:127.0.0.1"}
	for _, a := range refused {
		if allowedIP(net.ParseIP(a), false) {
			t.Errorf("%s allowed", a)
		}
	}
	for _, a := range []string{"93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "20.50.2.1"} {
		if !allowedIP(net.ParseIP(a), false) {
			t.Errorf("%s refused", a)
		}
	}
	if !allowedIP(net.ParseIP("127.0.0.1"), true) || allowedIP(net.ParseIP("10.0.0.1"), true) {
		t.Error("allowLoopback must allow loopback only")
	}
}

// A TLS server whose certificate the connector does not trust: class tls, never "connect".
func TestHTTPCheck_UntrustedCertificate_TLSClass(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	o := httpConnector{}.Check(context.Background(), settingsJSON(t, map[string]any{"baseUrl": srv.URL, "authScheme": "bearer"}),
		secrets.Secret{}, NewEnv(true))
	if o.ErrorClass != ClassTLS {
		t.Errorf("%+v", o)
	}
}

// Nothing listening: class connect. A redirect is not followed: class http-3xx.
func TestHTTPCheck_ConnectionRefusedAndRedirect(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	env := NewEnv(true)
	if o := (httpConnector{}).Check(context.Background(), settingsJSON(t, map[string]any{"baseUrl": "http://" + addr, "authScheme": "bearer"}),
		secrets.Secret{}, env); o.ErrorClass != ClassConnect {
		t.Errorf("nothing listening: %+v", o)
	}
	followed := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/elsewhere" {
			followed = true
			return
		}
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	}))
	defer srv.Close()
	if o := (httpConnector{}).Check(context.Background(), settingsJSON(t, map[string]any{"baseUrl": srv.URL, "authScheme": "bearer"}),
		secrets.Secret{}, env); o.ErrorClass != ClassHTTP3xx || followed {
		t.Errorf("redirect: %+v, followed %v", o, followed)
	}
}
