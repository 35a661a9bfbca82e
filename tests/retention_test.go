package tests

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"spine/shared/auth"
	"spine/shared/sqlstore"
)

// The retention engine through the binary: the operator API (legal holds, sweeps, runs,
// evidence, tenant overrides) and the platform sweeps invoked as the host invokes timers.

// ownerCount runs a count query as svc's owner role in platform scope (every tenant's rows).
func (s *server) ownerCount(t *testing.T, svc, query string, args ...any) int {
	t.Helper()
	db, err := sqlstore.Open(context.Background(), svc, sqlstore.Postgres, s.dbs[svc].OwnerURL, sqlstore.PoolConfig{MaxOpen: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.InReadTx(context.Background(), sqlstore.PlatformScope(), func(tx *sqlstore.Tx) error {
		return tx.QueryRowContext(context.Background(), query, args...).Scan(&n)
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestLegalHolds_CreateListDelete_AndTheirEdges(t *testing.T) {
	s := startServer(t, nil)
	tenant := s.register(slug("hold"), "standard")

	r := s.call("POST", "/api/ops/legal-holds", s.admin, map[string]any{"tenantId": tenant, "scope": "all", "reason": "litigation 42"}, nil)
	if r.Code != http.StatusCreated || r.Hdr.Get("Location") == "" {
		t.Fatalf("create: %d %s", r.Code, r.Body)
	}
	hold := r.JSON(t)
	if hold["tenantId"] != tenant || hold["scope"] != "all" || hold["createdBy"] != "e2e" || hold["id"] == "" {
		t.Fatalf("hold = %v", hold)
	}
	if l := s.call("GET", "/api/ops/legal-holds?tenantId="+tenant, s.admin, nil, nil); l.Code != http.StatusOK || !strings.Contains(string(l.Body), hold["id"].(string)) {
		t.Fatalf("list: %d %s", l.Code, l.Body)
	}
	ret := s.call("GET", "/api/ops/retention/"+tenant, s.admin, nil, nil)
	if ret.Code != http.StatusOK || !strings.Contains(string(ret.Body), `"held":true`) {
		t.Fatalf("retention view while held: %d %s", ret.Code, ret.Body)
	}

	tenantTok := s.token(tenant, false)
	for name, c := range map[string]struct {
		method, path, token string
		body                any
		code                int
		problem             string
	}{
		"no token":           {"POST", "/api/ops/legal-holds", "", map[string]any{"tenantId": tenant, "scope": "all", "reason": "x"}, 401, ""},
		"tenant token":       {"POST", "/api/ops/legal-holds", tenantTok, map[string]any{"tenantId": tenant, "scope": "all", "reason": "x"}, 403, "platform-admin-required"},
		"bad tenant id":      {"POST", "/api/ops/legal-holds", s.admin, map[string]any{"tenantId": "nope", "scope": "all", "reason": "x"}, 400, "invalid-tenant-id"},
		"unknown tenant":     {"POST", "/api/ops/legal-holds", s.admin, map[string]any{"tenantId": uuid.NewString(), "scope": "all", "reason": "x"}, 404, "tenant-not-found"},
		"unknown scope":      {"POST", "/api/ops/legal-holds", s.admin, map[string]any{"tenantId": tenant, "scope": "everything", "reason": "x"}, 400, "invalid-scope"},
		"no reason":          {"POST", "/api/ops/legal-holds", s.admin, map[string]any{"tenantId": tenant, "scope": "all", "reason": "  "}, 400, "invalid-reason"},
		"control character":  {"POST", "/api/ops/legal-holds", s.admin, map[string]any{"tenantId": tenant, "scope": "all", "reason": "a\u0000b"}, 400, "invalid-input"},
		"unknown member":     {"POST", "/api/ops/legal-holds", s.admin, map[string]any{"tenantId": tenant, "scope": "all", "reason": "x", "until": "never"}, 400, ""},
		"delete unknown":     {"DELETE", "/api/ops/legal-holds/" + uuid.NewString(), s.admin, nil, 404, "legal-hold-not-found"},
		"delete not a uuid":  {"DELETE", "/api/ops/legal-holds/'%20or%20'1", s.admin, nil, 404, "legal-hold-not-found"},
		"evidence no tenant": {"GET", "/api/ops/evidence", s.admin, nil, 400, "tenant-id-required"},
		"evidence bad range": {"GET", "/api/ops/evidence?tenantId=" + tenant + "&from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z", s.admin, nil, 400, "invalid-time-range"},
		"runs unknown sweep": {"GET", "/api/ops/sweeps/NoSuchSweep/runs", s.admin, nil, 404, "sweep-not-found"},
		"override shorter":   {"PUT", "/api/ops/retention/" + tenant + "/notifications", s.admin, map[string]any{"days": 10}, 409, "retention-shorter-than-edition"},
		"override bad days":  {"PUT", "/api/ops/retention/" + tenant + "/notifications", s.admin, map[string]any{"days": 0}, 400, "invalid-days"},
		"override bad kind":  {"PUT", "/api/ops/retention/" + tenant + "/secrets", s.admin, map[string]any{"days": 400}, 404, "retention-kind-not-found"},
	} {
		r := s.call(c.method, c.path, c.token, c.body, nil)
		if r.Code != c.code || (c.problem != "" && !strings.Contains(string(r.Body), `"code":"`+c.problem+`"`)) {
			t.Errorf("%s: %d %s; want %d %s", name, r.Code, r.Body, c.code, c.problem)
		}
		if r.Code >= 400 && r.Code != 401 && r.Hdr.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: content type %q", name, r.Hdr.Get("Content-Type"))
		}
	}
	// A token without platform.ops is refused even for a platform admin.
	noOps, err := s.signer.Mint(auth.TokenClaims{Issuer: s.issuer, Audience: audience, Subject: "e2e", Scopes: []string{"tenant.read"},
		PlatformAdmin: true}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if r := s.call("GET", "/api/ops/legal-holds", noOps, nil, nil); r.Code != http.StatusForbidden {
		t.Errorf("platform admin without platform.ops: %d %s", r.Code, r.Body)
	}

	if d := s.call("DELETE", "/api/ops/legal-holds/"+hold["id"].(string), s.admin, nil, nil); d.Code != http.StatusNoContent {
		t.Fatalf("delete: %d %s", d.Code, d.Body)
	}
	if d := s.call("DELETE", "/api/ops/legal-holds/"+hold["id"].(string), s.admin, nil, nil); d.Code != http.StatusNotFound {
		t.Fatalf("delete again: %d %s", d.Code, d.Body)
	}
	// The release is kept: who and when.
	if l := s.call("GET", "/api/ops/legal-holds?tenantId="+tenant, s.admin, nil, nil); !strings.Contains(string(l.Body), `"releasedBy":"e2e"`) ||
		!strings.Contains(string(l.Body), `"releasedAt":"`) {
		t.Fatalf("released hold: %s", l.Body)
	}
	if ret := s.call("GET", "/api/ops/retention/"+tenant, s.admin, nil, nil); strings.Contains(string(ret.Body), `"held":true`) {
		t.Fatalf("retention view after the release: %s", ret.Body)
	}

	// A tenant override only ever lengthens: 400 days of notifications, then removed.
	if r := s.call("PUT", "/api/ops/retention/"+tenant+"/notifications", s.admin, map[string]any{"days": 400}, nil); r.Code != http.StatusOK {
		t.Fatalf("override: %d %s", r.Code, r.Body)
	}
	ret = s.call("GET", "/api/ops/retention/"+tenant, s.admin, nil, nil)
	if !strings.Contains(string(ret.Body), `"overrideDays":400`) || !strings.Contains(string(ret.Body), `"effectiveDays":400`) {
		t.Fatalf("retention view with override: %s", ret.Body)
	}
	if r := s.call("DELETE", "/api/ops/retention/"+tenant+"/notifications", s.admin, nil, nil); r.Code != http.StatusNoContent {
		t.Fatalf("delete override: %d %s", r.Code, r.Body)
	}
}

// TestIdempotencyPrune_OnItsTimer_RemovesOldRecordsWithEvidence shrinks every period
// (SPINE_RETENTION_SCALE=1e-9: 24 hours are 86 µs), so the records written by the registrations
// are due at once; the timer invoked as the host invokes it removes them, and the ledger and the
// ops API show the run and its evidence.
func TestIdempotencyPrune_OnItsTimer_RemovesOldRecordsWithEvidence(t *testing.T) {
	s := startServer(t, map[string]string{"SPINE_RETENTION_SCALE": "1e-9"})
	for i := range 3 {
		sl := slug("idem")
		r := s.call("POST", "/api/tenants", s.admin, map[string]string{"name": "Idem " + sl, "slug": sl, "editionCode": "standard",
			"ownerEmail": "o@" + sl + ".example"}, map[string]string{"Idempotency-Key": "k" + sl})
		if r.Code != http.StatusCreated {
			t.Fatalf("register %d: %d %s", i, r.Code, r.Body)
		}
	}
	before := s.ownerCount(t, "tenants", `SELECT count(*) FROM idempotency_keys`)
	if before < 3 {
		t.Fatalf("%d idempotency records, want the 3 registrations'", before)
	}
	inv := s.invoke("IdempotencyPrune", hostTimerBody(t, "IdempotencyPrune"))
	if inv.Code != http.StatusOK {
		t.Fatalf("timer: %d %s", inv.Code, inv.Body)
	}
	if after := s.ownerCount(t, "tenants", `SELECT count(*) FROM idempotency_keys`); after != 0 {
		t.Fatalf("%d idempotency records left, want 0", after)
	}
	ev := s.call("GET", "/api/ops/evidence?tenantId=platform&limit=5000", s.admin, nil, nil)
	var page struct {
		Value []struct {
			Sweep    string `json:"sweep"`
			Unit     string `json:"unit"`
			Affected int    `json:"affected"`
			RunID    string `json:"runId"`
		} `json:"value"`
	}
	if ev.Code != http.StatusOK || json.Unmarshal(ev.Body, &page) != nil {
		t.Fatalf("evidence: %d %s", ev.Code, ev.Body)
	}
	got, runID := 0, ""
	for _, e := range page.Value {
		if e.Sweep == "IdempotencyPrune" && e.Unit == "tenants" {
			got += e.Affected
			runID = e.RunID
		}
	}
	if got < before {
		t.Fatalf("evidence of tenants' idempotency records: %d, want ≥ %d (the ledger is shared by the tests on this stack)", got, before)
	}
	// Paged: limit=1 gives a nextLink whose cursor leads to the next row; a forged cursor is 400.
	p1 := s.call("GET", "/api/ops/evidence?tenantId=platform&limit=1", s.admin, nil, nil)
	next, _ := p1.JSON(t)["nextLink"].(string)
	if p1.Code != http.StatusOK || next == "" {
		t.Fatalf("evidence page 1: %d %s", p1.Code, p1.Body)
	}
	if p2 := s.call("GET", next, s.admin, nil, nil); p2.Code != http.StatusOK || string(p2.Body) == string(p1.Body) {
		t.Fatalf("evidence page 2 (%s): %d %s", next, p2.Code, p2.Body)
	}
	if bad := s.call("GET", "/api/ops/evidence?tenantId=platform&cursor=eyJ4Ijox", s.admin, nil, nil); bad.Code != http.StatusBadRequest ||
		!strings.Contains(string(bad.Body), `"code":"invalid-cursor"`) {
		t.Fatalf("forged cursor: %d %s", bad.Code, bad.Body)
	}
	runs := s.call("GET", "/api/ops/sweeps/IdempotencyPrune/runs?limit=100", s.admin, nil, nil)
	if runs.Code != http.StatusOK || !strings.Contains(string(runs.Body), runID) {
		t.Fatalf("runs: %d %s", runs.Code, runs.Body)
	}
	sw := s.call("GET", "/api/ops/sweeps", s.admin, nil, nil)
	for _, name := range []string{"IdempotencyPrune", "InboxPrune", "LedgerRetention"} {
		if !strings.Contains(string(sw.Body), `"name":"`+name+`"`) {
			t.Errorf("GET /api/ops/sweeps lacks %s: %s", name, sw.Body)
		}
	}
	// The inbox: ids older than seven days go (the database's own floor: the runtime role deletes
	// through spine_inbox_prune, which refuses younger ones, whatever the scale); recent ones stay.
	owner, err := sqlstore.Open(context.Background(), "audit", sqlstore.Postgres, s.dbs["audit"].OwnerURL, sqlstore.PoolConfig{MaxOpen: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer owner.Close()
	old := time.Now().Add(-30 * 24 * time.Hour)
	if err := owner.InTx(context.Background(), sqlstore.PlatformScope(), func(tx *sqlstore.Tx) error {
		for range 5 {
			if _, err := tx.ExecContext(context.Background(), `INSERT INTO inbox (tenant_id, consumer, event_id, event_type, received_at)
				VALUES ($1, 'e2e', $2, 'TenantRegistered', $3)`, uuid.NewString(), uuid.NewString(), old); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	recent := s.ownerCount(t, "audit", `SELECT count(*) FROM inbox WHERE received_at > now() - interval '1 day'`)
	if inv := s.invoke("InboxPrune", hostTimerBody(t, "InboxPrune")); inv.Code != http.StatusOK {
		t.Fatalf("inbox timer: %d %s", inv.Code, inv.Body)
	}
	if n := s.ownerCount(t, "audit", `SELECT count(*) FROM inbox WHERE consumer = 'e2e'`); n != 0 {
		t.Errorf("audit's inbox keeps %d ids older than seven days", n)
	}
	if n := s.ownerCount(t, "audit", `SELECT count(*) FROM inbox WHERE received_at > now() - interval '1 day'`); n < recent || recent == 0 {
		t.Errorf("recent inbox ids: %d before, %d after; want all kept", recent, n)
	}
}
