package tests

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
)

// lowerAuditFloor sets the audit database's retention floor to 0 days through the owner role (the
// only role that may change audit_retention_floor): SPINE_RETENTION_SCALE shrinks the engine's
// 7-year retention to a fraction of a second, and audit_purge refuses any cutoff younger than the
// floor, which the scale does not reach.
func (s *server) lowerAuditFloor() {
	s.ownerExec("audit", `UPDATE audit_retention_floor SET floor_days = 0`)
}

// The audit sweeps through the binary as the host drives them, with SPINE_RETENTION_SCALE at its
// smallest (the 7-year audit retention is a fraction of a second): the AuditExport timer writes the
// tenant's chain to the archive, which the export verifier re-reads and finds intact; the AuditPurge
// timer then removes the exported entries and records the purge in the chain, which still verifies
// from its first retained entry, anchored at the last purged export.
func TestAudit_ExportAndPurgeTimers_ChainVerifiesFromTheArchiveAnchor(t *testing.T) {
	s := startServer(t, map[string]string{"SPINE_RETENTION_SCALE": "1e-9"})
	s.lowerAuditFloor()
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

// invokeUntilCrash invokes function until the process dies in it (SPINE_TEST_RETENTION_CRASH_AT:
// the sweep's first batch); a run that found nothing due yet answers and is tried again.
func invokeUntilCrash(t *testing.T, s *server, function string) {
	t.Helper()
	eventually(t, function+" to crash at its first batch", func() bool {
		req, _ := http.NewRequest("POST", s.base+"/"+function, bytes.NewReader(hostTimerBody(t, function)))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return true // the process exited mid-invocation
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d", function, resp.StatusCode)
		}
		return false
	})
}

// Crash injection through the binary: AuditExport's process dies after writing the blob (the
// ledger not told), AuditPurge's after deleting (no evidence yet); another instance finishes
// each: one blob and one manifest for the range, one export, one purge entry, and the chain
// verifies from the archive anchor.
func TestAudit_CrashedSweepsFinishedByAnotherInstance_NothingRepeated(t *testing.T) {
	s1 := startServer(t, map[string]string{"SPINE_RETENTION_SCALE": "1e-9", "SPINE_TEST_RETENTION_CRASH_AT": "after-export"})
	s1.lowerAuditFloor()
	tenant := s1.register(slug("auditcrash"), "standard")
	if r := s1.call("POST", "/api/tenants/"+tenant+"/provision", s1.admin, nil, nil); r.Code != http.StatusOK {
		t.Fatalf("provision: %d %s", r.Code, r.Body)
	}
	for i := range 3 {
		r := s1.call("POST", "/api/audit-entries?tenantId="+tenant, s1.admin, map[string]any{
			"actor": map[string]string{"type": "user", "id": "alice"}, "action": "document.shared",
			"resource": map[string]string{"type": "document", "id": "doc-1"}, "payload": map[string]any{"i": i}}, nil)
		if r.Code != http.StatusCreated {
			t.Fatalf("record: %d %s", r.Code, r.Body)
		}
	}
	invokeUntilCrash(t, s1, "AuditExport")

	delete(s1.settings, "SPINE_TEST_RETENTION_CRASH_AT")
	s2 := startInstance(t, s1)
	if r := s2.invoke("AuditExport", hostTimerBody(t, "AuditExport")); r.Code != http.StatusOK {
		t.Fatalf("AuditExport after the crash: %d %s", r.Code, r.Body)
	}
	var ex struct {
		OK      bool
		Exports int
		Entries int
	}
	r := s2.call("GET", "/api/audit-entries/exports/verify?tenantId="+tenant, s2.admin, nil, nil)
	// Entries of the tenant's own events may arrive meanwhile: more than one range then.
	if r.Code != http.StatusOK || json.Unmarshal(r.Body, &ex) != nil || !ex.OK || ex.Exports < 1 {
		t.Fatalf("exports verify: %d %s", r.Code, r.Body)
	}
	az, err := azblob.NewClientFromConnectionString(os.Getenv("SPINE_STORAGE_CONNECTION_STRING"), nil)
	if err != nil {
		t.Fatal(err)
	}
	prefix := tenant + "/"
	var blobs []string
	for p := az.NewListBlobsFlatPager("audit-archive", &azblob.ListBlobsFlatOptions{Prefix: &prefix}); p.More(); {
		page, err := p.NextPage(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range page.Segment.BlobItems {
			blobs = append(blobs, *b.Name)
		}
	}
	gz, manifests := 0, 0
	for _, b := range blobs {
		switch {
		case strings.HasSuffix(b, ".jsonl.gz"):
			gz++
		case strings.HasSuffix(b, ".manifest.json"):
			manifests++
		}
	}
	if gz != ex.Exports || manifests != ex.Exports || len(blobs) != 2*ex.Exports {
		t.Fatalf("the archive holds %v, want one blob and one manifest for each of the %d exports", blobs, ex.Exports)
	}
	// The head, never purged; then a purge that dies after deleting.
	if r := s2.call("POST", "/api/audit-entries?tenantId="+tenant, s2.admin, map[string]any{
		"actor": map[string]string{"type": "user", "id": "alice"}, "action": "document.read",
		"resource": map[string]string{"type": "document", "id": "doc-1"}}, nil); r.Code != http.StatusCreated {
		t.Fatalf("record: %d %s", r.Code, r.Body)
	}
	s2.settings["SPINE_TEST_RETENTION_CRASH_AT"] = "after-apply"
	s3 := startInstance(t, s2)
	invokeUntilCrash(t, s3, "AuditPurge")
	delete(s2.settings, "SPINE_TEST_RETENTION_CRASH_AT")
	s4 := startInstance(t, s2)
	if r := s4.invoke("AuditPurge", hostTimerBody(t, "AuditPurge")); r.Code != http.StatusOK {
		t.Fatalf("AuditPurge after the crash: %d %s", r.Code, r.Body)
	}
	var v struct {
		OK         bool
		FirstSeq   int64
		AnchoredAt *struct{ Seq int64 }
	}
	r = s4.call("GET", "/api/audit-entries/verify?tenantId="+tenant, s4.admin, nil, nil)
	if r.Code != http.StatusOK || json.Unmarshal(r.Body, &v) != nil || !v.OK || v.FirstSeq <= 1 ||
		v.AnchoredAt == nil || v.AnchoredAt.Seq != v.FirstSeq-1 {
		t.Fatalf("verify after the purge: %d %s", r.Code, r.Body)
	}
	// Each purged entry is recorded once: the purge entries' ranges follow each other from seq 1
	// up to the first retained entry, without overlap.
	var purged struct {
		Value []struct {
			Payload struct{ FromSeq, ToSeq, Count int64 }
		}
	}
	r = s4.call("GET", "/api/audit-entries?action=audit.entries-purged&tenantId="+tenant, s4.admin, nil, nil)
	if r.Code != http.StatusOK || json.Unmarshal(r.Body, &purged) != nil || len(purged.Value) == 0 {
		t.Fatalf("purge entries: %d %s", r.Code, r.Body)
	}
	next := int64(1)
	for _, p := range purged.Value {
		if p.Payload.FromSeq != next || p.Payload.Count != p.Payload.ToSeq-p.Payload.FromSeq+1 {
			t.Fatalf("purge entries %s: a range repeated or skipped", r.Body)
		}
		next = p.Payload.ToSeq + 1
	}
	if next != v.FirstSeq {
		t.Fatalf("purge entries end at %d, the chain starts at %d", next-1, v.FirstSeq)
	}
}
