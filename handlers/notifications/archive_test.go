package notifications

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"spine/shared/blob"
	"spine/shared/contracts"
	"spine/shared/retention"
	"spine/shared/retention/retentiontest"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
)

// openLedger is the stack's Azurite Table ledger (shared by every test package: sweeps here get
// test-unique names, tenants are random).
func openLedger(t *testing.T) *retention.Ledger {
	t.Helper()
	return retentiontest.Ledger(t)
}

// archiveRig is an engine with NotificationArchive registered under a test-unique name.
type archiveRig struct {
	t      *testing.T
	h      *harness
	l      *retention.Ledger
	sweep  retention.Sweep
	now    func() time.Time
	engine *retention.Engine
}

// newArchiveRig registers the harness service's sweep on an engine at now; only (when given)
// limits the sweep's units to those tenants, so rows other tests of the package left old do not
// count against a bounded run.
func newArchiveRig(t *testing.T, h *harness, now func() time.Time, batch int, only ...tenancy.TenantID) *archiveRig {
	t.Helper()
	r := &archiveRig{t: t, h: h, l: openLedger(t), now: now}
	if err := h.blobs.EnsureContainer(t.Context(), ArchiveContainer); err != nil {
		t.Fatal(err)
	}
	r.sweep = h.svc.ArchiveSweep(fmt.Sprintf("NotificationArchiveT%d", time.Now().UnixNano()))
	r.sweep.BatchSize = batch
	if len(only) > 0 {
		units := r.sweep.Units
		r.sweep.Units = func(ctx context.Context, before time.Time) ([]string, error) {
			all, err := units(ctx, before)
			return slices.DeleteFunc(all, func(u string) bool {
				return !slices.ContainsFunc(only, func(id tenancy.TenantID) bool { return id.String() == u })
			}), err
		}
	}
	r.engine = r.newEngine(retention.Config{})
	return r
}

// newEngine is a fresh engine (a new process) over the rig's ledger and clock with cfg's bounds
// and fault hook.
func (r *archiveRig) newEngine(cfg retention.Config) *retention.Engine {
	r.t.Helper()
	cfg.Ledger, cfg.Now = r.l, r.now
	e, err := retention.New(cfg)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := e.Register(r.sweep); err != nil {
		r.t.Fatal(err)
	}
	return e
}

// runUntilQuiet runs the sweep on e until a run selects nothing.
func (r *archiveRig) runUntilQuiet(e *retention.Engine) {
	r.t.Helper()
	for range 50 {
		run, err := e.Run(r.t.Context(), r.sweep.Name)
		if err != nil {
			r.t.Fatalf("run: %v (%s)", err, run)
		}
		if run.Batches == 0 {
			return
		}
	}
	r.t.Fatal("the sweep still selects after 50 runs")
}

// uuidV7At is a UUIDv7 stamped with at (as ids.New stamps the time of creation).
func uuidV7At(at time.Time) string {
	var u uuid.UUID
	_, _ = rand.Read(u[:])
	var ms [8]byte
	binary.BigEndian.PutUint64(ms[:], uint64(at.UnixMilli()))
	copy(u[:6], ms[2:])
	u[6] = u[6]&0x0f | 0x70
	u[8] = u[8]&0x3f | 0x80
	return u.String()
}

// seedOld inserts Delivered e-mail notifications of tenant created at each of ats (ids UUIDv7 of
// the same time), each with one delivery-log row, directly (the API stamps now), and returns
// their ids in keyset order.
func seedOld(t *testing.T, db *sqlstore.DB, tenant tenancy.TenantID, ats []time.Time) []string {
	t.Helper()
	ids := make([]string, len(ats))
	times := make([]string, len(ats))
	for i, at := range ats {
		ids[i], times[i] = uuidV7At(at), at.UTC().Format(time.RFC3339Nano)
	}
	const sha = "c6b5e5a8b9e1c1e0c9b1b3a7b7e1c5e9a3b6e6c1d4f0e2a1b9c8d7e6f5a4b3c2"
	err := db.InTx(t.Context(), sqlstore.TenantScope(tenant), func(tx *sqlstore.Tx) error {
		if _, err := tx.ExecContext(t.Context(), `INSERT INTO notifications (tenant_id, notification_id, channel, recipient, event_type,
				subject, body, body_size, body_sha256, status, attempts, created_at, updated_at, delivered_at)
			SELECT $1, i, 'email', 'old@example.test', 'test.old', 'old', 'body', 4, $4, 'Delivered', 1, a, a, a
			FROM unnest(string_to_array($2, ',')::uuid[], string_to_array($3, ',')::timestamptz[]) AS s (i, a)`,
			tenant.String(), strings.Join(ids, ","), strings.Join(times, ","), sha); err != nil {
			return err
		}
		_, err := tx.ExecContext(t.Context(), `INSERT INTO delivery_attempts (tenant_id, notification_id, attempt, attempted_at, status_code, latency_ms)
			SELECT tenant_id, notification_id, 1, created_at, 250, 3 FROM notifications
			WHERE tenant_id = $1 AND notification_id = ANY (string_to_array($2, ',')::uuid[])`, tenant.String(), strings.Join(ids, ","))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// hotCount is how many notifications (and their log rows) the tenant still has in SQL.
func hotCount(t *testing.T, db *sqlstore.DB, tenant tenancy.TenantID) (notifications, attempts, attachments int) {
	t.Helper()
	err := db.InReadTx(t.Context(), sqlstore.TenantScope(tenant), func(tx *sqlstore.Tx) error {
		return tx.QueryRowContext(t.Context(), `SELECT (SELECT count(*) FROM notifications WHERE tenant_id = $1),
			(SELECT count(*) FROM delivery_attempts WHERE tenant_id = $1), (SELECT count(*) FROM notification_attachments WHERE tenant_id = $1)`,
			tenant.String()).Scan(&notifications, &attempts, &attachments)
	})
	if err != nil {
		t.Fatal(err)
	}
	return notifications, attempts, attachments
}

// archiveBlobs lists the tenant's archive blobs (every month).
func archiveBlobs(t *testing.T, bs *blob.Store, tenant tenancy.TenantID) []string {
	t.Helper()
	names, err := bs.List(t.Context(), ArchiveContainer, tenant.String()+"/")
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// evidenceOf sums the ledger's evidence of the tenant: rows affected and evidence rows.
func evidenceOf(t *testing.T, l *retention.Ledger, sweep string, tenant tenancy.TenantID) (affected int, batches []retention.Evidence) {
	t.Helper()
	evs, err := l.Evidence(t.Context(), tenant.String(), time.Time{}, time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		if ev.Sweep == sweep {
			affected += ev.Affected
			batches = append(batches, ev)
		}
	}
	return affected, batches
}

// retentionEvents are the tenant's RetentionApplied events in the outbox, by id.
func (h *harness) retentionEvents(tenant tenancy.TenantID) map[string]int {
	out := map[string]int{}
	for _, ev := range h.outboxEvents(tenant) {
		if ev.Type == contracts.RetentionApplied {
			out[ev.ID]++
		}
	}
	return out
}

// The sweep archives what the API sent once it is 90 days old: one blob per range, the body and
// attachment blobs in the archive tier, the rows gone with their log and attachments; GET answers
// from the archive (archived: true, the same members), attachments answer 409
// notification-archived, the list shows hot notifications only, and another tenant's id stays 404.
func TestArchive_OldNotificationsArchived_GetAnswersFromArchive(t *testing.T) {
	h := newHarness(t)
	a, b := h.tenant(), h.tenant()
	inline := h.sendAndDispatch(a, map[string]any{"channel": "email", "recipient": "ann@example.test", "subject": "inline", "body": "short body"})
	big := h.sendAndDispatch(a, map[string]any{"channel": "email", "recipient": "ann@example.test", "subject": "large",
		"body": strings.Repeat("x", 9<<10), "attachments": []map[string]any{{"name": "r.csv", "contentType": "text/csv",
			"contentBase64": base64.StdEncoding.EncodeToString([]byte("a,b\n1,2\n"))}}})
	other := h.sendAndDispatch(b, map[string]any{"channel": "email", "recipient": "bob@example.test", "subject": "b", "body": "b"})
	if inline.Status != "Delivered" || big.Status != "Delivered" || big.BodyStorage != "blob" {
		t.Fatalf("setup: %+v %+v", inline, big)
	}
	for _, id := range []string{inline.ID, big.ID} {
		if _, ok := uuidV7Time(id); !ok {
			t.Fatalf("notification id %s is not a UUIDv7: the archive's lookup needs the time in it", id)
		}
	}
	var bodyBlob, attBlob string
	d, err := h.svc.Notification(t.Context(), a.id, big.ID)
	if err != nil {
		t.Fatal(err)
	}
	bodyBlob, attBlob = d.BodyBlob, d.Attachments[0].BlobName
	// Archive-tier blobs refuse reads: other packages' tests that read every blob of the stack's
	// Azurite (integrations' secret scan) must not meet them after this test.
	t.Cleanup(func() {
		_ = h.blobs.Delete(context.Background(), BodiesContainer, bodyBlob)
		_ = h.blobs.Delete(context.Background(), AttachmentsContainer, attBlob)
	})

	// 91 days later, by the engine's clock.
	rig := newArchiveRig(t, h, func() time.Time { return time.Now().Add(91 * 24 * time.Hour) }, 500, a.id, b.id)
	rig.runUntilQuiet(rig.engine)

	if n, at, att := hotCount(t, h.rt, a.id); n != 0 || at != 0 || att != 0 {
		t.Fatalf("tenant A still has %d notifications, %d log rows, %d attachments in SQL", n, at, att)
	}
	names := archiveBlobs(t, h.blobs, a.id)
	if len(names) != 1 || !strings.HasSuffix(names[0], ".jsonl.gz") || !strings.HasPrefix(names[0], a.id.String()+"/notifications/") {
		t.Fatalf("tenant A's archive blobs %v, want one range blob", names)
	}
	for _, b := range []struct{ container, name string }{{BodiesContainer, bodyBlob}, {AttachmentsContainer, attBlob}} {
		p, err := h.blobs.Properties(t.Context(), b.container, b.name)
		if err != nil {
			t.Fatal(err)
		}
		if p.AccessTier != string(blob.TierArchive) {
			t.Errorf("%s/%s tier %q, want Archive", b.container, b.name, p.AccessTier)
		}
	}

	got := h.get(a, inline.ID)
	if !got.Archived || got.Body == nil || *got.Body != "short body" || got.Subject != "inline" || got.Status != "Delivered" ||
		len(*got.DeliveryLog) != 1 || (*got.DeliveryLog)[0].StatusCode != 250 || !got.CreatedAt.Equal(inline.CreatedAt) {
		t.Fatalf("archived inline notification %+v", got)
	}
	got = h.get(a, big.ID)
	if !got.Archived || got.Body != nil || got.BodyStorage != "blob" || got.BodySHA256 != big.BodySHA256 ||
		len(*got.Attachments) != 1 || (*got.Attachments)[0].Name != "r.csv" {
		t.Fatalf("archived large notification %+v", got)
	}
	if r := h.do("GET", "/api/notifications/"+big.ID+"/attachments/r.csv", a.reader, nil); r.Code != http.StatusConflict ||
		r.ProblemCode(t) != "notification-archived" {
		t.Fatalf("archived attachment: %d %s, want 409 notification-archived", r.Code, r.Body)
	}
	if r := h.do("GET", "/api/notifications/"+big.ID+"/attachments/none.txt", a.reader, nil); r.Code != http.StatusNotFound {
		t.Fatalf("archived notification's unknown attachment: %d %s, want 404", r.Code, r.Body)
	}
	for _, id := range []string{inline.ID, big.ID} {
		if r := h.do("GET", "/api/notifications/"+id, b.reader, nil); r.Code != http.StatusNotFound || r.ProblemCode(t) != "not-found" {
			t.Fatalf("B's token on A's archived %s: %d %s, want 404", id, r.Code, r.Body)
		}
	}
	if got := h.get(b, other.ID); !got.Archived {
		t.Fatalf("B's notification %+v not archived", got)
	}
	list := decode[struct{ Value []notificationJSON }](t, h.must(http.StatusOK, "GET", "/api/notifications", a.reader, nil).Body)
	if len(list.Value) != 0 {
		t.Fatalf("the list shows archived notifications: %+v", list.Value)
	}

	affected, batches := evidenceOf(t, rig.l, rig.sweep.Name, a.id)
	if affected != 2 || len(batches) != 1 || batches[0].Artifact == nil || batches[0].Artifact.Name != names[0] {
		t.Fatalf("evidence of A: affected %d, %+v", affected, batches)
	}
	if evs := h.retentionEvents(a.id); len(evs) != 1 || evs[batches[0].ID] != 1 {
		t.Fatalf("RetentionApplied events of A %v, want one with the evidence id %s", evs, batches[0].ID)
	}
}

// Notifications newer than the retention, and those still Pending (retries due), stay hot; a
// range ends before the first Pending one.
func TestArchive_RecentAndPendingStayHot(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	base := monthOf(time.Now().Add(-150 * 24 * time.Hour)).Add(24 * time.Hour)
	ids := seedOld(t, h.rt, f.id, []time.Time{base, base.Add(time.Second), base.Add(2 * time.Second)})
	recent := seedOld(t, h.rt, f.id, []time.Time{time.Now().Add(-89 * 24 * time.Hour)})
	if err := h.rt.InTx(t.Context(), sqlstore.TenantScope(f.id), func(tx *sqlstore.Tx) error {
		_, err := tx.ExecContext(t.Context(), `UPDATE notifications SET status = 'Pending', next_attempt_at = now() WHERE tenant_id = $1 AND notification_id = $2`,
			f.id.String(), ids[1])
		return err
	}); err != nil {
		t.Fatal(err)
	}
	rig := newArchiveRig(t, h, time.Now, 500, f.id)
	rig.runUntilQuiet(rig.engine)
	if n, _, _ := hotCount(t, h.rt, f.id); n != 3 {
		t.Fatalf("%d notifications hot, want 3 (the Pending one, the one after it, the recent one)", n)
	}
	for _, id := range append([]string{ids[1], ids[2]}, recent...) {
		if got := h.get(f, id); got.Archived {
			t.Fatalf("%s archived", id)
		}
	}
	if got := h.get(f, ids[0]); !got.Archived {
		t.Fatalf("%s (before the Pending one) not archived", ids[0])
	}
}

// A crash at each step of a batch (the engine's fault points): the rerun, in a new engine,
// finishes the range it had started, so every range has exactly one blob, exactly the archived
// rows are gone, the ledger's evidence counts the rows SQL lost, and each range emitted one event.
func TestArchive_CrashAtEveryStep_RerunArchivesEachRangeOnce(t *testing.T) {
	for _, point := range []string{retention.FaultAfterIntent, retention.FaultAfterExport, retention.FaultAfterApply, retention.FaultAfterEvidence} {
		t.Run(point, func(t *testing.T) {
			h := newHarness(t)
			f := h.tenant()
			// Five rows in one month, two in the next: ranges of 3, 2 (the month's end) and 2.
			m := monthOf(time.Now().Add(-200 * 24 * time.Hour))
			next := m.AddDate(0, 1, 0)
			var ats []time.Time
			for i := range 5 {
				ats = append(ats, m.Add(24*time.Hour+time.Duration(i)*time.Second))
			}
			ats = append(ats, next.Add(time.Hour), next.Add(time.Hour+time.Second))
			ids := seedOld(t, h.rt, f.id, ats)
			rig := newArchiveRig(t, h, time.Now, 3, f.id)

			crashed := 0
			crashing := rig.newEngine(retention.Config{Fault: func(p string) {
				if p == point && crashed == 0 {
					crashed++
					panic("crash at " + p)
				}
			}})
			func() {
				defer func() {
					if r := recover(); r == nil {
						t.Fatal("the run did not reach the fault point")
					}
				}()
				_, _ = crashing.Run(t.Context(), rig.sweep.Name)
			}()
			rig.runUntilQuiet(rig.newEngine(retention.Config{}))

			want := []string{
				archivePrefix(f.id.String(), m) + ids[0] + "_" + ids[2] + ".jsonl.gz",
				archivePrefix(f.id.String(), m) + ids[3] + "_" + ids[4] + ".jsonl.gz",
				archivePrefix(f.id.String(), next) + ids[5] + "_" + ids[6] + ".jsonl.gz",
			}
			slices.Sort(want)
			if got := archiveBlobs(t, h.blobs, f.id); !slices.Equal(got, want) {
				t.Fatalf("archive blobs\n%v\nwant\n%v", got, want)
			}
			if n, at, _ := hotCount(t, h.rt, f.id); n != 0 || at != 0 {
				t.Fatalf("%d notifications, %d log rows left", n, at)
			}
			affected, batches := evidenceOf(t, rig.l, rig.sweep.Name, f.id)
			if affected != len(ids) || len(batches) != 3 {
				t.Fatalf("evidence: %d affected in %d batches, want %d in 3", affected, len(batches), len(ids))
			}
			evs := h.retentionEvents(f.id)
			for _, b := range batches {
				if evs[b.ID] != 1 {
					t.Errorf("evidence %s has %d events", b.ID, evs[b.ID])
				}
			}
			if len(evs) != 3 {
				t.Fatalf("RetentionApplied events %v, want 3", evs)
			}
			for _, id := range ids {
				if got := h.get(f, id); !got.Archived || got.ID != id {
					t.Fatalf("GET %s after the rerun: %+v", id, got)
				}
			}
		})
	}
}

// A range's blob that exists with other content is not overwritten and its rows are not deleted.
func TestArchive_ExistingBlobWithOtherContent_RangeKeptAndRunFails(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	base := monthOf(time.Now().Add(-150 * 24 * time.Hour)).Add(24 * time.Hour)
	ids := seedOld(t, h.rt, f.id, []time.Time{base, base.Add(time.Second)})
	rig := newArchiveRig(t, h, time.Now, 500, f.id)
	name := archivePrefix(f.id.String(), monthOf(base)) + ids[0] + "_" + ids[1] + ".jsonl.gz"
	if err := h.blobs.PutCreateOnly(t.Context(), ArchiveContainer, name, []byte("not this range"), "application/gzip"); err != nil {
		t.Fatal(err)
	}
	run, err := rig.engine.Run(t.Context(), rig.sweep.Name)
	if !errors.Is(err, retention.ErrArtifactMismatch) || run.ErrorClass != "artifact-mismatch" {
		t.Fatalf("run %s: %v, want artifact-mismatch", run, err)
	}
	if n, _, _ := hotCount(t, h.rt, f.id); n != 2 {
		t.Fatalf("%d notifications left, want 2", n)
	}
}

// A legal hold on a tenant (scope notifications or all) keeps its notifications through a run
// that archives another tenant's; once the hold is removed, the next run archives them.
func TestArchive_LegalHold_HeldTenantSurvivesUntilReleased(t *testing.T) {
	for _, scope := range []string{"notifications", retention.ScopeAll} {
		t.Run(scope, func(t *testing.T) {
			h := newHarness(t)
			held, free := h.tenant(), h.tenant()
			base := monthOf(time.Now().Add(-150 * 24 * time.Hour)).Add(24 * time.Hour)
			seedOld(t, h.rt, held.id, []time.Time{base, base.Add(time.Second)})
			seedOld(t, h.rt, free.id, []time.Time{base, base.Add(time.Second)})
			rig := newArchiveRig(t, h, time.Now, 500, held.id, free.id)
			hold := retention.Hold{ID: uuid.NewString(), TenantID: held.id.String(), Scope: scope, Reason: "litigation", CreatedBy: "test",
				CreatedAt: time.Now().UTC()}
			if err := rig.l.PutHold(t.Context(), hold); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _, _ = rig.l.DeleteHold(context.Background(), hold.ID) })
			run, err := rig.engine.Run(t.Context(), rig.sweep.Name)
			if err != nil || run.HeldUnits != 1 {
				t.Fatalf("run %s: %v, want one held unit", run, err)
			}
			if n, _, _ := hotCount(t, h.rt, held.id); n != 2 {
				t.Fatalf("held tenant has %d notifications, want 2", n)
			}
			if n, _, _ := hotCount(t, h.rt, free.id); n != 0 {
				t.Fatalf("the other tenant has %d notifications, want 0", n)
			}
			if _, err := rig.l.DeleteHold(t.Context(), hold.ID); err != nil {
				t.Fatal(err)
			}
			rig.runUntilQuiet(rig.engine)
			if n, _, _ := hotCount(t, h.rt, held.id); n != 0 {
				t.Fatalf("released tenant has %d notifications, want 0", n)
			}
			if names := archiveBlobs(t, h.blobs, held.id); len(names) != 1 {
				t.Fatalf("released tenant's blobs %v", names)
			}
		})
	}
}

// Fairness: one tenant's backlog of 5,000 old notifications does not starve twenty tenants with
// ten each — a run bounded to 300 rows serves every one of them.
func TestArchive_BoundedRun_ServesEveryTenantBesideABacklog(t *testing.T) {
	h := newHarness(t)
	base := monthOf(time.Now().Add(-150 * 24 * time.Hour)).Add(24 * time.Hour)
	times := func(n int) []time.Time {
		out := make([]time.Time, n)
		for i := range out {
			out[i] = base.Add(time.Duration(i) * time.Second)
		}
		return out
	}
	big := h.tenant()
	seedOld(t, h.rt, big.id, times(5000))
	tenants := []tenancy.TenantID{big.id}
	var small []tenancy.TenantID
	for range 20 {
		f := h.tenant()
		seedOld(t, h.rt, f.id, times(10))
		small = append(small, f.id)
		tenants = append(tenants, f.id)
	}
	rig := newArchiveRig(t, h, time.Now, 50, tenants...)
	e := rig.newEngine(retention.Config{MaxRows: 300})
	run, err := e.Run(t.Context(), rig.sweep.Name)
	if err != nil || run.Status != retention.StatusPartial || run.Selected > 300+50 {
		t.Fatalf("run %s: %v, want a partial run of about 300 rows", run, err)
	}
	for _, id := range small {
		if n, _, _ := hotCount(t, h.rt, id); n != 0 {
			t.Fatalf("small tenant %s still has %d notifications after the bounded run", id, n)
		}
	}
	if n, _, _ := hotCount(t, h.rt, big.id); n == 0 || n == 5000 {
		t.Fatalf("the backlog tenant has %d notifications: want it served in part", n)
	}
}
