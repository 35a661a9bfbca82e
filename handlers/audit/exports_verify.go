package audit

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"spine/shared/blob"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
)

// Problems the export verifier reports (ExportProblem.Code): stable strings.
const (
	// ProblemBlobMissing: the export's entries blob (or its manifest) is not in the archive.
	ProblemBlobMissing = "blob-missing"
	// ProblemSHA256Mismatch: the blob's bytes do not have the SHA-256 audit_exports recorded.
	ProblemSHA256Mismatch = "sha256-mismatch"
	// ProblemUnreadable: the blob is not gzip'd JSON Lines of entries.
	ProblemUnreadable = "unreadable"
	// ProblemCountMismatch: the blob holds another number of entries than the export's range.
	ProblemCountMismatch = "count-mismatch"
	// ProblemExportGap: the export does not start right after the previous one (or at seq 1).
	ProblemExportGap = "export-gap"
	// ProblemManifestMismatch: the manifest, or the recorded first prev hash / last hash, differ
	// from the blob's entries.
	ProblemManifestMismatch = "manifest-mismatch"
	// ProblemSQLMismatch: an entry still in SQL differs from its exported copy.
	ProblemSQLMismatch = "sql-mismatch"
	// The chain reasons (ReasonSequenceGap, ReasonHashMismatch, ReasonChainBreak) name a broken
	// link inside the exported entries or across two consecutive exports.
)

// exportsPage is how many exports the verifier reads per query.
const exportsPage = 200

// ExportProblem is one problem the export verifier found: in which blob, at which seq (0 when it
// concerns the blob as a whole), what (a Problem* or Reason* code).
type ExportProblem struct {
	Blob string
	Seq  int64
	Code string
}

// ExportReport is the outcome of VerifyExports.
type ExportReport struct {
	TenantID tenancy.TenantID
	// Exports and Entries count the exports read and the entries they hold.
	Exports int
	Entries int64
	// FirstSeq and LastSeq bound the exported range checked (0 when there is no export).
	FirstSeq, LastSeq int64
	Problems          []ExportProblem
	// NextFromSeq is where the next page starts (VerifyExportsFrom with it), 0 when this page
	// reached the last export.
	NextFromSeq int64
}

// ErrInvalidFromSeq: a page of the export verifier must start where an export starts (1, or a
// page's NextFromSeq).
var ErrInvalidFromSeq = errors.New("audit: fromSeq is not where an export starts")

// OK reports whether every export checked out.
func (r ExportReport) OK() bool { return len(r.Problems) == 0 }

// VerifyExports re-reads every export of tenant's chain (audit_exports, in seq order) from the
// archive and checks: the blob's SHA-256 against the one recorded; that it decompresses to the
// range's entries, each with the hash of its content (chain.go), chained to its predecessor across
// consecutive exports from seq 1; the recorded and the manifest's first prev hash and last hash;
// and that every entry still in SQL equals its exported copy. Tampering is a problem in the
// report, not an error. The zero tenant (the platform chain) has no exports.
func (s *Service) VerifyExports(ctx context.Context, c Caller, tenant tenancy.TenantID) (ExportReport, error) {
	return s.VerifyExportsFrom(ctx, c, tenant, 1, 0)
}

// VerifyExportsFrom is VerifyExports for one page: at most maxExports exports (0: all) from the
// export starting at fromSeq (1, or a previous page's NextFromSeq), its chain check anchored on
// the recorded last hash of the export that ends right before it — so pages together check what
// one call would, and one page's memory and time are bounded by its size.
func (s *Service) VerifyExportsFrom(ctx context.Context, c Caller, tenant tenancy.TenantID, fromSeq int64, maxExports int) (ExportReport, error) {
	sc, err := chainScope(c, tenant)
	if err != nil {
		return ExportReport{}, err
	}
	r := ExportReport{TenantID: tenant}
	if tenant.IsZero() {
		return r, nil
	}
	if s.blobs == nil {
		return ExportReport{}, ErrNoArchive
	}
	check := newChainCheck()
	var after int64
	if fromSeq > 1 {
		prev, err := s.store.ExportEnding(ctx, sc, fromSeq-1)
		if errors.Is(err, ErrNotFound) {
			return ExportReport{}, fmt.Errorf("%w: no export ends at seq %d", ErrInvalidFromSeq, fromSeq-1)
		}
		if err != nil {
			return ExportReport{}, err
		}
		check.anchor(prev.ToSeq, prev.LastHash)
		r.LastSeq, after = prev.ToSeq, prev.FromSeq
	}
	for {
		n := exportsPage
		if maxExports > 0 {
			n = min(n, maxExports-r.Exports)
		}
		xs, err := s.store.Exports(ctx, sc, after, n)
		if err != nil {
			return ExportReport{}, err
		}
		for _, x := range xs {
			if err := s.verifyExport(ctx, &r, check, x); err != nil {
				return ExportReport{}, err
			}
		}
		if len(xs) < n {
			return r, nil
		}
		after = xs[len(xs)-1].FromSeq
		if maxExports > 0 && r.Exports >= maxExports {
			next, err := s.store.Exports(ctx, sc, after, 1)
			if err != nil {
				return ExportReport{}, err
			}
			if len(next) > 0 {
				r.NextFromSeq = next[0].FromSeq
			}
			return r, nil
		}
	}
}

// verifyExport checks one export; check carries the chain from the previous export.
func (s *Service) verifyExport(ctx context.Context, r *ExportReport, check *chainCheck, x Export) error {
	problem := func(seq int64, code string) {
		r.Problems = append(r.Problems, ExportProblem{Blob: x.Blob, Seq: seq, Code: code})
	}
	r.Exports++
	if r.FirstSeq == 0 {
		r.FirstSeq = x.FromSeq
	}
	if x.FromSeq != r.LastSeq+1 {
		problem(x.FromSeq, ProblemExportGap)
	}
	r.LastSeq = x.ToSeq
	// Whatever this export holds, the next one is checked against the recorded last link.
	defer check.anchor(x.ToSeq, x.LastHash)
	data, err := s.blobs.Get(ctx, ArchiveContainer, x.Blob)
	if errors.Is(err, blob.ErrNotFound) {
		problem(0, ProblemBlobMissing)
		return nil
	}
	if err != nil {
		return err
	}
	if sha256Hex(data) != x.SHA256 {
		problem(0, ProblemSHA256Mismatch)
		return nil
	}
	entries, err := decodeArchive(x.TenantID, data)
	if err != nil {
		problem(0, ProblemUnreadable)
		return nil
	}
	if len(entries) != x.Count {
		problem(0, ProblemCountMismatch)
	}
	r.Entries += int64(len(entries))
	for i := range entries {
		if br := check.next(&entries[i]); br != nil {
			problem(br.Seq, br.Reason)
		}
	}
	if len(entries) > 0 {
		first, last := entries[0], entries[len(entries)-1]
		if first.Seq != x.FromSeq || last.Seq != x.ToSeq || !bytes.Equal(first.PrevHash, x.FirstPrevHash) || !bytes.Equal(last.Hash, x.LastHash) {
			problem(0, ProblemManifestMismatch)
		}
	}
	if err := s.checkManifest(ctx, x, int64(len(data)), problem); err != nil {
		return err
	}
	return s.compareWithSQL(ctx, x, entries, problem)
}

// checkManifest compares the export's manifest blob with its audit_exports row and the size of
// the entries blob.
func (s *Service) checkManifest(ctx context.Context, x Export, size int64, problem func(int64, string)) error {
	raw, err := s.blobs.Get(ctx, ArchiveContainer, manifestName(x.Blob))
	if errors.Is(err, blob.ErrNotFound) {
		problem(0, ProblemBlobMissing)
		return nil
	}
	if err != nil {
		return err
	}
	var m manifest
	want := manifest{TenantID: x.TenantID.String(), FromSeq: x.FromSeq, ToSeq: x.ToSeq, Count: x.Count,
		FirstPrevHash: hex.EncodeToString(x.FirstPrevHash), LastHash: hex.EncodeToString(x.LastHash), SHA256: x.SHA256, Size: size}
	if json.Unmarshal(raw, &m) != nil {
		problem(0, ProblemManifestMismatch)
		return nil
	}
	if !m.sameRange(want) {
		problem(0, ProblemManifestMismatch)
	}
	return nil
}

// compareWithSQL checks that the exported entries still in SQL are equal to their copies.
func (s *Service) compareWithSQL(ctx context.Context, x Export, exported []Entry, problem func(int64, string)) error {
	sc := sqlstore.TenantScope(x.TenantID) // the caller reaches the tenant (VerifyExports)
	byseq := make(map[int64]*Entry, len(exported))
	for i := range exported {
		byseq[exported[i].Seq] = &exported[i]
	}
	after := x.FromSeq - 1
	for {
		page, err := s.store.Range(ctx, sc, after, x.ToSeq, verifyPage)
		if err != nil {
			return err
		}
		for i := range page {
			e := &page[i]
			archived, ok := byseq[e.Seq]
			if !ok {
				continue // not in the blob: the count or the chain check reported it
			}
			a, err1 := encodeLine(e)
			b, err2 := encodeLine(archived)
			if err1 != nil || err2 != nil || !bytes.Equal(a, b) {
				problem(e.Seq, ProblemSQLMismatch)
			}
		}
		if len(page) < verifyPage {
			return nil
		}
		after = page[len(page)-1].Seq
	}
}
