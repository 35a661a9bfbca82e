package kvfake

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// TB is the part of testing.TB NewTLSServer uses (so this package does not import testing).
type TB interface {
	Helper()
	Cleanup(func())
	TempDir() string
	Fatalf(format string, args ...any)
}

// TestServer is a fake vault on an httptest TLS server.
type TestServer struct {
	*Server
	// URL is the vault URL (https://127.0.0.1:<port>).
	URL string
	// CAFile is a PEM file of the server's certificate: secrets.Config.CAFile.
	CAFile string
	http   *httptest.Server
}

// Client returns an HTTP client that trusts the server's certificate (a transport for azsecrets).
func (ts *TestServer) Client() *http.Client { return ts.http.Client() }

// NewTLSServer starts a fake vault (opts[0], if given) on a loopback TLS port and stops it when
// the test ends.
func NewTLSServer(t TB, opts ...Options) *TestServer {
	t.Helper()
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	s, err := New(o)
	if err != nil {
		t.Fatalf("kvfake: %v", err)
	}
	hs := httptest.NewTLSServer(s)
	t.Cleanup(hs.Close)
	ca := filepath.Join(t.TempDir(), "kvfake-ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: hs.Certificate().Raw}), 0o644); err != nil {
		t.Fatalf("kvfake: writing the CA file: %v", err)
	}
	return &TestServer{Server: s, URL: hs.URL, CAFile: ca, http: hs}
}

// File names Run and EnsureCert use inside their folder.
const (
	CertFile = "cert.pem"     // the self-signed certificate (also the CA file clients trust)
	KeyFile  = "key.pem"      // its private key, mode 0600
	DataFile = "secrets.json" // the vault's content, mode 0600
)

// EnsureCert makes dir hold a self-signed ECDSA P-256 certificate for 127.0.0.1, ::1 and
// localhost (CertFile, mode 0644, usable as its own CA) and its key (KeyFile, mode 0600), and
// returns their paths. A certificate still valid for 30 days with those names is kept, so a
// client's CA file stays right across restarts.
func EnsureCert(dir string) (certFile, keyFile string, err error) {
	certFile, keyFile = filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", fmt.Errorf("kvfake: %w", err)
	}
	if pair, err := tls.LoadX509KeyPair(certFile, keyFile); err == nil && usable(pair.Leaf) {
		return certFile, keyFile, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", fmt.Errorf("kvfake: generating a key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return "", "", fmt.Errorf("kvfake: serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "Spine Key Vault fake (local only)"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(2, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", "", fmt.Errorf("kvfake: creating the certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", fmt.Errorf("kvfake: encoding the key: %w", err)
	}
	if err := writeFileAtomic(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})); err != nil {
		return "", "", fmt.Errorf("kvfake: writing the key: %w", err)
	}
	if err := writeFileAtomic(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})); err != nil {
		return "", "", fmt.Errorf("kvfake: writing the certificate: %w", err)
	}
	if err := os.Chmod(certFile, 0o644); err != nil {
		return "", "", fmt.Errorf("kvfake: %w", err)
	}
	return certFile, keyFile, nil
}

func usable(c *x509.Certificate) bool {
	return c != nil && time.Until(c.NotAfter) > 30*24*time.Hour &&
		slices.Contains(c.DNSNames, "localhost") &&
		slices.ContainsFunc(c.IPAddresses, func(ip net.IP) bool { return ip.Equal(net.IPv4(127, 0, 0, 1)) })
}

// RunOptions configure Run.
type RunOptions struct {
	// Addr is the loopback host:port to listen on (a fake that accepts any token never listens
	// on a network); port 0 picks one.
	Addr string
	// Dir holds the certificate (EnsureCert) and, unless DataFile is set, the data file.
	Dir string
	// DataFile is where the vault is kept (default Dir/secrets.json; "-" keeps it in memory).
	DataFile string
	// Logger gets the start line and one line per request.
	Logger *slog.Logger
	// Ready, when set, is called with the listening address once requests are accepted.
	Ready func(addr string)
}

// Run serves a fake vault over TLS until ctx ends, then shuts down gracefully.
func Run(ctx context.Context, o RunOptions) error {
	host, _, err := net.SplitHostPort(o.Addr)
	if err != nil {
		return fmt.Errorf("kvfake: --addr %q is not host:port", o.Addr)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("kvfake: --addr %q must be a loopback address: the fake accepts any token", o.Addr)
	}
	if o.Dir == "" {
		return errors.New("kvfake: --dir is required (it holds the certificate and the data file)")
	}
	certFile, keyFile, err := EnsureCert(o.Dir)
	if err != nil {
		return err
	}
	data := o.DataFile
	switch data {
	case "":
		data = filepath.Join(o.Dir, DataFile)
	case "-":
		data = ""
	}
	s, err := New(Options{DataFile: data, Logger: o.Logger})
	if err != nil {
		return err
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return fmt.Errorf("kvfake: %w", err)
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return fmt.Errorf("kvfake: %w", err)
	}
	srv := &http.Server{
		Handler:           s,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
	}
	if o.Logger != nil {
		// Handshake errors (readiness probes that connect and close) at Debug, not as noise.
		srv.ErrorLog = slog.NewLogLogger(o.Logger.Handler(), slog.LevelDebug)
	}
	addr := ln.Addr().String()
	if o.Logger != nil {
		o.Logger.Info("keyvault-fake listening", "url", "https://"+addr, "caFile", certFile, "dataFile", data)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	if o.Ready != nil {
		o.Ready(addr)
	}
	select {
	case err := <-errc:
		return fmt.Errorf("kvfake: %w", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		return fmt.Errorf("kvfake: shutdown: %w", err)
	}
	return nil
}
