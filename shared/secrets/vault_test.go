package secrets_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"spine/shared/secrets"
	"spine/shared/secrets/kvfake"
)

// testRetries are the retry options of the tests' vaults: quick back-offs, a 2 s cap.
const testRetries = 2

// newFake starts a TLS fake and opens a Vault on it the way the local stack does: Open with the
// fake's certificate as CA file (so the dev credential, the CA transport and the SDK's challenge
// policy all run).
func newFake(t *testing.T, o ...kvfake.Options) (*kvfake.TestServer, *secrets.Vault) {
	t.Helper()
	ts := kvfake.NewTLSServer(t, o...)
	return ts, openVault(t, ts)
}

func openVault(t *testing.T, ts *kvfake.TestServer) *secrets.Vault {
	t.Helper()
	v, err := secrets.Open(secrets.Config{
		VaultURL: ts.URL, CAFile: ts.CAFile,
		MaxRetries: testRetries, RetryDelay: time.Millisecond, MaxRetryDelay: 2 * time.Second, TryTimeout: 10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func mustSet(t *testing.T, v *secrets.Vault, name, value string) secrets.Secret {
	t.Helper()
	s, err := v.Set(ctx(t), name, value, "text/plain", map[string]string{"owner": "test"})
	if err != nil {
		t.Fatalf("Set %s: %v", name, err)
	}
	return s
}

func TestVault_Get_ReadsWhatSetWrote(t *testing.T) {
	ts, v := newFake(t)
	set := mustSet(t, v, "db-url", "postgres://u:p@h/db")
	got, err := v.Get(ctx(t), "db-url")
	if err != nil {
		t.Fatal(err)
	}
	if got.Value() != "postgres://u:p@h/db" || got.Name != "db-url" || got.Version != set.Version || len(got.Version) != 32 {
		t.Errorf("Get = %s (version %q, set %q)", got, got.Version, set.Version)
	}
	if got.ContentType != "text/plain" || got.Tags["owner"] != "test" || got.Tags[secrets.TagCreated] == "" || !got.Enabled {
		t.Errorf("Get metadata: contentType %q tags %v enabled %v", got.ContentType, got.Tags, got.Enabled)
	}
	if d := time.Since(got.Created); got.Created.IsZero() || d < -time.Minute || d > time.Minute {
		t.Errorf("Created = %v", got.Created)
	}
	// The SDK met Key Vault's bearer challenge once, then sent its token.
	if ts.Challenges() != 1 {
		t.Errorf("challenges = %d, want 1", ts.Challenges())
	}
}

func TestVault_Versions_NewestFirstAfterRotation(t *testing.T) {
	_, v := newFake(t)
	v1 := mustSet(t, v, "api-key", "one")
	v2 := mustSet(t, v, "api-key", "two")
	v3 := mustSet(t, v, "api-key", "three")
	versions, err := v.Versions(ctx(t), "api-key")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, ver := range versions {
		ids = append(ids, ver.Version)
	}
	if want := []string{v3.Version, v2.Version, v1.Version}; !slices.Equal(ids, want) {
		t.Fatalf("Versions = %v, want newest first %v", ids, want)
	}
	latest, err := v.Get(ctx(t), "api-key")
	if err != nil || latest.Value() != "three" {
		t.Fatalf("Get latest = %q, %v", latest.Value(), err)
	}
	old, err := v.GetVersion(ctx(t), "api-key", v1.Version)
	if err != nil || old.Value() != "one" || old.Version != v1.Version {
		t.Fatalf("GetVersion(v1) = %q %s, %v", old.Value(), old.Version, err)
	}
}

func TestVault_Versions_FollowsNextLinkAcrossPages(t *testing.T) {
	ts, v := newFake(t, kvfake.Options{PageSize: 2})
	var want []string
	for i := range 5 {
		want = append([]string{mustSet(t, v, "paged", fmt.Sprint(i)).Version}, want...)
	}
	before := ts.Requests()
	versions, err := v.Versions(ctx(t), "paged")
	if err != nil {
		t.Fatal(err)
	}
	if got := len(versions); got != 5 {
		t.Fatalf("Versions returned %d of 5", got)
	}
	for i, ver := range versions {
		if ver.Version != want[i] {
			t.Errorf("Versions[%d] = %s, want %s", i, ver.Version, want[i])
		}
	}
	if pages := ts.Requests() - before; pages != 3 {
		t.Errorf("listing 5 versions 2 per page took %d requests, want 3", pages)
	}
}

func TestVault_Versions_LeavesOutDisabledVersions(t *testing.T) {
	_, v := newFake(t)
	v1 := mustSet(t, v, "flip", "one")
	v2 := mustSet(t, v, "flip", "two")
	if err := v.SetEnabled(ctx(t), "flip", v2.Version, false); err != nil {
		t.Fatal(err)
	}
	versions, err := v.Versions(ctx(t), "flip")
	if err != nil {
		t.Fatal(err)
	}
	if len(versions) != 1 || versions[0].Version != v1.Version {
		t.Fatalf("Versions = %+v, want only %s", versions, v1.Version)
	}
	if err := v.SetEnabled(ctx(t), "flip", v1.Version, false); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Versions(ctx(t), "flip"); !errors.Is(err, secrets.ErrNotFound) {
		t.Fatalf("Versions with every version disabled = %v, want ErrNotFound", err)
	}
}

func TestVault_404_IsErrNotFound(t *testing.T) {
	ts, v := newFake(t)
	s := mustSet(t, v, "present", "x")
	cases := map[string]func() error{
		"Get of a missing secret":        func() error { _, err := v.Get(ctx(t), "missing"); return err },
		"GetVersion of a missing one":    func() error { _, err := v.GetVersion(ctx(t), "present", strings.Repeat("0", 32)); return err },
		"Versions of a missing secret":   func() error { _, err := v.Versions(ctx(t), "missing"); return err },
		"SetEnabled of a missing one":    func() error { return v.SetEnabled(ctx(t), "missing", s.Version, false) },
		"GetVersion of another's secret": func() error { _, err := v.GetVersion(ctx(t), "missing", s.Version); return err },
	}
	for name, call := range cases {
		err := call()
		if !errors.Is(err, secrets.ErrNotFound) {
			t.Errorf("%s: %v, want ErrNotFound", name, err)
			continue
		}
		// Never the SDK's text: it names the vault URL and repeats Key Vault's message.
		if msg := err.Error(); strings.Contains(msg, ts.URL) || strings.Contains(msg, "127.0.0.1") || strings.Contains(msg, "RESPONSE") {
			t.Errorf("%s: error text carries SDK detail: %q", name, msg)
		}
	}
}

func TestVault_429WithRetryAfter_RetriedThenSucceeds(t *testing.T) {
	ts, v := newFake(t)
	mustSet(t, v, "busy", "value")
	ts.InjectFault(kvfake.Fault{Status: 429, Count: 1, RetryAfter: 1})
	before := ts.Requests()
	got, err := v.Get(ctx(t), "busy")
	if err != nil || got.Value() != "value" {
		t.Fatalf("Get after one 429 = %q, %v", got.Value(), err)
	}
	if n := ts.Requests() - before; n != 2 {
		t.Errorf("requests = %d, want 2 (the 429, then the retry)", n)
	}
}

func TestVault_Persistent429_IsErrThrottledAfterTheRetries(t *testing.T) {
	ts, v := newFake(t)
	mustSet(t, v, "busy", "value")
	ts.InjectFault(kvfake.Fault{Status: 429, Count: 100, RetryAfter: 0})
	before := ts.Requests()
	_, err := v.Get(ctx(t), "busy")
	if !errors.Is(err, secrets.ErrThrottled) {
		t.Fatalf("Get under persistent 429 = %v, want ErrThrottled", err)
	}
	if n := ts.Requests() - before; n != testRetries+1 {
		t.Errorf("requests = %d, want %d (the first try and every retry)", n, testRetries+1)
	}
}

func TestVault_429AskingToWaitBeyondMaxRetryDelay_IsErrThrottledAtOnce(t *testing.T) {
	ts, v := newFake(t)
	mustSet(t, v, "busy", "value")
	ts.InjectFault(kvfake.Fault{Status: 429, Count: 1, RetryAfter: 30}) // MaxRetryDelay is 2 s
	before := ts.Requests()
	if _, err := v.Get(ctx(t), "busy"); !errors.Is(err, secrets.ErrThrottled) {
		t.Fatalf("Get = %v, want ErrThrottled", err)
	}
	if n := ts.Requests() - before; n != 1 {
		t.Errorf("requests = %d, want 1 (no retry after a Retry-After beyond the cap)", n)
	}
}

func TestVault_Persistent503_IsErrUnavailable(t *testing.T) {
	ts, v := newFake(t)
	ts.InjectFault(kvfake.Fault{Status: 503, Count: 100})
	_, err := v.Set(ctx(t), "down", "value", "", nil)
	if !errors.Is(err, secrets.ErrUnavailable) || !strings.Contains(err.Error(), "503") {
		t.Fatalf("Set under 503 = %v, want ErrUnavailable naming the status", err)
	}
}

func TestVault_SetRejectsInvalidNamesBeforeCallingTheVault(t *testing.T) {
	ts, v := newFake(t)
	for _, name := range []string{"", "has space", "under_score", strings.Repeat("a", 128), "../x"} {
		if _, err := v.Set(ctx(t), name, "v", "", nil); err == nil {
			t.Errorf("Set(%q) succeeded", name)
		}
	}
	if ts.Requests()+ts.Challenges() != 0 {
		t.Errorf("invalid names reached the vault")
	}
}

func TestOpen_UntrustedCertificate_IsErrUnavailable(t *testing.T) {
	ts := kvfake.NewTLSServer(t)
	otherCA, _, err := kvfake.EnsureCert(t.TempDir()) // a valid certificate, but not the server's
	if err != nil {
		t.Fatal(err)
	}
	v, err := secrets.Open(secrets.Config{VaultURL: ts.URL, CAFile: otherCA, MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.Get(ctx(t), "any")
	if !errors.Is(err, secrets.ErrUnavailable) || !strings.Contains(err.Error(), "not trusted") {
		t.Fatalf("Get with the wrong CA = %v, want ErrUnavailable (certificate not trusted)", err)
	}
}

func TestConfig_Validate_NamesEveryProblem(t *testing.T) {
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, []byte("not pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		cfg  secrets.Config
		want string // "" = valid
	}{
		{"azure vault", secrets.Config{VaultURL: "https://kv-spine-dev.vault.azure.net/"}, ""},
		{"local fake", secrets.Config{VaultURL: "https://127.0.0.1:24000", CAFile: ca}, ""},
		{"missing url", secrets.Config{}, "VaultURL is required"},
		{"http url", secrets.Config{VaultURL: "http://kv.vault.azure.net/"}, "https URL"},
		{"url with query", secrets.Config{VaultURL: "https://kv.vault.azure.net/?x=1"}, "https URL"},
		{"ca file for a real vault", secrets.Config{VaultURL: "https://kv.vault.azure.net/", CAFile: ca}, "local fake only"},
		{"too many retries", secrets.Config{VaultURL: "https://kv.vault.azure.net/", MaxRetries: 11}, "above 10"},
		{"negative delay", secrets.Config{VaultURL: "https://kv.vault.azure.net/", TryTimeout: -time.Second}, "must not be negative"},
		{"delay above cap", secrets.Config{VaultURL: "https://kv.vault.azure.net/", RetryDelay: time.Minute}, "above MaxRetryDelay"},
	}
	for _, c := range cases {
		err := c.cfg.Validate()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	if _, err := secrets.Open(secrets.Config{VaultURL: "https://127.0.0.1:1", CAFile: ca}); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("Open with a CA file holding no certificate = %v", err)
	}
}

// A Secret's value shows in no printed, logged or JSON form, also inside other values.
func TestSecret_ValueIsNeverPrintedLoggedOrEncoded(t *testing.T) {
	_, v := newFake(t)
	const value = "s3cr3t-value-that-must-not-leak"
	s := mustSet(t, v, "leak-check", value)
	holder := struct {
		S   secrets.Secret
		Ptr *secrets.Secret
	}{s, &s}
	var out strings.Builder
	for _, f := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
		fmt.Fprintf(&out, f+"\n", s)
		fmt.Fprintf(&out, f+"\n", holder)
	}
	fmt.Fprintln(&out, s.String(), s.GoString())
	raw, err := json.Marshal(holder)
	if err != nil {
		t.Fatal(err)
	}
	out.Write(raw)
	slog.New(slog.NewJSONHandler(&out, nil)).Info("secret", "secret", s, "holder", holder)
	slog.New(slog.NewTextHandler(&out, nil)).Info("secret", "secret", s)
	if strings.Contains(out.String(), value) || strings.Contains(out.String(), fmt.Sprintf("%x", value)) {
		t.Fatalf("the value leaked:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "leak-check") {
		t.Fatalf("the secret's name is not shown either:\n%s", out.String())
	}
}

// TestVault_DeleteThenRecover: a deleted secret cannot be read, is not deleted twice, and comes
// back with its versions when recovered.
func TestVault_DeleteThenRecover(t *testing.T) {
	_, v := newFake(t)
	first := mustSet(t, v, "integration-x", "one")
	second := mustSet(t, v, "integration-x", "two")
	if err := v.Delete(ctx(t), "integration-x"); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Get(ctx(t), "integration-x"); !errors.Is(err, secrets.ErrNotFound) {
		t.Fatalf("Get after Delete: %v, want ErrNotFound", err)
	}
	if err := v.Delete(ctx(t), "integration-x"); !errors.Is(err, secrets.ErrNotFound) {
		t.Fatalf("second Delete: %v, want ErrNotFound", err)
	}
	if err := v.Recover(ctx(t), "integration-x"); err != nil {
		t.Fatal(err)
	}
	got, err := v.Get(ctx(t), "integration-x")
	if err != nil || got.Value() != "two" || got.Version != second.Version {
		t.Fatalf("Get after Recover: %s, %v", got, err)
	}
	if old, err := v.GetVersion(ctx(t), "integration-x", first.Version); err != nil || old.Value() != "one" {
		t.Fatalf("first version after Recover: %s, %v", old, err)
	}
	if err := v.Recover(ctx(t), "integration-x"); !errors.Is(err, secrets.ErrNotFound) {
		t.Fatalf("Recover of a live secret: %v, want ErrNotFound", err)
	}
	if err := v.Delete(ctx(t), "never-set"); !errors.Is(err, secrets.ErrNotFound) {
		t.Fatalf("Delete of an unknown secret: %v", err)
	}
}

// TestVault_Ping_UpWhenTheVaultAnswers_ErrorWhenItFails: "not found" is an answer (up); a 503
// after the retries is ErrUnavailable.
func TestVault_Ping_UpWhenTheVaultAnswers_ErrorWhenItFails(t *testing.T) {
	ts, v := newFake(t)
	if err := v.Ping(ctx(t)); err != nil {
		t.Fatalf("Ping of an answering vault: %v", err)
	}
	ts.InjectFault(kvfake.Fault{Status: 503, Count: testRetries + 1})
	if err := v.Ping(ctx(t)); !errors.Is(err, secrets.ErrUnavailable) {
		t.Fatalf("Ping of a failing vault: %v, want ErrUnavailable", err)
	}
}
