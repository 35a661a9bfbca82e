package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"spine/shared/blob"
	"spine/shared/contracts"
	"spine/shared/events"
	"spine/shared/ids"
	"spine/shared/retention"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
)

// The audit trail's retention sweeps (shared/retention), registered in the module's New.
const (
	// SweepExport exports every tenant's new entries to the WORM archive, hourly.
	SweepExport         = "AuditExport"
	SweepExportSchedule = "0 5 * * * *"
	// SweepPurge removes entries past the retention that were exported, daily.
	SweepPurge         = "AuditPurge"
	SweepPurgeSchedule = "0 30 3 * * *"
	// DefaultRetention is the audit retention of the storage map (7 years); a tenant's edition
	// (entitlements Retention["audit"]) or override may change it.
	DefaultRetention = 2557 * 24 * time.Hour
	// ActionEntriesPurged is the action of the entry a purge records in the tenant's chain.
	ActionEntriesPurged = "audit.entries-purged"
	// retentionKind is the entitlements key of the audit retention.
	retentionKind = "audit"
	// dataScope is the legal-hold scope of audit data.
	dataScope = "audit"
)

// ErrNoArchive is returned when the service has no blob store for the archive.
var ErrNoArchive = errors.New("audit: no blob store for the archive")

// ExportSweep is the AuditExport sweep under name (tests register it under names of their own).
func (s *Service) ExportSweep(name string) retention.Sweep {
	return retention.Sweep{Name: name, Service: service, Schedule: SweepExportSchedule, Action: retention.ActionExport,
		DataScope: dataScope, Units: s.exportUnits, Target: exportTarget{s}}
}

// PurgeSweep is the AuditPurge sweep under name.
func (s *Service) PurgeSweep(name string) retention.Sweep {
	return retention.Sweep{Name: name, Service: service, Schedule: SweepPurgeSchedule, Action: retention.ActionDelete,
		DataScope: dataScope, RetentionKind: retentionKind, Retention: DefaultRetention,
		Units:  func(ctx context.Context, _ time.Time) ([]string, error) { return s.store.ExportedTenants(ctx) },
		Target: purgeTarget{s}}
}

func (s *Service) exportUnits(ctx context.Context, _ time.Time) ([]string, error) {
	return s.store.EntryTenants(ctx)
}

// unitScope is the tenant scope of a sweep's unit.
func unitScope(unit string) (tenancy.TenantID, sqlstore.Scope, error) {
	t, err := tenancy.ParseTenantID(unit)
	if err != nil || t.IsZero() {
		return tenancy.TenantID{}, sqlstore.Scope{}, fmt.Errorf("audit: sweep unit %q is not a tenant id", unit)
	}
	return t, sqlstore.TenantScope(t), nil
}

// exportTarget is AuditExport's retention.Target: ranges of new entries (seq after the watermark),
// each written to the archive as one blob and recorded in audit_exports.
type exportTarget struct{ s *Service }

// Next implements retention.Target: the tenant's entries after seq after — or after the last
// recorded export, when that is further (a watermark lost with the ledger never re-exports a
// range under other bounds) —, at most limit, in seq order (every entry is due: an export has no
// retention).
func (t exportTarget) Next(ctx context.Context, unit, after string, _ time.Time, limit int) (retention.Range, bool, error) {
	_, sc, err := unitScope(unit)
	if err != nil {
		return retention.Range{}, false, err
	}
	from, err := parseSeq(after)
	if err != nil {
		return retention.Range{}, false, err
	}
	through, err := t.s.store.ExportedThrough(ctx, sc)
	if err != nil {
		return retention.Range{}, false, err
	}
	from = max(from, through)
	span, err := t.s.store.SeqSpan(ctx, sc, from, 0, limit)
	if err != nil || len(span) == 0 {
		return retention.Range{}, false, err
	}
	return spanRange(span), true, nil
}

// spanRange is the range of a contiguous span of entries.
func spanRange(span []SeqAt) retention.Range {
	first, last := span[0], span[len(span)-1]
	return retention.Range{From: seqText(first.Seq), To: seqText(last.Seq), Count: len(span),
		FirstAt: first.RecordedAt, LastAt: last.RecordedAt, Label: seqText(first.Seq) + "-" + seqText(last.Seq)}
}

// rangeSeqs reads a range's bounds.
func rangeSeqs(r retention.Range) (from, to int64, err error) {
	if from, err = parseSeq(r.From); err != nil {
		return 0, 0, err
	}
	if to, err = parseSeq(r.To); err != nil {
		return 0, 0, err
	}
	if from < 1 || to < from || int64(r.Count) != to-from+1 {
		return 0, 0, fmt.Errorf("audit: range %s..%s of %d entries is not a span of the chain", r.From, r.To, r.Count)
	}
	return from, to, nil
}

// exportData is what an export of a range writes: the entries blob and the manifest.
type exportData struct {
	name     string // the entries blob's name
	data     []byte
	manifest manifest
}

// build reads the range's entries and produces the export's bytes.
func (t exportTarget) build(ctx context.Context, tenant tenancy.TenantID, sc sqlstore.Scope, r retention.Range, evidenceID string) (exportData, error) {
	from, to, err := rangeSeqs(r)
	if err != nil {
		return exportData{}, err
	}
	entries, err := t.s.store.Range(ctx, sc, from-1, to, r.Count)
	if err != nil {
		return exportData{}, err
	}
	if len(entries) != r.Count || entries[0].Seq != from || entries[len(entries)-1].Seq != to {
		return exportData{}, fmt.Errorf("audit: range %d-%d: %d entries found, want %d", from, to, len(entries), r.Count)
	}
	data, err := encodeArchive(entries)
	if err != nil {
		return exportData{}, err
	}
	name := archiveBase(tenant, entries[0].RecordedAt, from, to) + ".jsonl.gz"
	return exportData{name: name, data: data, manifest: manifest{TenantID: tenant.String(), FromSeq: from, ToSeq: to,
		Count: r.Count, FirstPrevHash: hex.EncodeToString(entries[0].PrevHash), LastHash: hex.EncodeToString(entries[len(entries)-1].Hash),
		SHA256: sha256Hex(data), Size: int64(len(data)), EvidenceID: evidenceID}}, nil
}

// Export implements retention.Target: the range's entries blob and its manifest, both create-only.
// A blob that exists (a rerun) must hold what the range produces now (retention.ErrArtifactMismatch
// otherwise); so must an existing manifest, the evidence id aside.
func (t exportTarget) Export(ctx context.Context, unit string, r retention.Range, ev retention.Evidence) (*retention.Artifact, error) {
	tenant, sc, err := unitScope(unit)
	if err != nil {
		return nil, err
	}
	b := t.s.blobs
	if b == nil {
		return nil, ErrNoArchive
	}
	x, err := t.build(ctx, tenant, sc, r, ev.ID)
	if err != nil {
		return nil, err
	}
	a, err := retention.PutArtifact(ctx, b, ArchiveContainer, x.name, x.data, "application/gzip", func(old []byte) bool {
		return sha256Hex(old) == x.manifest.SHA256
	})
	if err != nil {
		return nil, err
	}
	m, err := json.Marshal(x.manifest)
	if err != nil {
		return nil, err
	}
	if _, err := retention.PutArtifact(ctx, b, ArchiveContainer, manifestName(x.name), m, "application/json", func(old []byte) bool {
		var o manifest
		return json.Unmarshal(old, &o) == nil && o.sameRange(x.manifest)
	}); err != nil {
		return nil, err
	}
	return a, nil
}

// Apply implements retention.Target: records the export in audit_exports with AuditBatchExported
// and the evidence event, in one transaction; a rerun after it committed changes nothing. No audit
// entry records an export (it would be exported the next hour, and so on forever).
func (t exportTarget) Apply(ctx context.Context, unit string, r retention.Range, ev retention.Evidence) (int, error) {
	tenant, sc, err := unitScope(unit)
	if err != nil {
		return 0, err
	}
	if ev.Artifact == nil {
		return 0, fmt.Errorf("audit: range %s..%s has no artifact", r.From, r.To)
	}
	// The hashes come from the stored entries (the range's ends), as the blob does.
	from, to, err := rangeSeqs(r)
	if err != nil {
		return 0, err
	}
	ends, err := t.ends(ctx, sc, from, to)
	if err != nil {
		return 0, err
	}
	x := Export{TenantID: tenant, FromSeq: from, ToSeq: to, Count: r.Count, Blob: ev.Artifact.Name, SHA256: ev.Artifact.SHA256,
		FirstPrevHash: ends[0].PrevHash, LastHash: ends[1].Hash, EvidenceID: ev.ID, ExportedAt: ev.At}
	inserted, err := t.s.store.RecordExport(ctx, sc, x, func() ([]events.Event, error) {
		data := contracts.AuditBatchExportedData{TenantID: tenant.String(), FromSeq: from, ToSeq: to, Count: r.Count,
			Blob: ArchiveContainer + "/" + x.Blob, SHA256: x.SHA256, LastHash: hex.EncodeToString(x.LastHash)}
		exported, err := events.New(service, contracts.AuditBatchExported, tenant.String(), tenant.String(), data,
			events.Meta{Actor: "system:retention-" + strings.ToLower(ev.Sweep)})
		if err != nil {
			return nil, err
		}
		evidence, err := retention.EvidenceEvent(ev)
		if err != nil {
			return nil, err
		}
		return []events.Event{exported, evidence}, nil
	})
	if err != nil || !inserted {
		return 0, err
	}
	return r.Count, nil
}

// ends returns the stored entries from and to.
func (t exportTarget) ends(ctx context.Context, sc sqlstore.Scope, from, to int64) ([2]Entry, error) {
	var out [2]Entry
	for i, seq := range []int64{from, to} {
		es, err := t.s.store.Range(ctx, sc, seq-1, seq, 1)
		if err != nil {
			return out, err
		}
		if len(es) != 1 {
			return out, fmt.Errorf("audit: entry %d of the exported range is missing", seq)
		}
		out[i] = es[0]
	}
	return out, nil
}

// purgeTarget is AuditPurge's retention.Target: the chain's prefix that is past the retention
// (recorded before the cutoff) and covered by exports, deleted by the owner's audit_purge.
type purgeTarget struct{ s *Service }

// Next implements retention.Target: from the first retained entry, whole exports (contiguous from
// it) whose entries were all recorded before cutoff, never the chain's head, as many as fit in
// limit entries (the first export always: one range is never split). So the first retained entry
// always follows an export's last entry, the anchor Verify starts from. audit_purge applies the
// same rules.
func (t purgeTarget) Next(ctx context.Context, unit, _ string, cutoff time.Time, limit int) (retention.Range, bool, error) {
	_, sc, err := unitScope(unit)
	if err != nil {
		return retention.Range{}, false, err
	}
	first, head, err := t.s.store.ChainBounds(ctx, sc)
	if err != nil || first == 0 || head <= first {
		return retention.Range{}, false, err
	}
	xs, err := t.s.store.ExportsCovering(ctx, sc, first, min(head-1, first+int64(limit)-1))
	if err != nil || len(xs) == 0 || xs[0].FromSeq > first {
		return retention.Range{}, false, err
	}
	// The candidates: contiguous exports before the head, within limit (the first one always).
	end := first - 1
	var bounds []int64
	for _, x := range xs {
		if x.FromSeq > end+1 || x.ToSeq >= head || (len(bounds) > 0 && x.ToSeq > first+int64(limit)-1) {
			break
		}
		end = x.ToSeq
		bounds = append(bounds, end)
	}
	if len(bounds) == 0 {
		return retention.Range{}, false, nil
	}
	span, err := t.s.store.SeqSpan(ctx, sc, first-1, end, int(end-first+1))
	if err != nil {
		return retention.Range{}, false, err
	}
	due := 0 // entries first.. that are in SQL, in order, and due
	for due < len(span) && span[due].Seq == first+int64(due) && span[due].RecordedAt.Before(cutoff) {
		due++
	}
	to := first - 1
	for _, b := range bounds {
		if b-first+1 > int64(due) {
			break
		}
		to = b
	}
	if to < first {
		return retention.Range{}, false, nil
	}
	return spanRange(span[:to-first+1]), true, nil
}

// ErrExportUnconfirmed is a purge range whose export blob is missing or no longer holds the bytes
// its audit_exports row recorded: the entries stay in SQL (they would exist nowhere else), and the
// run fails as artifact-mismatch until an operator restores the blob.
var ErrExportUnconfirmed = fmt.Errorf("audit: an export of the purge range is missing or altered in the archive: %w", retention.ErrArtifactMismatch)

// Export implements retention.Target: a purge writes no artifact, but it deletes only after the
// exports' blobs are confirmed: each export covering the range is read back from the archive and
// its SHA-256 compared with the one recorded when it was written (streamed: memory bounded by the
// hash, not the blob). A crash after this check and before the delete repeats the check.
func (t purgeTarget) Export(ctx context.Context, unit string, r retention.Range, _ retention.Evidence) (*retention.Artifact, error) {
	_, sc, err := unitScope(unit)
	if err != nil {
		return nil, err
	}
	from, to, err := rangeSeqs(r)
	if err != nil {
		return nil, err
	}
	if t.s.blobs == nil {
		return nil, ErrNoArchive
	}
	xs, err := t.s.store.ExportsCovering(ctx, sc, from, to)
	if err != nil {
		return nil, err
	}
	covered := from - 1
	for _, x := range xs {
		if x.FromSeq != covered+1 {
			break
		}
		if err := t.confirm(ctx, x); err != nil {
			return nil, err
		}
		covered = x.ToSeq
	}
	if covered < to {
		return nil, fmt.Errorf("%w (seq %d..%d not covered by recorded exports)", ErrExportUnconfirmed, covered+1, to)
	}
	return nil, nil
}

// confirm reads export x's blob and compares its SHA-256 with the recorded one.
func (t purgeTarget) confirm(ctx context.Context, x Export) error {
	rc, _, err := t.s.blobs.Open(ctx, ArchiveContainer, x.Blob)
	if errors.Is(err, blob.ErrNotFound) {
		return fmt.Errorf("%w (%s: missing)", ErrExportUnconfirmed, x.Blob)
	}
	if err != nil {
		return err
	}
	defer rc.Close()
	h := sha256.New()
	if _, err := io.Copy(h, rc); err != nil {
		return err
	}
	if hex.EncodeToString(h.Sum(nil)) != x.SHA256 {
		return fmt.Errorf("%w (%s: SHA-256 differs from the recorded one)", ErrExportUnconfirmed, x.Blob)
	}
	return nil
}

// purgedPayload is the payload of the entry a purge records.
type purgedPayload struct {
	FromSeq    int64     `json:"fromSeq"`
	ToSeq      int64     `json:"toSeq"`
	Count      int       `json:"count"`
	Cutoff     time.Time `json:"cutoff"`
	EvidenceID string    `json:"evidenceId"`
	RunID      string    `json:"runId"`
}

// Apply implements retention.Target: audit_purge deletes the range (exactly: Next chose what the
// routine's own rules allow) and, when it deleted any, one entry records the purge in the
// tenant's chain, with the evidence event, in the same transaction.
func (t purgeTarget) Apply(ctx context.Context, unit string, r retention.Range, ev retention.Evidence) (int, error) {
	tenant, sc, err := unitScope(unit)
	if err != nil {
		return 0, err
	}
	from, to, err := rangeSeqs(r)
	if err != nil {
		return 0, err
	}
	return t.s.store.Purge(ctx, sc, to, ev.Cutoff, func(n int) (NewEntry, []events.Event, error) {
		payload, err := json.Marshal(purgedPayload{FromSeq: from, ToSeq: from + int64(n) - 1, Count: n,
			Cutoff: ev.Cutoff.UTC(), EvidenceID: ev.ID, RunID: ev.RunID})
		if err != nil {
			return NewEntry{}, nil, err
		}
		evidence, err := retention.EvidenceEvent(ev)
		if err != nil {
			return NewEntry{}, nil, err
		}
		return NewEntry{ID: ids.New(), OccurredAt: utcMicro(time.Now()), Actor: Actor{Type: "system", ID: "retention-auditpurge"},
			Action: ActionEntriesPurged, Resource: Resource{Type: "audit-entries", ID: tenant.String()},
			CorrelationID: ev.RunID, SourceEventID: ev.ID, Payload: payload}, []events.Event{evidence}, nil
	})
}
