package billing

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"spine/shared/sqlstore"
	"spine/shared/testenv"
)

// Tenant A's token on every billing route with tenant B's ids: 404 (B's rows do not exist for
// A), and naming B with ?tenantId=: 403 tenant-mismatch. B's data is unchanged afterwards.
func TestIsolation_TenantTokenOnEveryRouteWithAnotherTenantsIDs(t *testing.T) {
	h := newHarness(t)
	a, b := h.tenant(), h.tenant()
	h.subscribe(a, "free")
	bs := h.subscribe(b, "standard")
	h.must(http.StatusOK, "POST", "/api/subscriptions/"+bs.ID+"/activate", b.admin, nil)
	bInv := h.invoices(b)[0]

	type route struct {
		method, path string
		body         any
		notFound     string
	}
	routes := []route{
		{"POST", "/api/subscriptions/" + bs.ID + "/activate", nil, "subscription-not-found"},
		{"POST", "/api/subscriptions/" + bs.ID + "/cancel", nil, "subscription-not-found"},
		{"POST", "/api/subscriptions/" + bs.ID + "/change-edition", map[string]any{"editionCode": "enterprise"}, "subscription-not-found"},
		{"GET", "/api/invoices/" + bInv.ID, nil, "invoice-not-found"},
	}
	for _, rt := range routes {
		r := h.do(rt.method, rt.path, a.admin, rt.body)
		if r.Code != http.StatusNotFound || r.ProblemCode(t) != rt.notFound {
			t.Errorf("A's token, %s %s: %d %s, want 404 %s", rt.method, rt.path, r.Code, r.Body, rt.notFound)
		}
	}
	all := append(routes, []route{
		{"GET", "/api/subscriptions", nil, ""},
		{"POST", "/api/subscriptions", map[string]any{"editionCode": "free"}, ""},
		{"GET", "/api/entitlements", nil, ""},
		{"GET", "/api/invoices", nil, ""},
		{"GET", "/api/usage-records", nil, ""},
	}...)
	for _, rt := range all {
		sep := "?"
		if strings.Contains(rt.path, "?") {
			sep = "&"
		}
		r := h.do(rt.method, rt.path+sep+"tenantId="+b.id.String(), a.admin, rt.body)
		if r.Code != http.StatusForbidden || r.ProblemCode(t) != "tenant-mismatch" {
			t.Errorf("A's token naming B, %s %s: %d %s", rt.method, rt.path, r.Code, r.Body)
		}
	}
	// A's lists never show B's rows.
	for _, inv := range h.invoices(a) {
		if inv.ID == bInv.ID {
			t.Error("A lists B's invoice")
		}
	}
	// Usage is recorded by metering clients only: A's token cannot record usage for B, naming B
	// in the body or the query, even holding billing.usage.write.
	aMeter := h.tokens.Mint(t, a.id.String(), false, ScopeManage, ScopeUsageWrite)
	for _, tok := range []string{a.admin, aMeter} {
		for _, path := range []string{"/api/usage-records", "/api/usage-records?tenantId=" + b.id.String()} {
			if r := h.do("POST", path, tok, map[string]any{"usageId": newID(), "metric": "api.calls", "quantity": 1,
				"tenantId": b.id.String()}); r.Code != http.StatusForbidden {
				t.Errorf("A's token recording B's usage (%s): %d %s", path, r.Code, r.Body)
			}
		}
	}
	bUsage := decode[usagePageJSON](t, h.must(http.StatusOK, "GET", "/api/usage-records", b.reader, nil).Body)
	if len(bUsage.Value) != 0 {
		t.Errorf("B has usage %+v", bUsage.Value)
	}
	// B is untouched.
	list := decode[struct{ Value []subscriptionJSON }](t, h.must(http.StatusOK, "GET", "/api/subscriptions", b.reader, nil).Body)
	if len(list.Value) != 1 || list.Value[0].Status != "Active" || list.Value[0].EditionCode != "standard" || list.Value[0].Version != 2 {
		t.Errorf("B's subscription changed: %+v", list.Value)
	}
	if n := len(h.invoices(b)); n != 1 {
		t.Errorf("B has %d invoices", n)
	}
}

// Row-level security: the runtime role, in one tenant's scope, sees only that tenant's rows even
// with no tenant filter at all.
func TestRLS_HidesOtherTenantsRowsFromUnfilteredQueries(t *testing.T) {
	h := newHarness(t)
	a, b := h.tenant(), h.tenant()
	for _, f := range []tenantFixture{a, b} {
		s := h.subscribe(f, "standard")
		h.must(http.StatusOK, "POST", "/api/subscriptions/"+s.ID+"/activate", f.admin, nil)
		if _, _, err := h.svc.RecordUsage(t.Context(), Caller{Platform: true}, f.id, UsageInput{ID: newID(), Metric: "api.requests", Quantity: 1}); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	for _, table := range []string{"subscriptions", "usage_records", "invoices", "invoice_lines"} {
		var got []string
		if err := h.rt.InReadTx(ctx, sqlstore.TenantScope(a.id), func(tx *sqlstore.Tx) error {
			var err error
			got, err = testenv.QueryStrings(ctx, tx, `SELECT DISTINCT tenant_id::text FROM `+table) // no WHERE on purpose
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0] != a.id.String() {
			t.Errorf("%s unfiltered in A's scope: %v", table, got)
		}
	}
}
