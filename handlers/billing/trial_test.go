package billing

import (
	"net/http"
	"testing"
)

// One trial per tenant: a tenant that cancels its trial and subscribes again — to the same
// edition or another with a trial — starts Active, its first period invoiced at once.
func TestSubscribe_SecondSubscriptionOfATenantGetsNoTrialAndIsInvoiced(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	first := h.subscribe(f, "standard")
	if first.Status != "Trial" {
		t.Fatalf("first subscription %+v", first)
	}
	h.must(http.StatusOK, "POST", "/api/subscriptions/"+first.ID+"/cancel", f.admin, nil)
	for _, edition := range []string{"standard", "enterprise"} {
		again := h.subscribe(f, edition)
		if again.Status != "Active" || again.TrialEndsAt != nil || !again.PeriodEnd.Equal(addMonths(again.PeriodStart, 1)) {
			t.Errorf("subscribed again to %s: %+v", edition, again)
		}
		h.must(http.StatusOK, "POST", "/api/subscriptions/"+again.ID+"/cancel", f.admin, nil)
	}
	var totals []int64
	for _, inv := range h.invoices(f) {
		totals = append(totals, inv.Total.AmountMinor)
	}
	if len(totals) != 2 || totals[0]+totals[1] != 4900+49900 {
		t.Errorf("invoices %v, want the first periods of standard and enterprise", totals)
	}
	// Another tenant still gets its trial.
	if s := h.subscribe(h.tenant(), "standard"); s.Status != "Trial" {
		t.Errorf("another tenant: %+v", s)
	}
}
