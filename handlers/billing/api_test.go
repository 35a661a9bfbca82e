package billing

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"spine/shared/entitlements"
	"spine/shared/ids"
	"spine/shared/tenancy"
)

func decode[T any](t *testing.T, body []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	return v
}

func TestEditions_200_TheSeededCatalogInMinorUnits(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	page := decode[struct{ Value []editionJSON }](t, h.must(http.StatusOK, "GET", "/api/editions", f.reader, nil).Body)
	// Other tests add editions (PUT /api/editions/{code}) to the package's database: the seeded
	// ones are checked, in catalog order.
	var codes []string
	var std editionJSON
	for _, e := range page.Value {
		if e.Code == "free" || e.Code == "standard" || e.Code == "enterprise" {
			codes = append(codes, e.Code)
		}
		if e.Code == "standard" {
			std = e
		}
	}
	if !slices.Equal(codes, []string{"free", "standard", "enterprise"}) {
		t.Fatalf("catalog %v", codes)
	}
	if std.Price != (moneyJSON{4900, "EUR"}) || std.TrialDays != 14 || std.Entitlements.MaxUsers != 50 || len(std.Entitlements.Limits) != 2 ||
		std.Entitlements.Limits[1] != (LimitJSON{Route: "/api/audit-entries", Rate: 50, Burst: 100, PeriodSeconds: 1}) {
		t.Errorf("standard %+v", std)
	}
	e := decode[editionJSON](t, h.must(http.StatusOK, "GET", "/api/editions/enterprise", f.reader, nil).Body)
	if e.Price.AmountMinor != 49900 || e.Entitlements.MaxUsers != 0 || e.Entitlements.RetentionDays["audit"] != 3650 {
		t.Errorf("enterprise %+v", e)
	}
}

func TestEdition_404_UnknownCode(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	for _, code := range []string{"platinum", "NOT-A-CODE"} {
		if r := h.do("GET", "/api/editions/"+code, f.reader, nil); r.Code != http.StatusNotFound || r.ProblemCode(t) != "edition-not-found" {
			t.Errorf("%s: %d %s", code, r.Code, r.Body)
		}
	}
}

func TestSubscribe_201_TrialOnAnEditionWithATrial(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	s := h.subscribe(f, "standard")
	if s.Status != "Trial" || s.EditionCode != "standard" || s.TrialEndsAt == nil || s.Version != 1 ||
		!s.TrialEndsAt.Equal(s.PeriodStart.AddDate(0, 0, 14)) || !s.PeriodEnd.Equal(*s.TrialEndsAt) {
		t.Fatalf("subscription %+v", s)
	}
	if inv := h.invoices(f); len(inv) != 0 {
		t.Errorf("a trial is invoiced: %+v", inv)
	}
	if got := h.outboxTypes(f.id); len(got) != 0 {
		t.Errorf("a trial emitted %v", got)
	}
	list := decode[struct{ Value []subscriptionJSON }](t, h.must(http.StatusOK, "GET", "/api/subscriptions", f.reader, nil).Body)
	if len(list.Value) != 1 || list.Value[0].ID != s.ID {
		t.Errorf("list %+v", list.Value)
	}
}

func TestSubscribe_201_ActiveWithoutATrial(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	s := h.subscribe(f, "free")
	if s.Status != "Active" || s.TrialEndsAt != nil || !s.PeriodEnd.Equal(addMonths(s.PeriodStart, 1)) {
		t.Fatalf("subscription %+v", s)
	}
	if inv := h.invoices(f); len(inv) != 0 { // a free edition costs nothing: no invoice of 0
		t.Errorf("free edition invoiced: %+v", inv)
	}
	if got := h.outboxTypes(f.id); !slices.Equal(got, []string{"SubscriptionActivated"}) {
		t.Errorf("events %v", got)
	}
}

func TestSubscribe_409_SubscriptionExists(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	h.subscribe(f, "standard")
	r := h.do("POST", "/api/subscriptions", f.admin, map[string]any{"editionCode": "enterprise"})
	if r.Code != http.StatusConflict || r.ProblemCode(t) != "subscription-exists" {
		t.Fatalf("%d %s", r.Code, r.Body)
	}
}

func TestSubscribe_404_UnknownEdition(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	r := h.do("POST", "/api/subscriptions", f.admin, map[string]any{"editionCode": "platinum"})
	if r.Code != http.StatusNotFound || r.ProblemCode(t) != "edition-not-found" {
		t.Fatalf("%d %s", r.Code, r.Body)
	}
}

func TestSubscribe_400_InvalidEditionCode(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	for _, body := range []any{map[string]any{"editionCode": "Not A Code"}, map[string]any{}, map[string]any{"editionCode": "free", "x": 1}} {
		if r := h.do("POST", "/api/subscriptions", f.admin, body); r.Code != http.StatusBadRequest {
			t.Errorf("%v: %d %s", body, r.Code, r.Body)
		}
	}
}

func TestSubscribe_403_ReadScopeOnly(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	if r := h.do("POST", "/api/subscriptions", f.reader, map[string]any{"editionCode": "free"}); r.Code != http.StatusForbidden {
		t.Fatalf("%d %s", r.Code, r.Body)
	}
}

func TestSubscribe_403_TenantSuspended(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	h.dir.Set(f.id, tenancy.StatusSuspended)
	r := h.do("POST", "/api/subscriptions", f.admin, map[string]any{"editionCode": "free"})
	if r.Code != http.StatusForbidden || r.ProblemCode(t) != "tenant-suspended" {
		t.Fatalf("%d %s", r.Code, r.Body)
	}
}

func TestSubscribe_201_PlatformAdminNamesTheTenant(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	admin := h.platformAdmin()
	h.must(http.StatusCreated, "POST", "/api/subscriptions?tenantId="+f.id.String(), admin, map[string]any{"editionCode": "free"})
	list := decode[struct{ Value []subscriptionJSON }](t, h.must(http.StatusOK, "GET", "/api/subscriptions?tenantId="+f.id.String(), admin, nil).Body)
	if len(list.Value) != 1 || list.Value[0].TenantID != f.id.String() {
		t.Fatalf("%+v", list.Value)
	}
	if r := h.do("GET", "/api/subscriptions", admin, nil); r.Code != http.StatusBadRequest || r.ProblemCode(t) != "tenant-required" {
		t.Errorf("platform admin without tenantId: %d %s", r.Code, r.Body)
	}
}

func TestActivate_200_TrialBecomesActiveAndTheFirstPeriodIsInvoiced(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	s := h.subscribe(f, "standard")
	r := h.must(http.StatusOK, "POST", "/api/subscriptions/"+s.ID+"/activate", f.admin, nil, "If-Match", `"1"`)
	a := decode[subscriptionJSON](t, r.Body)
	if a.Status != "Active" || a.Version != 2 || r.Header.Get("ETag") != `"2"` || !a.PeriodEnd.Equal(addMonths(a.PeriodStart, 1)) {
		t.Fatalf("activated %+v", a)
	}
	invs := h.invoices(f)
	if len(invs) != 1 || invs[0].Status != "Issued" || invs[0].Total != (moneyJSON{4900, "EUR"}) || invs[0].Number != "INV-000001" || invs[0].Lines != nil {
		t.Fatalf("invoices %+v", invs)
	}
	one := decode[invoiceJSON](t, h.must(http.StatusOK, "GET", "/api/invoices/"+invs[0].ID, f.reader, nil).Body)
	if one.Lines == nil || len(*one.Lines) != 1 || (*one.Lines)[0].AmountMinor != 4900 || one.IssuedAt == nil {
		t.Errorf("invoice %+v", one)
	}
	if got := h.outboxTypes(f.id); !slices.Equal(got, []string{"SubscriptionActivated", "InvoiceIssued"}) {
		t.Errorf("events %v", got)
	}
}

func TestActivate_409_IllegalTransitionFromActive(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	s := h.subscribe(f, "free")
	r := h.do("POST", "/api/subscriptions/"+s.ID+"/activate", f.admin, nil)
	if r.Code != http.StatusConflict || r.ProblemCode(t) != "illegal-transition" {
		t.Fatalf("%d %s", r.Code, r.Body)
	}
}

func TestActivate_200_FromPastDueKeepsThePeriod(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	s := h.subscribe(f, "free")
	if _, err := h.svc.MarkPastDue(t.Context(), tenancy.Caller{Tenant: f.id}, f.id, SubscriptionID(s.ID)); err != nil {
		t.Fatal(err)
	}
	// Only a platform admin's override (a tenant pays the invoice: TestActivate_409_TenantCannotActivatePastDue).
	a := decode[subscriptionJSON](t, h.must(http.StatusOK, "POST", "/api/subscriptions/"+s.ID+"/activate?tenantId="+f.id.String(), h.platformAdmin(), nil).Body)
	if a.Status != "Active" || !a.PeriodStart.Equal(s.PeriodStart) {
		t.Fatalf("%+v", a)
	}
	// PastDue again, then cancelled: PastDue → Cancelled is legal too.
	if _, err := h.svc.MarkPastDue(t.Context(), tenancy.Caller{Tenant: f.id}, f.id, SubscriptionID(s.ID)); err != nil {
		t.Fatal(err)
	}
	h.must(http.StatusOK, "POST", "/api/subscriptions/"+s.ID+"/cancel", f.admin, nil)
}

// A tenant cannot move its PastDue subscription back to Active without paying: 409
// payment-required, the subscription stays PastDue; paying the open invoice reactivates it.
func TestActivate_409_TenantCannotActivatePastDue(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	s := h.subscribe(f, "standard")
	h.clock.move(s.PeriodEnd.Sub(h.clock.now()) + time.Minute) // the trial ends unpaid: PastDue
	h.runRenewals()
	if got := h.liveSubscription(f); got.Status != "PastDue" {
		t.Fatalf("after the trial: %+v", got)
	}
	r := h.do("POST", "/api/subscriptions/"+s.ID+"/activate", f.admin, nil)
	if r.Code != http.StatusConflict || r.ProblemCode(t) != "payment-required" {
		t.Fatalf("tenant activates PastDue: %d %s", r.Code, r.Body)
	}
	if got := h.liveSubscription(f); got.Status != "PastDue" {
		t.Fatalf("after the refused activate: %+v", got)
	}
	inv := h.invoices(f)[0]
	if r := h.invoiceAction(f, inv.ID, "pay"); r.Code != http.StatusOK {
		t.Fatalf("pay: %d %s", r.Code, r.Body)
	}
	if got := h.liveSubscription(f); got.Status != "Active" {
		t.Errorf("after paying: %+v", got)
	}
}

func TestCancel_200_ThenEveryTransitionIs409(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	s := h.subscribe(f, "standard")
	c := decode[subscriptionJSON](t, h.must(http.StatusOK, "POST", "/api/subscriptions/"+s.ID+"/cancel", f.admin, map[string]any{"reason": "too expensive"}).Body)
	if c.Status != "Cancelled" || c.CancelledAt == nil || c.CancelReason != "too expensive" {
		t.Fatalf("%+v", c)
	}
	for _, p := range []struct {
		action string
		body   any
	}{{"activate", nil}, {"cancel", nil}, {"change-edition", map[string]any{"editionCode": "enterprise"}}} {
		r := h.do("POST", "/api/subscriptions/"+s.ID+"/"+p.action, f.admin, p.body)
		if r.Code != http.StatusConflict || r.ProblemCode(t) != "illegal-transition" {
			t.Errorf("%s after cancel: %d %s", p.action, r.Code, r.Body)
		}
	}
	if _, err := h.svc.MarkPastDue(t.Context(), tenancy.Caller{Tenant: f.id}, f.id, SubscriptionID(s.ID)); err == nil {
		t.Error("Cancelled → PastDue accepted")
	}
	// A cancelled tenant may subscribe again; the entitlements follow the new subscription.
	h.subscribe(f, "free")
	if got := h.outboxTypes(f.id); !slices.Equal(got, []string{"SubscriptionCancelled", "SubscriptionActivated"}) {
		t.Errorf("events %v", got)
	}
}

func TestTrialTransitions_409_TrialCannotBecomePastDue(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	s := h.subscribe(f, "standard")
	if _, err := h.svc.MarkPastDue(t.Context(), tenancy.Caller{Tenant: f.id}, f.id, SubscriptionID(s.ID)); MapError(err) == nil || MapError(err).Status != http.StatusConflict {
		t.Fatalf("Trial → PastDue: %v", err)
	}
}

func TestTransition_412_StaleIfMatch(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	s := h.subscribe(f, "standard")
	if r := h.do("POST", "/api/subscriptions/"+s.ID+"/activate", f.admin, nil, "If-Match", `"7"`); r.Code != http.StatusPreconditionFailed {
		t.Fatalf("%d %s", r.Code, r.Body)
	}
}

func TestTransition_404_UnknownOrMalformedSubscription(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	for _, id := range []string{ids.New(), "not-an-id"} {
		r := h.do("POST", "/api/subscriptions/"+id+"/cancel", f.admin, nil)
		if r.Code != http.StatusNotFound || r.ProblemCode(t) != "subscription-not-found" {
			t.Errorf("%s: %d %s", id, r.Code, r.Body)
		}
	}
}

func TestChangeEdition_200_UpgradeAppliesNowAndInvoicesTheProratedDifference(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	s := h.subscribe(f, "standard")
	a := decode[subscriptionJSON](t, h.must(http.StatusOK, "POST", "/api/subscriptions/"+s.ID+"/activate", f.admin, nil).Body)
	h.clock.move(10 * 24 * time.Hour)
	c := decode[subscriptionJSON](t, h.must(http.StatusOK, "POST", "/api/subscriptions/"+s.ID+"/change-edition", f.admin,
		map[string]any{"editionCode": "enterprise"}).Body)
	if c.EditionCode != "enterprise" || c.PendingEdition != "" || !c.PeriodEnd.Equal(a.PeriodEnd) {
		t.Fatalf("upgraded %+v", c)
	}
	invs := h.invoices(f)
	if len(invs) != 2 {
		t.Fatalf("invoices %+v", invs)
	}
	up := invs[1]
	want := Prorate(4900, 49900, a.PeriodStart, a.PeriodEnd, up.PeriodStart)
	// 45000 for the whole period; about 10 of its 28–31 days are gone.
	if up.Total.AmountMinor != want || want < 45000*17/31 || want > 45000*21/28 || !up.PeriodEnd.Equal(a.PeriodEnd) {
		t.Errorf("proration invoice %+v, want %d", up, want)
	}
	g := decode[entitlementsJSON](t, h.must(http.StatusOK, "GET", "/api/entitlements", f.reader, nil).Body)
	if g.EditionCode != "enterprise" || g.MaxUsers != 0 {
		t.Errorf("entitlements after the upgrade %+v", g)
	}
	if got := h.outboxTypes(f.id); !slices.Equal(got, []string{"SubscriptionActivated", "InvoiceIssued", "SubscriptionEditionChanged", "InvoiceIssued"}) {
		t.Errorf("events %v", got)
	}
}

func TestChangeEdition_200_UpgradeDuringTheTrialCostsNothing(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	s := h.subscribe(f, "standard")
	c := decode[subscriptionJSON](t, h.must(http.StatusOK, "POST", "/api/subscriptions/"+s.ID+"/change-edition", f.admin,
		map[string]any{"editionCode": "enterprise"}).Body)
	if c.EditionCode != "enterprise" || c.Status != "Trial" || len(h.invoices(f)) != 0 {
		t.Fatalf("%+v", c)
	}
}

func TestChangeEdition_200_DowngradeWaitsForThePeriodEnd(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	s := h.subscribe(f, "enterprise")
	a := decode[subscriptionJSON](t, h.must(http.StatusOK, "POST", "/api/subscriptions/"+s.ID+"/activate", f.admin, nil).Body)
	c := decode[subscriptionJSON](t, h.must(http.StatusOK, "POST", "/api/subscriptions/"+s.ID+"/change-edition", f.admin,
		map[string]any{"editionCode": "standard"}).Body)
	if c.EditionCode != "enterprise" || c.PendingEdition != "standard" {
		t.Fatalf("downgrade %+v", c)
	}
	if len(h.invoices(f)) != 1 {
		t.Error("a downgrade was invoiced")
	}
	if g := decode[entitlementsJSON](t, h.must(http.StatusOK, "GET", "/api/entitlements", f.reader, nil).Body); g.EditionCode != "enterprise" {
		t.Errorf("before the period end: %+v", g)
	}
	// Past the period end: the cached grants switch, and the listed subscription has rolled.
	h.clock.move(a.PeriodEnd.Sub(a.PeriodStart) + time.Minute)
	if g := decode[entitlementsJSON](t, h.must(http.StatusOK, "GET", "/api/entitlements", f.reader, nil).Body); g.EditionCode != "standard" || g.MaxUsers != 50 {
		t.Errorf("after the period end: %+v", g)
	}
	list := decode[struct{ Value []subscriptionJSON }](t, h.must(http.StatusOK, "GET", "/api/subscriptions", f.reader, nil).Body)
	if l := list.Value[0]; l.EditionCode != "standard" || l.PendingEdition != "" || !l.PeriodStart.Equal(a.PeriodEnd) {
		t.Errorf("rolled %+v", l)
	}
}

// An edition of equal rank is a lateral change: pending until the period end like a downgrade,
// not invoiced, even when it is dearer.
func TestChangeEdition_200_EqualRankIsLateralAtThePeriodEnd(t *testing.T) {
	h := newHarness(t)
	b := editionBody()
	b["trialDays"], b["rank"] = 0, 10 // standard's rank
	setPrice(b, 9900)                 // dearer than standard's 4900
	lateral := freshCode()
	h.must(http.StatusCreated, "PUT", "/api/editions/"+lateral, h.platformAdmin(), b)
	f := h.tenant()
	s := h.subscribe(f, "standard")
	a := decode[subscriptionJSON](t, h.must(http.StatusOK, "POST", "/api/subscriptions/"+s.ID+"/activate", f.admin, nil).Body)
	c := decode[subscriptionJSON](t, h.must(http.StatusOK, "POST", "/api/subscriptions/"+s.ID+"/change-edition", f.admin,
		map[string]any{"editionCode": lateral}).Body)
	if c.EditionCode != "standard" || c.PendingEdition != lateral {
		t.Fatalf("lateral %+v", c)
	}
	if n := len(h.invoices(f)); n != 1 {
		t.Errorf("%d invoices: a lateral change was invoiced", n)
	}
	h.clock.move(a.PeriodEnd.Sub(a.PeriodStart) + time.Minute)
	if g := decode[entitlementsJSON](t, h.must(http.StatusOK, "GET", "/api/entitlements", f.reader, nil).Body); g.EditionCode != lateral {
		t.Errorf("after the period end: %+v", g)
	}
}

// change-edition on a Cancelled subscription names the action refused, not a state change.
func TestChangeEdition_409_CancelledDetailNamesTheAction(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	s := h.subscribe(f, "standard")
	h.must(http.StatusOK, "POST", "/api/subscriptions/"+s.ID+"/cancel", f.admin, nil)
	r := h.do("POST", "/api/subscriptions/"+s.ID+"/change-edition", f.admin, map[string]any{"editionCode": "enterprise"})
	p := decode[struct{ Code, Detail string }](t, r.Body)
	if r.Code != http.StatusConflict || p.Code != "illegal-transition" || !strings.Contains(p.Detail, "cannot change edition") ||
		strings.Contains(p.Detail, "become") {
		t.Fatalf("%d %s", r.Code, r.Body)
	}
}

func TestChangeEdition_200_TheCurrentEditionDropsAPendingDowngrade(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	s := h.subscribe(f, "enterprise")
	h.must(http.StatusOK, "POST", "/api/subscriptions/"+s.ID+"/change-edition", f.admin, map[string]any{"editionCode": "free"})
	c := decode[subscriptionJSON](t, h.must(http.StatusOK, "POST", "/api/subscriptions/"+s.ID+"/change-edition", f.admin,
		map[string]any{"editionCode": "enterprise"}).Body)
	if c.PendingEdition != "" || c.EditionCode != "enterprise" {
		t.Fatalf("%+v", c)
	}
}

func TestChangeEdition_409_SameEdition(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	s := h.subscribe(f, "standard")
	r := h.do("POST", "/api/subscriptions/"+s.ID+"/change-edition", f.admin, map[string]any{"editionCode": "standard"})
	if r.Code != http.StatusConflict || r.ProblemCode(t) != "same-edition" {
		t.Fatalf("%d %s", r.Code, r.Body)
	}
}

func TestChangeEdition_404_UnknownEdition(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	s := h.subscribe(f, "standard")
	r := h.do("POST", "/api/subscriptions/"+s.ID+"/change-edition", f.admin, map[string]any{"editionCode": "platinum"})
	if r.Code != http.StatusNotFound || r.ProblemCode(t) != "edition-not-found" {
		t.Fatalf("%d %s", r.Code, r.Body)
	}
}

func TestEntitlements_200_TheSubscriptionsEdition(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	h.subscribe(f, "standard")
	g := decode[entitlementsJSON](t, h.must(http.StatusOK, "GET", "/api/entitlements", f.reader, nil).Body)
	if g.TenantID != f.id.String() || g.EditionCode != "standard" || g.MaxUsers != 50 || len(g.Limits) != 2 ||
		g.Limits[0] != (limitJSON{"", 200, 400, 1, false}) || g.Limits[1] != (limitJSON{"/api/audit-entries", 50, 100, 1, false}) {
		t.Fatalf("%+v", g)
	}
}

func TestEntitlements_404_NoSubscription(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	r := h.do("GET", "/api/entitlements", f.reader, nil)
	if r.Code != http.StatusNotFound || r.ProblemCode(t) != "no-subscription" {
		t.Fatalf("%d %s", r.Code, r.Body)
	}
}

func TestInvoices_200_EmptyListIsAnArray(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	r := h.must(http.StatusOK, "GET", "/api/invoices", f.reader, nil)
	if v, ok := r.JSON(t)["value"].([]any); !ok || len(v) != 0 {
		t.Fatalf("%s", r.Body)
	}
}

func TestInvoices_200_PagesWithACursor(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	s := h.subscribe(f, "free")
	h.must(http.StatusOK, "POST", "/api/subscriptions/"+s.ID+"/change-edition", f.admin, map[string]any{"editionCode": "standard"})
	h.must(http.StatusOK, "POST", "/api/subscriptions/"+s.ID+"/change-edition", f.admin, map[string]any{"editionCode": "enterprise"})
	r := h.must(http.StatusOK, "GET", "/api/invoices?limit=1", f.reader, nil)
	page := decode[struct {
		Value    []invoiceJSON
		NextLink string
	}](t, r.Body)
	if len(page.Value) != 1 || page.NextLink == "" {
		t.Fatalf("%s", r.Body)
	}
	next := decode[struct {
		Value    []invoiceJSON
		NextLink string
	}](t, h.must(http.StatusOK, "GET", page.NextLink, f.reader, nil).Body)
	if len(next.Value) != 1 || next.Value[0].ID == page.Value[0].ID || next.NextLink != "" {
		t.Fatalf("second page %+v", next)
	}
}

func TestInvoice_404_UnknownOrMalformed(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	for _, id := range []string{ids.New(), "x"} {
		if r := h.do("GET", "/api/invoices/"+id, f.reader, nil); r.Code != http.StatusNotFound || r.ProblemCode(t) != "invoice-not-found" {
			t.Errorf("%s: %d %s", id, r.Code, r.Body)
		}
	}
}

func TestRoutes_401_WithoutAToken(t *testing.T) {
	h := newHarness(t)
	for _, p := range []string{"/api/editions", "/api/subscriptions", "/api/entitlements", "/api/invoices"} {
		if r := h.do("GET", p, "", nil); r.Code != http.StatusUnauthorized {
			t.Errorf("%s: %d", p, r.Code)
		}
	}
}

func TestSubscribe_201_IdempotencyKeyReplaysTheFirstAnswer(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	body := map[string]any{"editionCode": "standard"}
	first := h.must(http.StatusCreated, "POST", "/api/subscriptions", f.admin, body, "Idempotency-Key", "sub-1")
	again := h.must(http.StatusCreated, "POST", "/api/subscriptions", f.admin, body, "Idempotency-Key", "sub-1")
	if string(first.Body) != string(again.Body) {
		t.Fatalf("replay %s, first %s", again.Body, first.Body)
	}
	if r := h.do("POST", "/api/subscriptions", f.admin, map[string]any{"editionCode": "free"}, "Idempotency-Key", "sub-1"); r.Code != http.StatusUnprocessableEntity {
		t.Errorf("reused key, other body: %d %s", r.Code, r.Body)
	}
}

// The Source other services ask (kit.EntitlementsProvider): a change invalidates the cached grants
// after its commit, so the next question sees the new edition; unknown tenants and editions are
// the contract's sentinels.
func TestSource_ChangeInvalidatesTheCachedGrants(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	src := h.api.Entitlements()
	if _, err := src.Of(t.Context(), f.id); !errors.Is(err, entitlements.ErrUnknownTenant) {
		t.Fatalf("no subscription: %v", err)
	}
	s := h.subscribe(f, "standard")
	if g, err := src.Of(t.Context(), f.id); err != nil || g.Edition != "standard" || g.MaxUsers != 50 {
		t.Fatalf("before: %+v %v", g, err)
	}
	h.must(http.StatusOK, "POST", "/api/subscriptions/"+s.ID+"/change-edition", f.admin, map[string]any{"editionCode": "enterprise"})
	if g, err := src.Of(t.Context(), f.id); err != nil || g.Edition != "enterprise" || g.Retention["audit"] != 3650*24*time.Hour {
		t.Fatalf("after the upgrade: %+v %v", g, err)
	}
	h.must(http.StatusOK, "POST", "/api/subscriptions/"+s.ID+"/cancel", f.admin, nil)
	if _, err := src.Of(t.Context(), f.id); !errors.Is(err, entitlements.ErrUnknownTenant) {
		t.Fatalf("after the cancellation: %v", err)
	}
	if e, err := src.Edition(t.Context(), "free"); err != nil || e.Edition != "free" || len(e.Limits) != 2 || e.Limits[0].Period != time.Second || e.Limits[0].Rate != 20 || e.Limits[0].Burst != 40 {
		t.Errorf("edition free: %+v %v", e, err)
	}
	if _, err := src.Edition(t.Context(), "platinum"); !errors.Is(err, entitlements.ErrUnknownEdition) {
		t.Errorf("unknown edition: %v", err)
	}
}
