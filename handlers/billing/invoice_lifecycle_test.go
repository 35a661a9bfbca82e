package billing

import (
	"net/http"
	"slices"
	"strconv"
	"testing"

	"spine/shared/sqlstore"
	"spine/shared/testenv/apitest"
)

// draftInvoice writes a Draft invoice of 1 × 1000 EUR for the tenant (no API creates Drafts:
// the service issues what it creates) and returns its id.
func (h *harness) draftInvoice(f tenantFixture) string {
	h.t.Helper()
	now := h.clock.now()
	id := newID()
	err := h.svc.store.Write(h.t.Context(), sqlstore.TenantScope(f.id), f.id, func(tx *Tx) error {
		n, err := tx.CountInvoices(h.t.Context())
		if err != nil {
			return err
		}
		return tx.InsertInvoice(h.t.Context(), Invoice{ID: InvoiceID(id), Number: "DRAFT-" + id[24:], Currency: "EUR", TotalMinor: 1000,
			PeriodStart: now, PeriodEnd: now.AddDate(0, 1, 0), CreatedAt: now,
			Lines: []InvoiceLine{{No: 1, Description: "manual " + strconv.FormatInt(n+1, 10), Quantity: 1, UnitMinor: 1000, AmountMinor: 1000}}})
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return id
}

func (h *harness) invoiceAction(f tenantFixture, id, action string) apitest.Response {
	h.t.Helper()
	return h.do("POST", "/api/invoices/"+id+"/"+action+"?tenantId="+f.id.String(), h.platformAdmin(), nil)
}

func TestInvoiceIssue_200_DraftBecomesIssuedWithInvoiceIssued(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	id := h.draftInvoice(f)
	r := h.invoiceAction(f, id, "issue")
	if r.Code != http.StatusOK {
		t.Fatalf("%d %s", r.Code, r.Body)
	}
	inv := decode[invoiceJSON](t, r.Body)
	if inv.Status != "Issued" || inv.IssuedAt == nil || inv.Total.AmountMinor != 1000 || len(*inv.Lines) != 1 {
		t.Errorf("%+v", inv)
	}
	if got := h.outboxTypes(f.id); !slices.Equal(got, []string{"InvoiceIssued"}) {
		t.Errorf("outbox %v", got)
	}
}

func TestInvoicePay_200_IssuedBecomesPaid(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	s := h.subscribe(f, "standard")
	h.must(http.StatusOK, "POST", "/api/subscriptions/"+s.ID+"/activate", f.admin, nil)
	inv := h.invoices(f)[0]
	r := h.invoiceAction(f, inv.ID, "pay")
	if got := decode[invoiceJSON](t, r.Body); r.Code != http.StatusOK || got.Status != "Paid" || got.PaidAt == nil || got.Total.AmountMinor != 4900 {
		t.Fatalf("%d %s", r.Code, r.Body)
	}
	if one := decode[invoiceJSON](t, h.must(http.StatusOK, "GET", "/api/invoices/"+inv.ID, f.reader, nil).Body); one.Status != "Paid" {
		t.Errorf("GET %+v", one)
	}
}

// A PastDue subscription comes back to Active when its last Issued invoice is paid, not before.
func TestInvoicePay_ReactivatesPastDueWhenNoOtherInvoiceIsIssued(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	s := h.subscribe(f, "standard")
	h.must(http.StatusOK, "POST", "/api/subscriptions/"+s.ID+"/activate", f.admin, nil)
	first := h.invoices(f)[0]
	if _, err := h.svc.MarkPastDue(t.Context(), Caller{Tenant: f.id}, f.id, SubscriptionID(s.ID)); err != nil {
		t.Fatal(err)
	}
	second := h.draftInvoice(f)
	h.must(http.StatusOK, "POST", "/api/invoices/"+second+"/issue?tenantId="+f.id.String(), h.platformAdmin(), nil)
	h.must(http.StatusOK, "POST", "/api/invoices/"+first.ID+"/pay?tenantId="+f.id.String(), h.platformAdmin(), nil)
	status := func() string {
		list := decode[struct{ Value []subscriptionJSON }](t, h.must(http.StatusOK, "GET", "/api/subscriptions", f.reader, nil).Body)
		return list.Value[0].Status
	}
	if st := status(); st != "PastDue" {
		t.Fatalf("with an Issued invoice left: %s", st)
	}
	h.must(http.StatusOK, "POST", "/api/invoices/"+second+"/pay?tenantId="+f.id.String(), h.platformAdmin(), nil)
	if st := status(); st != "Active" {
		t.Fatalf("after the last payment: %s", st)
	}
	got := h.outboxTypes(f.id)
	if got[len(got)-1] != "SubscriptionActivated" {
		t.Errorf("outbox %v", got)
	}
}

func TestInvoiceVoid_200_DraftAndIssued(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	draft := h.draftInvoice(f)
	issued := h.draftInvoice(f)
	h.must(http.StatusOK, "POST", "/api/invoices/"+issued+"/issue?tenantId="+f.id.String(), h.platformAdmin(), nil)
	for _, id := range []string{draft, issued} {
		r := h.invoiceAction(f, id, "void")
		if got := decode[invoiceJSON](t, r.Body); r.Code != http.StatusOK || got.Status != "Void" || got.VoidedAt == nil {
			t.Errorf("%s: %d %s", id, r.Code, r.Body)
		}
	}
}

func TestInvoiceActions_409_IllegalTransition(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	draft := h.draftInvoice(f)
	paid := h.draftInvoice(f)
	voided := h.draftInvoice(f)
	h.must(http.StatusOK, "POST", "/api/invoices/"+paid+"/issue?tenantId="+f.id.String(), h.platformAdmin(), nil)
	h.must(http.StatusOK, "POST", "/api/invoices/"+paid+"/pay?tenantId="+f.id.String(), h.platformAdmin(), nil)
	h.must(http.StatusOK, "POST", "/api/invoices/"+voided+"/void?tenantId="+f.id.String(), h.platformAdmin(), nil)
	for _, c := range []struct{ id, action string }{
		{draft, "pay"}, {paid, "issue"}, {paid, "pay"}, {paid, "void"}, {voided, "issue"}, {voided, "pay"}, {voided, "void"},
	} {
		if r := h.invoiceAction(f, c.id, c.action); r.Code != http.StatusConflict || r.ProblemCode(t) != "illegal-invoice-transition" {
			t.Errorf("%s %s: %d %s", c.id, c.action, r.Code, r.Body)
		}
	}
}

func TestInvoiceActions_403_TenantToken(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	id := h.draftInvoice(f)
	for _, action := range []string{"issue", "pay", "void"} {
		r := h.do("POST", "/api/invoices/"+id+"/"+action, f.admin, nil)
		if r.Code != http.StatusForbidden || r.ProblemCode(t) != "platform-admin-required" {
			t.Errorf("%s: %d %s", action, r.Code, r.Body)
		}
	}
}

func TestInvoiceActions_404_OtherTenantsOrUnknownID(t *testing.T) {
	h := newHarness(t)
	a, b := h.tenant(), h.tenant()
	bInv := h.draftInvoice(b)
	for _, id := range []string{bInv, newID(), "not-an-id"} {
		if r := h.invoiceAction(a, id, "issue"); r.Code != http.StatusNotFound || r.ProblemCode(t) != "invoice-not-found" {
			t.Errorf("%s: %d %s", id, r.Code, r.Body)
		}
	}
	if r := h.do("POST", "/api/invoices/"+bInv+"/issue", h.platformAdmin(), nil); r.Code != http.StatusBadRequest || r.ProblemCode(t) != "tenant-required" {
		t.Errorf("without tenantId: %d %s", r.Code, r.Body)
	}
}
