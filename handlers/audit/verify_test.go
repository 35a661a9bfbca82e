package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"spine/shared/sqlstore"
	"spine/shared/tenancy"
)

// fakeDir is the tenant directory of these tests (the real one is the tenants service's): a tenant
// it does not list is unknown.
type fakeDir map[tenancy.TenantID]tenancy.Status

func (d fakeDir) TenantStatus(_ context.Context, id tenancy.TenantID) (tenancy.Status, error) {
	st, ok := d[id]
	if !ok {
		return "", fmt.Errorf("%w: %s", tenancy.ErrTenantNotFound, id)
	}
	return st, nil
}

func newTestService(t *testing.T, dir fakeDir) *Service {
	t.Helper()
	svc, err := NewService(NewPostgresStore(openRuntime(t)), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// chainOf appends n entries for a fresh tenant, one hour apart from base, in batches of up to 100,
// and returns the tenant and the entries.
func chainOf(t *testing.T, svc *Service, n int, base time.Time) (tenancy.TenantID, []Entry) {
	t.Helper()
	tenant := tenancy.NewTenantID()
	var all []Entry
	for len(all) < n {
		var batch []NewEntry
		for i := len(all); i < n && len(batch) < 100; i++ {
			batch = append(batch, mkEntry("step", func(e *NewEntry) {
				e.OccurredAt = base.Add(time.Duration(i) * time.Hour)
				e.Payload = json.RawMessage(fmt.Sprintf(`{"n":%d}`, i+1))
			}))
		}
		rec, _, err := svc.store.Append(context.Background(), sqlstore.TenantScope(tenant), batch, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, rec...)
	}
	return tenant, all
}

var admin = Caller{Subject: "admin", Platform: true}

func verify(t *testing.T, svc *Service, tenant tenancy.TenantID, from, to time.Time) Report {
	t.Helper()
	r, err := svc.Verify(context.Background(), admin, tenant, from, to)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func wantBroken(t *testing.T, r Report, e Entry, reason string) {
	t.Helper()
	if r.OK() || r.FirstBroken.ID != e.ID || r.FirstBroken.Seq != e.Seq || r.FirstBroken.Reason != reason {
		t.Fatalf("report %+v (broken %+v), want entry %s seq %d %s", r, r.FirstBroken, e.ID, e.Seq, reason)
	}
}

var base = time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)

func TestVerify_IntactChainIsOKAcrossPages(t *testing.T) {
	svc := newTestService(t, fakeDir{})
	n := 2*verifyPage + 37
	tenant, _ := chainOf(t, svc, n, base)
	r := verify(t, svc, tenant, time.Time{}, time.Time{})
	if !r.OK() || r.EntriesChecked != int64(n) || r.FirstSeq != 1 || r.LastSeq != int64(n) {
		t.Fatalf("whole chain: %+v", r)
	}
	// A window verifies its own seq range, anchored on the entry before it.
	r = verify(t, svc, tenant, base.Add(10*time.Hour), base.Add(20*time.Hour))
	if !r.OK() || r.EntriesChecked != 10 || r.FirstSeq != 11 || r.LastSeq != 20 {
		t.Fatalf("window: %+v", r)
	}
	if r := verify(t, svc, tenancy.NewTenantID(), time.Time{}, time.Time{}); !r.OK() || r.EntriesChecked != 0 {
		t.Fatalf("empty trail: %+v", r)
	}
}

// A superuser changes one entry's payload behind the trigger's back: verify names exactly that
// entry, even when it lies on a later page.
func TestTamper_ChangedPayloadReportsExactlyThatEntry(t *testing.T) {
	svc := newTestService(t, fakeDir{})
	tenant, es := chainOf(t, svc, verifyPage+20, base)
	victim := es[verifyPage+5]
	if n := tamper(t, `UPDATE audit_entries SET payload = '{"n":0}' WHERE tenant_id = $1 AND seq = $2`, tenant.String(), victim.Seq); n != 1 {
		t.Fatalf("tampered %d rows", n)
	}
	r := verify(t, svc, tenant, time.Time{}, time.Time{})
	wantBroken(t, r, victim, ReasonHashMismatch)
	if r.EntriesChecked != victim.Seq {
		t.Fatalf("checked %d entries, want %d (up to the broken one)", r.EntriesChecked, victim.Seq)
	}
	// A window that ends before the victim does not include it and is intact.
	if r := verify(t, svc, tenant, time.Time{}, victim.OccurredAt); !r.OK() {
		t.Fatalf("window before the victim: %+v", r.FirstBroken)
	}
	// A window that starts right after it is anchored on the victim's stored hash, which is
	// untouched, so it is intact too; the victim itself is reported by any window that holds it.
	if r := verify(t, svc, tenant, victim.OccurredAt.Add(time.Microsecond), time.Time{}); !r.OK() {
		t.Fatalf("window after the victim: %+v", r.FirstBroken)
	}
	wantBroken(t, verify(t, svc, tenant, victim.OccurredAt, victim.OccurredAt.Add(time.Hour)), victim, ReasonHashMismatch)
}

func TestTamper_ChangedActionOrTimeReportsThatEntry(t *testing.T) {
	svc := newTestService(t, fakeDir{})
	for _, q := range []string{
		`UPDATE audit_entries SET action = 'innocent' WHERE tenant_id = $1 AND seq = $2`,
		`UPDATE audit_entries SET occurred_at = occurred_at - interval '1 microsecond' WHERE tenant_id = $1 AND seq = $2`,
		`UPDATE audit_entries SET recorded_at = recorded_at + interval '1 day' WHERE tenant_id = $1 AND seq = $2`,
		`UPDATE audit_entries SET actor_id = 'someone-else' WHERE tenant_id = $1 AND seq = $2`,
	} {
		tenant, es := chainOf(t, svc, 6, base)
		tamper(t, q, tenant.String(), es[3].Seq)
		wantBroken(t, verify(t, svc, tenant, time.Time{}, time.Time{}), es[3], ReasonHashMismatch)
	}
}

// Deleting a middle entry leaves a hole in seq: the entry after it is reported.
func TestTamper_DeletedMiddleEntryReportsTheGap(t *testing.T) {
	svc := newTestService(t, fakeDir{})
	tenant, es := chainOf(t, svc, 7, base)
	if n := tamper(t, `DELETE FROM audit_entries WHERE tenant_id = $1 AND seq = 4`, tenant.String()); n != 1 {
		t.Fatalf("deleted %d rows", n)
	}
	wantBroken(t, verify(t, svc, tenant, time.Time{}, time.Time{}), es[4], ReasonSequenceGap)
	// A window starting at the hole: its first entry's predecessor is missing.
	wantBroken(t, verify(t, svc, tenant, es[3].OccurredAt, time.Time{}), es[4], ReasonSequenceGap)
	// Deleting the first entry is caught too.
	tenant, es = chainOf(t, svc, 3, base)
	tamper(t, `DELETE FROM audit_entries WHERE tenant_id = $1 AND seq = 1`, tenant.String())
	wantBroken(t, verify(t, svc, tenant, time.Time{}, time.Time{}), es[1], ReasonSequenceGap)
}

// Deleting an entry and renumbering the rest to close the hole changes every moved entry's seq,
// which its hash covers.
func TestTamper_DeletedAndRenumberedReportsTheMovedEntry(t *testing.T) {
	svc := newTestService(t, fakeDir{})
	tenant, es := chainOf(t, svc, 5, base)
	tamper(t, `DELETE FROM audit_entries WHERE tenant_id = $1 AND seq = 3`, tenant.String())
	for _, seq := range []int{4, 5} { // one row at a time: the primary key is checked per row
		tamper(t, `UPDATE audit_entries SET seq = seq - 1 WHERE tenant_id = $1 AND seq = $2`, tenant.String(), seq)
	}
	moved := es[3]
	moved.Seq = 3
	wantBroken(t, verify(t, svc, tenant, time.Time{}, time.Time{}), moved, ReasonHashMismatch)
}

// Rewriting an entry and recomputing its hash hides the edit in that entry, but the next entry's
// prev hash no longer matches.
func TestTamper_RewrittenAndRehashedEntryBreaksTheNextLink(t *testing.T) {
	svc := newTestService(t, fakeDir{})
	tenant, es := chainOf(t, svc, 5, base)
	forged := es[1]
	forged.Action = "innocent"
	forged.Hash = entryHash(&forged)
	tamper(t, `UPDATE audit_entries SET action = $3, hash = $4 WHERE tenant_id = $1 AND seq = $2`,
		tenant.String(), forged.Seq, forged.Action, forged.Hash)
	wantBroken(t, verify(t, svc, tenant, time.Time{}, time.Time{}), es[2], ReasonChainBreak)
	// Verifying only the window that starts at the next entry still catches it: the anchor is the
	// forged entry's stored hash.
	wantBroken(t, verify(t, svc, tenant, es[2].OccurredAt, time.Time{}), es[2], ReasonChainBreak)
}
