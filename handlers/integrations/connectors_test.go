package integrations

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"spine/shared/egress"
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
// (egress.CheckURL) and at the dial (egress.Allowed), where a name resolving to loopback is caught too.
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
		if _, err := NewEnv(false).HTTP.Get(u); err == nil || egress.Classify(err) != ClassSSRFRefused {
			t.Errorf("GET %s without loopback: %v (class %s)", u, err, egress.Classify(err))
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
