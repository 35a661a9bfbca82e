package tests

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"spine/shared/blob"
	"spine/shared/retention"
	"spine/shared/retention/retentiontest"
	"spine/shared/sqlstore"
	"spine/shared/testenv"
)

// ownerExec runs query as svc's owner role in platform scope (rows the API would stamp now, aged
// the way a year would age them).
func (s *server) ownerExec(svc, query string, args ...any) {
	s.t.Helper()
	db, err := sqlstore.Open(context.Background(), svc, sqlstore.Postgres, s.dbs[svc].OwnerURL, sqlstore.PoolConfig{MaxOpen: 1})
	if err != nil {
		s.t.Fatal(err)
	}
	defer db.Close()
	if err := db.InTx(context.Background(), sqlstore.PlatformScope(), func(tx *sqlstore.Tx) error {
		_, err := tx.ExecContext(context.Background(), query, args...)
		return err
	}); err != nil {
		s.t.Fatal(err)
	}
}

// sweepEvidence is the ledger's evidence of sweep under partition (a tenant id, or "" for the
// platform's).
func sweepEvidence(t *testing.T, partition, sweep string) []retention.Evidence {
	t.Helper()
	all, err := retentiontest.Ledger(t).Evidence(context.Background(), partition, time.Time{}, time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []retention.Evidence
	for _, ev := range all {
		if ev.Sweep == sweep {
			out = append(out, ev)
		}
	}
	return out
}

// The report artifact lifecycle through the binary as the host drives it: of two Succeeded runs,
// the one whose expiresAt has passed (aged in SQL) has its blob deleted and is marked Expired by
// the host's ReportArtifactLifecycle timer invocation (its download 410 artifact-expired, the
// ledger's evidence under the tenant counting it); the other is untouched and still downloads.
func TestReportArtifactLifecycle_TimerThroughTheHost_ExpiresDueRunsOnly(t *testing.T) {
	s := startServer(t, nil)
	sl := slug("life")
	tenant := s.register(sl, "standard")
	if r := s.call("POST", "/api/tenants/"+tenant+"/provision", s.admin, nil, nil); r.Code != http.StatusOK {
		t.Fatalf("provision: %d %s", r.Code, r.Body)
	}
	tok := s.mint("reporter", tenant, false, "report.read", "report.manage")
	r := s.call("POST", "/api/reports", tok, map[string]any{"name": "Users", "source": "users-and-roles", "format": "csv"}, nil)
	if r.Code != http.StatusCreated {
		t.Fatalf("create: %d %s", r.Code, r.Body)
	}
	reportID := r.JSON(t)["id"].(string)
	var runs []map[string]any
	for range 2 {
		r := s.call("POST", "/api/reports/"+reportID+"/runs", tok, nil, nil)
		if r.Code != http.StatusAccepted {
			t.Fatalf("run: %d %s", r.Code, r.Body)
		}
		run := s.waitRun(tok, r.JSON(t)["id"].(string))
		if run["status"] != "Succeeded" {
			t.Fatalf("run %v", run)
		}
		runs = append(runs, run)
	}
	due, kept := runs[0], runs[1]
	s.ownerExec("reporting", `UPDATE report_runs SET expires_at = now() - interval '1 minute' WHERE tenant_id = $1 AND run_id = $2`,
		tenant, due["id"])

	if res := s.invoke("ReportArtifactLifecycle", hostTimerBody(t, "ReportArtifactLifecycle")); res.Code != http.StatusOK {
		t.Fatalf("timer: %d %s", res.Code, res.Body)
	}
	got := s.call("GET", "/api/report-runs/"+due["id"].(string), tok, nil, nil).JSON(t)
	if got["status"] != "Expired" || got["expiredAt"] == nil || got["artifact"] != nil {
		t.Fatalf("the due run: %v", got)
	}
	if r := s.call("GET", "/api/report-runs/"+due["id"].(string)+"/download", tok, nil, nil); r.Code != http.StatusGone ||
		!strings.Contains(string(r.Body), "artifact-expired") {
		t.Fatalf("download of the Expired run: %d %s", r.Code, r.Body)
	}
	conn, _ := testenv.Require("SPINE_STORAGE_CONNECTION_STRING")
	bs, err := blob.Open(conn, "")
	if err != nil {
		t.Fatal(err)
	}
	name := due["artifact"].(map[string]any)["name"].(string)
	if _, err := bs.Properties(context.Background(), "reports", name); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("the expired artifact's blob: %v", err)
	}
	if again := s.waitRun(tok, kept["id"].(string)); again["status"] != "Succeeded" {
		t.Fatalf("the run not due: %v", again)
	}
	s.downloadRun(tok, kept)
	evs := sweepEvidence(t, tenant, "ReportArtifactLifecycle")
	if len(evs) != 1 || evs[0].Affected != 1 || evs[0].Action != retention.ActionExpire {
		t.Fatalf("evidence %+v", evs)
	}
}

// Token pruning through the binary as the host drives it: an expired revoked-token record is
// deleted by the host's AuthzTokenPrune timer invocation, an unexpired one kept, and the ledger's
// platform evidence names the range.
func TestAuthzTokenPrune_TimerThroughTheHost_PrunesExpiredWithEvidence(t *testing.T) {
	s := startServer(t, nil)
	tenant := s.register(slug("prune"), "standard")
	client := "00000000-0000-4000-8000-00000000c11e"
	s.ownerExec("authz", `INSERT INTO revoked_tokens (tenant_id, jti, client_id, expires_at) VALUES
		($1, gen_random_uuid(), $2, now() - interval '1 minute'), ($1, gen_random_uuid(), $2, now() + interval '1 hour')`, tenant, client)
	if res := s.invoke("AuthzTokenPrune", hostTimerBody(t, "AuthzTokenPrune")); res.Code != http.StatusOK {
		t.Fatalf("timer: %d %s", res.Code, res.Body)
	}
	if n := s.ownerCount(t, "authz", `SELECT count(*) FROM revoked_tokens WHERE tenant_id = $1 AND expires_at < now()`, tenant); n != 0 {
		t.Errorf("%d expired records left", n)
	}
	if n := s.ownerCount(t, "authz", `SELECT count(*) FROM revoked_tokens WHERE tenant_id = $1`, tenant); n != 1 {
		t.Errorf("%d records left, want the unexpired one", n)
	}
	found := false
	for _, ev := range sweepEvidence(t, "", "AuthzTokenPrune") {
		if ev.Unit == "revoked_tokens" && strings.Contains(ev.Range.From+ev.Range.To, tenant) && ev.Affected >= 1 {
			found = true
		}
	}
	if !found {
		t.Error("no platform evidence of the pruned record's range")
	}
}
