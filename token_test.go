package main

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"

	"spine/shared/auth"
)

func TestToken_RefusesWithoutExactlyOneOfTenantAndPlatformAdmin(t *testing.T) {
	for _, args := range [][]string{{"token"}, {"token", "--tenant", "0190aaaa-0000-7000-8000-000000000001", "--platform-admin"}} {
		var stdout, stderr bytes.Buffer
		if code := run(t.Context(), args, func(string) string { return "" }, &stdout, &stderr); code != 1 {
			t.Fatalf("%v: exit %d, want 1", args, code)
		}
		if !strings.Contains(stderr.String(), "--tenant <id> or --platform-admin") || stdout.Len() != 0 {
			t.Fatalf("%v: stdout %q, stderr %q", args, stdout.String(), stderr.String())
		}
	}
}

func TestToken_OneLineSayingMakeRunWhenNothingServes(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // nothing listens there now
	env := map[string]string{
		"SPINE_AUTH_ISSUER":  "http://" + addr + "/api/connect",
		"SPINE_KEYVAULT_URL": "https://127.0.0.1:1",
	}
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{"token", "--platform-admin", "--scopes", "tenant.read"}, func(k string) string { return env[k] }, &stdout, &stderr)
	if code != 1 || stdout.Len() != 0 {
		t.Fatalf("exit %d, stdout %q", code, stdout.String())
	}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "make run") {
		t.Fatalf("stderr = %q, want one line naming make run", stderr.String())
	}
}

func TestToken_RefusesAnIssuerThatIsNotThisServersConnectURL(t *testing.T) {
	var stdout, stderr bytes.Buffer
	env := map[string]string{"SPINE_AUTH_ISSUER": "https://login.example.com/oauth2"}
	if code := run(t.Context(), []string{"token", "--platform-admin"}, func(k string) string { return env[k] }, &stdout, &stderr); code != 1 {
		t.Fatalf("exit %d", code)
	}
	if !strings.Contains(stderr.String(), "/api/connect") {
		t.Fatalf("stderr = %q", stderr.String())
	}
}

// The verifier's in-process keys forward to the authorization server once it is built; before,
// every lookup fails (the API answers 401), never a nil dereference.
func TestLateKeys_RefuseUntilWiredThenForward(t *testing.T) {
	l := &lateKeys{}
	if _, err := l.VerificationKeys(t.Context()); err == nil {
		t.Fatal("keys before the authorization server is wired")
	}
	want := []auth.PublicKey{{ID: "k1", Algorithm: "ES256"}}
	l.set(auth.KeySourceFunc(func(context.Context) ([]auth.PublicKey, error) { return want, nil }))
	got, err := l.VerificationKeys(t.Context())
	if err != nil || len(got) != 1 || got[0].ID != "k1" {
		t.Fatalf("%v %v", got, err)
	}
}
