package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"time"

	"spine/shared/tenancy"
)

// The hash chain.
//
// Each entry's Hash is SHA-256 over a canonical binary encoding of its content and its PrevHash,
// and PrevHash is the stored Hash of the tenant's previous entry (32 zero bytes for seq 1). Changing,
// removing or reordering a stored entry therefore breaks either its own hash or the link from the
// next entry, which Verify reports.
//
// The encoding is a domain tag naming its version followed by every covered field as a 4-byte
// big-endian length and the field's bytes, so field boundaries are unambiguous ("ab"+"c" never
// encodes like "a"+"bc") and no JSON canonicalization is involved. Covered, in order:
//
//	tenant id (canonical text; the nil UUID for the platform chain), seq (8 bytes big-endian), entry id (canonical text),
//	occurredAt, recordedAt (UTC, "2006-01-02T15:04:05.000000Z": the microseconds both engines keep),
//	actor type, actor id, action, resource type, resource id, trace id, correlation id,
//	source event id ("" when none), payload (the stored JSON text, byte for byte), prev hash.
//
// recordedAt is covered as well: it is set by the service under the tenant's append lock, so it is
// content like any other, and leaving it out would let it be rewritten without a trace.
// A future encoding gets a new tag (and a column saying which entries use it); v1 entries keep
// verifying with v1.
const chainTagV1 = "spine.audit.entry.v1"

// HashSize is the size of Hash and PrevHash.
const HashSize = sha256.Size

// zeroHash is the PrevHash of a tenant's first entry.
var zeroHash = make([]byte, HashSize)

// chainTime is the hashed form of a time.
const chainTime = "2006-01-02T15:04:05.000000Z07:00"

// entryHash computes e's hash from its content and PrevHash (e.Hash is not read).
func entryHash(e *Entry) []byte {
	h := sha256.New()
	var n [8]byte
	field := func(b []byte) {
		binary.BigEndian.PutUint32(n[:4], uint32(len(b)))
		h.Write(n[:4])
		h.Write(b)
	}
	text := func(s string) {
		binary.BigEndian.PutUint32(n[:4], uint32(len(s)))
		h.Write(n[:4])
		writeString(h, s)
	}
	text(chainTagV1)
	text(tenantText(e.TenantID))
	binary.BigEndian.PutUint64(n[:], uint64(e.Seq))
	field(n[:])
	text(e.ID)
	text(utcMicro(e.OccurredAt).Format(chainTime))
	text(utcMicro(e.RecordedAt).Format(chainTime))
	text(e.Actor.Type)
	text(e.Actor.ID)
	text(e.Action)
	text(e.Resource.Type)
	text(e.Resource.ID)
	text(e.TraceID)
	text(e.CorrelationID)
	text(e.SourceEventID)
	field(e.Payload)
	field(e.PrevHash)
	return h.Sum(nil)
}

// writeString writes s without converting it to a new byte slice when the hash supports it.
func writeString(h hash.Hash, s string) {
	if sw, ok := h.(interface{ WriteString(string) (int, error) }); ok {
		_, _ = sw.WriteString(s)
		return
	}
	h.Write([]byte(s))
}

// link chains entries after the tenant's last stored entry (lastSeq, lastHash; 0 and nil when
// the tenant has none), all recorded at recordedAt. It is the only place seq and hashes are made.
func link(tenant tenancy.TenantID, lastSeq int64, lastHash []byte, entries []NewEntry, recordedAt time.Time) []Entry {
	prev := lastHash
	if lastSeq == 0 {
		prev = zeroHash
	}
	out := make([]Entry, len(entries))
	for i, ne := range entries {
		ne.OccurredAt = utcMicro(ne.OccurredAt)
		e := Entry{NewEntry: ne, TenantID: tenant, Seq: lastSeq + int64(i) + 1,
			RecordedAt: utcMicro(recordedAt), PrevHash: prev}
		e.Hash = entryHash(&e)
		out[i] = e
		prev = e.Hash
	}
	return out
}

// Reasons a chain check fails, as Verify reports them.
const (
	// ReasonHashMismatch: the entry's stored hash is not the hash of its stored content, so the
	// entry (or its hash) was changed after it was written.
	ReasonHashMismatch = "hash-mismatch"
	// ReasonChainBreak: the entry's prev hash is not the stored hash of the entry before it, so
	// the previous entry was replaced (content and hash rewritten) or this one was re-linked.
	ReasonChainBreak = "chain-break"
	// ReasonSequenceGap: the entry's seq does not follow the previous entry's, so entries were
	// removed (or renumbered) before it.
	ReasonSequenceGap = "sequence-gap"
)

// Break is the first broken link Verify found.
type Break struct {
	ID     string
	Seq    int64
	Reason string
}

// chainCheck verifies entries fed to it in seq order. Start it with the stored seq and hash of
// the entry just before the first one to check (0 and zero hash before a tenant's first entry).
type chainCheck struct {
	prevSeq  int64
	prevHash []byte
}

func newChainCheck() *chainCheck { return &chainCheck{prevHash: zeroHash} }

// anchor sets the entry the next one must follow.
func (c *chainCheck) anchor(seq int64, hash []byte) { c.prevSeq, c.prevHash = seq, hash }

// next checks e against its predecessor and its own content and returns the break, if any.
// The order of the checks makes the reported reason the most specific one: a missing predecessor
// first, then a changed entry, then a changed link.
func (c *chainCheck) next(e *Entry) *Break {
	var reason string
	switch {
	case e.Seq != c.prevSeq+1:
		reason = ReasonSequenceGap
	case !bytes.Equal(entryHash(e), e.Hash):
		reason = ReasonHashMismatch
	case !bytes.Equal(e.PrevHash, c.prevHash):
		reason = ReasonChainBreak
	}
	c.anchor(e.Seq, e.Hash)
	if reason == "" {
		return nil
	}
	return &Break{ID: e.ID, Seq: e.Seq, Reason: reason}
}
