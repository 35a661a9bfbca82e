package integrations

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"spine/shared/blob"
	"spine/shared/contracts"
	"spine/shared/secrets"
	"spine/shared/testenv"
	"spine/shared/testenv/secretscan"
)

func randomSecret(t *testing.T, prefix string) string {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return prefix + hex.EncodeToString(b)
}

// The secret scan: after creating, rotating, testing, syncing and deleting several connections of
// two tenants (bearer and basic, one create replayed by Idempotency-Key, one check failing against
// a target that echoes the credential in its body), no secret value is in the database (every
// row of every table, pg_dump as superuser), Redis (every key), Azurite (every blob), the logs
// (debug level), the events (outbox rows and what the worker was delivered) or any HTTP response
// (headers and bodies). Positive controls: the vault holds every value (the live versions read
// back, the replaced ones disabled, the deleted ones recoverable), and a canary written to each
// store is found by the same scan, so the scan can fail.
func TestSecretScan_CreateRotateDelete_NoSecretValueOutsideKeyVault(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	tg := newTarget(t)
	a, b := h.tenant(), h.tenant()
	canary := randomSecret(t, "canary-")

	type conn struct {
		f       tenantFixture
		id      string
		ref     SecretRef
		all     []string // every value it ever had, oldest first
		deleted bool
	}
	var conns []*conn
	var delivered []string
	create := func(f tenantFixture, basic bool, idem string) *conn {
		s := randomSecret(t, "sv-")
		body := bearerBody("conn", tg.URL, s)
		if basic {
			body["settings"] = map[string]any{"baseUrl": tg.URL, "healthPath": "/health", "authScheme": "basic", "username": "svc"}
		}
		var hdr []string
		if idem != "" {
			hdr = []string{"Idempotency-Key", idem}
		}
		c := decode[connectionJSON](t, h.must(http.StatusCreated, "POST", "/api/integrations", f.admin, body, hdr...).Body)
		if idem != "" { // the replay answers the same, and writes nothing new
			h.must(http.StatusCreated, "POST", "/api/integrations", f.admin, body, hdr...)
		}
		cn := &conn{f: f, id: c.ID, ref: SecretRef(c.SecretRef), all: []string{s}}
		conns = append(conns, cn)
		return cn
	}
	rotate := func(cn *conn) {
		s := randomSecret(t, "sv-")
		c := decode[connectionJSON](t, h.must(http.StatusOK, "PUT", "/api/integrations/"+cn.id+"/secret", cn.f.admin, map[string]any{"secret": s}).Body)
		cn.ref, cn.all = SecretRef(c.SecretRef), append(cn.all, s)
	}
	for i, f := range []tenantFixture{a, a, a, b, b} {
		idem := ""
		if i == 0 {
			idem = "scan-key"
		}
		cn := create(f, i%2 == 1, idem)
		rotate(cn)
		if i < 2 {
			rotate(cn)
		}
		if i%2 == 0 {
			tg.expectBearer(cn.all[len(cn.all)-1])
		} else {
			tg.expectBasic("svc", cn.all[len(cn.all)-1])
		}
		h.must(http.StatusOK, "POST", "/api/integrations/"+cn.id+"/test", f.admin, nil)
		tg.expectBearer("not-this-one") // the next check fails: the target answers 401 echoing the credential
		h.must(http.StatusOK, "POST", "/api/integrations/"+cn.id+"/test", f.admin, nil)
		h.must(http.StatusAccepted, "POST", "/api/integrations/"+cn.id+"/sync", f.admin, nil)
		ev := h.lastOfType(f.id, contracts.IntegrationSyncRequested)
		raw, _ := json.Marshal(ev)
		delivered = append(delivered, string(raw))
		if _, err := h.deliver(ev); err != nil {
			t.Fatal(err)
		}
		h.must(http.StatusOK, "GET", "/api/integrations/"+cn.id, f.reader, nil)
	}
	h.must(http.StatusOK, "GET", "/api/integrations", a.reader, nil)
	for _, cn := range []*conn{conns[1], conns[3]} {
		h.must(http.StatusNoContent, "DELETE", "/api/integrations/"+cn.id, cn.f.admin, nil)
		cn.deleted = true
	}
	// A create refused for a secret in its settings, and one refused by a Key Vault outage.
	leaked := randomSecret(t, "sv-")
	h.must(http.StatusBadRequest, "POST", "/api/integrations", a.admin, map[string]any{"type": "http", "name": "x", "secret": leaked,
		"settings": map[string]any{"baseUrl": tg.URL, "authScheme": "bearer", "apiToken": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln"}})
	h.kv.InjectFault(fault503)
	refused := randomSecret(t, "sv-")
	h.must(http.StatusServiceUnavailable, "POST", "/api/integrations", a.admin, bearerBody("x", tg.URL, refused))

	// Canaries: one value written on purpose to each store the scan reads.
	h.must(http.StatusOK, "PATCH", "/api/integrations/"+conns[0].id, a.admin, map[string]any{"name": canary}) // SQL, events? no: responses
	redisURL, err := testenv.Require("SPINE_REDIS_URL")
	if err != nil {
		t.Fatal(err)
	}
	opt, _ := redis.ParseURL(redisURL)
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	if err := rdb.Set(ctx, "integrations-scan-canary:"+canary, canary, time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	storage, err := testenv.Require("SPINE_STORAGE_CONNECTION_STRING")
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := blob.Open(storage, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := blobs.EnsureContainer(ctx, "integrations-scan-test"); err != nil {
		t.Fatal(err)
	}
	if err := blobs.PutCreateOnly(ctx, "integrations-scan-test", canary+".txt", []byte(canary), "text/plain"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = blobs.Delete(context.Background(), "integrations-scan-test", canary+".txt") })
	h.svc.log.Debug("scan canary", "value", canary)

	// Scan.
	pg, err := secretscan.Postgres(ctx, testDB.Name, testDB.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	rd, err := secretscan.Redis(ctx, redisURL)
	if err != nil {
		t.Fatal(err)
	}
	bl, err := secretscan.Blobs(ctx, storage)
	if err != nil {
		t.Fatal(err)
	}
	var outbox []string
	for _, f := range []tenantFixture{a, b} {
		for _, ev := range h.outbox(f.id) {
			raw, _ := json.Marshal(ev)
			outbox = append(outbox, string(raw))
		}
	}
	corpora := []secretscan.Corpus{pg, rd, bl,
		{Name: "logs", Text: []byte(h.logs.String())},
		{Name: "outbox events", Text: []byte(strings.Join(outbox, "\n"))},
		{Name: "delivered events", Text: []byte(strings.Join(delivered, "\n"))},
		{Name: "responses", Text: []byte(h.responses.String())},
	}
	var values, labels []string
	for i, cn := range conns {
		for j, v := range cn.all {
			values, labels = append(values, v), append(labels, "connection "+string(rune('A'+i))+" version "+string(rune('1'+j)))
		}
	}
	values, labels = append(values, leaked, refused), append(labels, "refused create (secret in settings)", "refused create (vault down)")
	if hits := secretscan.Hits(corpora, values, labels); len(hits) != 0 {
		t.Errorf("secret values found outside Key Vault:\n%s", strings.Join(hits, "\n"))
	}

	// Positive controls: the canary is found wherever it was written…
	for _, c := range corpora {
		switch c.Name {
		case "outbox events", "delivered events":
			if !strings.Contains(string(c.Text), conns[0].id) || len(c.Text) < 1000 {
				t.Errorf("%s: the scan read no events (%d bytes)", c.Name, len(c.Text))
			}
		default:
			if !strings.Contains(string(c.Text), canary) {
				t.Errorf("%s: the canary was not found: the scan does not read it", c.Name)
			}
		}
	}
	if n := strings.Count(string(pg.Text), "integration-"); n < len(conns) {
		t.Errorf("the dump holds %d secret references, want ≥ %d", n, len(conns))
	}
	// …and the vault holds every value: the live version reads back, replaced ones are disabled,
	// a deleted connection's secret is gone until recovered.
	for i, cn := range conns {
		last := cn.all[len(cn.all)-1]
		if cn.deleted {
			if _, err := h.vault.Get(ctx, cn.ref.Name); !errors.Is(err, secrets.ErrNotFound) {
				t.Errorf("connection %d deleted, its secret reads: %v", i, err)
			}
			if err := h.vault.Recover(ctx, cn.ref.Name); err != nil {
				t.Fatalf("recover %d: %v", i, err)
			}
		}
		s, err := h.vault.GetVersion(ctx, cn.ref.Name, cn.ref.Version)
		if err != nil || s.Value() != last {
			t.Errorf("connection %d: the vault's current version does not hold its last secret (%v)", i, err)
		}
		if vs, err := h.vault.Versions(ctx, cn.ref.Name); err != nil || len(vs) != 1 {
			t.Errorf("connection %d: %d enabled versions (%v), want 1 (the replaced ones disabled)", i, len(vs), err)
		}
	}
}
