package tests

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// The audit sweeps through the binary as the host drives them, with SPINE_RETENTION_SCALE at its
// smallest (the 7-year audit retention is a fraction of a second): the AuditExport timer writes the
// tenant's chain to the archive, which the export verifier re-reads and finds intact; the AuditPurge
// timer then removes the exported entries and records the purge in the chain, which still verifies
// from its first retained entry, anchored at the last purged export.
func TestAudit_ExportAndPurgeTimers_ChainVerifiesFromTheArchiveAnchor(t *testing.T) {
	s := startServer(t, map[string]string{"SPINE_RETENTION_SCALE": "1e-9"})
	tenant := s.register(slug("auditret"), "standard")
	if r := s.call("POST", "/api/tenants/"+tenant+"/provision", s.admin, nil, nil); r.Code != http.StatusOK {
		t.Fatalf("provision: %d %s", r.Code, r.Body)
	}
	record := func(i int) {
		t.Helper()
		r := s.call("POST", "/api/audit-entries?tenantId="+tenant, s.admin, map[string]any{
			"actor": map[string]string{"type": "user", "id": "alice"}, "action": "document.shared",
			"resource": map[string]string{"type": "document", "id": "doc-1"}, "payload": map[string]any{"i": i, "html": "<b>&</b>"}}, nil)
		if r.Code != http.StatusCreated {
			t.Fatalf("record: %d %s", r.Code, r.Body)
		}
	}
	for i := range 3 {
		record(i)
	}
	if r := s.invoke("AuditExport", hostTimerBody(t, "AuditExport")); r.Code != http.StatusOK {
		t.Fatalf("AuditExport: %d %s", r.Code, r.Body)
	}
	var ex struct {
		OK       bool
		Exports  int
		Entries  int
		FirstSeq int64
		Problems []json.RawMessage
	}
	r := s.call("GET", "/api/audit-entries/exports/verify?tenantId="+tenant, s.admin, nil, nil)
	if r.Code != http.StatusOK || json.Unmarshal(r.Body, &ex) != nil || !ex.OK || ex.Exports < 1 || ex.Entries < 3 || ex.FirstSeq != 1 {
		t.Fatalf("exports verify: %d %s", r.Code, r.Body)
	}
	record(99) // the head: never purged

	type verify struct {
		OK         bool
		FirstSeq   int64
		AnchoredAt *struct {
			Seq  int64
			Blob string
		}
	}
	var v verify
	eventually(t, "AuditPurge to remove the exported entries", func() bool {
		if r := s.invoke("AuditPurge", hostTimerBody(t, "AuditPurge")); r.Code != http.StatusOK {
			t.Fatalf("AuditPurge: %d %s", r.Code, r.Body)
		}
		r := s.call("GET", "/api/audit-entries/verify?tenantId="+tenant, s.admin, nil, nil)
		if r.Code != http.StatusOK || json.Unmarshal(r.Body, &v) != nil {
			t.Fatalf("verify: %d %s", r.Code, r.Body)
		}
		return v.FirstSeq > 1
	})
	if !v.OK || v.AnchoredAt == nil || v.AnchoredAt.Seq != v.FirstSeq-1 || !strings.HasPrefix(v.AnchoredAt.Blob, "audit-archive/"+tenant+"/audit/") {
		t.Fatalf("verify after the purge: %+v", v)
	}
	r = s.call("GET", "/api/audit-entries?action=audit.entries-purged&tenantId="+tenant, s.admin, nil, nil)
	if r.Code != http.StatusOK || !strings.Contains(string(r.Body), `"audit.entries-purged"`) {
		t.Fatalf("the purge entry: %d %s", r.Code, r.Body)
	}
	if r := s.call("GET", "/api/audit-entries/exports/verify?tenantId="+tenant, s.admin, nil, nil); r.Code != http.StatusOK ||
		json.Unmarshal(r.Body, &ex) != nil || !ex.OK {
		t.Fatalf("exports verify after the purge: %d %s", r.Code, r.Body)
	}
}
