package billing

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"spine/shared/sqlstore"
	"spine/shared/tenancy"
)

// runStoreConformance runs the store's behaviour that the service relies on against a store of
// either engine (PostgreSQL here; SQL Server where a server is named). Each subtest works in
// tenants of its own.
func runStoreConformance(t *testing.T, newStore func(t *testing.T) *Store) {
	ctx := context.Background()
	at := time.Date(2026, 5, 1, 12, 0, 0, 123456000, time.UTC)
	write := func(t *testing.T, s *Store, tenant tenancy.TenantID, fn func(*Tx) error) {
		t.Helper()
		if err := s.Write(ctx, sqlstore.TenantScope(tenant), tenant, fn); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("editions: the seeded catalog by rank, one by code, unknown is ErrEditionNotFound", func(t *testing.T) {
		s := newStore(t)
		all, err := s.Editions(ctx)
		var es []Edition // the seeded ones (other tests add editions)
		for _, e := range all {
			if e.Code == "free" || e.Code == "standard" || e.Code == "enterprise" {
				es = append(es, e)
			}
		}
		if err != nil || len(es) != 3 || es[0].Code != "free" || es[2].Code != "enterprise" || es[1].PriceMinor != 4900 || es[1].Currency != "EUR" {
			t.Fatalf("%+v %v", es, err)
		}
		if _, err := s.Edition(ctx, "platinum"); !errors.Is(err, ErrEditionNotFound) {
			t.Errorf("unknown: %v", err)
		}
	})

	t.Run("editions: PutEdition creates at version 1, replaces at version+1, If-Match checked", func(t *testing.T) {
		s := newStore(t)
		code := "conf-" + newID()[24:]
		e := Edition{Code: code, Name: "Conformance", PriceMinor: 1234, Currency: "USD", PeriodMonths: 3, TrialDays: 7, Rank: 5,
			Entitlements: EditionEntitlements{MaxUsers: 9, Limits: []LimitJSON{{Route: "", Rate: 3, Burst: 6, PeriodSeconds: 1, Shadow: true}},
				FeatureDefaults: map[string]json.RawMessage{"beta": json.RawMessage(`true`)}, RetentionDays: map[string]int{"audit": 30},
				UsagePrices: map[string]int64{"api.calls": 2}}, UpdatedAt: at}
		stale := int64(1)
		if _, _, err := s.PutEdition(ctx, e, &stale); !errors.Is(err, ErrVersionMismatch) {
			t.Fatalf("If-Match on an absent edition: %v", err)
		}
		got, created, err := s.PutEdition(ctx, e, nil)
		if err != nil || !created || got.Version != 1 {
			t.Fatalf("create: %+v %v %v", got, created, err)
		}
		back, err := s.Edition(ctx, code)
		if err != nil || back.PriceMinor != 1234 || back.Currency != "USD" || back.PeriodMonths != 3 || back.Rank != 5 ||
			len(back.Entitlements.Limits) != 1 || !back.Entitlements.Limits[0].Shadow || back.Entitlements.UsagePrices["api.calls"] != 2 ||
			string(back.Entitlements.FeatureDefaults["beta"]) != "true" || !back.UpdatedAt.Equal(at) {
			t.Fatalf("read back %+v %v", back, err)
		}
		e.Name, e.PriceMinor = "Conformance 2", 2000
		if _, _, err := s.PutEdition(ctx, e, &stale); err != nil {
			t.Fatalf("replace with If-Match 1: %v", err)
		}
		if _, _, err := s.PutEdition(ctx, e, &stale); !errors.Is(err, ErrVersionMismatch) {
			t.Fatalf("replace with a stale If-Match: %v", err)
		}
		got, created, err = s.PutEdition(ctx, e, nil)
		if err != nil || created || got.Version != 3 {
			t.Fatalf("replace: %+v %v %v", got, created, err)
		}
		if back, _ := s.Edition(ctx, code); back.Name != "Conformance 2" || back.PriceMinor != 2000 || back.Version != 3 {
			t.Errorf("after replace %+v", back)
		}
	})

	t.Run("subscriptions: read back exactly, one live per tenant, update, list", func(t *testing.T) {
		s := newStore(t)
		a, b := tenancy.NewTenantID(), tenancy.NewTenantID()
		trial := at.AddDate(0, 0, 14)
		sub := Subscription{ID: SubscriptionID(newID()), EditionCode: "standard", Status: StatusTrial, TrialEndsAt: &trial,
			PeriodStart: at, PeriodEnd: trial, Version: 1, CreatedAt: at, UpdatedAt: at}
		write(t, s, a, func(tx *Tx) error { return tx.InsertSubscription(ctx, sub) })
		second := sub
		second.ID = SubscriptionID(newID())
		err := s.Write(ctx, sqlstore.TenantScope(a), a, func(tx *Tx) error { return tx.InsertSubscription(ctx, second) })
		if !errors.Is(err, ErrSubscriptionExists) {
			t.Fatalf("second live subscription: %v", err)
		}
		write(t, s, b, func(tx *Tx) error { return tx.InsertSubscription(ctx, second) }) // another tenant may
		write(t, s, a, func(tx *Tx) error {
			got, err := tx.LockSubscription(ctx, sub.ID)
			if err != nil {
				return err
			}
			if got.ID != sub.ID || got.Status != StatusTrial || got.TrialEndsAt == nil || !got.TrialEndsAt.Equal(trial) ||
				!got.PeriodStart.Equal(at) || got.PendingEdition != "" || got.CancelledAt != nil {
				t.Errorf("read back %+v", got)
			}
			now := at.Add(time.Hour)
			got.Status, got.PendingEdition, got.CancelledAt, got.CancelReason, got.Version, got.UpdatedAt = StatusCancelled, "free", &now, "why", 2, now
			return tx.UpdateSubscription(ctx, got)
		})
		write(t, s, a, func(tx *Tx) error {
			if _, err := tx.LiveSubscription(ctx); !errors.Is(err, ErrNoSubscription) {
				t.Errorf("live after cancel: %v", err)
			}
			list, err := tx.Subscriptions(ctx)
			if err != nil || len(list) != 1 || list[0].CancelReason != "why" || list[0].PendingEdition != "free" || list[0].Version != 2 {
				t.Errorf("list %+v %v", list, err)
			}
			// Cancelled, the tenant may have a live one again.
			return tx.InsertSubscription(ctx, second)
		})
		err = s.Write(ctx, sqlstore.TenantScope(a), a, func(tx *Tx) error {
			_, err := tx.Subscription(ctx, SubscriptionID(newID()))
			return err
		})
		if !errors.Is(err, ErrSubscriptionNotFound) {
			t.Errorf("unknown subscription: %v", err)
		}
	})

	t.Run("renewals: due subscriptions of every tenant, skip-locked lock, past due since, period usage", func(t *testing.T) {
		s := newStore(t)
		a, b := tenancy.NewTenantID(), tenancy.NewTenantID()
		far := at.AddDate(50, 0, 0) // later than any other test's subscription
		trial := far.AddDate(0, 3, 0)
		due := Subscription{ID: SubscriptionID(newID()), EditionCode: "standard", Status: StatusActive, PeriodStart: far,
			PeriodEnd: far.AddDate(0, 1, 0), Version: 1, CreatedAt: at, UpdatedAt: at}
		notDue := Subscription{ID: SubscriptionID(newID()), EditionCode: "standard", Status: StatusTrial, TrialEndsAt: &trial,
			PeriodStart: far, PeriodEnd: trial, Version: 1, CreatedAt: at, UpdatedAt: at}
		write(t, s, a, func(tx *Tx) error { return tx.InsertSubscription(ctx, due) })
		write(t, s, b, func(tx *Tx) error { return tx.InsertSubscription(ctx, notDue) })
		now := far.AddDate(0, 1, 1)
		list, err := s.DueSubscriptions(ctx, now, now.Add(-14*24*time.Hour), 100000)
		if err != nil {
			t.Fatal(err)
		}
		var mine []DueSubscription
		for _, d := range list {
			if d.Tenant == a || d.Tenant == b {
				mine = append(mine, d)
			}
		}
		if len(mine) != 1 || mine[0] != (DueSubscription{Tenant: a, ID: due.ID}) {
			t.Errorf("due %+v", mine)
		}
		// PastDue since long enough is due even before its period ends.
		since := far.Add(-30 * 24 * time.Hour)
		write(t, s, b, func(tx *Tx) error {
			sub, err := tx.LockDueSubscription(ctx, notDue.ID)
			if err != nil {
				return err
			}
			sub.Status, sub.PastDueSince, sub.Version = StatusPastDue, &since, 2
			return tx.UpdateSubscription(ctx, sub)
		})
		list, _ = s.DueSubscriptions(ctx, far, far.Add(-14*24*time.Hour), 100000)
		found := false
		for _, d := range list {
			found = found || d.ID == notDue.ID
		}
		if !found {
			t.Errorf("PastDue beyond the grace not listed")
		}
		write(t, s, b, func(tx *Tx) error {
			got, err := tx.Subscription(ctx, notDue.ID)
			if err != nil || got.PastDueSince == nil || !got.PastDueSince.Equal(since) {
				t.Errorf("past due since %+v %v", got, err)
			}
			return nil
		})
		// A row another transaction holds is skipped, not waited for.
		locked := make(chan struct{})
		release := make(chan struct{})
		done := make(chan error, 1)
		go func() {
			done <- s.Write(ctx, sqlstore.TenantScope(a), a, func(tx *Tx) error {
				if _, err := tx.LockDueSubscription(ctx, due.ID); err != nil {
					return err
				}
				close(locked)
				<-release
				return nil
			})
		}()
		<-locked
		err = s.Write(ctx, sqlstore.TenantScope(a), a, func(tx *Tx) error {
			_, err := tx.LockDueSubscription(ctx, due.ID)
			return err
		})
		close(release)
		if !errors.Is(err, ErrSubscriptionNotFound) {
			t.Errorf("locked row: %v", err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		write(t, s, a, func(tx *Tx) error {
			for _, u := range []UsageRecord{{ID: newID(), Metric: "api.calls", Quantity: 4, PeriodStart: far, RecordedAt: far},
				{ID: newID(), Metric: "api.calls", Quantity: 6, PeriodStart: far, RecordedAt: far},
				{ID: newID(), Metric: "api.calls", Quantity: 100, PeriodStart: far.AddDate(0, 1, 0), RecordedAt: far}} {
				if _, err := tx.RecordUsage(ctx, u); err != nil {
					return err
				}
			}
			tot, err := tx.PeriodUsage(ctx, far)
			if err != nil || len(tot) != 1 || tot["api.calls"] != 10 {
				t.Errorf("period usage %v %v", tot, err)
			}
			return nil
		})
	})

	t.Run("renewal failures back off; sums beyond int64 read saturated; savepoint; one trial; share lock", func(t *testing.T) {
		s := newStore(t)
		a := tenancy.NewTenantID()
		far := at.AddDate(60, 0, 0)
		trial := far.AddDate(0, 0, 14)
		sub := Subscription{ID: SubscriptionID(newID()), EditionCode: "standard", Status: StatusTrial, TrialEndsAt: &trial,
			PeriodStart: far, PeriodEnd: trial, Version: 1, CreatedAt: at, UpdatedAt: at}
		write(t, s, a, func(tx *Tx) error {
			if had, err := tx.HadTrial(ctx); err != nil || had {
				t.Errorf("a new tenant had a trial: %v %v", had, err)
			}
			return tx.InsertSubscription(ctx, sub)
		})
		isDue := func(now time.Time) bool {
			list, err := s.DueSubscriptions(ctx, now, now.Add(-14*24*time.Hour), 100000)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range list {
				if d.ID == sub.ID {
					return true
				}
			}
			return false
		}
		now := trial.Add(time.Minute)
		if !isDue(now) {
			t.Fatal("the ended trial is not due")
		}
		write(t, s, a, func(tx *Tx) error {
			n, err := tx.RecordRenewalFailure(ctx, sub.ID, now, func(n int) time.Time { return now.Add(time.Duration(n) * time.Hour) })
			if err != nil || n != 1 {
				t.Errorf("first failure: %d %v", n, err)
			}
			n, err = tx.RecordRenewalFailure(ctx, sub.ID, now, func(n int) time.Time { return now.Add(time.Duration(n) * time.Hour) })
			if err != nil || n != 2 {
				t.Errorf("second failure: %d %v", n, err)
			}
			return err
		})
		if isDue(now.Add(time.Hour)) || !isDue(now.Add(2*time.Hour)) {
			t.Error("the failed row is not left out until its retry time (2h) only")
		}
		write(t, s, a, func(tx *Tx) error {
			got, err := tx.ShareLiveSubscription(ctx)
			if err != nil || got.ID != sub.ID {
				t.Errorf("share-locked live subscription %+v %v", got, err)
			}
			got.Version = 2
			return tx.UpdateSubscription(ctx, got) // a successful write clears the failure
		})
		if !isDue(now) {
			t.Error("an updated row still backs off")
		}
		write(t, s, a, func(tx *Tx) error {
			if had, err := tx.HadTrial(ctx); err != nil || !had {
				t.Errorf("the tenant's trial is forgotten: %v %v", had, err)
			}
			for range 1030 { // 1030 × (2^53 − 1) > 2^63
				if _, err := tx.RecordUsage(ctx, UsageRecord{ID: newID(), Metric: "big", Quantity: maxMinor, PeriodStart: far, RecordedAt: far}); err != nil {
					return err
				}
			}
			tot, err := tx.PeriodUsage(ctx, far)
			if err != nil || tot["big"] != maxMinor+1 {
				t.Errorf("period usage beyond int64: %v %v", tot, err)
			}
			tot, err = tx.UsageTotals(ctx, UsageFilter{Metric: "big", From: far.Add(-time.Hour), To: far.Add(time.Hour)})
			if err != nil || tot["big"] != maxMinor+1 {
				t.Errorf("usage totals beyond int64: %v %v", tot, err)
			}
			// Writes after the savepoint are undone by rollbackTo; the transaction goes on.
			if err := tx.savepoint(ctx); err != nil {
				return err
			}
			if _, err := tx.RecordUsage(ctx, UsageRecord{ID: newID(), Metric: "undone", Quantity: 1, PeriodStart: far, RecordedAt: far}); err != nil {
				return err
			}
			if err := tx.rollbackTo(ctx); err != nil {
				return err
			}
			tot, err = tx.PeriodUsage(ctx, far)
			if err != nil || tot["undone"] != 0 {
				t.Errorf("after rollbackTo: %v %v", tot, err)
			}
			return err
		})
	})

	t.Run("editions: public round trip; a replace without it keeps it", func(t *testing.T) {
		s := newStore(t)
		e := Edition{Code: "pub-" + newID()[24:], Name: "Pub", Currency: "EUR", PeriodMonths: 1, Public: true,
			Entitlements: EditionEntitlements{Limits: []LimitJSON{{Rate: 1, Burst: 1, PeriodSeconds: 1}}}, UpdatedAt: at}
		if got, _, err := s.PutEdition(ctx, e, nil); err != nil || !got.Public {
			t.Fatalf("create public: %+v %v", got, err)
		}
		e.Public, e.keepPublic = false, true
		if _, _, err := s.PutEdition(ctx, e, nil); err != nil {
			t.Fatal(err)
		}
		if back, err := s.Edition(ctx, e.Code); err != nil || !back.Public {
			t.Errorf("kept: %+v %v", back, err)
		}
		e.keepPublic = false
		if _, _, err := s.PutEdition(ctx, e, nil); err != nil {
			t.Fatal(err)
		}
		if back, err := s.Edition(ctx, e.Code); err != nil || back.Public {
			t.Errorf("made private: %+v %v", back, err)
		}
	})

	t.Run("usage: idempotent on the usage id", func(t *testing.T) {
		s := newStore(t)
		a := tenancy.NewTenantID()
		u := UsageRecord{ID: newID(), Metric: "api.requests", Quantity: 7, PeriodStart: at, RecordedAt: at}
		var first, again bool
		write(t, s, a, func(tx *Tx) error {
			var err error
			first, err = tx.RecordUsage(ctx, u)
			return err
		})
		u2 := u
		u2.Quantity = 99
		write(t, s, a, func(tx *Tx) error {
			var err error
			again, err = tx.RecordUsage(ctx, u2)
			return err
		})
		write(t, s, a, func(tx *Tx) error {
			got, err := tx.Usage(ctx, u.ID)
			if err != nil || got.Quantity != 7 || got.Metric != "api.requests" || !got.PeriodStart.Equal(at) {
				t.Errorf("usage %+v %v", got, err)
			}
			return nil
		})
		if !first || again {
			t.Errorf("first %v, again %v", first, again)
		}
	})

	t.Run("usage: list by metric and time in id order, totals per metric", func(t *testing.T) {
		s := newStore(t)
		a, b := tenancy.NewTenantID(), tenancy.NewTenantID()
		recs := []UsageRecord{
			{ID: newID(), Metric: "api.calls", Quantity: 10, PeriodStart: at, RecordedAt: at},
			{ID: newID(), Metric: "api.calls", Quantity: 20, PeriodStart: at, RecordedAt: at.Add(time.Hour)},
			{ID: newID(), Metric: "storage.gb", Quantity: 3, PeriodStart: at, RecordedAt: at.Add(2 * time.Hour)},
		}
		write(t, s, a, func(tx *Tx) error {
			for _, u := range recs {
				if _, err := tx.RecordUsage(ctx, u); err != nil {
					return err
				}
			}
			return nil
		})
		write(t, s, b, func(tx *Tx) error { _, err := tx.RecordUsage(ctx, recs[0]); return err }) // another tenant's
		all := UsageFilter{From: at.Add(-time.Hour), To: at.Add(24 * time.Hour)}
		write(t, s, a, func(tx *Tx) error {
			got, err := tx.ListUsage(ctx, all, "", 2)
			if err != nil || len(got) != 2 || got[0].ID != recs[0].ID || got[1].ID != recs[1].ID || got[1].Quantity != 20 ||
				!got[1].RecordedAt.Equal(at.Add(time.Hour)) {
				t.Errorf("page 1 %+v %v", got, err)
			}
			rest, err := tx.ListUsage(ctx, all, recs[1].ID, 2)
			if err != nil || len(rest) != 1 || rest[0].ID != recs[2].ID {
				t.Errorf("page 2 %+v %v", rest, err)
			}
			one, err := tx.ListUsage(ctx, UsageFilter{Metric: "api.calls", From: at.Add(time.Minute), To: at.Add(24 * time.Hour)}, "", 10)
			if err != nil || len(one) != 1 || one[0].ID != recs[1].ID {
				t.Errorf("filtered %+v %v", one, err)
			}
			tot, err := tx.UsageTotals(ctx, all)
			if err != nil || len(tot) != 2 || tot["api.calls"] != 30 || tot["storage.gb"] != 3 {
				t.Errorf("totals %v %v", tot, err)
			}
			return nil
		})
	})

	t.Run("invoices: lines, issue, list pages in id order", func(t *testing.T) {
		s := newStore(t)
		a := tenancy.NewTenantID()
		var made []InvoiceID
		for i := range 3 {
			inv := Invoice{ID: InvoiceID(newID()), Number: "INV-00000" + string(rune('1'+i)), Currency: "EUR", TotalMinor: 300,
				PeriodStart: at, PeriodEnd: at.AddDate(0, 1, 0), CreatedAt: at,
				Lines: []InvoiceLine{{No: 1, Description: "a", Quantity: 1, UnitMinor: 100, AmountMinor: 100}, {No: 2, Description: "b", Quantity: 2, UnitMinor: 100, AmountMinor: 200}}}
			write(t, s, a, func(tx *Tx) error {
				if err := tx.InsertInvoice(ctx, inv); err != nil {
					return err
				}
				inv.Status, inv.IssuedAt = InvoiceIssued, &at
				return tx.SetInvoiceStatus(ctx, inv)
			})
			made = append(made, inv.ID)
		}
		write(t, s, a, func(tx *Tx) error {
			n, err := tx.CountInvoices(ctx)
			if err != nil || n != 3 {
				t.Errorf("count %d %v", n, err)
			}
			got, err := tx.Invoice(ctx, made[1])
			if err != nil || got.Status != InvoiceIssued || got.TotalMinor != 300 || len(got.Lines) != 2 || got.Lines[1].AmountMinor != 200 || got.IssuedAt == nil {
				t.Errorf("invoice %+v %v", got, err)
			}
			p1, err := tx.Invoices(ctx, "", 2)
			if err != nil || len(p1) != 2 || p1[0].ID != made[0] || p1[1].ID != made[1] {
				t.Errorf("page 1 %+v %v", p1, err)
			}
			p2, err := tx.Invoices(ctx, p1[1].ID, 2)
			if err != nil || len(p2) != 1 || p2[0].ID != made[2] {
				t.Errorf("page 2 %+v %v", p2, err)
			}
			if _, err := tx.Invoice(ctx, InvoiceID(newID())); !errors.Is(err, ErrInvoiceNotFound) {
				t.Errorf("unknown invoice: %v", err)
			}
			if n, err := tx.CountIssuedInvoices(ctx); err != nil || n != 3 {
				t.Errorf("issued %d %v", n, err)
			}
			locked, err := tx.LockInvoice(ctx, made[0])
			if err != nil || locked.ID != made[0] || locked.Status != InvoiceIssued || locked.TotalMinor != 300 {
				t.Errorf("lock %+v %v", locked, err)
			}
			paid := at.Add(time.Hour)
			locked.Status, locked.PaidAt = InvoicePaid, &paid
			if err := tx.SetInvoiceStatus(ctx, locked); err != nil {
				t.Errorf("pay: %v", err)
			}
			if n, err := tx.CountIssuedInvoices(ctx); err != nil || n != 2 {
				t.Errorf("issued after a payment %d %v", n, err)
			}
			if _, err := tx.LockInvoice(ctx, InvoiceID(newID())); !errors.Is(err, ErrInvoiceNotFound) {
				t.Errorf("lock unknown: %v", err)
			}
			return nil
		})
	})
}

func TestStore_Conformance(t *testing.T) {
	rt := testDB.OpenRuntime(t, sqlstore.PoolConfig{})
	runStoreConformance(t, func(t *testing.T) *Store { return NewStore(rt) })
}

// The database is the backstop of the service's bounds: an edition priced beyond 2^53 − 1 or
// ranked beyond ±1,000,000,000 is refused by its CHECKs even when the service's validation is
// bypassed (the store is called directly).
func TestStore_DatabaseRefusesAmountsBeyond2p53AndRanksBeyondTheBound(t *testing.T) {
	h := newHarness(t)
	st := NewStore(h.rt)
	ok := Edition{Code: freshCode(), Name: "Backstop", Currency: "EUR", PeriodMonths: 1, PriceMinor: 1<<53 - 1, Rank: 1_000_000_000,
		Entitlements: EditionEntitlements{Limits: []LimitJSON{}}, UpdatedAt: h.clock.now()}
	if _, _, err := st.PutEdition(t.Context(), ok, nil); err != nil {
		t.Fatalf("at the bounds: %v", err)
	}
	price := ok
	price.Code, price.PriceMinor = freshCode(), 1<<53
	rank := ok
	rank.Code, rank.Rank = freshCode(), 1_000_000_001
	for _, e := range []Edition{price, rank} {
		if _, _, err := st.PutEdition(t.Context(), e, nil); err == nil {
			t.Errorf("price %d rank %d accepted", e.PriceMinor, e.Rank)
		}
	}
}
