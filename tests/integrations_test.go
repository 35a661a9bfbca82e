package tests

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"spine/shared/contracts"
	"spine/shared/events"
	"spine/shared/functions"
	"spine/shared/secrets"
	"spine/shared/secrets/kvfake"
	"spine/shared/testenv"
	"spine/shared/testenv/secretscan"
)

// Integrations end to end through the binary as the host drives it: forwarded HTTP for the API,
// the in-process transport delivering IntegrationSyncRequested to IntegrationSync, and a
// host-shaped POST /IntegrationSync invocation; the connection's secret lives in the Key Vault
// fake only. Afterwards no secret value is in any service's database, Redis, Azurite, the
// binary's debug logs, the audit trail of the integration events or any response.
func TestIntegrations_CreateTestRotateSyncDelete_SecretsOnlyInKeyVault(t *testing.T) {
	ctx := context.Background()
	kv := kvfake.NewTLSServer(t)
	var mu sync.Mutex
	want, hits := "", map[string]int{}
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		hits[r.URL.Path]++
		if r.Header.Get("Authorization") != "Bearer "+want {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprintf(w, "you sent %s", r.Header.Get("Authorization")) // echoed: must never be kept
			return
		}
		fmt.Fprint(w, "ok")
	}))
	defer target.Close()
	expect := func(tok string) { mu.Lock(); want = tok; mu.Unlock() }
	hitsOf := func(p string) int { mu.Lock(); defer mu.Unlock(); return hits[p] }

	s := startServer(t, map[string]string{"SPINE_KEYVAULT_URL": kv.URL, "SPINE_KEYVAULT_CA_FILE": kv.CAFile,
		"SPINE_EGRESS_ALLOW_LOOPBACK": "true", "SPINE_LOG_LEVEL": "debug"})
	tenant := s.register(slug("integ"), "standard")
	if r := s.call("POST", "/api/tenants/"+tenant+"/provision", s.admin, nil, nil); r.Code != http.StatusOK {
		t.Fatalf("provision: %d %s", r.Code, r.Body)
	}
	tok := s.token(tenant, false)
	var responses strings.Builder
	call := func(want int, method, path string, body any, hdr map[string]string) map[string]any {
		t.Helper()
		r := s.call(method, path, tok, body, hdr)
		fmt.Fprintf(&responses, "%d %v\n%s\n", r.Code, r.Hdr, r.Body)
		if r.Code != want {
			t.Fatalf("%s %s: %d %s, want %d", method, path, r.Code, r.Body, want)
		}
		if len(r.Body) == 0 {
			return nil
		}
		return r.JSON(t)
	}
	secret := func() string {
		b := make([]byte, 12)
		_, _ = rand.Read(b)
		return "e2e-sv-" + hex.EncodeToString(b)
	}
	s1, s2, s3 := secret(), secret(), secret()

	c := call(http.StatusCreated, "POST", "/api/integrations", map[string]any{"type": "http", "name": "e2e", "secret": s1,
		"settings": map[string]any{"baseUrl": target.URL, "healthPath": "/health", "syncPath": "/sync", "authScheme": "bearer"}},
		map[string]string{"Idempotency-Key": "e2e-create"})
	id := c["id"].(string)
	ref := c["secretRef"].(map[string]any)
	expect(s1)
	if got := call(http.StatusOK, "POST", "/api/integrations/"+id+"/test", nil, nil); got["status"] != "Healthy" {
		t.Fatalf("test: %v", got)
	}
	rot := call(http.StatusOK, "PUT", "/api/integrations/"+id+"/secret", map[string]any{"secret": s2}, nil)
	if rot["secretRef"].(map[string]any)["version"] == ref["version"] {
		t.Fatalf("rotation kept the version: %v", rot)
	}
	if got := call(http.StatusOK, "POST", "/api/integrations/"+id+"/test", nil, nil); got["status"] != "Failing" ||
		got["lastErrorClass"] != "http-4xx" {
		t.Fatalf("test with the old token expected: %v", got)
	}
	expect(s2)
	call(http.StatusOK, "POST", "/api/integrations/"+id+"/test", nil, nil)

	// The sync: requested over HTTP, delivered by the in-process transport to IntegrationSync.
	call(http.StatusAccepted, "POST", "/api/integrations/"+id+"/sync", nil, nil)
	deadline := time.Now().Add(20 * time.Second)
	for hitsOf("/sync") == 0 || call(http.StatusOK, "GET", "/api/integrations/"+id, nil, nil)["lastSyncAt"] == nil {
		if time.Now().After(deadline) {
			t.Fatalf("no sync recorded; target hits %v", hits)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// And invoked as the host invokes a Service Bus-triggered function: a sync request as a message.
	ev, err := events.New("integrations", contracts.IntegrationSyncRequested, id, tenant, contracts.IntegrationSyncRequestedData{
		TenantID: tenant, ConnectionID: id, Type: "http", RequestedAt: time.Now().UTC(), RequestedBy: contracts.Actor{Type: "user", ID: "e2e"}},
		events.Meta{Actor: "user:e2e"})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(ev)
	d, meta := functions.ServiceBusMessage(raw, functions.EncodingString, functions.ServiceBusMetadata{MessageID: ev.ID,
		DeliveryCount: 1, EnqueuedTimeUTC: time.Now(), ApplicationProperties: map[string]any{"tenantId": tenant, "eventType": ev.Type}})
	inv, _ := json.Marshal(map[string]any{"Data": map[string]any{functions.ServiceBusBinding: d}, "Metadata": meta})
	before := hitsOf("/sync")
	for i := range 2 { // a redelivery finds the event in the inbox before calling out: one call, recorded once
		if r := s.invoke("IntegrationSync", inv); r.Code != http.StatusOK {
			t.Fatalf("POST /IntegrationSync (%d): %d %s", i+1, r.Code, r.Body)
		}
	}
	if hitsOf("/sync") != before+1 {
		t.Errorf("a message delivered twice synced %d times, want 1", hitsOf("/sync")-before)
	}

	// Rotate once more, then delete: the secret goes to the vault's soft delete.
	call(http.StatusOK, "PUT", "/api/integrations/"+id+"/secret", map[string]any{"secret": s3}, nil)
	call(http.StatusNoContent, "DELETE", "/api/integrations/"+id, nil, nil)
	call(http.StatusNotFound, "GET", "/api/integrations/"+id, nil, nil)

	// The integration events reach the audit trail (audit consumes every topic).
	var actions []string
	deadline = time.Now().Add(20 * time.Second)
	for {
		actions = actions[:0]
		for _, e := range s.auditEntries(tenant) {
			if a, _ := e["action"].(string); strings.HasPrefix(a, "Integration") {
				actions = append(actions, a)
			}
		}
		if len(actions) >= 8 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, want := range []string{"IntegrationCreated", "IntegrationTested", "IntegrationSecretRotated", "IntegrationSyncRequested", "IntegrationDeleted"} {
		if !strings.Contains(strings.Join(actions, ","), want) {
			t.Errorf("audit trail lacks %s: %v", want, actions)
		}
	}
	auditJSON, _ := json.Marshal(s.auditEntries(tenant))

	// The scan: every database of the deployment, Redis, Azurite, the logs, the audit trail, the responses.
	corpora := []secretscan.Corpus{{Name: "logs", Text: []byte(s.logs.String())}, {Name: "responses", Text: []byte(responses.String())},
		{Name: "audit trail", Text: auditJSON}}
	for svc, db := range s.dbs {
		c, err := secretscan.Postgres(ctx, svc, db.AdminURL)
		if err != nil {
			t.Fatal(err)
		}
		corpora = append(corpora, c)
	}
	redisURL, _ := testenv.Require("SPINE_REDIS_URL")
	storage, _ := testenv.Require("SPINE_STORAGE_CONNECTION_STRING")
	for _, f := range []func() (secretscan.Corpus, error){
		func() (secretscan.Corpus, error) { return secretscan.Redis(ctx, redisURL) },
		func() (secretscan.Corpus, error) { return secretscan.Blobs(ctx, storage) },
	} {
		c, err := f()
		if err != nil {
			t.Fatal(err)
		}
		corpora = append(corpora, c)
	}
	if found := secretscan.Hits(corpora, []string{s1, s2, s3}, []string{"secret 1", "secret 2", "secret 3"}); len(found) != 0 {
		t.Errorf("secret values outside Key Vault:\n%s", strings.Join(found, "\n"))
	}
	// Positive controls: the scan reads what it should (the connection's id is in the integrations
	// database, the trail and the responses; the logs hold the worker's invocations for the
	// tenant), and the vault holds the last secret, recoverable.
	for _, c := range corpora {
		mention := map[string]string{"postgres integrations": id, "audit trail": id, "responses": id, "logs": tenant}[c.Name]
		if mention != "" && !strings.Contains(string(c.Text), mention) {
			t.Errorf("%s does not mention %s: the scan does not read it", c.Name, mention)
		}
	}
	if !strings.Contains(s.logs.String(), `"function":"IntegrationSync"`) {
		t.Error("the logs hold no IntegrationSync invocation")
	}
	vault, err := secrets.Open(secrets.Config{VaultURL: kv.URL, CAFile: kv.CAFile})
	if err != nil {
		t.Fatal(err)
	}
	name := ref["name"].(string)
	if _, err := vault.Get(ctx, name); !errors.Is(err, secrets.ErrNotFound) {
		t.Errorf("the deleted connection's secret reads: %v", err)
	}
	if err := vault.Recover(ctx, name); err != nil {
		t.Fatal(err)
	}
	if got, err := vault.Get(ctx, name); err != nil || got.Value() != s3 {
		t.Errorf("the vault's latest version does not hold the last secret (%v)", err)
	}
}
