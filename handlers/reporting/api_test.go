package reporting

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"spine/shared/httpx"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
)

func usersReport(format string) map[string]any {
	return map[string]any{"name": "Users", "source": "users-and-roles", "format": format}
}

func activityReport(format string) map[string]any {
	return map[string]any{"name": "Activity", "source": "activity-by-day", "format": format,
		"parameters": map[string]any{"from": "2026-01-01", "to": "2026-12-31"}}
}

func TestCreateReport_201_GetListPatchDelete(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	tn := h.tenant()
	r := h.do("POST", "/api/reports", tn.manager, activityReport("csv"))
	if r.Code != http.StatusCreated || r.Header.Get("Location") == "" || r.Header.Get("ETag") != `"1"` {
		t.Fatalf("create: %d %v %s", r.Code, r.Header, r.Body)
	}
	rep := decode[reportJSON](t, r.Body)
	if rep.Source != "activity-by-day" || rep.Format != "csv" || rep.Parameters["from"] != "2026-01-01" || rep.TenantID != tn.id.String() ||
		rep.CreatedBy != "manager-"+tn.id.String() {
		t.Fatalf("created %+v", rep)
	}
	got := decode[reportJSON](t, h.must(http.StatusOK, "GET", "/api/reports/"+rep.ID, tn.reader, nil).Body)
	if got.ID != rep.ID || got.Name != "Activity" {
		t.Fatalf("get %+v", got)
	}
	patched := decode[reportJSON](t, h.must(http.StatusOK, "PATCH", "/api/reports/"+rep.ID, tn.manager,
		map[string]any{"name": "Activity (xlsx)", "format": "xlsx"}, "If-Match", `"1"`).Body)
	if patched.Name != "Activity (xlsx)" || patched.Format != "xlsx" || patched.Version != 2 || patched.Parameters["to"] != "2026-12-31" {
		t.Fatalf("patched %+v", patched)
	}
	list := decode[httpx.Page[reportJSON]](t, h.must(http.StatusOK, "GET", "/api/reports", tn.reader, nil).Body)
	if len(list.Value) != 1 || list.Value[0].ID != rep.ID {
		t.Fatalf("list %+v", list)
	}
	h.must(http.StatusNoContent, "DELETE", "/api/reports/"+rep.ID, tn.manager, nil)
	if r := h.do("GET", "/api/reports/"+rep.ID, tn.reader, nil); r.Code != http.StatusNotFound || r.ProblemCode(t) != "not-found" {
		t.Fatalf("deleted report: %d %s", r.Code, r.Body)
	}
	if r := h.do("DELETE", "/api/reports/"+rep.ID, tn.manager, nil); r.Code != http.StatusNotFound {
		t.Fatalf("deleted twice: %d %s", r.Code, r.Body)
	}
	list = decode[httpx.Page[reportJSON]](t, h.must(http.StatusOK, "GET", "/api/reports", tn.reader, nil).Body)
	if len(list.Value) != 0 {
		t.Fatalf("list after delete %+v", list)
	}
}

func TestCreateReport_400_UnknownSource(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	tn := h.tenant()
	r := h.do("POST", "/api/reports", tn.manager, map[string]any{"name": "x", "source": "other-services-tables", "format": "csv"})
	if r.Code != http.StatusBadRequest || r.ProblemCode(t) != "unknown-source" {
		t.Fatalf("%d %s", r.Code, r.Body)
	}
}

func TestCreateReport_400_InvalidReportMembers(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	tn := h.tenant()
	for name, body := range map[string]map[string]any{
		"format":     {"name": "x", "source": "users-and-roles", "format": "pdf"},
		"empty name": {"name": "", "source": "users-and-roles", "format": "csv"},
		"long name":  {"name": strings.Repeat("n", 201), "source": "users-and-roles", "format": "csv"},
		"two lines":  {"name": "a\nb", "source": "users-and-roles", "format": "csv"},
		"tab":        {"name": "a\tb", "source": "users-and-roles", "format": "csv"},
	} {
		if r := h.do("POST", "/api/reports", tn.manager, body); r.Code != http.StatusBadRequest || r.ProblemCode(t) != "invalid-report" {
			t.Errorf("%s: %d %s", name, r.Code, r.Body)
		}
	}
}

func TestCreateReport_400_InvalidParameters(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	tn := h.tenant()
	act := func(p map[string]any) map[string]any {
		return map[string]any{"name": "x", "source": "activity-by-day", "format": "csv", "parameters": p}
	}
	for name, c := range map[string]struct {
		body  map[string]any
		field string
	}{
		"not a date":       {act(map[string]any{"from": "01/02/2026"}), "parameters.from"},
		"impossible date":  {act(map[string]any{"from": "2026-02-30"}), "parameters.from"},
		"not a string":     {act(map[string]any{"from": 20260101}), "parameters.from"},
		"unknown":          {act(map[string]any{"tenantId": "x"}), "parameters.tenantId"},
		"to before from":   {act(map[string]any{"from": "2026-02-01", "to": "2026-01-31"}), "parameters.to"},
		"range too long":   {act(map[string]any{"from": "2025-01-01", "to": "2026-01-02"}), "parameters.to"},
		"event type shape": {act(map[string]any{"eventType": "x'; DROP TABLE rm_users"}), "parameters.eventType"},
		"status not enum": {map[string]any{"name": "x", "source": "users-and-roles", "format": "csv",
			"parameters": map[string]any{"status": "Deleted"}}, "parameters.status"},
	} {
		r := h.do("POST", "/api/reports", tn.manager, c.body)
		if r.Code != http.StatusBadRequest || r.ProblemCode(t) != "invalid-parameters" || !strings.Contains(string(r.Body), c.field) {
			t.Errorf("%s: %d %s, want invalid-parameters naming %s", name, r.Code, r.Body, c.field)
		}
	}
	// A year and a day (366 days: a leap year fits) is the bound, and required ones may wait for the run.
	h.must(http.StatusCreated, "POST", "/api/reports", tn.manager, act(map[string]any{"from": "2028-01-01", "to": "2028-12-31"}))
	h.must(http.StatusCreated, "POST", "/api/reports", tn.manager, act(map[string]any{"from": "2028-01-01"}))
}

func TestCreateReport_IdempotencyKey_ReplaysTheFirstAnswer(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	tn := h.tenant()
	first := h.must(http.StatusCreated, "POST", "/api/reports", tn.manager, usersReport("csv"), "Idempotency-Key", "create-users-1")
	again := h.must(http.StatusCreated, "POST", "/api/reports", tn.manager, usersReport("csv"), "Idempotency-Key", "create-users-1")
	if string(first.Body) != string(again.Body) {
		t.Fatalf("replay differs:\n%s\n%s", first.Body, again.Body)
	}
	list := decode[httpx.Page[reportJSON]](t, h.must(http.StatusOK, "GET", "/api/reports", tn.reader, nil).Body)
	if len(list.Value) != 1 {
		t.Fatalf("%d reports after a replay", len(list.Value))
	}
	if r := h.do("POST", "/api/reports", tn.manager, usersReport("json"), "Idempotency-Key", "create-users-1"); r.Code != http.StatusUnprocessableEntity {
		t.Fatalf("the key reused with another body: %d %s", r.Code, r.Body)
	}
}

func TestPatchReport_412_StaleIfMatch(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	tn := h.tenant()
	rep := h.createReport(tn, usersReport("csv"))
	h.must(http.StatusOK, "PATCH", "/api/reports/"+rep.ID, tn.manager, map[string]any{"name": "v2"}, "If-Match", `"1"`)
	r := h.do("PATCH", "/api/reports/"+rep.ID, tn.manager, map[string]any{"name": "v3"}, "If-Match", `"1"`)
	if r.Code != http.StatusPreconditionFailed || r.ProblemCode(t) != "version-mismatch" {
		t.Fatalf("%d %s", r.Code, r.Body)
	}
}

func TestPatchReport_400_InvalidParametersOrRemovedName(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	tn := h.tenant()
	rep := h.createReport(tn, activityReport("csv"))
	if r := h.do("PATCH", "/api/reports/"+rep.ID, tn.manager, map[string]any{"parameters": map[string]any{"from": "2026-13-01"}}); r.Code != http.StatusBadRequest ||
		r.ProblemCode(t) != "invalid-parameters" {
		t.Errorf("bad date: %d %s", r.Code, r.Body)
	}
	if r := h.do("PATCH", "/api/reports/"+rep.ID, tn.manager, map[string]any{"name": nil}); r.Code != http.StatusBadRequest {
		t.Errorf("name removed: %d %s", r.Code, r.Body)
	}
}

func TestReaderToken_403_OnEveryWritingRoute(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	tn := h.tenant()
	rep := h.createReport(tn, usersReport("csv"))
	for _, rt := range [][2]string{{"POST", "/api/reports"}, {"PATCH", "/api/reports/" + rep.ID}, {"DELETE", "/api/reports/" + rep.ID},
		{"POST", "/api/reports/" + rep.ID + "/runs"}} {
		if r := h.do(rt[0], rt[1], tn.reader, usersReport("csv")); r.Code != http.StatusForbidden || r.ProblemCode(t) != "insufficient-scope" {
			t.Errorf("%s %s with report.read only: %d %s", rt[0], rt[1], r.Code, r.Body)
		}
	}
}

func TestWrites_403_SuspendedTenant(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	tn := h.tenant()
	rep := h.createReport(tn, usersReport("csv"))
	h.dir.Set(tn.id, tenancy.StatusSuspended)
	if r := h.do("POST", "/api/reports/"+rep.ID+"/runs", tn.manager, nil); r.Code != http.StatusForbidden || r.ProblemCode(t) != "tenant-suspended" {
		t.Fatalf("run on a suspended tenant: %d %s", r.Code, r.Body)
	}
	h.must(http.StatusOK, "GET", "/api/reports/"+rep.ID, tn.reader, nil) // reads still work
}

func TestGenerateReport_202_QueuedRunAndReportRequestedInTheOutbox(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	tn := h.tenant()
	rep := h.createReport(tn, activityReport("csv"))
	r := h.do("POST", "/api/reports/"+rep.ID+"/runs", tn.manager, map[string]any{"parameters": map[string]any{"eventType": "UserInvited"}})
	if r.Code != http.StatusAccepted || !strings.HasPrefix(r.Header.Get("Location"), "/api/report-runs/") {
		t.Fatalf("%d %v %s", r.Code, r.Header, r.Body)
	}
	run := decode[runJSON](t, r.Body)
	if run.Status != "Queued" || run.Attempts != 0 || run.ReportID != rep.ID || run.Parameters["from"] != "2026-01-01" ||
		run.Parameters["eventType"] != "UserInvited" || run.Artifact != nil {
		t.Fatalf("run %+v", run)
	}
	var n int
	if err := h.db.InReadTx(context.Background(), sqlstore.TenantScope(tn.id), func(tx *sqlstore.Tx) error {
		return tx.QueryRowContext(context.Background(), `SELECT count(*) FROM outbox WHERE tenant_id = $1 AND event_type = 'ReportRequested'
			AND subject = $2 AND envelope -> 'data' ->> 'runId' = $2`, tn.id.String(), run.ID).Scan(&n)
	}); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("%d ReportRequested rows for the run", n)
	}
}

func TestGenerateReport_400_RequiredParameterMissing(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	tn := h.tenant()
	rep := h.createReport(tn, map[string]any{"name": "x", "source": "activity-by-day", "format": "csv", "parameters": map[string]any{"from": "2026-01-01"}})
	r := h.do("POST", "/api/reports/"+rep.ID+"/runs", tn.manager, nil)
	if r.Code != http.StatusBadRequest || r.ProblemCode(t) != "invalid-parameters" || !strings.Contains(string(r.Body), "parameters.to") {
		t.Fatalf("%d %s", r.Code, r.Body)
	}
	h.must(http.StatusAccepted, "POST", "/api/reports/"+rep.ID+"/runs", tn.manager, map[string]any{"parameters": map[string]any{"to": "2026-01-31"}})
}

func TestGenerateReport_404_DeletedReport(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	tn := h.tenant()
	rep := h.createReport(tn, usersReport("csv"))
	run := h.runReport(tn, rep.ID, nil)
	h.must(http.StatusNoContent, "DELETE", "/api/reports/"+rep.ID, tn.manager, nil)
	if r := h.do("POST", "/api/reports/"+rep.ID+"/runs", tn.manager, nil); r.Code != http.StatusNotFound {
		t.Fatalf("run of a deleted report: %d %s", r.Code, r.Body)
	}
	h.run(tn, run.ID) // its runs stay readable
}

func TestLists_CursorPagesEveryItemOnce(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	tn := h.tenant()
	want := map[string]bool{}
	var rep reportJSON
	for range 5 {
		rep = h.createReport(tn, usersReport("csv"))
		want[rep.ID] = true
	}
	seen := map[string]bool{}
	next := "/api/reports?limit=2"
	for pages := 0; next != ""; pages++ {
		if pages > 5 {
			t.Fatal("the cursor does not advance")
		}
		page := decode[httpx.Page[reportJSON]](t, h.must(http.StatusOK, "GET", next, tn.reader, nil).Body)
		for _, r := range page.Value {
			if seen[r.ID] {
				t.Fatalf("report %s twice", r.ID)
			}
			seen[r.ID] = true
		}
		next = pathOf(t, page.NextLink)
	}
	if len(seen) != len(want) {
		t.Fatalf("paged %d reports, want %d", len(seen), len(want))
	}
	var runs []string
	for range 3 {
		runs = append(runs, h.runReport(tn, rep.ID, nil).ID)
	}
	p1 := decode[httpx.Page[runJSON]](t, h.must(http.StatusOK, "GET", "/api/reports/"+rep.ID+"/runs?limit=2", tn.reader, nil).Body)
	if len(p1.Value) != 2 || p1.Value[0].ID != runs[2] || p1.Value[1].ID != runs[1] || p1.NextLink == "" {
		t.Fatalf("runs page 1 (newest first): %+v", p1)
	}
	p2 := decode[httpx.Page[runJSON]](t, h.must(http.StatusOK, "GET", pathOf(t, p1.NextLink), tn.reader, nil).Body)
	if len(p2.Value) != 1 || p2.Value[0].ID != runs[0] || p2.NextLink != "" {
		t.Fatalf("runs page 2: %+v", p2)
	}
	if r := h.do("GET", "/api/reports?cursor=bm90LWEtdXVpZA", tn.reader, nil); r.Code != http.StatusBadRequest {
		t.Fatalf("a forged cursor: %d %s", r.Code, r.Body)
	}
}

// pathOf is a nextLink's path and query ("" for none).
func pathOf(t *testing.T, link string) string {
	if link == "" {
		return ""
	}
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	return u.RequestURI()
}

func TestDownload_409_ReportNotReady(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	tn := h.tenant()
	run := h.runReport(tn, h.createReport(tn, usersReport("csv")).ID, nil)
	r := h.do("GET", "/api/report-runs/"+run.ID+"/download", tn.reader, nil)
	if r.Code != http.StatusConflict || r.ProblemCode(t) != "report-not-ready" {
		t.Fatalf("%d %s", r.Code, r.Body)
	}
}

func TestDownload_410_ArtifactExpired(t *testing.T) {
	h := newHarness(t, harnessOpts{cfg: ServiceConfig{ArtifactTTL: 2 * time.Hour}})
	tn := h.tenant()
	run := h.runReport(tn, h.createReport(tn, usersReport("csv")).ID, nil)
	h.generate(tn, run.ID)
	h.must(http.StatusFound, "GET", "/api/report-runs/"+run.ID+"/download", tn.reader, nil)
	h.now.set(time.Now().Add(2*time.Hour + time.Minute))
	r := h.do("GET", "/api/report-runs/"+run.ID+"/download", tn.reader, nil)
	if r.Code != http.StatusGone || r.ProblemCode(t) != "artifact-expired" {
		t.Fatalf("%d %s", r.Code, r.Body)
	}
}

func TestNotFound_404_MalformedAndUnknownIDs(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	tn := h.tenant()
	for _, p := range []string{"/api/reports/not-a-uuid", "/api/reports/0193a000-0000-7000-8000-000000000000",
		"/api/report-runs/not-a-uuid", "/api/report-runs/0193a000-0000-7000-8000-000000000000",
		"/api/report-runs/0193a000-0000-7000-8000-000000000000/download", "/api/reports/0193a000-0000-7000-8000-000000000000/runs"} {
		if r := h.do("GET", p, tn.reader, nil); r.Code != http.StatusNotFound || r.ProblemCode(t) != "not-found" {
			t.Errorf("GET %s: %d %s", p, r.Code, r.Body)
		}
	}
}

func TestPlatformAdmin_ReachesATenantWithTenantID(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	tn := h.tenant()
	rep := h.createReport(tn, usersReport("csv"))
	if r := h.do("GET", "/api/reports/"+rep.ID, h.admin(), nil); r.Code != http.StatusBadRequest || r.ProblemCode(t) != "tenant-required" {
		t.Fatalf("without tenantId: %d %s", r.Code, r.Body)
	}
	h.must(http.StatusOK, "GET", "/api/reports/"+rep.ID+"?tenantId="+tn.id.String(), h.admin(), nil)
}
