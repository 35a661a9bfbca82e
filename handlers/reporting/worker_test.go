package reporting

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"spine/shared/blob"
	"spine/shared/contracts"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
)

// download follows the run's download route to its SAS URL and fetches the artifact.
func (h *harness) download(tn tenantT, runID string) []byte {
	h.t.Helper()
	r := h.must(http.StatusFound, "GET", "/api/report-runs/"+runID+"/download", tn.reader, nil)
	code, body, _ := fetch(h.t, r.Header.Get("Location"))
	if code != http.StatusOK {
		h.t.Fatalf("GET the SAS URL: %d %s", code, body)
	}
	return body
}

// seedFormulaUsers writes users whose email and role code a spreadsheet would evaluate.
func (h *harness) seedFormulaUsers(tenant tenancy.TenantID) {
	h.seed(tenant, `INSERT INTO rm_users (tenant_id, user_id, email, status, invited_at, updated_at) VALUES
		($1::uuid, '00000000-0000-4000-8000-0000000000a1', '=HYPERLINK("http://evil")@example.com', 'Invited', '2026-03-01T10:00:00Z', now()),
		($1::uuid, '00000000-0000-4000-8000-0000000000a2', 'plain@example.com', 'Active', '2026-03-01T10:00:00Z', now())`,
		`INSERT INTO rm_user_roles (tenant_id, user_id, role_id, role_code, assigned_at) VALUES
		($1::uuid, '00000000-0000-4000-8000-0000000000a2', '00000000-0000-4000-8000-0000000000b1', '@SUM(A1)', now()),
		($1::uuid, '00000000-0000-4000-8000-0000000000a2', '00000000-0000-4000-8000-0000000000b2', 'member', now())`)
}

func TestGenerate_CSV_RowsInOrder_FormulaCellsDefused(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	tn := h.tenant()
	h.seedFormulaUsers(tn.id)
	run := h.runReport(tn, h.createReport(tn, usersReport("csv")).ID, nil)
	if got := h.generate(tn, run.ID); got != OutcomeGenerated {
		t.Fatalf("outcome %s", got)
	}
	done := h.run(tn, run.ID)
	if done.Status != "Succeeded" || done.Attempts != 1 || done.RowCount == nil || *done.RowCount != 3 || done.Artifact == nil ||
		!strings.HasPrefix(done.Artifact.Name, tn.id.String()+"/reports/") || !strings.HasSuffix(done.Artifact.Name, "/"+run.ID+".csv") {
		t.Fatalf("run %+v", done)
	}
	recs, err := csv.NewReader(bytes.NewReader(h.download(tn, run.ID))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		{"userId", "email", "status", "roleCode", "invitedAt", "activatedAt"},
		{"00000000-0000-4000-8000-0000000000a1", `'=HYPERLINK("http://evil")@example.com`, "Invited", "", "2026-03-01T10:00:00Z", ""},
		{"00000000-0000-4000-8000-0000000000a2", "plain@example.com", "Active", "'@SUM(A1)", "2026-03-01T10:00:00Z", ""},
		{"00000000-0000-4000-8000-0000000000a2", "plain@example.com", "Active", "member", "2026-03-01T10:00:00Z", ""},
	}
	if fmt.Sprint(recs) != fmt.Sprint(want) {
		t.Fatalf("csv:\n%q\nwant\n%q", recs, want)
	}
}

func TestDefuseFormula_EveryTriggerCharacter(t *testing.T) {
	for _, s := range []string{"=1+1", "+1", "-1", "@x", "\tx", "\rx"} {
		if got := defuseFormula(s); got != "'"+s {
			t.Errorf("defuseFormula(%q) = %q", s, got)
		}
	}
	for _, s := range []string{"", "a=1", "1", "'=x"} {
		if got := defuseFormula(s); got != s {
			t.Errorf("defuseFormula(%q) = %q, want it unchanged", s, got)
		}
	}
}

func TestGenerate_JSONLines_OneObjectPerRow(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	tn := h.tenant()
	h.seed(tn.id, `INSERT INTO rm_activity_daily (tenant_id, day, event_type, event_count) VALUES
		($1::uuid, '2026-01-02', 'UserInvited', 3), ($1::uuid, '2026-01-02', 'RoleAssigned', 5),
		($1::uuid, '2026-01-01', 'TenantProvisioned', 1), ($1::uuid, '2027-01-01', 'UserInvited', 9)`)
	run := h.runReport(tn, h.createReport(tn, activityReport("json")).ID, nil)
	h.generate(tn, run.ID)
	body := h.download(tn, run.ID)
	lines := strings.Split(strings.TrimSuffix(string(body), "\n"), "\n")
	want := []map[string]any{
		{"day": "2026-01-01", "eventType": "TenantProvisioned", "count": 1.0},
		{"day": "2026-01-02", "eventType": "RoleAssigned", "count": 5.0},
		{"day": "2026-01-02", "eventType": "UserInvited", "count": 3.0},
	}
	if len(lines) != len(want) {
		t.Fatalf("%d lines: %s", len(lines), body)
	}
	for i, l := range lines {
		var got map[string]any
		if err := json.Unmarshal([]byte(l), &got); err != nil {
			t.Fatalf("line %d is not JSON: %v: %s", i, err, l)
		}
		if fmt.Sprint(got) != fmt.Sprint(want[i]) {
			t.Errorf("line %d = %v, want %v", i, got, want[i])
		}
	}
	if r := h.run(tn, run.ID); r.Artifact.ContentType != "application/x-ndjson" || !strings.HasSuffix(r.Artifact.Name, ".jsonl") {
		t.Fatalf("artifact %+v", r.Artifact)
	}
}

func TestGenerate_XLSX_ReopensWithExcelize(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	tn := h.tenant()
	h.seedFormulaUsers(tn.id)
	run := h.runReport(tn, h.createReport(tn, usersReport("xlsx")).ID, nil)
	h.generate(tn, run.ID)
	body := h.download(tn, run.ID)
	f, err := excelize.OpenReader(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("excelize cannot open the artifact: %v", err)
	}
	defer f.Close()
	rows, err := f.GetRows("Sheet1")
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 4 || rows[0][1] != "email" || rows[1][1] != `'=HYPERLINK("http://evil")@example.com` || rows[2][3] != "'@SUM(A1)" || rows[3][3] != "member" {
		t.Fatalf("rows %q", rows)
	}
	if formula, _ := f.GetCellFormula("Sheet1", "B2"); formula != "" {
		t.Fatalf("B2 is a formula: %q", formula)
	}
}

func TestGenerate_RedeliveryOfAFinishedRun_IsANoOp(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	tn := h.tenant()
	run := h.runReport(tn, h.createReport(tn, usersReport("csv")).ID, nil)
	h.generate(tn, run.ID)
	first := h.run(tn, run.ID)
	if got := h.generate(tn, run.ID); got != OutcomeDone {
		t.Fatalf("second delivery: %s", got)
	}
	if again := h.run(tn, run.ID); again.Attempts != 1 || *again.FinishedAt != *first.FinishedAt || again.Artifact.SHA256 != first.Artifact.SHA256 {
		t.Fatalf("the redelivery changed the run: %+v then %+v", first, again)
	}
	if n := h.outboxCount(tn.id, contracts.ReportGenerated, run.ID); n != 1 {
		t.Fatalf("%d ReportGenerated events", n)
	}
}

func (h *harness) outboxCount(tenant tenancy.TenantID, typ, runID string) int {
	h.t.Helper()
	var n int
	if err := h.db.InReadTx(context.Background(), sqlstore.TenantScope(tenant), func(tx *sqlstore.Tx) error {
		return tx.QueryRowContext(context.Background(), `SELECT count(*) FROM outbox WHERE tenant_id = $1 AND event_type = $2 AND subject = $3`,
			tenant.String(), typ, runID).Scan(&n)
	}); err != nil {
		h.t.Fatal(err)
	}
	return n
}

// claimAs marks the run Running under attempt with a lease until leaseUntil, as a worker that
// then crashed would have left it.
func (h *harness) claimAs(tn tenantT, runID string, attempt int, leaseUntil time.Time) {
	h.t.Helper()
	if err := h.svc.store.Write(context.Background(), tn.id, func(tx *Tx) error {
		return tx.ClaimRun(context.Background(), runID, attempt, leaseUntil, time.Now())
	}); err != nil {
		h.t.Fatal(err)
	}
}

// A delivery of a run another worker holds asks the host to retry; once that worker's lease
// lapses (it crashed after uploading), the run is claimed again under a new attempt and a new
// blob name, and the crashed attempt's blob is deleted.
func TestGenerate_RunHeldByAnotherWorker_RetryLater_ThenReclaimedAfterTheLeaseLapses(t *testing.T) {
	h := newHarness(t, harnessOpts{cfg: ServiceConfig{Lease: time.Minute}})
	tn := h.tenant()
	run := h.runReport(tn, h.createReport(tn, usersReport("csv")).ID, nil)
	now := time.Now().UTC()
	h.now.set(now)
	h.claimAs(tn, run.ID, 1, now.Add(time.Minute))
	stored, err := h.svc.Run(context.Background(), tn.id, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	crashed := artifactName(tn.id, stored, 1)
	if err := h.blobs.PutCreateOnly(context.Background(), Container, crashed, []byte("partial"), "text/csv"); err != nil {
		t.Fatal(err)
	}
	outcome, err := h.svc.Generate(context.Background(), tn.id, run.ID)
	if !errors.Is(err, errRunInProgress) || outcome != OutcomeRetry {
		t.Fatalf("while held: %s %v", outcome, err)
	}
	h.now.set(now.Add(time.Minute + time.Second))
	if got := h.generate(tn, run.ID); got != OutcomeGenerated {
		t.Fatalf("after the lease: %s", got)
	}
	done := h.run(tn, run.ID)
	if done.Attempts != 2 || !strings.HasSuffix(done.Artifact.Name, "/"+run.ID+"-2.csv") {
		t.Fatalf("run %+v", done)
	}
	if _, err := h.blobs.Get(context.Background(), Container, crashed); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("the crashed attempt's blob: %v", err)
	}
}

// failingBlobs reads part of each upload, then fails it as an unavailable storage account would.
type failingBlobs struct {
	Artifacts
	mu    sync.Mutex
	calls int
}

func (f *failingBlobs) PutStreamCreateOnly(_ context.Context, _, _ string, r io.Reader, _ string) (blob.Written, error) {
	f.mu.Lock()
	f.calls++
	f.mu.Unlock()
	_, _ = io.ReadFull(r, make([]byte, 16))
	return blob.Written{}, fmt.Errorf("%w: status 503 ServerBusy", blob.ErrUnavailable)
}

func TestGenerate_ThirdFailedAttempt_FailsTheRunAndEmitsReportFailed(t *testing.T) {
	fb := &failingBlobs{}
	h := newHarness(t, harnessOpts{blobs: fb})
	fb.Artifacts = h.blobs
	tn := h.tenant()
	h.seedUsers(tn.id, 50)
	run := h.runReport(tn, h.createReport(tn, usersReport("csv")).ID, nil)
	for attempt := 1; attempt <= 2; attempt++ {
		outcome, err := h.svc.Generate(context.Background(), tn.id, run.ID)
		if outcome != OutcomeRetry || err == nil {
			t.Fatalf("attempt %d: %s %v", attempt, outcome, err)
		}
		if r := h.run(tn, run.ID); r.Status != "Queued" || r.Attempts != attempt || r.ErrorClass != "storage" {
			t.Fatalf("after attempt %d: %+v", attempt, r)
		}
	}
	if outcome, err := h.svc.Generate(context.Background(), tn.id, run.ID); outcome != OutcomeFailed || err != nil {
		t.Fatalf("attempt 3: %s %v", outcome, err)
	}
	r := h.run(tn, run.ID)
	if r.Status != "Failed" || r.Attempts != 3 || r.ErrorClass != "storage" || r.FinishedAt == nil || r.Artifact != nil {
		t.Fatalf("failed run %+v", r)
	}
	if n := h.outboxCount(tn.id, contracts.ReportFailed, run.ID); n != 1 {
		t.Fatalf("%d ReportFailed events", n)
	}
	if got := h.generate(tn, run.ID); got != OutcomeDone || fb.calls != 3 {
		t.Fatalf("a fourth delivery: %s after %d uploads", got, fb.calls)
	}
	if rr := h.do("GET", "/api/report-runs/"+run.ID+"/download", tn.reader, nil); rr.Code != http.StatusConflict {
		t.Fatalf("download of a failed run: %d %s", rr.Code, rr.Body)
	}
}

func TestGenerate_ExpiresAtFollowsTheEditionsRetention(t *testing.T) {
	h := newHarness(t, harnessOpts{ents: fixedEntitlements{retention: 30 * 24 * time.Hour}})
	tn := h.tenant()
	run := h.runReport(tn, h.createReport(tn, usersReport("csv")).ID, nil)
	h.generate(tn, run.ID)
	r := h.run(tn, run.ID)
	if got := r.ExpiresAt.Sub(*r.FinishedAt); got != 30*24*time.Hour {
		t.Fatalf("expiresAt − finishedAt = %v, want the edition's 720h", got)
	}
	h2 := newHarness(t, harnessOpts{})
	tn2 := h2.tenant()
	run2 := h2.runReport(tn2, h2.createReport(tn2, usersReport("csv")).ID, nil)
	h2.generate(tn2, run2.ID)
	r2 := h2.run(tn2, run2.ID)
	if got := r2.ExpiresAt.Sub(*r2.FinishedAt); got != DefaultArtifactTTL {
		t.Fatalf("without editions: %v, want %v", got, DefaultArtifactTTL)
	}
}

// heapSampler records the peak of the live heap (runtime/metrics) while it runs.
type heapSampler struct {
	stop chan struct{}
	done chan struct{}
	peak uint64
}

func heapObjects() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func startHeapSampler() *heapSampler {
	hs := &heapSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(hs.done)
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			if v := heapObjects(); v > hs.peak {
				hs.peak = v
			}
			select {
			case <-hs.stop:
				return
			case <-t.C:
			}
		}
	}()
	return hs
}

func (hs *heapSampler) Stop() uint64 { close(hs.stop); <-hs.done; return hs.peak }

// peakRSS is the process's peak resident set (VmHWM), in bytes, or 0 where /proc has none.
func peakRSS() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			var kb uint64
			fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(l, "VmHWM:")), "%d kB", &kb)
			return kb << 10
		}
	}
	return 0
}

// A report of 100,000 rows streams from the SQL cursor into Blob storage with a bounded heap, and
// its SAS URL serves exactly the bytes the run recorded (size and SHA-256).
func TestGenerate_100000Rows_BoundedHeap_DownloadIsByteIdentical(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the 100,000-row report takes seconds")
	}
	h := newHarness(t, harnessOpts{})
	tn := h.tenant()
	// 75,000 users, every third with two roles: 50,000 one-row users + 25,000 two-row users.
	h.seedUsers(tn.id, 75000)
	run := h.runReport(tn, h.createReport(tn, usersReport("csv")).ID, nil)
	// The sampler reads live and not yet swept objects: a low GC target keeps the latter few, so
	// the peak is what generation holds, not what the collector has yet to free.
	defer debug.SetGCPercent(debug.SetGCPercent(20))
	runtime.GC()
	base := heapObjects()
	hs := startHeapSampler()
	h.generate(tn, run.ID)
	peak := hs.Stop()
	r := h.run(tn, run.ID)
	if r.RowCount == nil || *r.RowCount != 100000 {
		t.Fatalf("row count %v", r.RowCount)
	}
	growth := int64(peak) - int64(base)
	t.Logf("100,000 rows, %d bytes of CSV: live heap %.1f MiB before, peak %.1f MiB during generation (+%.1f MiB); process peak RSS %.1f MiB",
		r.Artifact.Size, mib(base), mib(peak), float64(growth)/(1<<20), mib(peakRSS()))
	// Bounded: the upload's blocks (2 × 4 MiB) and the writers' buffers, not the artifact.
	if growth > int64(r.Artifact.Size) {
		t.Errorf("the heap grew %d bytes while generating a %d-byte artifact: it is held in memory", growth, r.Artifact.Size)
	}
	loc := h.must(http.StatusFound, "GET", "/api/report-runs/"+run.ID+"/download", tn.reader, nil).Header.Get("Location")
	resp, err := http.Get(loc)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sum := sha256.New()
	n, err := io.Copy(sum, resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("download: %d %v", resp.StatusCode, err)
	}
	if got := hex.EncodeToString(sum.Sum(nil)); got != r.Artifact.SHA256 || n != r.Artifact.Size {
		t.Fatalf("downloaded %d bytes with SHA-256 %s; the run recorded %d bytes, %s", n, got, r.Artifact.Size, r.Artifact.SHA256)
	}
	if cd := resp.Header.Get("Content-Disposition"); !strings.Contains(cd, run.ID+".csv") {
		t.Errorf("Content-Disposition %q", cd)
	}
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// A source that fails after streaming part of its rows (a division by zero at row 5,000) fails
// the attempt as the source's (errorClass source), and nothing is committed under the run's name.
func TestGenerate_SourceFailingMidStream_ClassSource_NoBlob(t *testing.T) {
	const key = "test-failing-midstream"
	sources[key] = &Source{Key: key, Columns: []Column{{"n", KindInt}},
		open: func(ctx context.Context, tx *Tx, _ map[string]string) (*sql.Rows, error) {
			return tx.QueryContext(ctx, `SELECT CASE WHEN g < 5000 THEN g ELSE 1 / (g - g) END FROM generate_series(1, 10000) AS g`)
		}}
	t.Cleanup(func() { delete(sources, key) })
	h := newHarness(t, harnessOpts{})
	tn := h.tenant()
	rep := h.createReport(tn, map[string]any{"name": "broken", "source": key, "format": "csv"})
	run := h.runReport(tn, rep.ID, nil)
	outcome, err := h.svc.Generate(context.Background(), tn.id, run.ID)
	if outcome != OutcomeRetry || err == nil {
		t.Fatalf("%s %v", outcome, err)
	}
	r := h.run(tn, run.ID)
	if r.Status != "Queued" || r.ErrorClass != "source" || r.Attempts != 1 {
		t.Fatalf("run %+v", r)
	}
	stored, err := h.svc.Run(context.Background(), tn.id, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.blobs.Get(context.Background(), Container, artifactName(tn.id, stored, 1)); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("a blob under the failed attempt's name: %v", err)
	}
}
