package audit

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"spine/shared/tenancy"
)

// The archive: a tenant's chain exported to the WORM container, one create-only blob per range.
//
//	<tenantId>/audit/<yyyy>/<mm>/<dd>/<fromSeq>-<toSeq>.jsonl.gz        the entries
//	<tenantId>/audit/<yyyy>/<mm>/<dd>/<fromSeq>-<toSeq>.manifest.json   the range's manifest
//
// The date is the range's first entry's recorded_at (UTC). The entries blob is gzip'd JSON Lines,
// one entry per line in seq order (archiveLine: every column; the payload verbatim; hashes hex),
// built deterministically (a fixed gzip header, fixed member order), so the same range always
// produces the same bytes and a rerun can compare SHA-256s.

// ArchiveContainer is the WORM container the audit exports go to (infra sets its immutability
// policy; Azurite ignores it).
const ArchiveContainer = "audit-archive"

// archiveLine is one entry of an export blob: every column of audit_entries.
type archiveLine struct {
	Seq           int64           `json:"seq"`
	EntryID       string          `json:"entryId"`
	OccurredAt    string          `json:"occurredAt"`
	RecordedAt    string          `json:"recordedAt"`
	Actor         actorJSON       `json:"actor"`
	Action        string          `json:"action"`
	Resource      resourceJSON    `json:"resource"`
	TraceID       string          `json:"traceId"`
	CorrelationID string          `json:"correlationId"`
	SourceEventID string          `json:"sourceEventId"`
	Payload       json.RawMessage `json:"payload"`
	PrevHash      string          `json:"prevHash"`
	Hash          string          `json:"hash"`
}

// manifest is the manifest blob of an export.
type manifest struct {
	TenantID      string `json:"tenantId"`
	FromSeq       int64  `json:"fromSeq"`
	ToSeq         int64  `json:"toSeq"`
	Count         int    `json:"count"`
	FirstPrevHash string `json:"firstPrevHash"`
	LastHash      string `json:"lastHash"`
	SHA256        string `json:"sha256"`
	Size          int64  `json:"size"`
	EvidenceID    string `json:"evidenceId"`
}

// sameRange reports whether m describes the same export as o (the evidence id aside: a range's
// manifest written by an earlier attempt keeps that attempt's).
func (m manifest) sameRange(o manifest) bool {
	m.EvidenceID, o.EvidenceID = "", ""
	return m == o
}

// archiveBase is the export's blob name without its extension.
func archiveBase(tenant tenancy.TenantID, firstRecorded time.Time, from, to int64) string {
	d := firstRecorded.UTC()
	return fmt.Sprintf("%s/audit/%04d/%02d/%02d/%d-%d", tenant, d.Year(), int(d.Month()), d.Day(), from, to)
}

// manifestName is the manifest blob's name of an entries blob's name.
func manifestName(blobName string) string {
	return strings.TrimSuffix(blobName, ".jsonl.gz") + ".manifest.json"
}

func toLine(e *Entry) archiveLine {
	return archiveLine{Seq: e.Seq, EntryID: e.ID, OccurredAt: e.OccurredAt.UTC().Format(chainTime),
		RecordedAt: e.RecordedAt.UTC().Format(chainTime), Actor: actorJSON{Type: e.Actor.Type, ID: e.Actor.ID},
		Action: e.Action, Resource: resourceJSON{Type: e.Resource.Type, ID: e.Resource.ID}, TraceID: e.TraceID,
		CorrelationID: e.CorrelationID, SourceEventID: e.SourceEventID, Payload: e.Payload,
		PrevHash: hex.EncodeToString(e.PrevHash), Hash: hex.EncodeToString(e.Hash)}
}

// encodeLine is e's line (without the newline). HTML escaping is off and the payload is stored
// compacted, so the payload's bytes in the line are the stored bytes.
func encodeLine(e *Entry) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(toLine(e)); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// encodeArchive is the gzip'd JSON Lines of entries: deterministic (no name, no modification time
// in the gzip header).
func encodeArchive(entries []Entry) ([]byte, error) {
	var out bytes.Buffer
	zw, err := gzip.NewWriterLevel(&out, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	for i := range entries {
		line, err := encodeLine(&entries[i])
		if err != nil {
			return nil, err
		}
		var back archiveLine
		if err := json.Unmarshal(line, &back); err != nil || !bytes.Equal(back.Payload, entries[i].Payload) {
			// The line would not carry the stored payload byte for byte (not compacted JSON): the
			// archive could never verify, so it is not written.
			return nil, fmt.Errorf("%w: entry %d's payload is not stored compacted", errArchiveFormat, entries[i].Seq)
		}
		if _, err := zw.Write(append(line, '\n')); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// errArchiveFormat: an archive blob that is not what encodeArchive writes.
var errArchiveFormat = errors.New("audit: not an audit archive")

// decodeArchive reads an export blob's entries (of tenant), in the blob's order.
func decodeArchive(tenant tenancy.TenantID, data []byte) ([]Entry, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errArchiveFormat, err)
	}
	raw, err := io.ReadAll(io.LimitReader(zr, 1<<30))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errArchiveFormat, err)
	}
	var out []Entry
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 0, 1<<16), 8<<20)
	for sc.Scan() {
		var l archiveLine
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&l); err != nil {
			return nil, fmt.Errorf("%w: line %d: %w", errArchiveFormat, len(out)+1, err)
		}
		e, err := fromLine(tenant, l)
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: %w", errArchiveFormat, len(out)+1, err)
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", errArchiveFormat, err)
	}
	return out, nil
}

func fromLine(tenant tenancy.TenantID, l archiveLine) (Entry, error) {
	occ, err := time.Parse(chainTime, l.OccurredAt)
	if err != nil {
		return Entry{}, err
	}
	rec, err := time.Parse(chainTime, l.RecordedAt)
	if err != nil {
		return Entry{}, err
	}
	prev, err := hex.DecodeString(l.PrevHash)
	if err != nil {
		return Entry{}, err
	}
	h, err := hex.DecodeString(l.Hash)
	if err != nil {
		return Entry{}, err
	}
	return Entry{NewEntry: NewEntry{ID: l.EntryID, OccurredAt: occ.UTC(), Actor: Actor{Type: l.Actor.Type, ID: l.Actor.ID},
		Action: l.Action, Resource: Resource{Type: l.Resource.Type, ID: l.Resource.ID}, TraceID: l.TraceID,
		CorrelationID: l.CorrelationID, SourceEventID: l.SourceEventID, Payload: l.Payload},
		TenantID: tenant, Seq: l.Seq, RecordedAt: rec.UTC(), PrevHash: prev, Hash: h}, nil
}

// sha256Hex is the lowercase hex SHA-256 of b.
func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// seqText is a seq as a range key.
func seqText(n int64) string { return strconv.FormatInt(n, 10) }

// parseSeq reads a range key ("" = 0).
func parseSeq(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("audit: range key %q is not a seq", s)
	}
	return n, nil
}
