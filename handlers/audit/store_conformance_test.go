package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"spine/shared/events"
	"spine/shared/ids"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
)

// mkEntry is a valid entry with a fresh id; mods adjust it.
func mkEntry(action string, mods ...func(*NewEntry)) NewEntry {
	ne := NewEntry{ID: ids.New(), OccurredAt: utcMicro(time.Now()), Actor: Actor{Type: "user", ID: "u-1"},
		Action: action, Resource: Resource{Type: "document", ID: "d-1"}, Payload: json.RawMessage(`{}`)}
	for _, m := range mods {
		m(&ne)
	}
	return ne
}

// readChain returns every entry of tenant in seq order through Range.
func readChain(t *testing.T, s Store, tenant tenancy.TenantID) []Entry {
	t.Helper()
	var all []Entry
	var after int64
	for {
		page, err := s.Range(context.Background(), sqlstore.TenantScope(tenant), after, 1<<62, 100)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page...)
		if len(page) < 100 {
			return all
		}
		after = page[len(page)-1].Seq
	}
}

// assertChain checks that es is the tenant's whole chain: seq 1..n, every hash recomputes and
// every prev hash is the previous entry's hash.
func assertChain(t *testing.T, es []Entry, n int) {
	t.Helper()
	if len(es) != n {
		t.Fatalf("%d entries, want %d", len(es), n)
	}
	c := newChainCheck()
	for i := range es {
		if br := c.next(&es[i]); br != nil {
			t.Fatalf("entry %d of %d: %+v", i+1, n, br)
		}
	}
}

// runStoreConformance is the one suite every Store implementation must pass. newStore returns a
// store over a migrated database reached through the runtime role; subtests isolate themselves
// with fresh tenants, since entries can never be removed.
func runStoreConformance(t *testing.T, newStore func(t *testing.T) Store) {
	ctx := context.Background()

	// The retention sweeps' reads and the export record (the purge itself is PostgreSQL's
	// audit_purge, tested in retention_test.go; Azure SQL's ledger table refuses it).
	t.Run("Archive_RecordsAnExportOnceAndReadsItBack", func(t *testing.T) {
		s := newStore(t)
		tenant := tenancy.NewTenantID()
		sc := sqlstore.TenantScope(tenant)
		rec, _, err := s.Append(ctx, sc, []NewEntry{mkEntry("a.1"), mkEntry("a.2"), mkEntry("a.3"), mkEntry("a.4")}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if span, err := s.SeqSpan(ctx, sc, 1, 0, 2); err != nil || len(span) != 2 || span[0].Seq != 2 || !span[1].RecordedAt.Equal(rec[2].RecordedAt) {
			t.Fatalf("SeqSpan = %v, %v", span, err)
		}
		if first, last, err := s.ChainBounds(ctx, sc); err != nil || first != 1 || last != 4 {
			t.Fatalf("ChainBounds = %d, %d, %v", first, last, err)
		}
		x := Export{TenantID: tenant, FromSeq: 1, ToSeq: 3, Count: 3, Blob: tenant.String() + "/audit/x/1-3.jsonl.gz",
			SHA256: strings.Repeat("ab", 32), FirstPrevHash: rec[0].PrevHash, LastHash: rec[2].Hash, EvidenceID: ids.New(),
			ExportedAt: utcMicro(time.Now())}
		for i, want := range []bool{true, false} {
			if got, err := s.RecordExport(ctx, sc, x, nil); err != nil || got != want {
				t.Fatalf("RecordExport #%d = %v, %v; want %v", i+1, got, err, want)
			}
		}
		if n, err := s.ExportedThrough(ctx, sc); err != nil || n != 3 {
			t.Fatalf("ExportedThrough = %d, %v", n, err)
		}
		got, err := s.ExportEnding(ctx, sc, 3)
		if err != nil || got.FromSeq != 1 || got.Blob != x.Blob || got.SHA256 != x.SHA256 || !bytes.Equal(got.LastHash, x.LastHash) ||
			!bytes.Equal(got.FirstPrevHash, x.FirstPrevHash) || got.EvidenceID != x.EvidenceID || !got.ExportedAt.Equal(x.ExportedAt) {
			t.Fatalf("ExportEnding = %+v, %v", got, err)
		}
		if _, err := s.ExportEnding(ctx, sc, 2); !errors.Is(err, ErrNotFound) {
			t.Fatalf("ExportEnding(2) = %v, want ErrNotFound", err)
		}
		if xs, err := s.Exports(ctx, sc, 0, 10); err != nil || len(xs) != 1 {
			t.Fatalf("Exports = %v, %v", xs, err)
		}
		if xs, err := s.ExportsCovering(ctx, sc, 3, 4); err != nil || len(xs) != 1 || xs[0].ToSeq != 3 {
			t.Fatalf("ExportsCovering = %v, %v", xs, err)
		}
		if xs, err := s.Exports(ctx, sqlstore.TenantScope(tenancy.NewTenantID()), 0, 10); err != nil || len(xs) != 0 {
			t.Fatalf("another tenant's Exports = %v, %v", xs, err)
		}
		for name, list := range map[string]func(context.Context) ([]string, error){"EntryTenants": s.EntryTenants, "ExportedTenants": s.ExportedTenants} {
			ts, err := list(ctx)
			if err != nil || !slices.Contains(ts, tenant.String()) || slices.Contains(ts, "00000000-0000-0000-0000-000000000000") {
				t.Fatalf("%s = %d tenants (ours: %v), %v", name, len(ts), slices.Contains(ts, tenant.String()), err)
			}
		}
	})

	// The export record is the owner's routine's (audit_record_export): a row that does not fit
	// the chain is refused, whoever asks, and leaves nothing behind.
	t.Run("Archive_RecordExport_RowThatDoesNotFitTheChainRefused", func(t *testing.T) {
		s := newStore(t)
		tenant := tenancy.NewTenantID()
		sc := sqlstore.TenantScope(tenant)
		rec, _, err := s.Append(ctx, sc, []NewEntry{mkEntry("a.1"), mkEntry("a.2"), mkEntry("a.3"), mkEntry("a.4")}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		export := func(from, to int64, change func(*Export)) Export {
			x := Export{TenantID: tenant, FromSeq: from, ToSeq: to, Count: int(to - from + 1),
				Blob: fmt.Sprintf("%s/audit/2026/01/02/%d-%d.jsonl.gz", tenant, from, to), SHA256: strings.Repeat("ab", 32),
				FirstPrevHash: rec[from-1].PrevHash, EvidenceID: ids.New(), ExportedAt: utcMicro(time.Now())}
			if to <= int64(len(rec)) {
				x.LastHash = rec[to-1].Hash
			} else {
				x.LastHash = rec[len(rec)-1].Hash
			}
			if change != nil {
				change(&x)
			}
			return x
		}
		other := tenancy.NewTenantID()
		for name, x := range map[string]Export{
			"not from seq 1":          export(2, 3, nil),
			"past the head":           export(1, 5, nil),
			"count":                   export(1, 3, func(x *Export) { x.Count = 2 }),
			"first prev hash":         export(1, 3, func(x *Export) { x.FirstPrevHash = rec[1].PrevHash }),
			"last hash":               export(1, 3, func(x *Export) { x.LastHash = rec[1].Hash }),
			"blob of another tenant":  export(1, 3, func(x *Export) { x.Blob = other.String() + "/audit/2026/01/02/1-3.jsonl.gz" }),
			"blob of another range":   export(1, 3, func(x *Export) { x.Blob = tenant.String() + "/audit/2026/01/02/11-3.jsonl.gz" }),
			"blob outside the prefix": export(1, 3, func(x *Export) { x.Blob = "never/written/1-3.jsonl.gz" }),
		} {
			if got, err := s.RecordExport(ctx, sc, x, nil); err == nil || got {
				t.Errorf("%s: RecordExport = %v, %v; want refused", name, got, err)
			}
		}
		if xs, err := s.Exports(ctx, sc, 0, 10); err != nil || len(xs) != 0 {
			t.Fatalf("exports after the refusals: %v, %v", xs, err)
		}
		if got, err := s.RecordExport(ctx, sc, export(1, 2, nil), nil); err != nil || !got {
			t.Fatalf("RecordExport 1-2 = %v, %v", got, err)
		}
		for name, x := range map[string]Export{"overlapping": export(2, 3, nil), "leaving a gap": export(4, 4, nil)} {
			if got, err := s.RecordExport(ctx, sc, x, nil); err == nil || got {
				t.Errorf("%s: RecordExport = %v, %v; want refused", name, got, err)
			}
		}
		if got, err := s.RecordExport(ctx, sc, export(3, 4, nil), nil); err != nil || !got {
			t.Fatalf("RecordExport 3-4 = %v, %v", got, err)
		}
		if xs, err := s.Exports(ctx, sc, 0, 10); err != nil || len(xs) != 2 || xs[1].FromSeq != 3 {
			t.Fatalf("exports %v, %v; want 1-2, 3-4", xs, err)
		}
	})

	t.Run("Append_ChainsSeqFromOneWithPrevHashLinks", func(t *testing.T) {
		s := newStore(t)
		tenant := tenancy.NewTenantID()
		var got []Entry
		for _, batch := range [][]NewEntry{
			{mkEntry("a.one")},
			{mkEntry("a.two"), mkEntry("a.three"), mkEntry("a.four")},
			{mkEntry("a.five")},
		} {
			rec, dup, err := s.Append(ctx, sqlstore.TenantScope(tenant), batch, nil, nil)
			if err != nil || dup || len(rec) != len(batch) {
				t.Fatalf("Append = %d entries, dup %v, %v", len(rec), dup, err)
			}
			got = append(got, rec...)
		}
		for i, e := range got {
			if e.Seq != int64(i+1) || e.TenantID != tenant {
				t.Fatalf("entry %d: seq %d tenant %s", i, e.Seq, e.TenantID)
			}
		}
		if !bytes.Equal(got[0].PrevHash, make([]byte, HashSize)) {
			t.Fatalf("first prev hash = %x, want zeros", got[0].PrevHash)
		}
		stored := readChain(t, s, tenant)
		assertChain(t, stored, 5)
		for i := range stored {
			if !bytes.Equal(stored[i].Hash, got[i].Hash) || stored[i].ID != got[i].ID {
				t.Fatalf("stored entry %d differs from the appended one", i+1)
			}
		}
	})

	t.Run("Append_StoresContentExactlyAsHashed", func(t *testing.T) {
		s := newStore(t)
		tenant := tenancy.NewTenantID()
		ne := mkEntry("document.shared", func(e *NewEntry) {
			e.OccurredAt = time.Date(2025, 6, 30, 23, 59, 59, 123456789, time.FixedZone("CEST", 2*3600))
			e.Actor = Actor{Type: "user", ID: "Zoë 👩‍💻"}
			e.Resource = Resource{Type: "document", ID: "Docs/Ärger "}
			e.TraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
			e.CorrelationID = "corr 42"
			e.SourceEventID = uuid.Must(uuid.NewV7()).String()
			e.Payload = json.RawMessage(`{"z": 1,  "a": ["é", "\u00e9", 1.50, 1e3], "nested": {"k": null}}`)
		})
		rec, _, err := s.Append(ctx, sqlstore.TenantScope(tenant), []NewEntry{ne}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.Get(ctx, sqlstore.TenantScope(tenant), ne.ID)
		if err != nil {
			t.Fatal(err)
		}
		want := rec[0]
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("stored entry differs:\n got %+v\nwant %+v", got, want)
		}
		if string(got.Payload) != string(ne.Payload) {
			t.Fatalf("payload %s, want exactly %s", got.Payload, ne.Payload)
		}
		if !got.OccurredAt.Equal(time.Date(2025, 6, 30, 21, 59, 59, 123456000, time.UTC)) || got.OccurredAt.Location() != time.UTC {
			t.Fatalf("occurredAt %v, want UTC at microseconds", got.OccurredAt)
		}
		if !bytes.Equal(entryHash(&got), got.Hash) {
			t.Fatal("the stored entry's hash does not recompute")
		}
	})

	t.Run("Append_EmitsEventsInTheSameTransaction", func(t *testing.T) {
		s := newStore(t)
		tenant := tenancy.NewTenantID()
		var seen []Entry
		rec, _, err := s.Append(ctx, sqlstore.TenantScope(tenant), []NewEntry{mkEntry("x.y")}, func(es []Entry) ([]events.Event, error) {
			seen = es
			ev, err := events.New("audit", EventEntryRecorded, es[0].ID, tenant.String(), map[string]int64{"seq": es[0].Seq}, events.Meta{})
			return []events.Event{ev}, err
		}, nil)
		if err != nil || len(seen) != 1 || seen[0].Seq != rec[0].Seq || !bytes.Equal(seen[0].Hash, rec[0].Hash) {
			t.Fatalf("emit saw %+v; Append returned %+v, %v", seen, rec, err)
		}
		boom := errors.New("boom")
		if _, _, err := s.Append(ctx, sqlstore.TenantScope(tenant), []NewEntry{mkEntry("x.z")}, func([]Entry) ([]events.Event, error) { return nil, boom }, nil); !errors.Is(err, boom) {
			t.Fatalf("emit error: %v", err)
		}
		assertChain(t, readChain(t, s, tenant), 1)
	})

	t.Run("Append_DuplicateInboxClaimWritesNothing", func(t *testing.T) {
		s := newStore(t)
		tenant := tenancy.NewTenantID()
		eventID := uuid.Must(uuid.NewV7()).String()
		claim := &InboxClaim{Consumer: Consumer, EventID: eventID, EventType: "TenantRegistered"}
		withSource := func(e *NewEntry) { e.SourceEventID = eventID }
		rec, dup, err := s.Append(ctx, sqlstore.TenantScope(tenant), []NewEntry{mkEntry("TenantRegistered", withSource)}, nil, claim)
		if err != nil || dup || len(rec) != 1 {
			t.Fatalf("first delivery: %v, dup %v, %v", rec, dup, err)
		}
		emitted := false
		again, dup, err := s.Append(ctx, sqlstore.TenantScope(tenant), []NewEntry{mkEntry("TenantRegistered", withSource)},
			func([]Entry) ([]events.Event, error) { emitted = true; return nil, nil }, claim)
		if err != nil || !dup || len(again) != 0 || emitted {
			t.Fatalf("redelivery: %v, dup %v, emitted %v, %v", again, dup, emitted, err)
		}
		// A lost inbox row still cannot record the event twice: the source event id is unique.
		other := &InboxClaim{Consumer: "someone-else", EventID: eventID, EventType: "TenantRegistered"}
		if again, dup, err := s.Append(ctx, sqlstore.TenantScope(tenant), []NewEntry{mkEntry("TenantRegistered", withSource)}, nil, other); err != nil || !dup || len(again) != 0 {
			t.Fatalf("same source event under another claim: %v, dup %v, %v", again, dup, err)
		}
		if again, dup, err := s.Append(ctx, sqlstore.TenantScope(tenant), []NewEntry{mkEntry("TenantRegistered", withSource)}, nil, nil); err != nil || !dup || len(again) != 0 {
			t.Fatalf("same source event without a claim: %v, dup %v, %v", again, dup, err)
		}
		assertChain(t, readChain(t, s, tenant), 1)
		// The same event id for another tenant is another event.
		if rec, dup, err := s.Append(ctx, sqlstore.TenantScope(tenancy.NewTenantID()), []NewEntry{mkEntry("TenantRegistered", withSource)}, nil, claim); err != nil || dup || len(rec) != 1 {
			t.Fatalf("same event id, other tenant: %v, dup %v, %v", rec, dup, err)
		}
	})

	t.Run("Append_FailureRollsBackTheInboxClaim", func(t *testing.T) {
		s := newStore(t)
		tenant := tenancy.NewTenantID()
		claim := &InboxClaim{Consumer: Consumer, EventID: uuid.Must(uuid.NewV7()).String(), EventType: "T"}
		boom := errors.New("boom")
		if _, _, err := s.Append(ctx, sqlstore.TenantScope(tenant), []NewEntry{mkEntry("T")}, func([]Entry) ([]events.Event, error) { return nil, boom }, claim); !errors.Is(err, boom) {
			t.Fatalf("err = %v", err)
		}
		if rec, dup, err := s.Append(ctx, sqlstore.TenantScope(tenant), []NewEntry{mkEntry("T")}, nil, claim); err != nil || dup || len(rec) != 1 {
			t.Fatalf("retry after a failed attempt must record: %v, dup %v, %v", rec, dup, err)
		}
	})

	t.Run("AppendGroupTx_ChainsTenantByTenantInItemsOrderInTheCallersTransaction", func(t *testing.T) {
		s := newStore(t)
		a, b, c := tenancy.NewTenantID(), tenancy.NewTenantID(), tenancy.NewTenantID()
		if _, _, err := s.Append(ctx, sqlstore.TenantScope(b), []NewEntry{mkEntry("B1")}, nil, nil); err != nil {
			t.Fatal(err)
		}
		items := []GroupItem{{c, mkEntry("C1")}, {a, mkEntry("A1")}, {a, mkEntry("A2")}, {b, mkEntry("B2")}, {a, mkEntry("A3")}}
		scope := sqlstore.TenantSetScope([]string{a.String(), b.String(), c.String()})
		var got []Entry
		if err := s.DB().InTx(ctx, scope, func(tx *sqlstore.Tx) error {
			var err error
			got, err = s.AppendGroupTx(ctx, tx, items)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		for i, seq := range []int64{1, 1, 2, 2, 3} {
			if got[i].Seq != seq || got[i].TenantID != items[i].Tenant || got[i].Action != items[i].Entry.Action {
				t.Fatalf("entry %d = %s seq %d %q, want seq %d", i, got[i].TenantID, got[i].Seq, got[i].Action, seq)
			}
		}
		assertChain(t, readChain(t, s, a), 3)
		assertChain(t, readChain(t, s, b), 2)
		assertChain(t, readChain(t, s, c), 1)
		// The caller's rollback takes the whole group with it.
		if err := s.DB().InTx(ctx, scope, func(tx *sqlstore.Tx) error {
			if _, err := s.AppendGroupTx(ctx, tx, []GroupItem{{a, mkEntry("A4")}, {c, mkEntry("C2")}}); err != nil {
				return err
			}
			return errors.New("caller fails")
		}); err == nil {
			t.Fatal("the caller's error was lost")
		}
		assertChain(t, readChain(t, s, a), 3)
		assertChain(t, readChain(t, s, c), 1)
	})

	t.Run("AppendGroupTx_AnEventAlreadyRecordedFailsTheGroup", func(t *testing.T) {
		s := newStore(t)
		tenant := tenancy.NewTenantID()
		eventID := uuid.Must(uuid.NewV7()).String()
		withSource := func(e *NewEntry) { e.SourceEventID = eventID }
		if _, _, err := s.Append(ctx, sqlstore.TenantScope(tenant), []NewEntry{mkEntry("T", withSource)}, nil, nil); err != nil {
			t.Fatal(err)
		}
		other := tenancy.NewTenantID()
		err := s.DB().InTx(ctx, sqlstore.TenantSetScope([]string{tenant.String(), other.String()}), func(tx *sqlstore.Tx) error {
			_, err := s.AppendGroupTx(ctx, tx, []GroupItem{{other, mkEntry("Other")}, {tenant, mkEntry("T", withSource)}})
			return err
		})
		if !errors.Is(err, sqlstore.ErrUniqueViolation) {
			t.Fatalf("a group holding an event already recorded: err = %v, want a unique violation", err)
		}
		if n := len(readChain(t, s, other)); n != 0 {
			t.Fatalf("the failed group left %d entries of the other tenant", n)
		}
	})

	t.Run("PlatformChain_AppendedInPlatformScopeReadThereOnly", func(t *testing.T) {
		s := newStore(t)
		// The platform chain is one for the whole database: other tests may have extended it.
		platformChain := func() []Entry {
			t.Helper()
			var all []Entry
			var after int64
			for {
				page, err := s.Range(ctx, sqlstore.PlatformScope(), after, 1<<62, 100)
				if err != nil {
					t.Fatal(err)
				}
				all = append(all, page...)
				if len(page) < 100 {
					return all
				}
				after = page[len(page)-1].Seq
			}
		}
		n := len(platformChain())
		tenant := tenancy.NewTenantID()
		var got []Entry
		if err := s.DB().InTx(ctx, sqlstore.PlatformScope(), func(tx *sqlstore.Tx) error {
			var err error
			got, err = s.AppendGroupTx(ctx, tx, []GroupItem{{Entry: mkEntry("P1")}, {tenant, mkEntry("T1")}, {Entry: mkEntry("P2")}})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if !got[0].TenantID.IsZero() || got[0].Seq != int64(n+1) || got[2].Seq != int64(n+2) || got[1].TenantID != tenant || got[1].Seq != 1 {
			t.Fatalf("appended %+v, want P1, P2 at seq %d, %d of the platform chain and T1 at seq 1 of the tenant's", got, n+1, n+2)
		}
		chain := platformChain()
		assertChain(t, chain, n+2)
		if chain[n].ID != got[0].ID || !chain[n].TenantID.IsZero() {
			t.Fatalf("the platform chain's entry %d is %+v, want P1", n+1, chain[n])
		}
		assertChain(t, readChain(t, s, tenant), 1)
		if e, err := s.Get(ctx, sqlstore.PlatformScope(), got[2].ID); err != nil || e.Action != "P2" || !e.TenantID.IsZero() {
			t.Fatalf("Get in platform scope: %+v %v", e, err)
		}
		if _, err := s.Get(ctx, sqlstore.TenantScope(tenant), got[2].ID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("a platform entry through a tenant's scope: err = %v, want ErrNotFound", err)
		}
		// Row-level security refuses a platform-chain row outside platform scope.
		err := s.DB().InTx(ctx, sqlstore.TenantScope(tenant), func(tx *sqlstore.Tx) error {
			_, err := s.AppendGroupTx(ctx, tx, []GroupItem{{Entry: mkEntry("P3")}})
			return err
		})
		if err == nil || len(platformChain()) != n+2 {
			t.Fatalf("a platform-chain append in a tenant's scope: err = %v, chain %d entries; want refused", err, len(platformChain()))
		}
	})

	t.Run("AppendGroup_ChainsEachTenantInItemsOrderInOneTransaction", func(t *testing.T) {
		s := newStore(t)
		a, b := tenancy.NewTenantID(), tenancy.NewTenantID()
		if _, _, err := s.Append(ctx, sqlstore.TenantScope(a), []NewEntry{mkEntry("A0")}, nil, nil); err != nil {
			t.Fatal(err)
		}
		items := []GroupItem{{a, mkEntry("A1")}, {b, mkEntry("B1")}, {a, mkEntry("A2")}, {b, mkEntry("B2")}, {a, mkEntry("A3")}}
		var emitted []Entry
		got, err := s.AppendGroup(ctx, items, func(rec []Entry) ([]events.Event, error) { emitted = rec; return nil, nil })
		if err != nil || len(got) != len(items) || len(emitted) != len(items) {
			t.Fatalf("group: %d entries, %d emitted, %v", len(got), len(emitted), err)
		}
		for i, want := range []struct {
			tenant tenancy.TenantID
			seq    int64
		}{{a, 2}, {b, 1}, {a, 3}, {b, 2}, {a, 4}} {
			if got[i].TenantID != want.tenant || got[i].Seq != want.seq || got[i].Action != items[i].Entry.Action {
				t.Fatalf("entry %d = %s seq %d %q, want %s seq %d", i, got[i].TenantID, got[i].Seq, got[i].Action, want.tenant, want.seq)
			}
		}
		assertChain(t, readChain(t, s, a), 4)
		assertChain(t, readChain(t, s, b), 2)
		// A failing emit rolls the whole group back.
		if _, err := s.AppendGroup(ctx, []GroupItem{{a, mkEntry("A5")}, {b, mkEntry("B3")}},
			func([]Entry) ([]events.Event, error) { return nil, errors.New("emit failed") }); err == nil {
			t.Fatal("a failing emit did not fail the group")
		}
		assertChain(t, readChain(t, s, a), 4)
		assertChain(t, readChain(t, s, b), 2)
	})

	t.Run("Get_NotFound", func(t *testing.T) {
		s := newStore(t)
		if _, err := s.Get(ctx, sqlstore.TenantScope(tenancy.NewTenantID()), ids.New()); !errors.Is(err, ErrNotFound) {
			t.Fatalf("err = %v", err)
		}
	})

	t.Run("Query_FiltersInSeqOrderAndPages", func(t *testing.T) {
		s := newStore(t)
		tenant := tenancy.NewTenantID()
		base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		trace := "0af7651916cd43dd8448eb211c80319c"
		specs := []func(*NewEntry){
			func(e *NewEntry) { e.OccurredAt = base; e.Actor.ID = "alice"; e.TraceID = trace },
			func(e *NewEntry) { e.OccurredAt = base.Add(time.Hour); e.Actor.ID = "bob"; e.Action = "doc.write" },
			func(e *NewEntry) {
				e.OccurredAt = base.Add(2 * time.Hour)
				e.Actor.ID = "alice"
				e.Resource.ID = "d-2"
				e.TraceID = trace
			},
			// Out of time order: occurredAt need not follow seq.
			func(e *NewEntry) {
				e.OccurredAt = base.Add(-time.Hour)
				e.Actor.ID = "Alice"
				e.Resource = Resource{Type: "folder", ID: "d-1"}
			},
			func(e *NewEntry) {
				e.OccurredAt = base.Add(3 * time.Hour)
				e.Actor.ID = "alice "
				e.Action = "doc.write"
			},
		}
		var seqs []int64
		for _, spec := range specs {
			rec, _, err := s.Append(ctx, sqlstore.TenantScope(tenant), []NewEntry{mkEntry("doc.read", spec)}, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			seqs = append(seqs, rec[0].Seq)
		}
		q := func(f Filter) []int64 {
			t.Helper()
			if f.Limit == 0 {
				f.Limit = 100
			}
			es, err := s.Query(ctx, sqlstore.TenantScope(tenant), f)
			if err != nil {
				t.Fatal(err)
			}
			out := []int64{}
			for _, e := range es {
				out = append(out, e.Seq)
			}
			return out
		}
		for _, tc := range []struct {
			name string
			f    Filter
			want []int64
		}{
			{"all", Filter{}, []int64{1, 2, 3, 4, 5}},
			{"actor exact and case-sensitive", Filter{ActorID: "alice"}, []int64{1, 3}},
			{"action", Filter{Action: "doc.write"}, []int64{2, 5}},
			{"resource type", Filter{ResourceType: "folder"}, []int64{4}},
			{"resource", Filter{ResourceType: "document", ResourceID: "d-1"}, []int64{1, 2, 5}},
			{"trace", Filter{TraceID: trace}, []int64{1, 3}},
			{"from inclusive", Filter{From: base.Add(time.Hour)}, []int64{2, 3, 5}},
			{"to exclusive", Filter{To: base.Add(time.Hour)}, []int64{1, 4}},
			{"window and actor", Filter{From: base, To: base.Add(3 * time.Hour), ActorID: "alice"}, []int64{1, 3}},
			{"after seq", Filter{AfterSeq: 3}, []int64{4, 5}},
			{"limit", Filter{Limit: 2}, []int64{1, 2}},
			{"no match", Filter{Action: "nothing"}, []int64{}},
		} {
			if got := q(tc.f); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("%s: seqs %v, want %v", tc.name, got, tc.want)
			}
		}
		if fmt.Sprint(seqs) != "[1 2 3 4 5]" {
			t.Fatalf("seqs %v", seqs)
		}
	})

	t.Run("SeqRangeAndRange", func(t *testing.T) {
		s := newStore(t)
		tenant := tenancy.NewTenantID()
		base := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
		for _, h := range []int{5, 1, 2, 9, 3} { // seq 1..5 at these hours
			if _, _, err := s.Append(ctx, sqlstore.TenantScope(tenant), []NewEntry{mkEntry("a", func(e *NewEntry) { e.OccurredAt = base.Add(time.Duration(h) * time.Hour) })}, nil, nil); err != nil {
				t.Fatal(err)
			}
		}
		for _, tc := range []struct {
			from, to    time.Time
			first, last int64
		}{
			{time.Time{}, time.Time{}, 1, 5},
			{base.Add(2 * time.Hour), base.Add(4 * time.Hour), 3, 5}, // hours 2 (seq 3) and 3 (seq 5)
			{base.Add(4 * time.Hour), base.Add(6 * time.Hour), 1, 1},
			{base.Add(10 * time.Hour), time.Time{}, 0, 0},
		} {
			first, last, err := s.SeqRange(ctx, sqlstore.TenantScope(tenant), tc.from, tc.to)
			if err != nil || first != tc.first || last != tc.last {
				t.Errorf("SeqRange(%v, %v) = %d, %d, %v; want %d, %d", tc.from, tc.to, first, last, err, tc.first, tc.last)
			}
		}
		es, err := s.Range(ctx, sqlstore.TenantScope(tenant), 1, 4, 2)
		if err != nil || len(es) != 2 || es[0].Seq != 2 || es[1].Seq != 3 {
			t.Fatalf("Range(1, 4, 2) = %v, %v", es, err)
		}
		if es, _ := s.Range(ctx, sqlstore.TenantScope(tenant), 3, 4, 10); len(es) != 1 || es[0].Seq != 4 {
			t.Fatalf("Range(3, 4) = %v", es)
		}
	})

	t.Run("TenantScope_NeverSeesAnotherTenant", func(t *testing.T) {
		s := newStore(t)
		a, b := tenancy.NewTenantID(), tenancy.NewTenantID()
		if _, _, err := s.Append(ctx, sqlstore.TenantScope(a), []NewEntry{mkEntry("a.thing")}, nil, nil); err != nil {
			t.Fatal(err)
		}
		recB, _, err := s.Append(ctx, sqlstore.TenantScope(b), []NewEntry{mkEntry("b.thing"), mkEntry("b.other")}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, sqlstore.TenantScope(a), recB[0].ID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("A reading B's entry: %v", err)
		}
		es, err := s.Query(ctx, sqlstore.TenantScope(a), Filter{Limit: 100})
		if err != nil || len(es) != 1 || es[0].Action != "a.thing" || es[0].TenantID != a {
			t.Fatalf("A's query = %+v, %v", es, err)
		}
		if es, _ := s.Query(ctx, sqlstore.TenantScope(a), Filter{Action: "b.thing", Limit: 100}); len(es) != 0 {
			t.Fatalf("A's query for B's action: %+v", es)
		}
		if first, last, _ := s.SeqRange(ctx, sqlstore.TenantScope(a), time.Time{}, time.Time{}); first != 1 || last != 1 {
			t.Fatalf("A's seq range: %d..%d", first, last)
		}
		if es, _ := s.Range(ctx, sqlstore.TenantScope(a), 0, 10, 10); len(es) != 1 {
			t.Fatalf("A's range holds %d entries", len(es))
		}
		// Each tenant's chain starts at 1: B's appends did not advance A's sequence.
		if recB[0].Seq != 1 || recB[1].Seq != 2 {
			t.Fatalf("B's seqs %d, %d", recB[0].Seq, recB[1].Seq)
		}
	})

	t.Run("Append_ConcurrentForOneTenantKeepsOneChain", func(t *testing.T) {
		s := newStore(t)
		tenant := tenancy.NewTenantID()
		const workers, each = 8, 50
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					if _, _, err := s.Append(ctx, sqlstore.TenantScope(tenant), []NewEntry{mkEntry(fmt.Sprintf("w%d.n%d", w, i))}, nil, nil); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		assertChain(t, readChain(t, s, tenant), workers*each)
	})

	t.Run("Append_ParallelTenantsEachKeepTheirChain", func(t *testing.T) {
		s := newStore(t)
		const tenants, each = 8, 25
		ids := make([]tenancy.TenantID, tenants)
		var wg sync.WaitGroup
		for i := range ids {
			ids[i] = tenancy.NewTenantID()
			wg.Add(2) // two writers per tenant, so each chain is also contended
			for range 2 {
				go func() {
					defer wg.Done()
					for range each {
						if _, _, err := s.Append(ctx, sqlstore.TenantScope(ids[i]), []NewEntry{mkEntry("p")}, nil, nil); err != nil {
							t.Error(err)
							return
						}
					}
				}()
			}
		}
		wg.Wait()
		for _, id := range ids {
			assertChain(t, readChain(t, s, id), 2*each)
		}
	})
}
