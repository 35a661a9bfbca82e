package reporting

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// Tenant A's token on every reporting route with tenant B's ids: 404 not-found (B's rows do not
// exist for A, never 200 or 403 revealing them), and naming B with ?tenantId=: 403
// tenant-mismatch. B's report and run are unchanged afterwards.
func TestIsolation_TenantTokenOnEveryRouteWithAnotherTenantsIDs(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	a, b := h.tenant(), h.tenant()
	h.createReport(a, usersReport("csv"))
	bRep := h.createReport(b, usersReport("csv"))
	bRun := h.runReport(b, bRep.ID, nil)
	h.generate(b, bRun.ID)

	byID := []struct {
		method, path string
		body         any
	}{
		{"GET", "/api/reports/" + bRep.ID, nil},
		{"PATCH", "/api/reports/" + bRep.ID, map[string]any{"name": "taken"}},
		{"DELETE", "/api/reports/" + bRep.ID, nil},
		{"POST", "/api/reports/" + bRep.ID + "/runs", nil},
		{"GET", "/api/reports/" + bRep.ID + "/runs", nil},
		{"GET", "/api/report-runs/" + bRun.ID, nil},
		{"GET", "/api/report-runs/" + bRun.ID + "/download", nil},
	}
	for _, rt := range byID {
		r := h.do(rt.method, rt.path, a.manager, rt.body)
		if r.Code != http.StatusNotFound || r.ProblemCode(t) != "not-found" {
			t.Errorf("A's token, %s %s: %d %s, want 404 not-found", rt.method, rt.path, r.Code, r.Body)
		}
	}
	all := append(byID, []struct {
		method, path string
		body         any
	}{
		{"GET", "/api/reports", nil},
		{"POST", "/api/reports", usersReport("csv")},
	}...)
	for _, rt := range all {
		r := h.do(rt.method, rt.path+"?tenantId="+b.id.String(), a.manager, rt.body)
		if r.Code != http.StatusForbidden || r.ProblemCode(t) != "tenant-mismatch" {
			t.Errorf("A's token naming B, %s %s: %d %s", rt.method, rt.path, r.Code, r.Body)
		}
	}
	list := decode[struct{ Value []reportJSON }](t, h.must(http.StatusOK, "GET", "/api/reports", a.reader, nil).Body)
	if len(list.Value) != 1 || list.Value[0].ID == bRep.ID {
		t.Errorf("A's list: %+v", list.Value)
	}
	got := decode[reportJSON](t, h.must(http.StatusOK, "GET", "/api/reports/"+bRep.ID, b.reader, nil).Body)
	if got.Name != "Users" || got.Version != 1 {
		t.Errorf("B's report changed: %+v", got)
	}
	runs := decode[struct{ Value []runJSON }](t, h.must(http.StatusOK, "GET", "/api/reports/"+bRep.ID+"/runs", b.reader, nil).Body)
	if len(runs.Value) != 1 || runs.Value[0].Status != "Succeeded" {
		t.Errorf("B's runs: %+v", runs.Value)
	}
}

// A SAS URL is a read-only credential for exactly one blob: tenant A's URL with its path altered
// to tenant B's artifact (or to any other name, even A's own) is refused by the storage service
// (Azurite: 403), and so is a write with it.
func TestSAS_ASURLForAsArtifactNeverOpensBs(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	a, b := h.tenant(), h.tenant()
	h.seedFormulaUsers(a.id)
	h.seedFormulaUsers(b.id)
	aRun := h.runReport(a, h.createReport(a, usersReport("csv")).ID, nil)
	bRun := h.runReport(b, h.createReport(b, usersReport("csv")).ID, nil)
	aRun2 := h.runReport(a, h.createReport(a, usersReport("json")).ID, nil)
	for _, x := range []struct {
		tn tenantT
		id string
	}{{a, aRun.ID}, {b, bRun.ID}, {a, aRun2.ID}} {
		h.generate(x.tn, x.id)
	}
	aName, bName, a2Name := h.run(a, aRun.ID).Artifact.Name, h.run(b, bRun.ID).Artifact.Name, h.run(a, aRun2.ID).Artifact.Name
	if !strings.HasPrefix(aName, a.id.String()+"/") || !strings.HasPrefix(bName, b.id.String()+"/") {
		t.Fatalf("blob names %s, %s do not start with their tenant", aName, bName)
	}
	loc := h.must(http.StatusFound, "GET", "/api/report-runs/"+aRun.ID+"/download", a.reader, nil).Header.Get("Location")
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if q.Get("sp") != "r" || q.Get("sr") != "b" || q.Get("se") == "" {
		t.Fatalf("the SAS is not read-only for one blob: %v", q)
	}
	if code, body, _ := fetch(t, loc); code != http.StatusOK || !strings.Contains(string(body), "plain@example.com") {
		t.Fatalf("A's URL: %d %s", code, body)
	}
	// Control: the same name, its path re-encoded as the alterations below are, still opens (so a
	// 403 below is the signature refusing another blob, not the encoding).
	same := *u
	same.RawPath = ""
	if code, body, _ := fetch(t, same.String()); code != http.StatusOK {
		t.Fatalf("A's URL re-encoded: %d %s", code, body)
	}
	for _, other := range []string{bName, a2Name} {
		altered := *u
		altered.Path = strings.Replace(u.Path, aName, other, 1)
		altered.RawPath = ""
		if altered.Path == u.Path {
			t.Fatalf("could not alter %s", u.Path)
		}
		code, body, _ := fetch(t, altered.String())
		if code != http.StatusForbidden {
			t.Errorf("A's SAS on %s: %d %s, want 403", other, code, body)
		}
	}
	req, _ := http.NewRequest(http.MethodPut, loc, strings.NewReader("overwritten"))
	req.Header.Set("x-ms-blob-type", "BlockBlob")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("a write with the read SAS: %d, want 403", resp.StatusCode)
	}
}
