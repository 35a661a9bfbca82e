package audit

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"

	"spine/shared/blob"
	"spine/shared/contracts"
	"spine/shared/retention"
	"spine/shared/retention/retentiontest"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
	"spine/shared/testenv"
)

// sweepRig runs the audit sweeps on an engine of its own over the stack's Azurite ledger and blob
// service, under test-unique sweep names and over the test's own tenants only (the package
// database holds every test's tenants).
type sweepRig struct {
	t       *testing.T
	h       *harness
	blobs   *blob.Store
	az      *azblob.Client
	ledger  *retention.Ledger
	now     time.Time // the engines' clock
	export  string    // the sweeps' names
	purge   string
	tenants []string
	// purgeRetention, when set, is the purge sweep's retention instead of DefaultRetention (an
	// edition's shorter one).
	purgeRetention time.Duration
}

func newSweepRig(t *testing.T) *sweepRig {
	t.Helper()
	conn, err := testenv.Require("SPINE_STORAGE_CONNECTION_STRING")
	if err != nil {
		t.Fatal(err)
	}
	bs := testenv.Blobs(t, ArchiveContainer)
	az, err := azblob.NewClientFromConnectionString(conn, nil)
	if err != nil {
		t.Fatal(err)
	}
	l := retentiontest.Ledger(t)
	h := newHarness(t)
	h.svc.blobs = bs
	var b [6]byte
	_, _ = rand.Read(b[:])
	suffix := hex.EncodeToString(b[:])
	return &sweepRig{t: t, h: h, blobs: bs, az: az, ledger: l, now: time.Now().UTC(),
		export: "AuditExportT" + suffix, purge: "AuditPurgeT" + suffix}
}

// tenant is a fresh Active tenant the rig's sweeps cover, with its token.
func (r *sweepRig) tenant() (tenancy.TenantID, string) {
	id, tok := r.h.tenant()
	r.tenants = append(r.tenants, id.String())
	return id, tok
}

// engine is a fresh engine (as after a restart) with both sweeps, batch entries per range; fault,
// when not nil, is its crash hook.
func (r *sweepRig) engine(batch int, fault func(string)) *retention.Engine {
	r.t.Helper()
	e, err := retention.New(retention.Config{Ledger: r.ledger, Now: func() time.Time { return r.now }, Fault: fault})
	if err != nil {
		r.t.Fatal(err)
	}
	units := func(context.Context, time.Time) ([]string, error) { return slices.Clone(r.tenants), nil }
	exp, pur := r.h.svc.ExportSweep(r.export), r.h.svc.PurgeSweep(r.purge)
	exp.Units, pur.Units, exp.BatchSize, pur.BatchSize = units, units, batch, batch
	if r.purgeRetention > 0 {
		pur.Retention = r.purgeRetention
	}
	for _, s := range []retention.Sweep{exp, pur} {
		if err := e.Register(s); err != nil {
			r.t.Fatal(err)
		}
	}
	return e
}

// run runs sweep name once on e and fails the test on an error.
func (r *sweepRig) run(e *retention.Engine, name string) retention.Run {
	r.t.Helper()
	run, err := e.Run(context.Background(), name)
	if err != nil {
		r.t.Fatalf("run %s: %v (%s)", name, err, run)
	}
	return run
}

// crashRun runs sweep name on an engine whose fault hook panics at point, once, and reports
// whether it crashed there.
func (r *sweepRig) crashRun(batch int, name, point string) (crashed bool) {
	r.t.Helper()
	type crash struct{}
	hit := false
	e := r.engine(batch, func(p string) {
		if p == point && !hit {
			hit = true
			panic(crash{})
		}
	})
	defer func() {
		if v := recover(); v != nil {
			if _, ok := v.(crash); !ok {
				panic(v)
			}
			crashed = true
		}
	}()
	_, _ = e.Run(context.Background(), name)
	return false
}

// seed appends n entries to tenant's chain recorded at at (the append path with its time
// injected), the payloads with characters an HTML-escaping encoder would rewrite.
func (r *sweepRig) seed(tenant tenancy.TenantID, n int, at time.Time) []Entry {
	r.t.Helper()
	st := r.h.svc.store.(*sqlStore)
	items := make([]GroupItem, n)
	for i := range items {
		items[i] = GroupItem{Tenant: tenant, Entry: mkEntry("doc.shared", func(e *NewEntry) {
			e.OccurredAt = utcMicro(at)
			e.Payload = json.RawMessage(fmt.Sprintf(`{"i":%d,"html":"<b>&amp;</b>","u":"\u00e9"}`, i))
		})}
	}
	var out []Entry
	err := r.h.db.InTx(context.Background(), sqlstore.TenantScope(tenant), func(tx *sqlstore.Tx) error {
		var err error
		out, err = st.appendGroupTx(context.Background(), tx, items, at)
		return err
	})
	if err != nil {
		r.t.Fatal(err)
	}
	return out
}

// chain is tenant's entries in SQL.
func (r *sweepRig) chain(tenant tenancy.TenantID) []Entry {
	r.t.Helper()
	return readChain(r.t, r.h.svc.store, tenant)
}

// exports is tenant's audit_exports rows.
func (r *sweepRig) exports(tenant tenancy.TenantID) []Export {
	r.t.Helper()
	xs, err := r.h.svc.store.Exports(context.Background(), sqlstore.TenantScope(tenant), 0, 1000)
	if err != nil {
		r.t.Fatal(err)
	}
	return xs
}

// archived lists the blob names under tenant's prefix in the archive.
func (r *sweepRig) archived(tenant tenancy.TenantID) []string {
	r.t.Helper()
	prefix := tenant.String() + "/"
	p := r.az.NewListBlobsFlatPager(ArchiveContainer, &azblob.ListBlobsFlatOptions{Prefix: &prefix})
	var out []string
	for p.More() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			r.t.Fatal(err)
		}
		for _, b := range page.Segment.BlobItems {
			out = append(out, *b.Name)
		}
	}
	slices.Sort(out)
	return out
}

// evidence sums the affected rows of sweep's evidence rows for tenant, and counts the rows.
func (r *sweepRig) evidence(tenant tenancy.TenantID, sweep string) (rows, affected int) {
	r.t.Helper()
	evs, err := r.ledger.Evidence(context.Background(), tenant.String(), time.Time{}, time.Time{}, 0)
	if err != nil {
		r.t.Fatal(err)
	}
	for _, ev := range evs {
		if ev.Sweep == sweep {
			rows++
			affected += ev.Affected
		}
	}
	return rows, affected
}

// outboxCount counts tenant's outbox events of type typ (RetentionApplied: of sweep only).
func (r *sweepRig) outboxCount(tenant tenancy.TenantID, typ, sweep string) int {
	r.t.Helper()
	n := 0
	for _, ev := range testenv.Outbox(r.t, r.h.db, tenant) {
		if ev.Type != typ {
			continue
		}
		if typ == contracts.RetentionApplied {
			var d contracts.RetentionAppliedData
			if err := json.Unmarshal(ev.Data, &d); err != nil {
				r.t.Fatal(err)
			}
			if d.Sweep != sweep {
				continue
			}
		}
		n++
	}
	return n
}

func (r *sweepRig) verify(token string) verifyJSON {
	r.t.Helper()
	res := r.h.do("GET", "/api/audit-entries/verify", token, nil)
	if res.Code != http.StatusOK {
		r.t.Fatalf("verify: %d %s", res.Code, res.Body)
	}
	var v verifyJSON
	if err := json.Unmarshal(res.Body, &v); err != nil {
		r.t.Fatal(err)
	}
	return v
}

func (r *sweepRig) verifyExports(token, query string) exportsVerifyJSON {
	r.t.Helper()
	res := r.h.do("GET", "/api/audit-entries/exports/verify"+query, token, nil)
	if res.Code != http.StatusOK {
		r.t.Fatalf("exports verify: %d %s", res.Code, res.Body)
	}
	var v exportsVerifyJSON
	if err := json.Unmarshal(res.Body, &v); err != nil {
		r.t.Fatal(err)
	}
	return v
}

func names(xs []Export) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = fmt.Sprintf("%d-%d", x.FromSeq, x.ToSeq)
	}
	return out
}

func TestAuditExport_WritesOneBlobAndManifestPerRangeAndVerifies(t *testing.T) {
	r := newSweepRig(t)
	tenant, tok := r.tenant()
	at := time.Date(2026, 3, 4, 5, 6, 7, 123456000, time.UTC)
	seeded := r.seed(tenant, 7, at)
	e := r.engine(3, nil)
	run := r.run(e, r.export)
	if run.Exported != 7 || run.Batches != 3 {
		t.Fatalf("run: %s, want 7 exported in 3 batches", run)
	}
	xs := r.exports(tenant)
	if got := names(xs); !slices.Equal(got, []string{"1-3", "4-6", "7-7"}) {
		t.Fatalf("exports %v", got)
	}
	base := tenant.String() + "/audit/2026/03/04/"
	want := []string{base + "1-3.jsonl.gz", base + "1-3.manifest.json", base + "4-6.jsonl.gz", base + "4-6.manifest.json",
		base + "7-7.jsonl.gz", base + "7-7.manifest.json"}
	if got := r.archived(tenant); !slices.Equal(got, want) {
		t.Fatalf("archive holds %v, want %v", got, want)
	}
	// The blob: every column, payload verbatim, hashes hex; its SHA-256 is the recorded one.
	data, err := r.blobs.Get(t.Context(), ArchiveContainer, xs[0].Blob)
	if err != nil {
		t.Fatal(err)
	}
	if sha256Hex(data) != xs[0].SHA256 {
		t.Fatal("the blob's SHA-256 is not the recorded one")
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(zr)
	lines := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines", len(lines))
	}
	var first map[string]json.RawMessage
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"seq", "entryId", "occurredAt", "recordedAt", "actor", "action", "resource", "traceId",
		"correlationId", "sourceEventId", "payload", "prevHash", "hash"} {
		if _, ok := first[k]; !ok {
			t.Errorf("line lacks %s: %s", k, lines[0])
		}
	}
	if !bytes.Equal(first["payload"], seeded[0].Payload) || string(first["hash"]) != `"`+hex.EncodeToString(seeded[0].Hash)+`"` {
		t.Errorf("payload %s / hash %s, want %s / %x", first["payload"], first["hash"], seeded[0].Payload, seeded[0].Hash)
	}
	m, err := r.blobs.Get(t.Context(), ArchiveContainer, manifestName(xs[1].Blob))
	if err != nil {
		t.Fatal(err)
	}
	var man manifest
	if err := json.Unmarshal(m, &man); err != nil {
		t.Fatal(err)
	}
	if man.FromSeq != 4 || man.ToSeq != 6 || man.Count != 3 || man.FirstPrevHash != hex.EncodeToString(seeded[2].Hash) ||
		man.LastHash != hex.EncodeToString(seeded[5].Hash) || man.SHA256 != xs[1].SHA256 || man.EvidenceID != xs[1].EvidenceID {
		t.Errorf("manifest %+v", man)
	}
	if n := r.outboxCount(tenant, contracts.AuditBatchExported, ""); n != 3 {
		t.Errorf("AuditBatchExported ×%d, want 3", n)
	}
	if n := r.outboxCount(tenant, contracts.RetentionApplied, r.export); n != 3 {
		t.Errorf("RetentionApplied ×%d, want 3", n)
	}
	if rows, affected := r.evidence(tenant, r.export); rows != 3 || affected != 7 {
		t.Errorf("evidence: %d rows, %d affected; want 3, 7", rows, affected)
	}
	// No audit entry records an export.
	if got := len(r.chain(tenant)); got != 7 {
		t.Errorf("the chain has %d entries after the export, want 7", got)
	}
	v := r.verifyExports(tok, "")
	if !v.OK || v.Exports != 3 || v.Entries != 7 || v.FirstSeq != 1 || v.LastSeq != 7 || len(v.Problems) != 0 {
		t.Fatalf("exports verify: %+v", v)
	}
	// Nothing new: nothing exported. New entries: the next range.
	if run := r.run(r.engine(3, nil), r.export); run.Batches != 0 {
		t.Errorf("a rerun exported: %s", run)
	}
	r.seed(tenant, 2, at.Add(48*time.Hour))
	r.run(r.engine(3, nil), r.export)
	if got := names(r.exports(tenant)); !slices.Equal(got, []string{"1-3", "4-6", "7-7", "8-9"}) {
		t.Fatalf("exports %v", got)
	}
	if x := r.exports(tenant)[3]; x.Blob != tenant.String()+"/audit/2026/03/06/8-9.jsonl.gz" {
		t.Errorf("blob %s: the date is the range's first entry's", x.Blob)
	}
	if v := r.verifyExports(r.h.admin, "?tenantId="+tenant.String()); !v.OK || v.Exports != 4 || v.Entries != 9 {
		t.Fatalf("exports verify (platform admin): %+v", v)
	}
}

// A blob replaced in the archive (delete + put, as whoever holds the storage key could) is named by
// the verifier; so is an entry whose SQL row no longer equals its exported copy.
func TestExportsVerify_TamperedBlob_OKFalseNamingTheBlob(t *testing.T) {
	r := newSweepRig(t)
	tenant, tok := r.tenant()
	entries := r.seed(tenant, 4, time.Now())
	r.run(r.engine(2, nil), r.export)
	xs := r.exports(tenant)
	if len(xs) != 2 {
		t.Fatalf("exports %v", names(xs))
	}
	// A forged blob: the second range with its first entry's payload changed.
	forged := slices.Clone(entries[2:])
	forged[0].Payload = json.RawMessage(`{"forged":true}`)
	data, err := encodeArchive(forged)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.az.DeleteBlob(t.Context(), ArchiveContainer, xs[1].Blob, nil); err != nil {
		t.Fatal(err)
	}
	if err := r.blobs.PutCreateOnly(t.Context(), ArchiveContainer, xs[1].Blob, data, "application/gzip"); err != nil {
		t.Fatal(err)
	}
	v := r.verifyExports(tok, "")
	if v.OK || len(v.Problems) != 1 || v.Problems[0].Blob != ArchiveContainer+"/"+xs[1].Blob || v.Problems[0].Code != ProblemSHA256Mismatch {
		t.Fatalf("exports verify after tampering: %+v", v)
	}
	// The first blob is untouched: still fine on its own.
	if v.Exports != 2 {
		t.Errorf("exports %d, want 2", v.Exports)
	}
}

// The export verifier answers as GET /audit-entries/verify does to whoever asks: a tenant's token
// naming another tenant gets exactly the same refusal, and never the other tenant's data.
func TestExportsVerify_OtherTenantsID_SameAnswerAsVerify(t *testing.T) {
	r := newSweepRig(t)
	a, tokA := r.tenant()
	b, _ := r.tenant()
	r.seed(b, 2, time.Now())
	r.run(r.engine(10, nil), r.export)
	for _, q := range []string{"?tenantId=" + b.String(), "?platform=true"} {
		ver := r.h.do("GET", "/api/audit-entries/verify"+q, tokA, nil)
		exp := r.h.do("GET", "/api/audit-entries/exports/verify"+q, tokA, nil)
		if ver.Code == http.StatusOK || exp.Code != ver.Code || exp.ProblemCode(t) != ver.ProblemCode(t) {
			t.Errorf("%s: exports verify %d %s; verify %d %s", q, exp.Code, exp.Body, ver.Code, ver.Body)
		}
		if bytes.Contains(exp.Body, []byte(b.String()+"/audit")) {
			t.Errorf("%s: the answer names B's blobs: %s", q, exp.Body)
		}
	}
	if v := r.verifyExports(tokA, ""); v.TenantID != a.String() || v.Exports != 0 || !v.OK {
		t.Errorf("A's own: %+v", v)
	}
	if res := r.h.do("GET", "/api/audit-entries/exports/verify", r.token(a, ScopeWrite), nil); res.Code != http.StatusForbidden {
		t.Errorf("without audit.read: %d", res.Code)
	}
}

func (r *sweepRig) token(tenant tenancy.TenantID, scopes ...string) string {
	return r.h.token(tenant.String(), false, scopes...)
}

// sevenYears is a little more than the default audit retention.
const sevenYears = DefaultRetention + 24*time.Hour

// sevenYearsAgo sets the engines' clock seven years back and returns it, for a test that then
// moves it to "seven years later": the present. audit_purge refuses a cutoff younger than the
// database's retention floor (now() - 2557 days), whatever the engine's clock says, so the
// retention is run from the past up to the database's present.
func (r *sweepRig) sevenYearsAgo() time.Time {
	r.now = r.now.Add(-sevenYears)
	return r.now
}

// After seven years (the engine's clock moved), the exported entries past the retention are
// purged, whole exports at a time; one entry records the purge; the chain verifies from the first
// retained entry, anchored at the last purged export's last hash; the exports still verify.
func TestAuditPurge_AfterSevenYears_VerifyFromFirstRetainedEntry(t *testing.T) {
	r := newSweepRig(t)
	tenant, tok := r.tenant()
	t0 := r.sevenYearsAgo()
	r.seed(tenant, 7, t0.Add(-time.Hour)) // due in seven years
	r.seed(tenant, 2, t0.Add(30*24*time.Hour))
	r.run(r.engine(3, nil), r.export) // 1-3, 4-6, 7-9
	if got := names(r.exports(tenant)); !slices.Equal(got, []string{"1-3", "4-6", "7-9"}) {
		t.Fatalf("exports %v", got)
	}
	// Not yet due: nothing purged.
	if run := r.run(r.engine(3, nil), r.purge); run.Affected != 0 || len(r.chain(tenant)) != 9 {
		t.Fatalf("a purge before the retention ran out: %s", run)
	}
	r.now = t0.Add(sevenYears)
	run := r.run(r.engine(10, nil), r.purge) // one range of two exports
	if run.Affected != 6 || run.Batches != 1 {
		t.Fatalf("purge: %s, want 6 affected (exports 1-3 and 4-6; 7-9 holds entries not due)", run)
	}
	chain := r.chain(tenant)
	if len(chain) != 4 || chain[0].Seq != 7 || chain[3].Seq != 10 || chain[3].Action != ActionEntriesPurged {
		for _, e := range chain {
			t.Logf("seq %d %s %s %s", e.Seq, e.Action, e.RecordedAt, e.Payload)
		}
		t.Fatalf("chain after the purge: %d entries from %d", len(chain), chain[0].Seq)
	}
	var p purgedPayload
	if err := json.Unmarshal(chain[3].Payload, &p); err != nil || p.FromSeq != 1 || p.ToSeq != 6 || p.Count != 6 || p.EvidenceID == "" {
		t.Errorf("the purge entry's payload %s (%v)", chain[3].Payload, err)
	}
	v := r.verify(tok)
	if !v.OK || v.FirstSeq != 7 || v.LastSeq != 10 || v.AnchoredAt == nil || v.AnchoredAt.Seq != 6 ||
		v.AnchoredAt.Blob != ArchiveContainer+"/"+r.exports(tenant)[1].Blob {
		t.Fatalf("verify after the purge: %+v", v)
	}
	if ev := r.verifyExports(tok, ""); !ev.OK || ev.Entries != 9 {
		t.Fatalf("exports verify after the purge: %+v", ev)
	}
	if rows, affected := r.evidence(tenant, r.purge); rows != 1 || affected != 6 {
		t.Errorf("purge evidence: %d rows, %d affected", rows, affected)
	}
	if n := r.outboxCount(tenant, contracts.RetentionApplied, r.purge); n != 1 {
		t.Errorf("RetentionApplied of the purge ×%d", n)
	}
	// A rerun deletes nothing more.
	if run := r.run(r.engine(10, nil), r.purge); run.Affected != 0 || len(r.chain(tenant)) != 4 {
		t.Errorf("a rerun purged again: %s", run)
	}
}

// A chain that starts after seq 1 with no export ending right before it is not intact.
func TestVerify_ChainStartingAfterSeq1WithoutAnchor_NotOK(t *testing.T) {
	r := newSweepRig(t)
	tenant, tok := r.tenant()
	r.seed(tenant, 4, time.Now())
	tamper(t, `DELETE FROM audit_entries WHERE tenant_id = $1 AND seq <= 2`, tenant.String())
	v := r.verify(tok)
	if v.OK || v.AnchoredAt != nil || v.FirstBroken == nil || v.FirstBroken.Seq != 3 {
		t.Fatalf("verify of a chain cut without an export: %+v", v)
	}
}

// Crash injection at every step of a batch, for both sweeps: the rerun (a fresh engine, as after
// a restart) writes exactly one blob per range, purges exactly the exported entries, records one
// purge entry, and the ledger's evidence counts equal what changed in SQL.
func TestAuditSweeps_CrashAtEveryStep_RerunRepeatsNothing(t *testing.T) {
	for _, point := range []string{retention.FaultAfterIntent, retention.FaultAfterExport, retention.FaultAfterApply, retention.FaultAfterEvidence} {
		t.Run(point, func(t *testing.T) {
			r := newSweepRig(t)
			tenant, tok := r.tenant()
			t0 := r.sevenYearsAgo()
			r.seed(tenant, 5, t0.Add(-time.Hour))
			r.seed(tenant, 1, t0.Add(365*24*time.Hour)) // the head, not due
			if !r.crashRun(3, r.export, point) {
				t.Fatalf("the export did not reach %s", point)
			}
			r.run(r.engine(3, nil), r.export)
			if got := names(r.exports(tenant)); !slices.Equal(got, []string{"1-3", "4-6"}) {
				t.Fatalf("exports %v", got)
			}
			if got := r.archived(tenant); len(got) != 4 {
				t.Fatalf("archive holds %v, want one blob and one manifest per range", got)
			}
			if n := r.outboxCount(tenant, contracts.AuditBatchExported, ""); n != 2 {
				t.Errorf("AuditBatchExported ×%d, want 2", n)
			}
			if rows, affected := r.evidence(tenant, r.export); rows != 2 || affected != 6 {
				t.Errorf("export evidence: %d rows, %d affected; want 2, 6", rows, affected)
			}

			r.now = t0.Add(sevenYears)
			if !r.crashRun(3, r.purge, point) {
				t.Fatalf("the purge did not reach %s", point)
			}
			r.run(r.engine(3, nil), r.purge)
			chain := r.chain(tenant)
			if len(chain) != 4 || chain[0].Seq != 4 {
				t.Fatalf("after the purge the chain has %d entries from seq %d, want 4 from 4 (1-3 purged)", len(chain), chain[0].Seq)
			}
			purges := 0
			for _, e := range chain {
				if e.Action == ActionEntriesPurged {
					purges++
				}
			}
			if purges != 1 {
				t.Errorf("%d purge entries, want 1", purges)
			}
			if rows, affected := r.evidence(tenant, r.purge); rows != 1 || affected != 3 {
				t.Errorf("purge evidence: %d rows, %d affected; want 1, 3", rows, affected)
			}
			if n := r.outboxCount(tenant, contracts.RetentionApplied, r.purge); n != 1 {
				t.Errorf("RetentionApplied of the purge ×%d, want 1", n)
			}
			if v := r.verify(tok); !v.OK || v.AnchoredAt == nil || v.AnchoredAt.Seq != 3 {
				t.Errorf("verify: %+v", v)
			}
		})
	}
}

// A legal hold on one tenant keeps its entries through a purge that removes another's; once the
// hold is deleted, the next run purges them.
func TestAuditPurge_LegalHold_HeldTenantSurvivesUntilReleased(t *testing.T) {
	r := newSweepRig(t)
	held, _ := r.tenant()
	free, _ := r.tenant()
	t0 := r.sevenYearsAgo()
	for _, id := range []tenancy.TenantID{held, free} {
		r.seed(id, 3, t0.Add(-time.Hour))
		r.seed(id, 1, t0.Add(365*24*time.Hour))
	}
	r.run(r.engine(3, nil), r.export)
	hold := retention.Hold{ID: tenancy.NewTenantID().String(), TenantID: held.String(), Scope: "audit", Reason: "litigation",
		CreatedBy: "test", CreatedAt: t0}
	if err := r.ledger.PutHold(t.Context(), hold); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = r.ledger.DeleteHold(context.Background(), hold.ID) })
	r.now = t0.Add(sevenYears)
	run := r.run(r.engine(3, nil), r.purge)
	if run.HeldUnits != 1 || run.Affected != 3 {
		t.Fatalf("purge under a hold: %s", run)
	}
	if got := len(r.chain(held)); got != 4 {
		t.Errorf("the held tenant has %d entries, want 4", got)
	}
	if c := r.chain(free); c[0].Seq != 4 {
		t.Errorf("the other tenant's chain starts at %d, want 4", c[0].Seq)
	}
	if _, err := r.ledger.DeleteHold(t.Context(), hold.ID); err != nil {
		t.Fatal(err)
	}
	if run := r.run(r.engine(3, nil), r.purge); run.Affected != 3 || run.HeldUnits != 0 {
		t.Fatalf("purge after the hold: %s", run)
	}
	if c := r.chain(held); c[0].Seq != 4 {
		t.Errorf("the released tenant's chain starts at %d, want 4", c[0].Seq)
	}
}

// Only audit_purge deletes entries: the runtime role may not, not even after setting the
// function's setting itself; the owner's plain DELETE is refused by the trigger with or without it
// outside the function; the function confines itself to the caller's tenant (row-level security)
// and to exported entries, even past the retention.
func TestAuditPurge_OnlyTheOwnersFunctionDeletes(t *testing.T) {
	r := newSweepRig(t)
	a, _ := r.tenant()
	b, _ := r.tenant()
	for _, id := range []tenancy.TenantID{a, b} {
		r.seed(id, 3, r.now.Add(-sevenYears))
	}
	rt := openRuntime(t)
	del := func(db *sqlstore.DB, tenant tenancy.TenantID) error {
		_, err := execIn(db, sqlstore.TenantScope(tenant), `SELECT set_config('spine.audit_purge', 'on', true);
			DELETE FROM audit_entries WHERE tenant_id = '`+tenant.String()+`'`)
		return err
	}
	if err := del(rt, a); !errors.Is(err, sqlstore.ErrPermission) {
		t.Errorf("runtime role's DELETE with the setting on: %v, want permission denied", err)
	}
	// The owner owns the table (it could drop the trigger): what is refused is its DELETE outside
	// the function, by mistake or by a script.
	owner := openOwner(t)
	if _, err := execIn(owner, sqlstore.TenantScope(a), `DELETE FROM audit_entries WHERE seq = 1`); err == nil || !strings.Contains(err.Error(), "append-only") {
		t.Errorf("owner's plain DELETE: %v, want the trigger's refusal", err)
	}
	purge := func(scope, tenant tenancy.TenantID) int {
		var n int
		err := rt.InTx(t.Context(), sqlstore.TenantScope(scope), func(tx *sqlstore.Tx) error {
			return tx.QueryRowContext(t.Context(), `SELECT audit_purge($1, 100, now() - make_interval(days => $2))`,
				tenant.String(), floorDays).Scan(&n)
		})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := purge(a, a); n != 0 {
		t.Errorf("audit_purge deleted %d unexported entries", n)
	}
	r.run(r.engine(10, nil), r.export) // 1-3 for both; the head (3) stays
	if n := purge(a, b); n != 0 {
		t.Errorf("audit_purge in A's scope deleted %d of B's entries", n)
	}
	if n := purge(a, a); n != 0 {
		t.Errorf("audit_purge deleted %d entries of an export that holds the head", n)
	}
	if got := len(r.chain(a)) + len(r.chain(b)); got != 6 {
		t.Errorf("%d entries left, want 6", got)
	}
}

// A lost watermark (the ledger wiped: here, the sweep under a new name) re-exports nothing: the
// export resumes after the last recorded export, even with another batch size.
func TestAuditExport_LostWatermark_ResumesAfterTheLastExport(t *testing.T) {
	r := newSweepRig(t)
	tenant, _ := r.tenant()
	r.seed(tenant, 5, time.Now())
	r.run(r.engine(2, nil), r.export)
	r.export += "Again"
	r.seed(tenant, 1, time.Now())
	if run := r.run(r.engine(4, nil), r.export); run.Exported != 1 {
		t.Fatalf("run under a fresh watermark: %s, want only the new entry exported", run)
	}
	if got := names(r.exports(tenant)); !slices.Equal(got, []string{"1-2", "3-4", "5-5", "6-6"}) {
		t.Fatalf("exports %v", got)
	}
	if got := len(r.archived(tenant)); got != 8 {
		t.Fatalf("%d blobs, want a blob and a manifest per export", got)
	}
}

// A rewritten manifest and an entry changed in SQL after its export are each named, with their
// stable codes; the blob itself still checks out.
func TestExportsVerify_ManifestAndSQLChangedAfterExport_Named(t *testing.T) {
	r := newSweepRig(t)
	tenant, tok := r.tenant()
	r.seed(tenant, 3, time.Now())
	r.run(r.engine(10, nil), r.export)
	x := r.exports(tenant)[0]
	name := manifestName(x.Blob)
	raw, err := r.blobs.Get(t.Context(), ArchiveContainer, name)
	if err != nil {
		t.Fatal(err)
	}
	var m manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	m.LastHash = strings.Repeat("00", 32)
	forged, _ := json.Marshal(m)
	if _, err := r.az.DeleteBlob(t.Context(), ArchiveContainer, name, nil); err != nil {
		t.Fatal(err)
	}
	if err := r.blobs.PutCreateOnly(t.Context(), ArchiveContainer, name, forged, "application/json"); err != nil {
		t.Fatal(err)
	}
	tamper(t, `UPDATE audit_entries SET payload = '{"rewritten":1}' WHERE tenant_id = $1 AND seq = 2`, tenant.String())
	v := r.verifyExports(tok, "")
	want := []exportProblemJSON{{Blob: ArchiveContainer + "/" + x.Blob, Code: ProblemManifestMismatch},
		{Blob: ArchiveContainer + "/" + x.Blob, Seq: 2, Code: ProblemSQLMismatch}}
	if v.OK || !slices.Equal(v.Problems, want) {
		t.Fatalf("exports verify: %+v, want problems %+v", v, want)
	}
}

// A purge deletes only what the archive still holds: an export blob that is gone (or altered)
// keeps its entries in SQL, the run fails as artifact-mismatch, and once the blob is back the
// next run purges.
func TestAuditPurge_ExportBlobMissingOrAltered_EntriesKept(t *testing.T) {
	r := newSweepRig(t)
	tenant, _ := r.tenant()
	t0 := r.sevenYearsAgo()
	r.seed(tenant, 6, t0.Add(-time.Hour))
	r.seed(tenant, 1, t0.Add(30*24*time.Hour)) // the head stays
	r.run(r.engine(3, nil), r.export)          // 1-3, 4-6, 7
	xs := r.exports(tenant)
	if len(xs) < 2 {
		t.Fatalf("exports %v", names(xs))
	}
	saved, err := r.blobs.Get(t.Context(), ArchiveContainer, xs[0].Blob)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.az.DeleteBlob(t.Context(), ArchiveContainer, xs[0].Blob, nil); err != nil {
		t.Fatal(err)
	}
	r.now = t0.Add(sevenYears)
	run, err := r.engine(10, nil).Run(t.Context(), r.purge)
	if err == nil || run.Status != retention.StatusFailed || run.ErrorClass != "artifact-mismatch" || run.Affected != 0 {
		t.Fatalf("purge with export 1-3 missing: %s, %v; want failed (artifact-mismatch), nothing deleted", run, err)
	}
	if n := len(r.chain(tenant)); n != 7 {
		t.Fatalf("%d entries left, want all 7", n)
	}
	// Altered: other bytes under the recorded name.
	if err := r.blobs.PutCreateOnly(t.Context(), ArchiveContainer, xs[0].Blob, append(slices.Clone(saved), 0), "application/gzip"); err != nil {
		t.Fatal(err)
	}
	if run, err := r.engine(10, nil).Run(t.Context(), r.purge); err == nil || run.Affected != 0 || len(r.chain(tenant)) != 7 {
		t.Fatalf("purge with export 1-3 altered: %s, %v, %d entries", run, err, len(r.chain(tenant)))
	}
	// Restored: the intent left by the failed runs is finished.
	if _, err := r.az.DeleteBlob(t.Context(), ArchiveContainer, xs[0].Blob, nil); err != nil {
		t.Fatal(err)
	}
	if err := r.blobs.PutCreateOnly(t.Context(), ArchiveContainer, xs[0].Blob, saved, "application/gzip"); err != nil {
		t.Fatal(err)
	}
	if run := r.run(r.engine(10, nil), r.purge); run.Affected != 6 {
		t.Fatalf("purge after the restore: %s, want 6", run)
	}
}

// The export verifier pages: limit exports per call, nextFromSeq where the next page starts (its
// chain check anchored on the export before it), null on the last; a fromSeq that is not where an
// export starts is 400 invalid-from-seq. A break in the second page is still found.
func TestExportsVerify_Paged_NextFromSeqAnchorsTheNextPage(t *testing.T) {
	r := newSweepRig(t)
	tenant, tok := r.tenant()
	r.seed(tenant, 7, time.Now())
	r.run(r.engine(2, nil), r.export) // 1-2, 3-4, 5-6, 7
	p1 := r.verifyExports(tok, "?limit=2")
	if !p1.OK || p1.Exports != 2 || p1.LastSeq != 4 || p1.NextFromSeq == nil || *p1.NextFromSeq != 5 {
		t.Fatalf("page 1: %+v", p1)
	}
	p2 := r.verifyExports(tok, "?limit=2&fromSeq=5")
	if !p2.OK || p2.Exports != 2 || p2.FirstSeq != 5 || p2.LastSeq != 7 || p2.NextFromSeq != nil {
		t.Fatalf("page 2: %+v", p2)
	}
	if res := r.h.do("GET", "/api/audit-entries/exports/verify?fromSeq=4", tok, nil); res.Code != http.StatusBadRequest ||
		!strings.Contains(string(res.Body), `"code":"invalid-from-seq"`) {
		t.Fatalf("fromSeq inside an export: %d %s", res.Code, res.Body)
	}
	// Export 5-6's blob replaced: page 2 names it.
	xs := r.exports(tenant)
	if _, err := r.az.DeleteBlob(t.Context(), ArchiveContainer, xs[2].Blob, nil); err != nil {
		t.Fatal(err)
	}
	if v := r.verifyExports(tok, "?limit=2&fromSeq=5"); v.OK || len(v.Problems) != 1 || v.Problems[0].Code != ProblemBlobMissing {
		t.Fatalf("page 2 after the blob went: %+v", v)
	}
}
