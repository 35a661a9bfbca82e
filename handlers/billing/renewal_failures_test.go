package billing

import (
	"context"
	"database/sql"
	"net/http"
	"testing"
	"time"

	"spine/shared/contracts"
	"spine/shared/sqlstore"
)

// rawUsage writes n usage records of quantity q into the tenant's live subscription's current
// period straight through the store, past the service's checks: what records that race past
// the bound, or an edition whose prices rose after the usage, leave behind.
func (h *harness) rawUsage(f tenantFixture, n int, q int64) {
	h.t.Helper()
	ctx := h.t.Context()
	err := h.svc.store.Write(ctx, sqlstore.TenantScope(f.id), f.id, func(tx *Tx) error {
		sub, err := tx.LiveSubscription(ctx)
		if err != nil {
			return err
		}
		for range n {
			if _, err := tx.RecordUsage(ctx, UsageRecord{ID: newID(), Metric: "api.calls", Quantity: q, PeriodStart: sub.PeriodStart,
				RecordedAt: h.clock.now()}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		h.t.Fatal(err)
	}
}

// A period's usage summing beyond int64 (1100 records of 2^53 − 1) is read as beyond the bound,
// never an overflow: listing it answers, more usage and the period's renewal are 409
// total-too-large (not 500), and the subscription can still be cancelled.
func TestUsage_PeriodSumBeyondInt64_IsTotalTooLargeNeverAnOverflow(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	s := h.subscribe(f, h.meteredEdition())
	h.rawUsage(f, 1100, maxMinor)
	list := h.must(http.StatusOK, "GET", "/api/usage-records?limit=1", f.reader, nil)
	if got := decode[usagePageJSON](t, list.Body).Totals["api.calls"]; got != maxMinor+1 {
		t.Errorf("totals api.calls = %d, want %d (beyond the bound)", got, int64(maxMinor+1))
	}
	if r := h.do("POST", "/api/usage-records", h.platformAdmin(), map[string]any{"usageId": newID(), "metric": "api.calls", "quantity": 1,
		"tenantId": f.id.String()}); r.Code != http.StatusConflict || r.ProblemCode(t) != "total-too-large" {
		t.Errorf("more usage: %d %s", r.Code, r.Body)
	}
	h.clock.move(s.PeriodEnd.Sub(h.clock.now()) + time.Minute)
	if r := h.do("POST", "/api/subscriptions/"+s.ID+"/change-edition", f.admin, map[string]any{"editionCode": "enterprise"}); r.Code != http.StatusConflict || r.ProblemCode(t) != "total-too-large" {
		t.Errorf("change-edition after the period end: %d %s", r.Code, r.Body)
	}
	c := decode[subscriptionJSON](t, h.must(http.StatusOK, "POST", "/api/subscriptions/"+s.ID+"/cancel", f.admin, nil).Body)
	if c.Status != "Cancelled" {
		t.Errorf("after cancel: %+v", c)
	}
}

// failingTenant is a tenant on a metered edition whose current period holds usage no invoice can
// bill (two records of 2^53 − 1 at 2 per unit): its renewal fails with ErrTotalTooLarge.
func (h *harness) failingTenant(edition string) (tenantFixture, subscriptionJSON) {
	h.t.Helper()
	f := h.tenant()
	s := h.subscribe(f, edition)
	h.rawUsage(f, 2, maxMinor)
	// Cancelled at the end, so that later tests' renewal runs (one database) meet no failure.
	h.t.Cleanup(func() { _ = h.do("POST", "/api/subscriptions/"+s.ID+"/cancel", f.admin, nil) })
	return f, s
}

// More subscriptions whose renewal fails than a batch holds, due before everyone else's, do not
// stop the renewal of the others: each failure is recorded on its row and the row is left out of
// the next batches until its retry time.
func TestRenewals_FailingSubscriptionsBeyondTheBatchDoNotStarveTheOthers(t *testing.T) {
	h := newHarness(t)
	h.svc.cfg.RenewalBatch = 3
	edition := h.meteredEdition()
	var failing []tenantFixture
	for range 4 {
		f, _ := h.failingTenant(edition)
		failing = append(failing, f)
	}
	good := h.tenant()
	gs := h.subscribe(good, edition)
	h.clock.move(gs.PeriodEnd.Sub(h.clock.now()) + time.Minute)
	// Other tests' subscriptions are due too (one database): run until the good one is reached,
	// bounded; without the back-off every run stops at a batch of failures.
	// (Reads show the period rolled over to now: the renewal's invoice is what tells.)
	for i := 0; i < 200 && len(h.invoices(good)) < 2; i++ {
		_, _ = h.svc.Renewals(context.Background()) // the failures are the point
	}
	if invs := h.invoices(good); len(invs) != 2 {
		t.Fatalf("the good subscription was not renewed: invoices %+v", invs)
	}
	ctx := context.Background()
	due, err := h.svc.store.DueSubscriptions(ctx, h.clock.now(), h.clock.now().Add(-h.svc.cfg.PastDueGrace), 100000)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range failing {
		var attempts int
		var retry sql.NullTime
		if err := h.rt.InReadTx(ctx, sqlstore.TenantScope(f.id), func(tx *sqlstore.Tx) error {
			return tx.QueryRowContext(ctx, `SELECT renewal_attempts, renewal_retry_at FROM subscriptions WHERE tenant_id = $1 AND status <> 'Cancelled'`,
				f.id.String()).Scan(&attempts, &retry)
		}); err != nil {
			t.Fatal(err)
		}
		if attempts != 1 || !retry.Valid || !retry.Time.After(h.clock.now()) {
			t.Errorf("tenant %s: attempts %d, retry at %v (now %v)", f.id, attempts, retry, h.clock.now())
		}
		for _, d := range due {
			if d.Tenant == f.id {
				t.Errorf("tenant %s is due again before its retry time", f.id)
			}
		}
	}
	// After the back-off it is tried again (and fails again: twice the wait).
	h.clock.move(time.Hour + time.Minute)
	_, _ = h.svc.Renewals(context.Background())
	var attempts int
	if err := h.rt.InReadTx(ctx, sqlstore.TenantScope(failing[0].id), func(tx *sqlstore.Tx) error {
		return tx.QueryRowContext(ctx, `SELECT renewal_attempts FROM subscriptions WHERE tenant_id = $1 AND status <> 'Cancelled'`,
			failing[0].id.String()).Scan(&attempts)
	}); err != nil {
		t.Fatal(err)
	}
	if attempts != 2 {
		t.Errorf("after the back-off: attempts %d, want 2", attempts)
	}
	if got := renewalBackoff(time.Hour, 2); got != 2*time.Hour {
		t.Errorf("renewalBackoff(1h, 2) = %v", got)
	}
	if got := renewalBackoff(time.Hour, 40); got != 24*time.Hour {
		t.Errorf("renewalBackoff(1h, 40) = %v", got)
	}
}

// A subscription whose renewal cannot bill is still cancelled — by its tenant and by the tenant's
// decommissioning — as it stands: its period is not rolled and no invoice is issued.
func TestCancel_RenewalThatCannotBill_CancelsWithoutRolling(t *testing.T) {
	h := newHarness(t)
	edition := h.meteredEdition()
	f, s := h.failingTenant(edition)
	d, ds := h.failingTenant(edition)
	h.clock.move(s.PeriodEnd.Sub(h.clock.now()) + time.Minute)
	before := len(h.invoices(f))
	c := decode[subscriptionJSON](t, h.must(http.StatusOK, "POST", "/api/subscriptions/"+s.ID+"/cancel", f.admin, nil).Body)
	if c.Status != "Cancelled" || !c.PeriodStart.Equal(s.PeriodStart) || len(h.invoices(f)) != before {
		t.Errorf("cancelled %+v (before %+v), invoices %d → %d", c, s, before, len(h.invoices(f)))
	}
	if err := h.deliver(d.id, contracts.TenantDecommissioned, contracts.TenantStatusChangedData{TenantID: d.id.String(), Status: "Decommissioned"}); err != nil {
		t.Fatalf("TenantDecommissioned: %v", err)
	}
	list := decode[struct{ Value []subscriptionJSON }](t, h.must(http.StatusOK, "GET", "/api/subscriptions", d.reader, nil).Body)
	if got := list.Value[0]; got.ID != ds.ID || got.Status != "Cancelled" || got.CancelReason != "tenant-decommissioned" {
		t.Errorf("after TenantDecommissioned: %+v", got)
	}
}
