package billing

import (
	"net/http"
	"slices"
	"testing"

	"spine/shared/contracts"
	"spine/shared/events"
)

func TestOnTenantRegistered_TrialOnTheRequestedEditionOnce(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	ev, err := events.New("tenants", contracts.TenantRegistered, f.id.String(), f.id.String(),
		contracts.TenantRegisteredData{TenantID: f.id.String(), Name: "A", Slug: "a", EditionCode: "enterprise"}, events.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // a redelivery has no second effect (inbox)
		if err := h.deliverEvent(ev); err != nil {
			t.Fatal(err)
		}
	}
	// Another registration event for the same tenant keeps the live subscription.
	if err := h.deliver(f.id, contracts.TenantRegistered, contracts.TenantRegisteredData{TenantID: f.id.String(), EditionCode: "free"}); err != nil {
		t.Fatal(err)
	}
	list := decode[struct{ Value []subscriptionJSON }](t, h.must(http.StatusOK, "GET", "/api/subscriptions", f.reader, nil).Body)
	if len(list.Value) != 1 || list.Value[0].Status != "Trial" || list.Value[0].EditionCode != "enterprise" {
		t.Fatalf("%+v", list.Value)
	}
}

// A registration on an edition outside the catalog is acknowledged without a subscription; the
// subscription follows at TenantProvisioned (the tenant's corrected, checked edition), once.
func TestOnTenantRegistered_EditionOutsideTheCatalogWaitsForProvisioning(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	if err := h.deliver(f.id, contracts.TenantRegistered, contracts.TenantRegisteredData{TenantID: f.id.String(), EditionCode: "platinum"}); err != nil {
		t.Fatalf("an unknown edition failed the delivery: %v", err)
	}
	if r := h.do("GET", "/api/entitlements", f.reader, nil); r.Code != http.StatusNotFound {
		t.Fatalf("subscribed to an unknown edition: %d %s", r.Code, r.Body)
	}
	for range 2 {
		if err := h.deliver(f.id, contracts.TenantProvisioned, contracts.TenantProvisionedData{TenantID: f.id.String(), EditionCode: "standard"}); err != nil {
			t.Fatal(err)
		}
	}
	list := decode[struct{ Value []subscriptionJSON }](t, h.must(http.StatusOK, "GET", "/api/subscriptions", f.reader, nil).Body)
	if len(list.Value) != 1 || list.Value[0].EditionCode != "standard" || list.Value[0].Status != "Trial" {
		t.Fatalf("%+v", list.Value)
	}
}

// A provisioned tenant that has its subscription from the registration keeps it.
func TestOnTenantProvisioned_KeepsTheRegistrationsSubscription(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	if err := h.deliver(f.id, contracts.TenantRegistered, contracts.TenantRegisteredData{TenantID: f.id.String(), EditionCode: "enterprise"}); err != nil {
		t.Fatal(err)
	}
	if err := h.deliver(f.id, contracts.TenantProvisioned, contracts.TenantProvisionedData{TenantID: f.id.String(), EditionCode: "enterprise"}); err != nil {
		t.Fatal(err)
	}
	list := decode[struct{ Value []subscriptionJSON }](t, h.must(http.StatusOK, "GET", "/api/subscriptions", f.reader, nil).Body)
	if len(list.Value) != 1 || list.Value[0].EditionCode != "enterprise" {
		t.Fatalf("%+v", list.Value)
	}
}

func TestOnTenantDecommissioned_CancelsAndKeepsTheMoneyRecords(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	s := h.subscribe(f, "standard")
	h.must(http.StatusOK, "POST", "/api/subscriptions/"+s.ID+"/activate", f.admin, nil)
	if err := h.deliver(f.id, contracts.TenantDecommissioned, contracts.TenantStatusChangedData{TenantID: f.id.String(), Status: "Decommissioned"}); err != nil {
		t.Fatal(err)
	}
	list := decode[struct{ Value []subscriptionJSON }](t, h.must(http.StatusOK, "GET", "/api/subscriptions", f.reader, nil).Body)
	if len(list.Value) != 1 || list.Value[0].Status != "Cancelled" || list.Value[0].CancelReason != "tenant-decommissioned" {
		t.Fatalf("%+v", list.Value)
	}
	if invs := h.invoices(f); len(invs) != 1 || invs[0].Status != "Issued" {
		t.Errorf("invoices after decommissioning: %+v", invs)
	}
	if got := h.outboxTypes(f.id); !slices.Equal(got, []string{"SubscriptionActivated", "InvoiceIssued", "SubscriptionCancelled"}) {
		t.Errorf("events %v", got)
	}
	// Nothing live: a second decommissioning is acknowledged without effect.
	if err := h.deliver(f.id, contracts.TenantDecommissioned, contracts.TenantStatusChangedData{TenantID: f.id.String(), Status: "Decommissioned"}); err != nil {
		t.Fatal(err)
	}
}
