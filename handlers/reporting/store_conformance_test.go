package reporting

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"spine/shared/ids"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
	"spine/shared/testenv"
)

func TestPostgresStore_Conformance(t *testing.T) {
	rt := testDB.OpenRuntime(t, sqlstore.PoolConfig{})
	runStoreConformance(t, func(*testing.T) *Store { return NewStore(rt) })
}

// The conformance suite against SQL Server, when a server is named.
func TestSQLServerStore_Conformance(t *testing.T) {
	runtimeURL := os.Getenv(testenv.EnvSQLServerURL)
	if runtimeURL == "" {
		t.Skip("SPINE_TEST_SQLSERVER_URL not set: no SQL Server on this machine; the SQL Server store is checked by tsqlcheck and reviewed only")
	}
	ownerURL := os.Getenv(testenv.EnvSQLServerOwnerURL)
	if ownerURL == "" {
		t.Fatalf("%s is set but %s is not", testenv.EnvSQLServerURL, testenv.EnvSQLServerOwnerURL)
	}
	runtime, _ := testenv.SQLServer(t, service, runtimeURL, ownerURL)
	runStoreConformance(t, func(*testing.T) *Store { return NewStore(runtime) })
}

// runStoreConformance is the store's behaviour the service relies on, against either engine. Each
// subtest uses tenants of its own.
func runStoreConformance(t *testing.T, newStore func(*testing.T) *Store) {
	ctx := context.Background()
	at := time.Date(2026, 6, 1, 12, 0, 0, 123456000, time.UTC)
	write := func(t *testing.T, s *Store, tenant tenancy.TenantID, fn func(*Tx) error) {
		t.Helper()
		if err := s.Write(ctx, tenant, fn); err != nil {
			t.Fatal(err)
		}
	}
	newReport := func() Report {
		return Report{ID: ids.New(), Name: "Activity", Source: "activity-by-day", Parameters: map[string]string{"from": "2026-01-01"},
			Format: FormatCSV, CreatedBy: "user:x", Version: 1, CreatedAt: at, UpdatedAt: at}
	}

	t.Run("reports: insert, read back exactly, list after a cursor, update, soft delete; another tenant sees none", func(t *testing.T) {
		s := newStore(t)
		a, b := tenancy.NewTenantID(), tenancy.NewTenantID()
		r1, r2 := newReport(), newReport()
		write(t, s, a, func(tx *Tx) error {
			if err := tx.InsertReport(ctx, r1); err != nil {
				return err
			}
			return tx.InsertReport(ctx, r2)
		})
		write(t, s, a, func(tx *Tx) error {
			got, err := tx.LockReport(ctx, r1.ID)
			if err != nil {
				return err
			}
			if fmt.Sprint(got) != fmt.Sprint(r1) {
				return fmt.Errorf("read back %+v, want %+v", got, r1)
			}
			page, err := tx.Reports(ctx, "", 10)
			if err != nil || len(page) != 2 || page[0].ID != r1.ID {
				return fmt.Errorf("list %v %v", page, err)
			}
			if page, err = tx.Reports(ctx, r1.ID, 10); err != nil || len(page) != 1 || page[0].ID != r2.ID {
				return fmt.Errorf("after %s: %v %v", r1.ID, page, err)
			}
			r1.Name, r1.Format, r1.Version, r1.UpdatedAt = "Renamed", FormatXLSX, 2, at.Add(time.Hour)
			if err := tx.UpdateReport(ctx, r1); err != nil {
				return err
			}
			return tx.DeleteReport(ctx, r2.ID, at)
		})
		write(t, s, a, func(tx *Tx) error {
			got, err := tx.Report(ctx, r1.ID)
			if err != nil || got.Name != "Renamed" || got.Format != FormatXLSX || got.Version != 2 {
				return fmt.Errorf("updated %+v %v", got, err)
			}
			if _, err := tx.Report(ctx, r2.ID); !errors.Is(err, ErrReportNotFound) {
				return fmt.Errorf("deleted: %v", err)
			}
			if err := tx.DeleteReport(ctx, r2.ID, at); !errors.Is(err, ErrReportNotFound) {
				return fmt.Errorf("deleted twice: %v", err)
			}
			return nil
		})
		write(t, s, b, func(tx *Tx) error {
			if page, err := tx.Reports(ctx, "", 10); err != nil || len(page) != 0 {
				return fmt.Errorf("B lists %v %v", page, err)
			}
			if _, err := tx.Report(ctx, r1.ID); !errors.Is(err, ErrReportNotFound) {
				return fmt.Errorf("B reads A's report: %v", err)
			}
			// A statement naming A's tenant in B's scope: row-level security hides A's rows.
			if _, err := tx.ForTenant(a.String()).Report(ctx, r1.ID); !errors.Is(err, ErrReportNotFound) {
				return fmt.Errorf("B's scope reads A's report by naming A: %v", err)
			}
			return nil
		})
	})

	t.Run("runs: insert Queued, claim, renew only under the claim, succeed once, list newest first", func(t *testing.T) {
		s := newStore(t)
		a := tenancy.NewTenantID()
		rep := newReport()
		runs := []Run{}
		write(t, s, a, func(tx *Tx) error {
			if err := tx.InsertReport(ctx, rep); err != nil {
				return err
			}
			for range 3 {
				r := Run{ID: ids.New(), ReportID: rep.ID, Source: rep.Source, Format: FormatCSV, Parameters: map[string]string{"to": "2026-01-31"},
					RequestedBy: "user:x", CreatedAt: at}
				runs = append(runs, r)
				if err := tx.InsertRun(ctx, r); err != nil {
					return err
				}
			}
			return nil
		})
		r := runs[0]
		var sum [32]byte
		sum[0] = 0xab
		write(t, s, a, func(tx *Tx) error {
			got, err := tx.LockRun(ctx, r.ID)
			if err != nil || got.Status != RunQueued || got.Attempts != 0 || got.Parameters["to"] != "2026-01-31" || got.RowCount != nil {
				return fmt.Errorf("queued %+v %v", got, err)
			}
			if err := tx.ClaimRun(ctx, r.ID, 1, at.Add(time.Minute), at); err != nil {
				return err
			}
			if held, err := tx.RenewLease(ctx, r.ID, 2, at.Add(2*time.Minute)); err != nil || held {
				return fmt.Errorf("renewed under another attempt: %v %v", held, err)
			}
			if held, err := tx.RenewLease(ctx, r.ID, 1, at.Add(2*time.Minute)); err != nil || !held {
				return fmt.Errorf("renew: %v %v", held, err)
			}
			if err := tx.SucceedRun(ctx, r.ID, 2, 1, "x", sum, 1, at, at); !errors.Is(err, ErrRunNotFound) {
				return fmt.Errorf("succeeded under another attempt: %v", err)
			}
			return tx.SucceedRun(ctx, r.ID, 1, 42, a.String()+"/reports/2026/06/01/"+r.ID+".csv", sum, 1234, at.Add(time.Second), at.Add(24*time.Hour))
		})
		write(t, s, a, func(tx *Tx) error {
			got, err := tx.Run(ctx, r.ID)
			if err != nil || got.Status != RunSucceeded || *got.RowCount != 42 || *got.Size != 1234 || got.SHA256[:2] != "ab" || len(got.SHA256) != 64 ||
				got.LeaseUntil != nil || !got.ExpiresAt.Equal(at.Add(24*time.Hour)) || !got.StartedAt.Equal(at) {
				return fmt.Errorf("succeeded %+v %v", got, err)
			}
			if err := tx.RequeueRun(ctx, r.ID, 1, "storage"); !errors.Is(err, ErrRunNotFound) {
				return fmt.Errorf("requeued a finished run: %v", err)
			}
			list, err := tx.Runs(ctx, rep.ID, "", 2)
			if err != nil || len(list) != 2 || list[0].ID != runs[2].ID || list[1].ID != runs[1].ID {
				return fmt.Errorf("runs %v %v", list, err)
			}
			if list, err = tx.Runs(ctx, rep.ID, runs[1].ID, 2); err != nil || len(list) != 1 || list[0].ID != runs[0].ID {
				return fmt.Errorf("runs before %s: %v %v", runs[1].ID, list, err)
			}
			// A failed attempt goes back to Queued with its class; the last one fails the run.
			if err := tx.ClaimRun(ctx, runs[1].ID, 1, at.Add(time.Minute), at); err != nil {
				return err
			}
			if err := tx.RequeueRun(ctx, runs[1].ID, 1, "source"); err != nil {
				return err
			}
			return tx.FailRun(ctx, runs[2].ID, "attempts-exhausted", at)
		})
		write(t, s, a, func(tx *Tx) error {
			q, err := tx.Run(ctx, runs[1].ID)
			if err != nil || q.Status != RunQueued || q.Attempts != 1 || q.ErrorClass != "source" || q.LeaseUntil != nil {
				return fmt.Errorf("requeued %+v %v", q, err)
			}
			f, err := tx.Run(ctx, runs[2].ID)
			if err != nil || f.Status != RunFailed || f.ErrorClass != "attempts-exhausted" || f.FinishedAt == nil {
				return fmt.Errorf("failed %+v %v", f, err)
			}
			return nil
		})
	})

	t.Run("a succeeded run's blob name must start with its tenant", func(t *testing.T) {
		s := newStore(t)
		a := tenancy.NewTenantID()
		rep := newReport()
		r := Run{ID: ids.New(), ReportID: rep.ID, Source: rep.Source, Format: FormatCSV, RequestedBy: "user:x", CreatedAt: at}
		write(t, s, a, func(tx *Tx) error {
			if err := tx.InsertReport(ctx, rep); err != nil {
				return err
			}
			if err := tx.InsertRun(ctx, r); err != nil {
				return err
			}
			return tx.ClaimRun(ctx, r.ID, 1, at, at)
		})
		err := s.Write(ctx, a, func(tx *Tx) error {
			return tx.SucceedRun(ctx, r.ID, 1, 1, tenancy.NewTenantID().String()+"/reports/x.csv", [32]byte{}, 1, at, at)
		})
		if err == nil {
			t.Fatal("a blob name under another tenant was recorded")
		}
	})

	t.Run("read models: users and roles upserted in order, activity counts added, sources stream them", func(t *testing.T) {
		s := newStore(t)
		a, b := tenancy.NewTenantID(), tenancy.NewTenantID()
		u1, u2 := ids.New(), ids.New()
		role1, role2 := ids.New(), ids.New()
		act := at.Add(time.Hour)
		write(t, s, a, func(tx *Tx) error {
			for _, step := range []func() error{
				func() error { return tx.UserInvited(ctx, u1, "b@example.com", at) },
				func() error { return tx.UserInvited(ctx, u1, "b2@example.com", at) }, // re-invited: email replaced
				func() error { return tx.UserStatus(ctx, u1, "Active", &act, act) },
				func() error { return tx.UserStatus(ctx, u2, "Disabled", nil, act) }, // unknown so far: no email
				func() error { return tx.RoleAssigned(ctx, u1, role1, "member", at) },
				func() error { return tx.RoleAssigned(ctx, u1, role1, "member", at) }, // again: kept once
				func() error { return tx.RoleAssigned(ctx, u1, role2, "tenant-admin", at) },
				func() error { return tx.RoleRevoked(ctx, u1, role1) },
			} {
				if err := step(); err != nil {
					return err
				}
			}
			return nil
		})
		// Counts of two tenants in one statement, in a scope that sees both, twice.
		both := sqlstore.TenantSetScope([]string{a.String(), b.String()})
		for range 2 {
			if err := s.DB().InTx(ctx, both, func(stx *sqlstore.Tx) error {
				return s.bind(stx, "").AddActivity(ctx, []ActivityCount{{a.String(), "2026-06-01", "UserInvited", 2},
					{a.String(), "2026-06-02", "RoleAssigned", 1}, {b.String(), "2026-06-01", "UserInvited", 5}})
			}); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Read(ctx, a, func(tx *Tx) error {
			rows, err := tx.UsersAndRoles(ctx, "")
			if err != nil {
				return err
			}
			defer rows.Close()
			cols := sources["users-and-roles"].Columns
			vals := make([]any, len(cols))
			var got []string
			for rows.Next() {
				if err := scanRow(rows, cols, vals); err != nil {
					return err
				}
				got = append(got, fmt.Sprint(vals[1], " ", vals[2], " ", vals[3]))
			}
			if err := rows.Err(); err != nil {
				return err
			}
			// PostgreSQL sorts a NULL email last, SQL Server first: compare as a set.
			want := map[string]bool{"b2@example.com Active tenant-admin": true, "<nil> Disabled <nil>": true}
			if len(got) != 2 || !want[got[0]] || !want[got[1]] {
				return fmt.Errorf("users and roles %q", got)
			}
			rows2, err := tx.ActivityByDay(ctx, time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 6, 2, 0, 0, 0, 0, time.UTC), "")
			if err != nil {
				return err
			}
			defer rows2.Close()
			cols = sources["activity-by-day"].Columns
			vals = make([]any, len(cols))
			got = nil
			for rows2.Next() {
				if err := scanRow(rows2, cols, vals); err != nil {
					return err
				}
				got = append(got, fmt.Sprint(vals[0].(time.Time).Format(time.DateOnly), " ", vals[1], " ", vals[2]))
			}
			if fmt.Sprint(got) != "[2026-06-01 UserInvited 4 2026-06-02 RoleAssigned 2]" {
				return fmt.Errorf("activity %q", got)
			}
			return rows2.Err()
		}); err != nil {
			t.Fatal(err)
		}
	})
}
