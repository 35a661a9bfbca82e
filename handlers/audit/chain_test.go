package audit

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"spine/shared/ids"
	"spine/shared/tenancy"
)

func sampleEntry() Entry {
	ne := NewEntry{ID: "0193a000-0000-7000-8000-000000000001", OccurredAt: time.Date(2026, 1, 2, 3, 4, 5, 678901000, time.UTC),
		Actor: Actor{Type: "user", ID: "u-1"}, Action: "document.read", Resource: Resource{Type: "document", ID: "d-9"},
		TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", CorrelationID: "corr-1",
		SourceEventID: "0193a000-0000-7000-8000-0000000000ee", Payload: json.RawMessage(`{"b":1,"a":[true,null]}`)}
	es := link(tenancy.MustParseTenantID("0193a000-0000-7000-8000-00000000000a"), 0, nil, []NewEntry{ne},
		time.Date(2026, 1, 2, 3, 4, 6, 0, time.UTC))
	return es[0]
}

// Every covered member changes the hash, and the encoding's field boundaries are unambiguous.
func TestEntryHash_CoversEveryMember(t *testing.T) {
	base := sampleEntry()
	if !bytes.Equal(entryHash(&base), base.Hash) || len(base.Hash) != HashSize {
		t.Fatal("link must store entryHash")
	}
	mutations := map[string]func(e *Entry){
		"tenant":        func(e *Entry) { e.TenantID = tenancy.MustParseTenantID("0193a000-0000-7000-8000-00000000000b") },
		"seq":           func(e *Entry) { e.Seq = 2 },
		"id":            func(e *Entry) { e.ID = "0193a000-0000-7000-8000-000000000002" },
		"occurredAt":    func(e *Entry) { e.OccurredAt = e.OccurredAt.Add(time.Microsecond) },
		"recordedAt":    func(e *Entry) { e.RecordedAt = e.RecordedAt.Add(time.Microsecond) },
		"actor.type":    func(e *Entry) { e.Actor.Type = "service" },
		"actor.id":      func(e *Entry) { e.Actor.ID = "u-2" },
		"action":        func(e *Entry) { e.Action = "document.write" },
		"resource.type": func(e *Entry) { e.Resource.Type = "folder" },
		"resource.id":   func(e *Entry) { e.Resource.ID = "d-8" },
		"traceId":       func(e *Entry) { e.TraceID = "" },
		"correlationId": func(e *Entry) { e.CorrelationID = "corr-2" },
		"sourceEventId": func(e *Entry) { e.SourceEventID = "" },
		"payload":       func(e *Entry) { e.Payload = json.RawMessage(`{"a":[true,null],"b":1}`) },
		"prevHash":      func(e *Entry) { e.PrevHash = bytes.Repeat([]byte{1}, HashSize) },
		// Moving a byte from one member to its neighbour keeps the concatenation the same.
		"boundary": func(e *Entry) { e.Actor.Type, e.Actor.ID = "useru", "-1" },
	}
	for name, mutate := range mutations {
		e := base
		mutate(&e)
		if bytes.Equal(entryHash(&e), base.Hash) {
			t.Errorf("changing %s leaves the hash unchanged", name)
		}
	}
	// Times hash in UTC at microsecond precision, whatever their zone or extra nanoseconds.
	e := base
	e.OccurredAt = e.OccurredAt.In(time.FixedZone("X", 5*3600)).Add(999 * time.Nanosecond)
	if !bytes.Equal(entryHash(&e), base.Hash) {
		t.Error("the same instant in another zone, or below a microsecond, must hash alike")
	}
}

func TestLink_ChainsFromZeroOrFromTheLastEntry(t *testing.T) {
	tenant := tenancy.NewTenantID()
	ne := func() NewEntry {
		return NewEntry{ID: ids.New(), OccurredAt: time.Now(), Actor: Actor{"user", "u"}, Action: "a", Resource: Resource{"r", "1"}, Payload: json.RawMessage(`{}`)}
	}
	first := link(tenant, 0, nil, []NewEntry{ne(), ne()}, time.Now())
	if first[0].Seq != 1 || !bytes.Equal(first[0].PrevHash, zeroHash) || first[1].Seq != 2 || !bytes.Equal(first[1].PrevHash, first[0].Hash) {
		t.Fatalf("first batch: %+v", first)
	}
	more := link(tenant, 2, first[1].Hash, []NewEntry{ne()}, time.Now())
	if more[0].Seq != 3 || !bytes.Equal(more[0].PrevHash, first[1].Hash) {
		t.Fatalf("second batch: seq %d", more[0].Seq)
	}
	c := newChainCheck()
	for _, e := range append(first, more...) {
		if br := c.next(&e); br != nil {
			t.Fatalf("intact chain reported %+v", br)
		}
	}
}

func TestChainCheck_NamesTheFirstBrokenLink(t *testing.T) {
	tenant := tenancy.NewTenantID()
	var in []NewEntry
	for range 5 {
		in = append(in, NewEntry{ID: ids.New(), OccurredAt: time.Now(), Actor: Actor{"user", "u"}, Action: "a",
			Resource: Resource{"r", "1"}, Payload: json.RawMessage(`{"n":1}`)})
	}
	chain := link(tenant, 0, nil, in, time.Now())
	run := func(es []Entry) *Break {
		c := newChainCheck()
		for i := range es {
			if br := c.next(&es[i]); br != nil {
				return br
			}
		}
		return nil
	}
	cp := func() []Entry { return append([]Entry(nil), chain...) }

	edited := cp()
	edited[2].Payload = json.RawMessage(`{"n":2}`)
	if br := run(edited); br == nil || br.Seq != 3 || br.Reason != ReasonHashMismatch {
		t.Errorf("edited payload: %+v", br)
	}
	rehashed := cp()
	rehashed[2].Action = "b"
	rehashed[2].Hash = entryHash(&rehashed[2])
	if br := run(rehashed); br == nil || br.Seq != 4 || br.Reason != ReasonChainBreak {
		t.Errorf("edited and re-hashed: %+v", br)
	}
	removed := append(cp()[:2], chain[3:]...)
	if br := run(removed); br == nil || br.Seq != 4 || br.Reason != ReasonSequenceGap {
		t.Errorf("removed entry 3: %+v", br)
	}
	if br := run(cp()[1:]); br == nil || br.Seq != 2 || br.Reason != ReasonSequenceGap {
		t.Errorf("missing first entry: %+v", br)
	}
}

func TestConsumerName(t *testing.T) {
	for in, want := range map[string]string{"tenants": "AuditOnTenantsEvent", "feature_flags": "AuditOnFeatureFlagsEvent", "identity": "AuditOnIdentityEvent"} {
		if got := ConsumerName(in); got != want {
			t.Errorf("ConsumerName(%q) = %q, want %q", in, got, want)
		}
	}
}
