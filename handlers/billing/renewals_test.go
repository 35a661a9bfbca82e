package billing

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"spine/shared/functions"
)

// runRenewals runs the BillingRenewals timer once, as the host invokes it.
func (h *harness) runRenewals() *functions.Result {
	h.t.Helper()
	res, err := h.api.renewals(context.Background(), &functions.Invocation{FunctionName: "BillingRenewals"})
	if err != nil {
		h.t.Fatal(err)
	}
	return res
}

func (h *harness) liveSubscription(f tenantFixture) subscriptionJSON {
	h.t.Helper()
	list := decode[struct{ Value []subscriptionJSON }](h.t, h.must(http.StatusOK, "GET", "/api/subscriptions", f.reader, nil).Body)
	return list.Value[0]
}

func countOf(types []string, typ string) int {
	n := 0
	for _, t := range types {
		if t == typ {
			n++
		}
	}
	return n
}

// meteredEdition creates a paid edition without a trial that prices api.calls at 2 per call.
func (h *harness) meteredEdition() string {
	h.t.Helper()
	code := freshCode()
	b := editionBody()
	b["trialDays"] = 0
	setPrice(b, 1000)
	b["entitlements"].(map[string]any)["usagePrices"] = map[string]any{"api.calls": 2}
	b["public"] = true // tenants subscribe to it themselves
	h.must(http.StatusCreated, "PUT", "/api/editions/"+code, h.platformAdmin(), b)
	return code
}

func TestRenewals_RollsThePeriodAndIssuesItsInvoiceWithThePricedUsage(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	s := h.subscribe(f, h.meteredEdition())
	for _, u := range []map[string]any{
		{"usageId": newID(), "metric": "api.calls", "quantity": 7},
		{"usageId": newID(), "metric": "api.calls", "quantity": 3},
		{"usageId": newID(), "metric": "storage.gb", "quantity": 5}, // not priced: not billed
	} {
		h.must(http.StatusCreated, "POST", usagePath(f), h.meter(), u)
	}
	h.clock.move(s.PeriodEnd.Sub(h.clock.now()) + time.Minute)
	if res := h.runRenewals(); res.Quiet {
		t.Fatal("a run with a due subscription was quiet")
	}
	after := h.liveSubscription(f)
	if after.Status != "Active" || !after.PeriodStart.Equal(s.PeriodEnd) || !after.PeriodEnd.Equal(addMonths(s.PeriodEnd, 1)) || after.Version != s.Version+1 {
		t.Fatalf("after %+v (before %+v)", after, s)
	}
	invs := h.invoices(f)
	if len(invs) != 2 {
		t.Fatalf("invoices %+v", invs)
	}
	var second invoiceJSON
	for _, inv := range invs {
		if inv.PeriodStart.Equal(s.PeriodEnd) {
			second = decode[invoiceJSON](t, h.must(http.StatusOK, "GET", "/api/invoices/"+inv.ID, f.reader, nil).Body)
		}
	}
	if second.Status != "Issued" || second.Total.AmountMinor != 1000+10*2 || second.Lines == nil || len(*second.Lines) != 2 ||
		(*second.Lines)[1].Quantity != 10 || (*second.Lines)[1].UnitMinor != 2 || (*second.Lines)[1].AmountMinor != 20 {
		t.Fatalf("renewal invoice %+v lines %+v", second, second.Lines)
	}
	if got := h.outboxTypes(f.id); countOf(got, "InvoiceIssued") != 2 {
		t.Errorf("outbox %v", got)
	}
	// A second run finds nothing more to do for this tenant.
	h.runRenewals()
	if n := len(h.invoices(f)); n != 2 {
		t.Errorf("second run: %d invoices", n)
	}
}

func TestRenewals_AppliesAPendingDowngradeAtThePeriodEnd(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	s := h.subscribe(f, "standard")
	s = decode[subscriptionJSON](t, h.must(http.StatusOK, "POST", "/api/subscriptions/"+s.ID+"/activate", f.admin, nil).Body)
	h.must(http.StatusOK, "POST", "/api/subscriptions/"+s.ID+"/change-edition", f.admin, map[string]any{"editionCode": "free"})
	h.clock.move(s.PeriodEnd.Sub(h.clock.now()) + time.Minute)
	h.runRenewals()
	after := h.liveSubscription(f)
	if after.EditionCode != "free" || after.PendingEdition != "" || after.Status != "Active" || !after.PeriodStart.Equal(s.PeriodEnd) {
		t.Fatalf("after %+v", after)
	}
	got := h.outboxTypes(f.id)
	if countOf(got, "SubscriptionEditionChanged") != 2 || got[len(got)-1] != "SubscriptionEditionChanged" {
		t.Errorf("outbox %v", got)
	}
	if n := len(h.invoices(f)); n != 1 { // the free period costs nothing and no usage was recorded
		t.Errorf("%d invoices", n)
	}
}

func TestRenewals_TrialEndsPastDueWithItsFirstInvoice_PayingActivates(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	s := h.subscribe(f, "standard")
	h.clock.move(15 * 24 * time.Hour)
	h.runRenewals()
	after := h.liveSubscription(f)
	if after.Status != "PastDue" || !after.PeriodStart.Equal(*s.TrialEndsAt) {
		t.Fatalf("after the trial %+v", after)
	}
	invs := h.invoices(f)
	if len(invs) != 1 || invs[0].Status != "Issued" || invs[0].Total.AmountMinor != 4900 {
		t.Fatalf("invoices %+v", invs)
	}
	h.must(http.StatusOK, "POST", "/api/invoices/"+invs[0].ID+"/pay?tenantId="+f.id.String(), h.platformAdmin(), nil)
	if st := h.liveSubscription(f).Status; st != "Active" {
		t.Errorf("after payment %s", st)
	}
	if got := h.outboxTypes(f.id); !slices.Equal(got, []string{"InvoiceIssued", "SubscriptionActivated"}) {
		t.Errorf("outbox %v", got)
	}
}

func TestRenewals_PastDueBeyondTheGraceIsCancelledUnpaid(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	h.subscribe(f, "standard")
	h.clock.move(15 * 24 * time.Hour)
	h.runRenewals()
	if st := h.liveSubscription(f).Status; st != "PastDue" {
		t.Fatalf("after the trial %s", st)
	}
	h.clock.move(12 * 24 * time.Hour) // 13 days past due: within the 14-day grace
	h.runRenewals()
	if st := h.liveSubscription(f).Status; st != "PastDue" {
		t.Fatalf("within the grace %s", st)
	}
	h.clock.move(2 * 24 * time.Hour)
	h.runRenewals()
	after := h.liveSubscription(f)
	if after.Status != "Cancelled" || after.CancelReason != "unpaid" || after.CancelledAt == nil {
		t.Fatalf("after the grace %+v", after)
	}
	if got := h.outboxTypes(f.id); got[len(got)-1] != "SubscriptionCancelled" {
		t.Errorf("outbox %v", got)
	}
	// The issued invoice stays (financial retention).
	if invs := h.invoices(f); len(invs) != 1 || invs[0].Status != "Issued" {
		t.Errorf("invoices %+v", invs)
	}
}

// Two instances running the timer at once bill each period exactly once: each renewal locks
// its row (SKIP LOCKED) and checks again under the lock that it is still due.
func TestRenewals_TwoInstancesAtOnceBillEachPeriodOnce(t *testing.T) {
	h := newHarness(t)
	other := NewService(NewStore(h.rt), nil, h.dir, ServiceConfig{Now: h.clock.now, RenewalBatch: 3}, nil)
	h.svc.cfg.RenewalBatch = 3 // several batches, so the runs interleave
	var tenants []tenantFixture
	ends := map[string]time.Time{}
	var end time.Time
	for range 8 {
		f := h.tenant()
		s := h.subscribe(f, h.meteredEdition())
		h.must(http.StatusCreated, "POST", usagePath(f), h.meter(), map[string]any{"usageId": newID(), "metric": "api.calls", "quantity": 4})
		tenants, end, ends[f.id.String()] = append(tenants, f), s.PeriodEnd, s.PeriodEnd
	}
	h.clock.move(end.Sub(h.clock.now()) + time.Minute)
	var wg sync.WaitGroup
	reports := make([]RenewalReport, 4)
	errs := make([]error, 4)
	for i := range 4 {
		svc := h.svc
		if i%2 == 1 {
			svc = other
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			reports[i], errs[i] = svc.Renewals(context.Background())
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("run %d: %v (%+v)", i, err, reports[i])
		}
	}
	for _, f := range tenants {
		invs := h.invoices(f)
		if len(invs) != 2 {
			t.Errorf("tenant %s: %d invoices", f.id, len(invs))
		}
		if got := h.outboxTypes(f.id); countOf(got, "InvoiceIssued") != 2 {
			t.Errorf("tenant %s: outbox %v", f.id, got)
		}
		if s := h.liveSubscription(f); !s.PeriodStart.Equal(ends[f.id.String()]) || s.Version != 2 {
			t.Errorf("tenant %s: %+v", f.id, s)
		}
	}
}

// A write to a subscription whose period ended renews it first, so the period is billed even
// when the timer has not run yet.
func TestChange_AfterThePeriodEndRenewsFirst(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	s := h.subscribe(f, h.meteredEdition())
	h.clock.move(s.PeriodEnd.Sub(h.clock.now()) + time.Minute)
	h.must(http.StatusOK, "POST", "/api/subscriptions/"+s.ID+"/change-edition", f.admin, map[string]any{"editionCode": "free"})
	after := h.liveSubscription(f)
	if !after.PeriodStart.Equal(s.PeriodEnd) || after.PendingEdition != "free" {
		t.Fatalf("after %+v", after)
	}
	if n := len(h.invoices(f)); n != 2 {
		t.Errorf("%d invoices", n)
	}
}

// Paying a PastDue subscription's last invoice after its period ended reactivates it and leaves
// the period's roll (and its invoice) to the renewal, which bills it once.
func TestInvoicePay_AfterThePeriodEndTheRenewalStillBillsTheNextPeriod(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	s := h.subscribe(f, h.meteredEdition())
	if _, err := h.svc.MarkPastDue(t.Context(), Caller{Tenant: f.id}, f.id, SubscriptionID(s.ID)); err != nil {
		t.Fatal(err)
	}
	first := h.invoices(f)[0]
	h.clock.move(s.PeriodEnd.Sub(h.clock.now()) + time.Minute)
	h.must(http.StatusOK, "POST", "/api/invoices/"+first.ID+"/pay?tenantId="+f.id.String(), h.platformAdmin(), nil)
	if st := h.liveSubscription(f).Status; st != "Active" {
		t.Fatalf("after payment %s", st)
	}
	if n := len(h.invoices(f)); n != 1 {
		t.Fatalf("the payment issued %d invoices", n)
	}
	h.runRenewals()
	after := h.liveSubscription(f)
	if after.Status != "Active" || !after.PeriodStart.Equal(s.PeriodEnd) {
		t.Fatalf("after the renewal %+v", after)
	}
	if n := len(h.invoices(f)); n != 2 {
		t.Errorf("%d invoices", n)
	}
}
