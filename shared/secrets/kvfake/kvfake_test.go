package kvfake_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"spine/shared/secrets"
	"spine/shared/secrets/kvfake"
)

const apiVersion = "?api-version=2026-04-01"

// call sends one request to the fake as a client that already has a token.
func call(t *testing.T, ts *kvfake.TestServer, method, path string, body any) (int, map[string]any) {
	t.Helper()
	var r io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, ts.URL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer any-token")
	req.Header.Set("Content-Type", "application/json")
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s %s: body is not JSON: %q", method, path, raw)
		}
	}
	return resp.StatusCode, out
}

func TestFake_RequestWithoutToken_GetsKeyVaultsBearerChallenge(t *testing.T) {
	ts := kvfake.NewTLSServer(t, kvfake.Options{TenantID: "11111111-2222-3333-4444-555555555555"})
	resp, err := ts.Client().Get(ts.URL + "/secrets/x" + apiVersion)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	want := `Bearer authorization="https://login.microsoftonline.com/11111111-2222-3333-4444-555555555555", resource="https://vault.azure.net"`
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != want {
		t.Fatalf("status %d, WWW-Authenticate %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	if ts.Challenges() != 1 || ts.Requests() != 0 {
		t.Fatalf("challenges %d, requests %d", ts.Challenges(), ts.Requests())
	}
}

// The JSON the fake writes has the SDK's field names and unix-second dates (azsecrets'
// models_serde.go: datetime.Unix), and it reads the SDK's request shapes.
func TestFake_WireShapesMatchTheSDK(t *testing.T) {
	ts := kvfake.NewTLSServer(t)
	status, set := call(t, ts, "PUT", "/secrets/shape"+apiVersion, map[string]any{
		"value": "v", "contentType": "text/plain", "tags": map[string]string{"a": "b"},
		"attributes": map[string]any{"nbf": 1700000000},
	})
	if status != 200 {
		t.Fatalf("PUT: %d %v", status, set)
	}
	id, _ := set["id"].(string)
	if !strings.HasPrefix(id, ts.URL+"/secrets/shape/") || len(id) != len(ts.URL+"/secrets/shape/")+32 {
		t.Fatalf("id = %q", id)
	}
	attrs, _ := set["attributes"].(map[string]any)
	for _, k := range []string{"created", "updated", "nbf"} {
		if _, ok := attrs[k].(float64); !ok {
			t.Errorf("attributes.%s = %#v, want a number of seconds", k, attrs[k])
		}
	}
	if set["value"] != "v" || set["contentType"] != "text/plain" || attrs["enabled"] != true {
		t.Errorf("PUT answer = %v", set)
	}
	status, list := call(t, ts, "GET", "/secrets/shape/versions"+apiVersion, nil)
	items, _ := list["value"].([]any)
	if status != 200 || len(items) != 1 || list["nextLink"] != nil {
		t.Fatalf("versions: %d %v", status, list)
	}
	if item := items[0].(map[string]any); item["value"] != nil || item["id"] != id {
		t.Errorf("a list item shows %v (never a value)", item)
	}
	for _, path := range []string{"/secrets/shape", "/secrets/shape/"} {
		if status, got := call(t, ts, "GET", path+apiVersion, nil); status != 200 || got["id"] != id {
			t.Errorf("GET %s (latest): %d %v", path, status, got)
		}
	}
	if status, got := call(t, ts, "PATCH", "/secrets/shape/"+id[len(id)-32:]+apiVersion,
		map[string]any{"attributes": map[string]any{"enabled": false}}); status != 200 || got["value"] != nil {
		t.Errorf("PATCH: %d %v", status, got)
	}
	if status, got := call(t, ts, "GET", "/secrets/shape"+apiVersion, nil); status != 403 {
		t.Errorf("GET of a disabled latest version: %d %v, want 403", status, got)
	}
	if status, _ := call(t, ts, "GET", "/secrets/shape", nil); status != 400 {
		t.Errorf("a request without api-version: %d, want 400", status)
	}
}

func TestFake_404IsKeyVaultsErrorJSON(t *testing.T) {
	ts := kvfake.NewTLSServer(t)
	status, body := call(t, ts, "GET", "/secrets/nope"+apiVersion, nil)
	e, _ := body["error"].(map[string]any)
	if status != 404 || e["code"] != "SecretNotFound" || e["message"] == "" {
		t.Fatalf("%d %v", status, body)
	}
}

func TestFake_DeletedSecret_404ThenNameReservedUntilPurged(t *testing.T) {
	ts := kvfake.NewTLSServer(t)
	call(t, ts, "PUT", "/secrets/gone"+apiVersion, map[string]any{"value": "v"})
	status, del := call(t, ts, "DELETE", "/secrets/gone"+apiVersion, nil)
	if status != 200 || del["recoveryId"] != ts.URL+"/deletedsecrets/gone" || del["value"] != nil {
		t.Fatalf("DELETE: %d %v", status, del)
	}
	for _, path := range []string{"/secrets/gone", "/secrets/gone/versions"} {
		status, body := call(t, ts, "GET", path+apiVersion, nil)
		if items, _ := body["value"].([]any); status == 200 && len(items) == 0 {
			continue // an empty version list
		}
		if status != 404 {
			t.Errorf("GET %s after delete: %d %v", path, status, body)
		}
	}
	if status, _ := call(t, ts, "PUT", "/secrets/gone"+apiVersion, map[string]any{"value": "v2"}); status != 409 {
		t.Errorf("PUT to a deleted name: %d, want 409", status)
	}
	if status, _ := call(t, ts, "DELETE", "/deletedsecrets/gone"+apiVersion, nil); status != 204 {
		t.Errorf("purge: %d", status)
	}
	if status, _ := call(t, ts, "PUT", "/secrets/gone"+apiVersion, map[string]any{"value": "v2"}); status != 200 {
		t.Errorf("PUT after purge: %d", status)
	}
}

func TestFake_InjectedFaults_AnswerInOrderThenServe(t *testing.T) {
	ts := kvfake.NewTLSServer(t)
	ts.InjectFault(kvfake.Fault{Status: 429, Count: 2, RetryAfter: 3})
	ts.InjectFault(kvfake.Fault{Status: 503, Count: 1})
	for i, want := range []int{429, 429, 503, 404} {
		req, _ := http.NewRequest("GET", ts.URL+"/secrets/x"+apiVersion, nil)
		req.Header.Set("Authorization", "Bearer t")
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("request %d: %d, want %d", i, resp.StatusCode, want)
		}
		if want == 429 && resp.Header.Get("Retry-After") != "3" {
			t.Errorf("429 without Retry-After: %q", resp.Header.Get("Retry-After"))
		}
	}
}

func TestFake_DataFile_SurvivesARestartWithMode0600(t *testing.T) {
	file := filepath.Join(t.TempDir(), "vault.json")
	ts := kvfake.NewTLSServer(t, kvfake.Options{DataFile: file})
	_, set := call(t, ts, "PUT", "/secrets/kept"+apiVersion, map[string]any{"value": "persisted"})
	info, err := os.Stat(file)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("data file: %v, mode %v", err, info.Mode())
	}
	restarted := kvfake.NewTLSServer(t, kvfake.Options{DataFile: file})
	status, got := call(t, restarted, "GET", "/secrets/kept"+apiVersion, nil)
	if status != 200 || got["value"] != "persisted" || !strings.HasSuffix(got["id"].(string), set["id"].(string)[len(ts.URL):]) {
		t.Fatalf("after restart: %d %v", status, got)
	}
	if err := os.WriteFile(file, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := kvfake.New(kvfake.Options{DataFile: file}); err == nil {
		t.Fatal("New accepted a malformed data file")
	}
}

// The process mode: its own certificate (reused across restarts) as the client's CA file, the
// data file in its folder, the SDK's whole path through secrets.Open.
func TestRun_ServesTheSDKOverItsOwnCertificateAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	start := func() (url string, stop func()) {
		ctx, cancel := context.WithCancel(context.Background())
		ready := make(chan string, 1)
		done := make(chan error, 1)
		go func() {
			done <- kvfake.Run(ctx, kvfake.RunOptions{Addr: "127.0.0.1:0", Dir: dir, Ready: func(a string) { ready <- a }})
		}()
		select {
		case addr := <-ready:
			return "https://" + addr, func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("Run: %v", err)
				}
			}
		case err := <-done:
			cancel()
			t.Fatalf("Run: %v", err)
		}
		return "", nil
	}
	open := func(url string) *secrets.Vault {
		v, err := secrets.Open(secrets.Config{VaultURL: url, CAFile: filepath.Join(dir, kvfake.CertFile)})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	url, stop := start()
	if _, err := open(url).Set(ctx, "dev-secret", "kept across restarts", "", nil); err != nil {
		t.Fatal(err)
	}
	cert, err := os.ReadFile(filepath.Join(dir, kvfake.CertFile))
	if err != nil {
		t.Fatal(err)
	}
	stop()

	url, stop = start()
	defer stop()
	got, err := open(url).Get(ctx, "dev-secret")
	if err != nil || got.Value() != "kept across restarts" {
		t.Fatalf("after restart: %q, %v", got.Value(), err)
	}
	again, _ := os.ReadFile(filepath.Join(dir, kvfake.CertFile))
	if !bytes.Equal(cert, again) {
		t.Error("the certificate changed across restarts (a client's CA file would go stale)")
	}
	if info, err := os.Stat(filepath.Join(dir, kvfake.KeyFile)); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v %v", err, info.Mode())
	}
}

func TestRun_RefusesANonLoopbackAddress(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "10.0.0.1:443", "nonsense"} {
		err := kvfake.Run(context.Background(), kvfake.RunOptions{Addr: addr, Dir: t.TempDir()})
		if err == nil || errors.Is(err, context.Canceled) {
			t.Errorf("Run on %q: %v", addr, err)
		}
	}
}
