package reporting

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
)

// Odd inputs are 4xx problems or succeed, never 500: parameters of the wrong shape, a null name,
// a NUL in a parameter, a dot-dot id, a huge limit — and a token whose subject is longer than the
// created_by / requested_by columns (200), which is stored as "sha256:<hex>" of the subject.
func TestOddInputs_NeverA500_OverLongSubjectStoredAsItsHash(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	tn := h.tenant()
	longSub := strings.Repeat("s", 250)
	long := h.tokens.MintAs(t, longSub, tn.id.String(), false, ScopeReportRead, ScopeReportManage)
	r := h.createReport(tn, map[string]any{"name": "u", "source": "users-and-roles", "format": "csv"})
	cases := []struct {
		name, method, path, token string
		body                      any
	}{
		{"params array", "POST", "/api/reports", tn.manager, map[string]any{"name": "x", "source": "users-and-roles", "format": "csv", "parameters": []any{1}}},
		{"params nested", "POST", "/api/reports", tn.manager, map[string]any{"name": "x", "source": "activity-by-day", "format": "csv", "parameters": map[string]any{"from": map[string]any{"a": 1}}}},
		{"patch params string", "PATCH", "/api/reports/" + r.ID, tn.manager, map[string]any{"parameters": "x"}},
		{"patch name null", "PATCH", "/api/reports/" + r.ID, tn.manager, map[string]any{"name": nil}},
		{"run params null", "POST", "/api/reports/" + r.ID + "/runs", tn.manager, map[string]any{"parameters": nil}},
		{"run params NUL", "POST", "/api/reports/" + r.ID + "/runs", tn.manager, map[string]any{"parameters": map[string]any{"status": "Active\u0000"}}},
		{"long subject create", "POST", "/api/reports", long, map[string]any{"name": "x", "source": "users-and-roles", "format": "csv"}},
		{"long subject run", "POST", "/api/reports/" + r.ID + "/runs", long, map[string]any{}},
		{"download bad id", "GET", "/api/report-runs/%2e%2e/download", tn.reader, nil},
		{"limit huge", "GET", "/api/reports?limit=99999999999999999999", tn.reader, nil},
	}
	for _, tc := range cases {
		if got := h.do(tc.method, tc.path, tc.token, tc.body); got.Code >= 500 {
			t.Errorf("%s: %d %s", tc.name, got.Code, got.Body)
		}
	}

	sum := sha256.Sum256([]byte(longSub))
	want := "sha256:" + hex.EncodeToString(sum[:])
	rep := decode[reportJSON](t, h.must(http.StatusCreated, "POST", "/api/reports", long, usersReport("csv")).Body)
	if rep.CreatedBy != want {
		t.Errorf("createdBy %q, want %q", rep.CreatedBy, want)
	}
	run := decode[runJSON](t, h.must(http.StatusAccepted, "POST", "/api/reports/"+rep.ID+"/runs", long, nil).Body)
	if run.RequestedBy != want {
		t.Errorf("requestedBy %q, want %q", run.RequestedBy, want)
	}
	// A subject that fits is stored as it is.
	if got := h.createReport(tn, usersReport("csv")).CreatedBy; got != "manager-"+tn.id.String() {
		t.Errorf("createdBy %q, want the subject", got)
	}
}

func TestStoredSubject_FittingAsItIs_OtherwiseItsHash(t *testing.T) {
	hash := func(s string) string { sum := sha256.Sum256([]byte(s)); return "sha256:" + hex.EncodeToString(sum[:]) }
	cases := map[string]string{
		"user-1":                 "user-1",
		strings.Repeat("a", 200): strings.Repeat("a", 200),
		strings.Repeat("a", 201): hash(strings.Repeat("a", 201)),
		strings.Repeat("é", 101): hash(strings.Repeat("é", 101)), // 202 bytes
		"a\x00b":                 hash("a\x00b"),
		"\xff":                   hash("\xff"),
		"":                       hash(""),
	}
	for in, want := range cases {
		if got := storedSubject(in); got != want || len(got) > maxSubject {
			t.Errorf("storedSubject(%q) = %q, want %q", in, got, want)
		}
	}
}
