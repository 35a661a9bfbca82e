package tests

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"spine/shared/contracts"
	"spine/shared/events"
	"spine/shared/functions"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
)

// peakRSS is process pid's peak resident set (VmHWM) in MiB, or 0 where /proc has none.
func peakRSS(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			var kb float64
			fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(l, "VmHWM:")), "%f kB", &kb)
			return kb / 1024
		}
	}
	return 0
}

// waitRun polls the run until it leaves Queued/Running.
func (s *server) waitRun(token, runID string) map[string]any {
	s.t.Helper()
	var run map[string]any
	eventually(s.t, "run "+runID+" to finish", func() bool {
		r := s.call("GET", "/api/report-runs/"+runID, token, nil, nil)
		if r.Code != http.StatusOK {
			s.t.Fatalf("run: %d %s", r.Code, r.Body)
		}
		run = r.JSON(s.t)
		return run["status"] == "Succeeded" || run["status"] == "Failed"
	})
	return run
}

// Reporting through the binary as the host drives it: provisioning a tenant makes identity invite
// its owner, whose events reach ReportingOnIdentityEvent (outbox → drainer → transport → the
// Service Bus function) and the users-and-roles read model; a run requested over HTTP reaches
// ReportGeneration through reporting's own topic; the download answers 302 to a SAS URL that a
// plain HTTP client follows to exactly the recorded bytes; the host's invocation of
// ReportGeneration for the same run again is a no-op. Then 100,000 rows through the same path,
// with the process's peak RSS logged.
func TestReporting_UsersAndRolesThroughTheHost_DownloadBySAS(t *testing.T) {
	s := startServer(t, nil)
	sl := slug("rep")
	tenant := s.register(sl, "standard")
	if r := s.call("POST", "/api/tenants/"+tenant+"/provision", s.admin, nil, nil); r.Code != http.StatusOK {
		t.Fatalf("provision: %d %s", r.Code, r.Body)
	}
	tok := s.mint("reporter", tenant, false, "report.read", "report.manage")
	r := s.call("POST", "/api/reports", tok, map[string]any{"name": "Users", "source": "users-and-roles", "format": "csv"},
		map[string]string{"Idempotency-Key": "users-" + sl})
	if r.Code != http.StatusCreated {
		t.Fatalf("create: %d %s", r.Code, r.Body)
	}
	reportID := r.JSON(t)["id"].(string)

	owner := "owner@" + sl + ".example"
	var run map[string]any
	var body []byte
	eventually(t, "a run listing the owner as tenant-admin", func() bool {
		r := s.call("POST", "/api/reports/"+reportID+"/runs", tok, nil, nil)
		if r.Code != http.StatusAccepted {
			t.Fatalf("run: %d %s", r.Code, r.Body)
		}
		run = s.waitRun(tok, r.JSON(t)["id"].(string))
		if run["status"] != "Succeeded" {
			t.Fatalf("run %v", run)
		}
		body = s.downloadRun(tok, run)
		return strings.Contains(string(body), owner+",Invited,tenant-admin,")
	})
	if !strings.HasPrefix(string(body), "userId,email,status,roleCode,invitedAt,activatedAt\n") {
		t.Fatalf("csv %q", body)
	}

	// The host delivers the run's ReportRequested again: nothing changes.
	runID := run["id"].(string)
	ev, err := events.New("reporting", contracts.ReportRequested, runID, tenant, contracts.ReportRequestedData{TenantID: tenant,
		ReportID: reportID, RunID: runID, Source: "users-and-roles", Format: "csv", Parameters: json.RawMessage(`{}`)}, events.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(ev)
	data, meta := functions.ServiceBusMessage(raw, functions.EncodingDoubleQuoted, functions.ServiceBusMetadata{MessageID: ev.ID,
		DeliveryCount: 2, EnqueuedTimeUTC: time.Now(), ApplicationProperties: map[string]any{"tenantId": tenant}})
	inv, _ := json.Marshal(map[string]any{"Data": map[string]any{functions.ServiceBusBinding: data}, "Metadata": meta})
	if r := s.invoke("ReportGeneration", inv); r.Code != http.StatusOK {
		t.Fatalf("ReportGeneration: %d %s", r.Code, r.Body)
	}
	again := s.waitRun(tok, runID)
	if again["attempts"] != run["attempts"] || again["finishedAt"] != run["finishedAt"] {
		t.Fatalf("the redelivery changed the run: %v → %v", run, again)
	}

	// 100,000 rows: seed the read model as its consumer would (in the tenant's scope), generate
	// through the binary, download through the SAS URL.
	db, err := sqlstore.Open(context.Background(), "reporting", sqlstore.Postgres, s.dbs["reporting"].RuntimeURL, sqlstore.PoolConfig{MaxOpen: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tid := tenancy.MustParseTenantID(tenant)
	if err := db.InTx(context.Background(), sqlstore.TenantScope(tid), func(tx *sqlstore.Tx) error {
		_, err := tx.ExecContext(context.Background(), `INSERT INTO rm_users (tenant_id, user_id, email, status, invited_at, updated_at)
			SELECT $1::uuid, gen_random_uuid(), 'bulk' || lpad(g::text, 6, '0') || '@example.com', 'Active', now(), now()
			FROM generate_series(1, 99999) AS g`, tenant)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	before := peakRSS(s.cmd.Process.Pid)
	r = s.call("POST", "/api/reports/"+reportID+"/runs", tok, nil, nil)
	if r.Code != http.StatusAccepted {
		t.Fatalf("run: %d %s", r.Code, r.Body)
	}
	big := s.waitRun(tok, r.JSON(t)["id"].(string))
	if big["status"] != "Succeeded" || big["rowCount"] != 100000.0 {
		t.Fatalf("big run %v", big)
	}
	s.downloadRun(tok, big)
	art := big["artifact"].(map[string]any)
	t.Logf("100,000-row run %s: %v bytes, sha256 %v, blob %v; the handler's peak RSS %.1f MiB before the run, %.1f MiB after",
		big["id"], art["size"], art["sha256"], art["name"], before, peakRSS(s.cmd.Process.Pid))
}

// downloadRun follows the run's download (302) to its SAS URL with a plain HTTP client and checks
// the bytes against the run's recorded size and SHA-256.
func (s *server) downloadRun(token string, run map[string]any) []byte {
	s.t.Helper()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest("GET", s.base+"/api/report-runs/"+run["id"].(string)+"/download", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || loc == "" {
		s.t.Fatalf("download: %d", resp.StatusCode)
	}
	got, err := http.Get(loc)
	if err != nil {
		s.t.Fatal(err)
	}
	defer got.Body.Close()
	body, err := io.ReadAll(got.Body)
	if err != nil || got.StatusCode != http.StatusOK {
		s.t.Fatalf("GET the SAS URL: %d %v", got.StatusCode, err)
	}
	art := run["artifact"].(map[string]any)
	sum := sha256.Sum256(body)
	if hex.EncodeToString(sum[:]) != art["sha256"] || float64(len(body)) != art["size"] {
		s.t.Fatalf("downloaded %d bytes, sha256 %x; the run recorded %v", len(body), sum, art)
	}
	return body
}
