package notifications

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os/exec"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/redis/go-redis/v9"

	"spine/shared/sqlstore"
	"spine/shared/testenv"
)

// After endpoints are created and rotated and notifications delivered (with a large body and an
// attachment in Blob), no webhook secret value is anywhere but Key Vault and the two answers that
// showed it once: not in the database (pg_dump, and every column of every table read as text,
// the outbox's events and the idempotency records included), Redis, either Blob container, the
// service's logs, the webhook requests, or any later answer.
func TestDump_WebhookSecretsOnlyInKeyVault(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	f := h.tenant()
	rcv := newReceiver(t)
	var secrets []string
	var shown []string // the answers that showed a secret, excluded from the later-answer scan
	ep := h.createEndpoint(f, rcv.URL)
	secrets = append(secrets, ep.Secret)
	for i := range 2 {
		r := h.must(http.StatusOK, "POST", "/api/webhook-endpoints/"+ep.ID+"/rotate-secret", f.admin, nil, "Idempotency-Key", "rot-"+string(rune('a'+i)))
		secrets = append(secrets, decode[endpointJSON](t, r.Body).Secret)
		shown = append(shown, string(r.Body))
	}
	ep2 := h.createEndpoint(f, rcv.URL+"/2")
	secrets = append(secrets, ep2.Secret)
	big := strings.Repeat("large body ", 1200)
	h.sendAndDispatch(f, map[string]any{"channel": "webhook", "recipient": ep.ID, "subject": "s", "body": big,
		"attachments": []map[string]any{{"name": "a.txt", "contentBase64": "aGVsbG8="}}})
	h.sendAndDispatch(f, map[string]any{"channel": "webhook", "recipient": ep2.ID, "subject": "s", "body": "small"})

	type dump struct {
		name string
		data []byte
	}
	var dumps []dump
	if pgDump, err := exec.LookPath("pg_dump"); err == nil {
		out, err := exec.Command(pgDump, "--data-only", "--dbname="+testDB.AdminURL).Output()
		if err != nil {
			t.Fatalf("pg_dump: %v", err)
		}
		dumps = append(dumps, dump{"pg_dump", out})
	} else {
		t.Logf("pg_dump is not on PATH; the dump is every column of every table only")
	}
	admin, err := sqlstore.Open(ctx, service, sqlstore.Postgres, testDB.AdminURL, sqlstore.PoolConfig{MaxOpen: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = admin.Close() })
	tables, err := testenv.QueryStrings(ctx, admin, `SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	var rows bytes.Buffer
	for _, table := range tables {
		lines, err := testenv.QueryStrings(ctx, admin, `SELECT t::text FROM `+table+` t`)
		if err != nil {
			t.Fatal(err)
		}
		rows.WriteString(strings.Join(lines, "\n"))
	}
	blobs := blobDump(t, f.id.String())
	dumps = append(dumps, dump{"tables", rows.Bytes()}, dump{"redis", redisDump(t)}, dump{"blobs", blobs},
		dump{"logs", h.logs.Bytes()})
	var hooks bytes.Buffer
	for _, r := range rcv.requests() {
		hdr, _ := json.Marshal(r.Header)
		hooks.Write(hdr)
		hooks.Write(r.Body)
	}
	dumps = append(dumps, dump{"webhook requests", hooks.Bytes()})
	var answers bytes.Buffer
	for _, path := range []string{"/api/webhook-endpoints", "/api/webhook-endpoints/" + ep.ID, "/api/notifications"} {
		answers.Write(h.must(http.StatusOK, "GET", path, f.reader, nil).Body)
	}
	answers.Write(h.must(http.StatusOK, "POST", "/api/webhook-endpoints/"+ep.ID+"/rotate-secret", f.admin, nil, "Idempotency-Key", "rot-a").Body)
	dumps = append(dumps, dump{"later answers and a replay", answers.Bytes()})

	for _, d := range dumps {
		for _, s := range secrets {
			if len(s) < 20 {
				t.Fatalf("a secret is too short to search for: %q", s)
			}
			// The secret and its key bytes' base64 (what follows whsec_).
			for _, needle := range []string{s, strings.TrimPrefix(s, secretPrefix)} {
				if bytes.Contains(d.data, []byte(needle)) {
					t.Errorf("%s holds a webhook secret (%.10s…)", d.name, s)
				}
			}
		}
	}
	// The dumps read something: the secret references and the blobs are there.
	if !bytes.Contains(rows.Bytes(), []byte(ep.SecretRef.Name)) || !bytes.Contains(blobs, []byte("large body")) {
		t.Error("the table or blob dump read nothing")
	}
	for _, s := range shown {
		if !strings.Contains(s, `"secret":"whsec_`) {
			t.Error("a rotation did not show its secret")
		}
	}
}

// redisDump is every key and string value of the stack's Redis (the service writes nothing there;
// this proves it).
func redisDump(t *testing.T) []byte {
	t.Helper()
	url, err := testenv.Require("SPINE_REDIS_URL")
	if err != nil {
		t.Fatal(err)
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	ctx := context.Background()
	var out bytes.Buffer
	iter := rdb.Scan(ctx, 0, "*", 1000).Iterator()
	for iter.Next(ctx) {
		out.WriteString(iter.Val())
		if v, err := rdb.Get(ctx, iter.Val()).Bytes(); err == nil {
			out.Write(v)
		}
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// blobDump is the content of every blob of the tenant in both containers.
func blobDump(t *testing.T, tenant string) []byte {
	t.Helper()
	conn, err := testenv.Require("SPINE_STORAGE_CONNECTION_STRING")
	if err != nil {
		t.Fatal(err)
	}
	c, err := azblob.NewClientFromConnectionString(conn, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var out bytes.Buffer
	n := 0
	for _, container := range []string{BodiesContainer, AttachmentsContainer} {
		prefix := tenant + "/"
		pager := c.NewListBlobsFlatPager(container, &azblob.ListBlobsFlatOptions{Prefix: &prefix})
		for pager.More() {
			page, err := pager.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range page.Segment.BlobItems {
				resp, err := c.DownloadStream(ctx, container, *b.Name, nil)
				if err != nil {
					t.Fatal(err)
				}
				_, _ = out.ReadFrom(resp.Body)
				_ = resp.Body.Close()
				n++
			}
		}
	}
	if n != 2 {
		t.Fatalf("%d blobs of the tenant, want 2 (the large body and the attachment)", n)
	}
	return out.Bytes()
}
