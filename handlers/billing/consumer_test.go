package billing

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"spine/shared/contracts"
	"spine/shared/events"
	"spine/shared/functions"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
	"spine/shared/testenv"
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

// deliverBatch hands BillingOnTenantsEvent evs as one batch (cardinality many), as the host does.
func (h *harness) deliverBatch(evs []events.Event) (*functions.Result, error) {
	h.t.Helper()
	bodies := make([][]byte, len(evs))
	metas := make([]functions.ServiceBusMetadata, len(evs))
	for i, ev := range evs {
		bodies[i], _ = json.Marshal(ev)
		metas[i] = functions.ServiceBusMetadata{MessageID: ev.ID, DeliveryCount: 1, EnqueuedTimeUTC: time.Now(),
			ApplicationProperties: map[string]any{"tenantId": ev.TenantID}}
	}
	data, md := functions.ServiceBusBatch(bodies, metas)
	raw, _ := json.Marshal(map[string]any{"Data": map[string]any{functions.ServiceBusBinding: data}, "Metadata": md})
	var inv functions.Invocation
	if err := json.Unmarshal(raw, &inv); err != nil {
		h.t.Fatal(err)
	}
	inv.FunctionName = "BillingOnTenantsEvent"
	return h.api.onTenantsEvent(context.Background(), &inv)
}

// tenantsEvent is one event of the tenants topic about tenant.
func tenantsEvent(t *testing.T, tenant tenancy.TenantID, typ string, data any) events.Event {
	t.Helper()
	ev, err := events.New("tenants", typ, tenant.String(), tenant.String(), data, events.Meta{Actor: "admin:test"})
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// subscriptions lists the tenant's subscriptions through the API, newest first.
func (h *harness) subscriptions(f tenantFixture) []subscriptionJSON {
	h.t.Helper()
	return decode[struct{ Value []subscriptionJSON }](h.t, h.must(http.StatusOK, "GET", "/api/subscriptions", f.reader, nil).Body).Value
}

// One batch of several tenants' lifecycle events is applied as each event would be alone, in
// order, whatever else the batch holds: a trial, a registration outside the catalog acknowledged
// without effect, a registration and a decommissioning of one tenant, a tenant whose earlier trial
// makes its new subscription Active and invoiced; a redelivery of the batch has no second effect.
func TestOnTenantsEvents_OneBatchAppliesEachEventAsAlone(t *testing.T) {
	h := newHarness(t)
	trial, outside, gone, again := h.tenant(), h.tenant(), h.tenant(), h.tenant()
	old := h.subscribe(again, "standard") // a trial, cancelled: the next subscription has none
	h.must(http.StatusOK, "POST", "/api/subscriptions/"+old.ID+"/cancel", again.admin, nil)
	batch := []events.Event{
		tenantsEvent(t, trial.id, contracts.TenantRegistered, contracts.TenantRegisteredData{TenantID: trial.id.String(), EditionCode: "enterprise"}),
		tenantsEvent(t, outside.id, contracts.TenantRegistered, contracts.TenantRegisteredData{TenantID: outside.id.String(), EditionCode: "platinum"}),
		tenantsEvent(t, gone.id, contracts.TenantRegistered, contracts.TenantRegisteredData{TenantID: gone.id.String(), EditionCode: "free"}),
		tenantsEvent(t, again.id, contracts.TenantRegistered, contracts.TenantRegisteredData{TenantID: again.id.String(), EditionCode: "enterprise"}),
		tenantsEvent(t, gone.id, contracts.TenantDecommissioned, contracts.TenantStatusChangedData{TenantID: gone.id.String(), Status: "Decommissioned"}),
		tenantsEvent(t, trial.id, contracts.TenantProvisioned, contracts.TenantProvisionedData{TenantID: trial.id.String(), EditionCode: "enterprise"}),
	}
	res, err := h.deliverBatch(batch)
	if err != nil {
		t.Fatalf("the batch failed: %v", err)
	}
	if len(res.Logs) != len(batch) || !strings.Contains(res.Logs[1], "not in the catalog") || !strings.Contains(res.Logs[5], "stays") {
		t.Errorf("logs %q", res.Logs)
	}
	// One group, one transaction: the batch's events share one inbox claim (ClaimAll's one time),
	// which a group that failed and fell back to event by event would not.
	var claims []string
	if err := h.rt.InReadTx(context.Background(), sqlstore.PlatformScope(), func(tx *sqlstore.Tx) error {
		var err error
		claims, err = testenv.QueryStrings(context.Background(), tx, `SELECT DISTINCT received_at::text FROM inbox
			WHERE consumer = $1 AND event_id = ANY($2::uuid[])`, Consumer, "{"+batch[0].ID+","+batch[3].ID+","+batch[5].ID+"}")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(claims) != 1 {
		t.Errorf("the batch was claimed at %v: not one group", claims)
	}
	if _, err := h.deliverBatch(batch); err != nil { // redelivered: every event a duplicate
		t.Fatalf("the redelivered batch failed: %v", err)
	}
	if s := h.subscriptions(trial); len(s) != 1 || s[0].Status != "Trial" || s[0].EditionCode != "enterprise" {
		t.Errorf("registered on enterprise: %+v", s)
	}
	if s := h.subscriptions(outside); len(s) != 0 {
		t.Errorf("registered outside the catalog: %+v", s)
	}
	if s := h.subscriptions(gone); len(s) != 1 || s[0].Status != "Cancelled" || s[0].CancelReason != "tenant-decommissioned" {
		t.Errorf("registered and decommissioned: %+v", s)
	}
	if got := h.outboxTypes(gone.id); !slices.Equal(got, []string{"SubscriptionActivated", "SubscriptionCancelled"}) {
		t.Errorf("registered and decommissioned: events %v", got)
	}
	if s := h.subscriptions(again); len(s) != 2 || s[0].Status != "Active" || s[0].EditionCode != "enterprise" {
		t.Errorf("a second subscription after a trial: %+v", s)
	}
	if got := h.outboxTypes(again.id); !slices.Equal(got, []string{"SubscriptionCancelled", "SubscriptionActivated", "InvoiceIssued"}) {
		t.Errorf("a second subscription after a trial: events %v", got)
	}
	if invs := h.invoices(again); len(invs) != 1 || invs[0].Status != "Issued" {
		t.Errorf("a second subscription after a trial: invoices %+v", invs)
	}
}

// An event that cannot be applied fails only its own delivery: the batch answers the failure (so
// the host redelivers it), every other event of the batch is applied, and the redelivery applies
// nothing twice.
func TestOnTenantsEvents_BadEventFailsOnlyItself(t *testing.T) {
	h := newHarness(t)
	ok1, bad, ok2 := h.tenant(), h.tenant(), h.tenant()
	batch := []events.Event{
		tenantsEvent(t, ok1.id, contracts.TenantRegistered, contracts.TenantRegisteredData{TenantID: ok1.id.String(), EditionCode: "free"}),
		tenantsEvent(t, bad.id, contracts.TenantRegistered, "not an object"),
		tenantsEvent(t, ok2.id, contracts.TenantRegistered, contracts.TenantRegisteredData{TenantID: ok2.id.String(), EditionCode: "standard"}),
	}
	for round := range 2 {
		if _, err := h.deliverBatch(batch); err == nil {
			t.Fatalf("round %d: a batch with an undecodable event's data answered success", round)
		}
	}
	if s := h.subscriptions(ok1); len(s) != 1 || s[0].Status != "Active" {
		t.Errorf("free: %+v", s)
	}
	if s := h.subscriptions(ok2); len(s) != 1 || s[0].Status != "Trial" {
		t.Errorf("standard: %+v", s)
	}
	if s := h.subscriptions(bad); len(s) != 0 {
		t.Errorf("the bad event: %+v", s)
	}
	if got := h.outboxTypes(ok1.id); !slices.Equal(got, []string{"SubscriptionActivated"}) {
		t.Errorf("free: events %v (applied once)", got)
	}
}

// A decommissioning in a batch with another tenant's registration renews a period that ended
// before it cancels (its invoice issued first), as it would alone: the renewal's reads and writes
// work in the group's set scope.
func TestOnTenantsEvents_DecommissioningInABatchRenewsTheEndedPeriodFirst(t *testing.T) {
	h := newHarness(t)
	paying, fresh := h.tenant(), h.tenant()
	s := h.subscribe(paying, "standard")
	a := decode[subscriptionJSON](t, h.must(http.StatusOK, "POST", "/api/subscriptions/"+s.ID+"/activate", paying.admin, nil).Body)
	h.clock.move(a.PeriodEnd.Sub(a.PeriodStart) + time.Minute)
	if _, err := h.deliverBatch([]events.Event{
		tenantsEvent(t, fresh.id, contracts.TenantRegistered, contracts.TenantRegisteredData{TenantID: fresh.id.String(), EditionCode: "free"}),
		tenantsEvent(t, paying.id, contracts.TenantDecommissioned, contracts.TenantStatusChangedData{TenantID: paying.id.String(), Status: "Decommissioned"}),
	}); err != nil {
		t.Fatalf("the batch failed: %v", err)
	}
	if l := h.subscriptions(paying); len(l) != 1 || l[0].Status != "Cancelled" || !l[0].PeriodStart.Equal(a.PeriodEnd) {
		t.Errorf("decommissioned after its period ended: %+v", l)
	}
	if invs := h.invoices(paying); len(invs) != 2 {
		t.Errorf("invoices: %+v (want the activation's and the renewal's)", invs)
	}
	if got := h.outboxTypes(paying.id); !slices.Equal(got, []string{"SubscriptionActivated", "InvoiceIssued", "InvoiceIssued", "SubscriptionCancelled"}) {
		t.Errorf("events %v", got)
	}
	if l := h.subscriptions(fresh); len(l) != 1 || l[0].Status != "Active" {
		t.Errorf("registered in the same batch: %+v", l)
	}
}
