package egress_test

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"spine/shared/egress"
)

func TestAllowed(t *testing.T) {
	for _, tc := range []struct {
		ip       string
		loopback bool
		want     bool
	}{
		{"8.8.8.8", false, true},
		{"2606:4700:4700::1111", false, true},
		{"169.254.169.254", false, false},
		{"10.1.2.3", false, false},
		{"172.16.0.1", false, false},
		{"192.168.1.1", false, false},
		{"100.64.0.1", false, false},
		{"0.0.0.0", true, false},
		{"127.0.0.1", false, false},
		{"127.0.0.1", true, true},
		{"::1", false, false},
		{"::1", true, true},
		{"::ffff:169.254.169.254", true, false},
		{"::ffff:10.0.0.1", false, false},
		{"fd00::1", false, false},
		{"fe80::1", false, false},
		{"224.0.0.1", false, false},
		{"168.63.129.16", true, false},
		{"::%lo", true, false},
		{"fe80::1%eth0", false, false},
		{"fd00::2%eth0", false, false},
		{"2606:4700:4700::1111%eth0", false, false},
		{"::ffff:0:a9fe:a9fe", false, false},
		{"::a9fe:a9fe", false, false},
		{"::7f00:1", true, false},
		{"fec0::1", false, false},
		{"::", true, false},
		{"168.63.129.17", false, true},
	} {
		if got := egress.Allowed(netip.MustParseAddr(tc.ip), tc.loopback); got != tc.want {
			t.Errorf("Allowed(%s, loopback %v) = %v, want %v", tc.ip, tc.loopback, got, tc.want)
		}
	}
}

func TestCheckURL(t *testing.T) {
	for _, tc := range []struct {
		url      string
		loopback bool
		ok       bool
	}{
		{"https://hooks.example.com/x?y=1", false, true},
		{"http://hooks.example.com/x", false, false},
		{"http://hooks.example.com/x", true, false},
		{"http://127.0.0.1:8080/hook", true, true},
		{"http://localhost:8080/hook", true, true},
		{"http://127.0.0.1:8080/hook", false, false},
		{"https://localhost/hook", false, false},
		{"https://169.254.169.254/metadata", true, false},
		{"https://10.0.0.5/", false, false},
		{"https://[::ffff:a00:5]/", false, false},
		{"https://user:pw@hooks.example.com/", false, false},
		{"https://hooks.example.com/#frag", false, false},
		{"ftp://hooks.example.com/", false, false},
		{"/relative", false, false},
		{"https://", false, false},
		{"javascript:alert(1)", false, false},
		{"https://[::%25lo]:8443/", true, false},
		{"https://[fe80::1%25eth0]/", false, false},
		{"https://[fd00::2%25eth0]/", false, false},
		{"https://169.254.169.254./", false, false},
		{"https://10.0.0.1./", false, false},
		{"https://192.168.1.1.:443/", false, false},
		{"https://hooks.example.com./", false, false},
		{"http://localhost.:8080/", true, false},
		{"https://10.1/", false, false},
		{"https://0xa9.0xfe.0xa9.0xfe/", false, false},
		{"https://2852039166/", false, false},
		{"https://0251.0376.0251.0376/", false, false},
		{"https://8.8.8.8/", false, true},
		{"https://api.v2.example.com/", false, true},
		{"https://x.0xample.com/", false, true},
	} {
		_, err := egress.CheckURL(tc.url, tc.loopback)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, egress.ErrRefused)) {
			t.Errorf("CheckURL(%q, %v) = %v, want ok %v", tc.url, tc.loopback, err, tc.ok)
		}
	}
}

// TestClient_RefusesLoopbackUnlessAllowed dials a real loopback server: refused by default (the
// check runs on the dialled address), reached when loopback is allowed; redirects not followed.
func TestClient_RefusesLoopbackUnlessAllowed(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, "http://169.254.169.254/latest/meta-data", http.StatusFound)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	_, err := egress.NewClient(egress.Config{}).Get(srv.URL)
	if !errors.Is(err, egress.ErrRefused) || egress.Classify(err) != egress.ClassRefused {
		t.Fatalf("loopback without AllowLoopback: %v (class %q)", err, egress.Classify(err))
	}
	c := egress.NewClient(egress.Config{AllowLoopback: true})
	resp, err := c.Get(srv.URL)
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("loopback allowed: %v %v", resp, err)
	}
	resp.Body.Close()
	resp, err = c.Get(srv.URL + "/redirect")
	if err != nil || resp.StatusCode != http.StatusFound {
		t.Fatalf("redirect: %v %v", resp, err)
	}
	resp.Body.Close()
	// A closed port is a connect failure.
	addr := srv.Listener.Addr().String()
	srv.Close()
	_, err = c.Get("http://" + addr)
	if egress.Classify(err) != egress.ClassConnect {
		t.Fatalf("closed port: %v (class %q)", err, egress.Classify(err))
	}
}

// TestClient_ZonedUnspecifiedAddressIsNotDialled: https://[::%25lo]:port/ would reach a server
// listening on the host's every address; the dial check refuses it (class ssrf-refused).
func TestClient_ZonedUnspecifiedAddressIsNotDialled(t *testing.T) {
	ln, err := net.Listen("tcp", "[::]:0")
	if err != nil {
		t.Skipf("no IPv6 listener on this machine: %v", err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	srv.Listener = ln
	srv.StartTLS()
	defer srv.Close()
	u := fmt.Sprintf("https://[::%%25lo]:%d/", ln.Addr().(*net.TCPAddr).Port)
	if _, err := egress.CheckURL(u, false); !errors.Is(err, egress.ErrRefused) {
		t.Errorf("CheckURL(%s) = %v, want refused", u, err)
	}
	_, err = egress.NewClient(egress.Config{}).Get(u)
	if cls := egress.Classify(err); cls != egress.ClassRefused {
		t.Errorf("GET %s: class %q (%v), want ssrf-refused", u, cls, err)
	}
}
