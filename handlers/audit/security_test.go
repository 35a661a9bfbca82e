package audit

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"spine/shared/retention"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
)

// Security review of issue 14 (branch i14-sec): what the runtime role (audit_app) can delete
// through audit_purge. F1: the cutoff was the caller's; F2: audit_app could insert export rows.
// migrations/audit/postgres/00002_audit_retention.sql closes both: the database's own
// retention floor (audit_retention_floor, the owner's) and audit_record_export.

// floorDays is the migration's default floor: the storage map's 7 years.
const floorDays = int(DefaultRetention / (24 * time.Hour))

// purgeAsRuntime calls audit_purge as audit_app in tenant's scope, as a compromised runtime
// (SQL injection, stolen DSN) could, and returns how many entries it deleted and its error.
func purgeAsRuntime(t *testing.T, rt *sqlstore.DB, tenant tenancy.TenantID, toSeq int64, cutoff string) (int, error) {
	t.Helper()
	var n int
	err := rt.InTx(t.Context(), sqlstore.TenantScope(tenant), func(tx *sqlstore.Tx) error {
		return tx.QueryRowContext(t.Context(), `SELECT audit_purge($1, $2, $3::timestamptz)`, tenant.String(), toSeq, cutoff).Scan(&n)
	})
	if err != nil {
		t.Logf("audit_purge refused: %v", err)
	}
	return n, err
}

// setFloor sets the database's retention floor through the owner role (the only role that may),
// and puts the default back when the test ends.
func setFloor(t *testing.T, days int) {
	t.Helper()
	owner := openOwner(t)
	set := func(d int) error {
		_, err := execIn(owner, sqlstore.PlatformScope(), `UPDATE audit_retention_floor SET floor_days = $1`, d)
		return err
	}
	if err := set(days); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := set(floorDays); err != nil {
			t.Errorf("restoring the floor: %v", err)
		}
	})
}

// F1: a cutoff in the future (or anywhere younger than the floor) is refused by audit_purge itself:
// the runtime role cannot delete entries recorded an hour ago, exported or not.
func TestAuditPurge_RuntimeRoleFutureCutoff_DeletesNoUnexpiredEntry(t *testing.T) {
	r := newSweepRig(t)
	tenant, _ := r.tenant()
	r.seed(tenant, 5, time.Now().Add(-time.Hour)) // recorded an hour ago: due in seven years
	r.run(r.engine(2, nil), r.export)             // 1-2, 3-4, 5
	rt := openRuntime(t)
	for _, cutoff := range []string{"infinity", time.Now().UTC().Format(time.RFC3339Nano)} {
		n, err := purgeAsRuntime(t, rt, tenant, 1<<40, cutoff)
		if n != 0 || !errors.Is(err, sqlstore.ErrPermission) {
			t.Errorf("audit_app's audit_purge(cutoff %s) = %d deleted, %v; want refused (permission)", cutoff, n, err)
		}
	}
	if got := len(r.chain(tenant)); got != 5 {
		t.Errorf("%d entries left of 5", got)
	}
}

// F1: the floor is the database's: a day short of it is refused; the runtime role can neither read
// nor change audit_retention_floor; the owner can, and the purge then honours the lower floor.
func TestAuditPurge_RetentionFloor_OnlyTheOwnerMovesIt(t *testing.T) {
	r := newSweepRig(t)
	tenant, _ := r.tenant()
	r.seed(tenant, 3, time.Now().Add(-48*time.Hour))
	r.seed(tenant, 1, time.Now()) // the head
	r.run(r.engine(3, nil), r.export)
	rt := openRuntime(t)
	dayShort := time.Now().UTC().Add(-DefaultRetention + 24*time.Hour).Format(time.RFC3339Nano)
	if n, err := purgeAsRuntime(t, rt, tenant, 3, dayShort); n != 0 || !errors.Is(err, sqlstore.ErrPermission) {
		t.Errorf("audit_purge with a cutoff a day short of the floor: %d, %v; want refused", n, err)
	}
	for _, q := range []string{
		`SELECT floor_days FROM audit_retention_floor`,
		`UPDATE audit_retention_floor SET floor_days = 0`,
		`DELETE FROM audit_retention_floor`,
		`INSERT INTO audit_retention_floor (singleton, floor_days) VALUES (false, 0)`,
	} {
		for _, sc := range []sqlstore.Scope{sqlstore.TenantScope(tenant), sqlstore.PlatformScope()} {
			if _, err := execIn(rt, sc, q); !errors.Is(err, sqlstore.ErrPermission) {
				t.Errorf("%s as the runtime role: %v, want permission denied", q, err)
			}
		}
	}
	setFloor(t, 1)
	yesterday := time.Now().UTC().Add(-25 * time.Hour).Format(time.RFC3339Nano)
	if n, err := purgeAsRuntime(t, rt, tenant, 3, yesterday); err != nil || n != 3 {
		t.Fatalf("audit_purge under a one-day floor: %d, %v; want the 3 exported entries of two days ago", n, err)
	}
}

// F1, as the sweep meets it: an edition's audit retention below the floor makes AuditPurge fail,
// visibly (the run failed, errorClass target), deleting nothing.
func TestAuditPurge_EditionRetentionBelowTheFloor_RunFailsDeletingNothing(t *testing.T) {
	r := newSweepRig(t)
	tenant, _ := r.tenant()
	r.seed(tenant, 3, r.now.Add(-60*24*time.Hour))
	r.seed(tenant, 1, r.now)
	r.run(r.engine(3, nil), r.export)
	r.purgeRetention = 30 * 24 * time.Hour
	run, err := r.engine(3, nil).Run(context.Background(), r.purge)
	if err == nil || run.Status != retention.StatusFailed || run.ErrorClass != "target" || run.Affected != 0 {
		t.Fatalf("a purge under a 30-day retention: %s, %v; want failed (target), nothing affected", run, err)
	}
	if got := len(r.chain(tenant)); got != 4 {
		t.Errorf("%d entries left of 4", got)
	}
}

// F2: audit_app has no INSERT on audit_exports, and audit_record_export refuses a row that does not
// fit the chain (here: a blob outside the tenant's archive): entries past the retention that were
// never exported stay, and nothing anchors GET /audit-entries/verify.
func TestAuditPurge_RuntimeRoleForgedExportRow_DeletesNoUnexportedEntry(t *testing.T) {
	r := newSweepRig(t)
	tenant, tok := r.tenant()
	chain := r.seed(tenant, 4, r.now.Add(-sevenYears)) // past the retention, never exported
	rt := openRuntime(t)
	sc := sqlstore.TenantScope(tenant)
	if _, err := execIn(rt, sc, `INSERT INTO audit_exports (tenant_id, from_seq, to_seq, count, blob,
			sha256, first_prev_hash, last_hash, evidence_id, exported_at)
		VALUES ($1, 1, 3, 3, 'never/written.jsonl.gz', repeat('0', 64), $2, $3, gen_random_uuid(), now())`,
		tenant.String(), chain[0].PrevHash, chain[2].Hash); !errors.Is(err, sqlstore.ErrPermission) {
		t.Errorf("audit_app's INSERT of an export row: %v, want permission denied", err)
	}
	if _, err := execIn(rt, sc, `SELECT audit_record_export($1, 1, 3, 3, 'never/written.jsonl.gz', repeat('0', 64), $2, $3,
			gen_random_uuid(), now())`, tenant.String(), chain[0].PrevHash, chain[2].Hash); !errors.Is(err, sqlstore.ErrCheckViolation) {
		t.Errorf("audit_record_export of a blob outside the tenant's archive: %v, want refused", err)
	}
	if xs := r.exports(tenant); len(xs) != 0 {
		t.Fatalf("export rows %v", names(xs))
	}
	n, err := purgeAsRuntime(t, rt, tenant, 3, r.now.Add(-DefaultRetention).Format(time.RFC3339Nano))
	if err != nil || n != 0 {
		t.Errorf("audit_purge deleted %d entries that were never exported (%v)", n, err)
	}
	if got := len(r.chain(tenant)); got != 4 {
		t.Errorf("%d entries left of 4", got)
	}
	if v := r.verify(tok); !v.OK || v.AnchoredAt != nil || v.FirstSeq != 1 {
		t.Errorf("verify: %+v", v)
	}
}

// F2's residue, which the database cannot close (it cannot see Blob): a compromised runtime role
// records a row consistent with the chain for a blob it never wrote; the export verifier reports
// the blob missing. (Only entries past the floor could be purged on its strength.)
func TestExportsVerify_ConsistentRowForABlobNeverWritten_BlobMissing(t *testing.T) {
	r := newSweepRig(t)
	tenant, tok := r.tenant()
	chain := r.seed(tenant, 3, time.Now())
	name := archiveBase(tenant, chain[0].RecordedAt, 1, 2) + ".jsonl.gz"
	if _, err := execIn(openRuntime(t), sqlstore.TenantScope(tenant), `SELECT audit_record_export($1, 1, 2, 2, $2, repeat('0', 64),
			$3, $4, gen_random_uuid(), now())`, tenant.String(), name, chain[0].PrevHash, chain[1].Hash); err != nil {
		t.Fatalf("audit_record_export of a consistent row: %v", err)
	}
	v := r.verifyExports(tok, "")
	want := exportProblemJSON{Blob: ArchiveContainer + "/" + name, Code: ProblemBlobMissing}
	if v.OK || !slices.Contains(v.Problems, want) {
		t.Fatalf("exports verify: %+v, want %+v among the problems", v, want)
	}
}

// audit_record_export runs in its caller's tenant scope (row-level security binds the owner too):
// in A's scope, a row consistent with B's chain is refused, and B has no export.
func TestAuditRecordExport_AnotherTenantsRange_Refused(t *testing.T) {
	r := newSweepRig(t)
	a, _ := r.tenant()
	b, _ := r.tenant()
	chain := r.seed(b, 2, time.Now())
	name := archiveBase(b, chain[0].RecordedAt, 1, 2) + ".jsonl.gz"
	if _, err := execIn(openRuntime(t), sqlstore.TenantScope(a), `SELECT audit_record_export($1, 1, 2, 2, $2, repeat('0', 64),
			$3, $4, gen_random_uuid(), now())`, b.String(), name, chain[0].PrevHash, chain[1].Hash); err == nil {
		t.Error("audit_record_export of B's range in A's scope succeeded")
	}
	if xs := r.exports(b); len(xs) != 0 {
		t.Errorf("B's exports %v", names(xs))
	}
}
