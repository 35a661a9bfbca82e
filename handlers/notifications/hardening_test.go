package notifications

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"spine/shared/egress"
	"spine/shared/secrets"
	"spine/shared/sqlstore"
)

// Tests of the security review's findings (probes of branch i13-sec, renamed by outcome).

// drainDue runs NotificationRetries until nothing is due, so rows other tests of the package
// left due (the database is shared) do not take a batch this test reasons about.
func (h *harness) drainDue() {
	h.t.Helper()
	for range 50 {
		n, _ := h.svc.RunDue(context.Background())
		if n == 0 {
			return
		}
	}
	h.t.Fatal("notifications stay due after 50 NotificationRetries runs")
}

// One tenant's backlog to a slow webhook endpoint (a tarpit, cut off by the client's timeout)
// does not take the whole batch: another tenant's due notification is attempted in the same run.
func TestRunDue_TenantBacklogDoesNotStarveAnotherTenant(t *testing.T) {
	h := newHarness(t)
	h.drainDue()
	h.svc.http = egress.NewClient(egress.Config{AllowLoopback: true, Timeout: 300 * time.Millisecond})
	release := make(chan struct{})
	tarpit := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(tarpit.Close)
	t.Cleanup(func() { close(release) })
	a, b := h.tenant(), h.tenant()
	ea := h.createEndpoint(a, tarpit.URL+"/hook")
	for range 2 * RetryBatch {
		h.send(a, map[string]any{"channel": "webhook", "recipient": ea.ID, "subject": "x", "body": "x"})
	}
	rb := newReceiver(t)
	eb := h.createEndpoint(b, rb.URL+"/hook")
	h.clock.move(time.Millisecond)
	nb := h.send(b, map[string]any{"channel": "webhook", "recipient": eb.ID, "subject": "victim", "body": "x"})
	h.clock.move(time.Second)
	n, _ := h.svc.RunDue(context.Background())
	if len(rb.requests()) != 1 {
		got := h.get(b, nb.ID)
		t.Fatalf("tenant B's due notification was not attempted (run attempted %d; B's: %s, %d attempts)", n, got.Status, got.Attempts)
	}
	page := decode[struct{ Value []notificationJSON }](t, h.must(http.StatusOK, "GET", "/api/notifications?limit=200", a.reader, nil).Body)
	var ofA int
	for _, x := range page.Value {
		if x.Attempts > 0 {
			ofA++
		}
	}
	if ofA > RetryPerTenant {
		t.Fatalf("tenant A had %d notifications attempted in one run, more than RetryPerTenant %d", ofA, RetryPerTenant)
	}
}

// ClaimDue claims no more than its limit, however many are due (150 due, limit 50 → 50).
func TestClaimDue_ClaimsAtMostItsLimit(t *testing.T) {
	h := newHarness(t)
	h.drainDue()
	var fs []tenantFixture
	for range 3 * RetryBatch / RetryPerTenant {
		fs = append(fs, h.tenant())
	}
	for _, f := range fs {
		for range RetryPerTenant {
			h.send(f, map[string]any{"channel": "inApp", "recipient": "0193a7b0-0000-7000-8000-00000000000a", "subject": "x", "body": "x"})
		}
	}
	h.clock.move(time.Second)
	now := h.clock.now()
	due, err := h.svc.store.ClaimDue(context.Background(), now, now.Add(attemptLease), RetryBatch, RetryPerTenant)
	if err != nil {
		t.Fatal(err)
	}
	if len(due) != RetryBatch {
		t.Fatalf("ClaimDue(limit %d) claimed %d of %d due", RetryBatch, len(due), len(fs)*RetryPerTenant)
	}
}

// A batch outlasts nothing it should not: every claimed row's attempt ends (each bounded by
// attemptTimeout, retryWorkers at once) before its lease does, and before the Functions timeout.
func TestRetryBatch_EndsWithinTheLease(t *testing.T) {
	rounds := (RetryBatch + retryWorkers - 1) / retryWorkers
	worst := time.Duration(rounds) * attemptTimeout
	if worst >= attemptLease || retryStartBy+attemptTimeout >= attemptLease || attemptTimeout <= deliveryTimeout {
		t.Fatalf("a batch of %d (%d rounds × %v = %v, last start %v) does not fit the %v lease, or attemptTimeout %v ≤ the webhook's %v",
			RetryBatch, rounds, attemptTimeout, worst, retryStartBy, attemptLease, attemptTimeout, deliveryTimeout)
	}
	if worst+attemptTimeout > 5*time.Minute/2 {
		t.Fatalf("a batch (%v) is not well inside the 5 min Functions timeout", worst)
	}
}

// countingVault counts the secrets written through it.
type countingVault struct {
	Vault
	sets atomic.Int32
}

func (v *countingVault) Set(ctx context.Context, name, value, contentType string, tags map[string]string) (secrets.Secret, error) {
	v.sets.Add(1)
	return v.Vault.Set(ctx, name, value, contentType, tags)
}

// A webhook URL longer than 2048 is refused with 400 invalid-url on create and on patch, before
// any Key Vault write (before: the database refused it after the secret was written → 500).
func TestWebhookEndpoints_400InvalidURL_TooLong_BeforeKeyVault(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	e := h.createEndpoint(f, "https://example.com/ok")
	cv := &countingVault{Vault: h.svc.vault}
	h.svc.vault = cv
	long := "https://example.com/" + strings.Repeat("a", MaxURLLength)
	r := h.do("POST", "/api/webhook-endpoints", f.admin, map[string]any{"url": long})
	if r.Code != http.StatusBadRequest || !strings.Contains(string(r.Body), "invalid-url") {
		t.Errorf("POST long url: %d %s", r.Code, r.Body)
	}
	r = h.do("PATCH", "/api/webhook-endpoints/"+e.ID, f.admin, map[string]any{"url": long})
	if r.Code != http.StatusBadRequest || !strings.Contains(string(r.Body), "invalid-url") {
		t.Errorf("PATCH long url: %d %s", r.Code, r.Body)
	}
	if n := cv.sets.Load(); n != 0 {
		t.Errorf("%d Key Vault secrets written for refused URLs", n)
	}
	// At the bound it is accepted.
	atBound := "https://example.com/" + strings.Repeat("a", MaxURLLength-len("https://example.com/"))
	h.must(http.StatusOK, "PATCH", "/api/webhook-endpoints/"+e.ID, f.admin, map[string]any{"url": atBound})
}

// POST /api/notifications answers (and so its Idempotency-Key record stores) the notification
// without its body; the replay answers the same; GET returns the body.
func TestSend_202WithoutBody_IdempotencyRecordHoldsNoBody(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	marker := "body-marker-" + strings.Repeat("z", 20<<10)
	req := map[string]any{"channel": "inApp", "recipient": "0193a7b0-0000-7000-8000-00000000000b", "subject": "s", "body": marker}
	first := h.must(http.StatusAccepted, "POST", "/api/notifications", f.admin, req, "Idempotency-Key", "big-1")
	again := h.must(http.StatusAccepted, "POST", "/api/notifications", f.admin, req, "Idempotency-Key", "big-1")
	for _, r := range []string{string(first.Body), string(again.Body)} {
		if strings.Contains(r, "body-marker-") || strings.Contains(r, `"body"`) {
			t.Fatalf("the 202 answer carries the body: %.200s", r)
		}
	}
	a, b := decode[notificationJSON](t, first.Body), decode[notificationJSON](t, again.Body)
	if a.ID != b.ID || a.BodySize != int64(len(marker)) || a.BodySHA256 == "" || again.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("first %+v, replay %+v %v", a, b, again.Header)
	}
	owner := testDB.OpenOwner(t, sqlstore.PoolConfig{MaxOpen: 1})
	var hits int
	if err := owner.QueryRow(`SELECT count(*) FROM idempotency_keys WHERE position($1::bytea IN response_body) > 0`,
		[]byte("body-marker-")).Scan(&hits); err != nil || hits != 0 {
		t.Fatalf("the body is stored in an idempotency record (%d, %v)", hits, err)
	}
	if got := h.get(f, a.ID); got.Body == nil || *got.Body != marker {
		t.Fatal("GET does not return the body")
	}
}
