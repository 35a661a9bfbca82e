package billing

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"spine/shared/testenv/apitest"
)

func TestUsage_201_ThenSameContent200_WithTheStoredRecord(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	s := h.subscribe(f, "free")
	id := newID()
	body := map[string]any{"usageId": id, "metric": "api.calls", "quantity": 42}
	first := decode[usageJSON](t, h.must(http.StatusCreated, "POST", usagePath(f), h.meter(), body).Body)
	if first.UsageID != id || first.TenantID != f.id.String() || first.Quantity != 42 || !first.PeriodStart.Equal(s.PeriodStart) || first.At.IsZero() {
		t.Fatalf("%+v", first)
	}
	h.clock.move(time.Minute) // a retry later without "at" matches the stored time
	again := decode[usageJSON](t, h.must(http.StatusOK, "POST", usagePath(f), h.meter(), body).Body)
	if again != first {
		t.Errorf("retry %+v, first %+v", again, first)
	}
	body["at"] = first.At.Format(time.RFC3339Nano)
	h.must(http.StatusOK, "POST", usagePath(f), h.meter(), body)
}

func TestUsage_409_UsageIDConflict(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	h.subscribe(f, "free")
	id := newID()
	at := h.clock.now().UTC().Truncate(time.Second)
	h.must(http.StatusCreated, "POST", usagePath(f), h.meter(), map[string]any{"usageId": id, "metric": "api.calls", "quantity": 1, "at": at})
	for _, b := range []map[string]any{
		{"usageId": id, "metric": "api.calls", "quantity": 2},
		{"usageId": id, "metric": "storage.gb", "quantity": 1},
		{"usageId": id, "metric": "api.calls", "quantity": 1, "at": at.Add(time.Second)},
	} {
		if r := h.do("POST", usagePath(f), h.meter(), b); r.Code != http.StatusConflict || r.ProblemCode(t) != "usage-id-conflict" {
			t.Errorf("%v: %d %s", b, r.Code, r.Body)
		}
	}
}

func TestUsage_409_NoSubscription(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	r := h.do("POST", usagePath(f), h.meter(), map[string]any{"usageId": newID(), "metric": "api.calls", "quantity": 1})
	if r.Code != http.StatusConflict || r.ProblemCode(t) != "no-subscription" {
		t.Fatalf("%d %s", r.Code, r.Body)
	}
	s := h.subscribe(f, "free")
	h.must(http.StatusOK, "POST", "/api/subscriptions/"+s.ID+"/cancel", f.admin, nil)
	r = h.do("POST", usagePath(f), h.meter(), map[string]any{"usageId": newID(), "metric": "api.calls", "quantity": 1})
	if r.Code != http.StatusConflict || r.ProblemCode(t) != "no-subscription" {
		t.Fatalf("after cancel: %d %s", r.Code, r.Body)
	}
}

func TestUsage_400_InvalidInput_QuantityIsAnIntegerLiteral(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	h.subscribe(f, "free")
	for _, c := range []struct {
		body map[string]any
		code string
	}{
		{map[string]any{"usageId": "nope", "metric": "api.calls", "quantity": 1}, "invalid-input"},
		{map[string]any{"usageId": newID(), "metric": "API Calls", "quantity": 1}, "invalid-input"},
		{map[string]any{"usageId": newID(), "metric": "api.calls", "quantity": -1}, "invalid-input"},
		{map[string]any{"usageId": newID(), "metric": "api.calls"}, "invalid-input"},
		{map[string]any{"usageId": newID(), "metric": "api.calls", "quantity": 1.5}, "invalid-input"},
		{map[string]any{"usageId": newID(), "metric": "api.calls", "quantity": nil}, "invalid-input"},
		{map[string]any{"usageId": newID(), "metric": "api.calls", "quantity": "1"}, "invalid-input"},
		{map[string]any{"usageId": newID(), "metric": "api.calls", "quantity": json.Number("1e2")}, "invalid-input"},
		{map[string]any{"usageId": newID(), "metric": "api.calls", "quantity": json.Number("1.0")}, "invalid-input"},
		{map[string]any{"usageId": newID(), "metric": "api.calls", "quantity": json.Number("-0")}, "invalid-input"},
		{map[string]any{"usageId": newID(), "metric": "api.calls", "quantity": json.Number("99999999999999999999")}, "invalid-input"},
		{map[string]any{"usageId": newID(), "metric": "api.calls", "quantity": 1, "at": "yesterday"}, "invalid-time"},
	} {
		if r := h.do("POST", usagePath(f), h.meter(), c.body); r.Code != http.StatusBadRequest || r.ProblemCode(t) != c.code {
			t.Errorf("%v: %d %s, want 400 %s", c.body, r.Code, r.Body, c.code)
		}
	}
}

// The billed tenant does not report its own usage: a tenant's token is 403 whatever it holds —
// tenant.read, tenant.manage, or even billing.usage.write (platform-admin-required) — and records
// nothing; the tenant still reads its usage.
func TestUsage_403_TenantTokensCannotRecord(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	h.subscribe(f, "free")
	withScope := h.tokens.Mint(t, f.id.String(), false, ScopeRead, ScopeManage, ScopeUsageWrite)
	for name, tok := range map[string]string{"reader": f.reader, "admin": f.admin, "usage scope": withScope} {
		r := h.do("POST", "/api/usage-records", tok, map[string]any{"usageId": newID(), "metric": "api.calls", "quantity": 1})
		if r.Code != http.StatusForbidden {
			t.Errorf("%s: %d %s", name, r.Code, r.Body)
		}
		if name == "usage scope" && r.ProblemCode(t) != "platform-admin-required" {
			t.Errorf("%s: %s", name, r.Body)
		}
	}
	if p := decode[usagePageJSON](t, h.must(http.StatusOK, "GET", "/api/usage-records", f.reader, nil).Body); len(p.Value) != 0 {
		t.Errorf("usage recorded: %+v", p.Value)
	}
}

func TestUsage_PlatformAdminNamesTheTenant(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	h.subscribe(f, "free")
	admin := h.platformAdmin()
	r := h.do("POST", "/api/usage-records", admin, map[string]any{"usageId": newID(), "metric": "api.calls", "quantity": 1})
	if r.Code != http.StatusBadRequest || r.ProblemCode(t) != "tenant-required" {
		t.Fatalf("without tenantId: %d %s", r.Code, r.Body)
	}
	u := decode[usageJSON](t, h.must(http.StatusCreated, "POST", "/api/usage-records", admin,
		map[string]any{"usageId": newID(), "metric": "api.calls", "quantity": 5, "tenantId": f.id.String()}).Body)
	if u.TenantID != f.id.String() {
		t.Errorf("%+v", u)
	}
	p := decode[usagePageJSON](t, h.must(http.StatusOK, "GET", "/api/usage-records?tenantId="+f.id.String(), admin, nil).Body)
	if len(p.Value) != 1 || p.Totals["api.calls"] != 5 {
		t.Errorf("%+v", p)
	}
}

func TestUsageList_200_FiltersPagesAndTotals(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	h.subscribe(f, "free")
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for i, c := range []struct {
		metric string
		q      int64
	}{{"api.calls", 10}, {"api.calls", 20}, {"storage.gb", 3}, {"api.calls", 30}} {
		h.must(http.StatusCreated, "POST", usagePath(f), h.meter(), map[string]any{"usageId": newID(), "metric": c.metric,
			"quantity": c.q, "at": base.Add(time.Duration(i) * time.Hour)})
	}
	all := decode[usagePageJSON](t, h.must(http.StatusOK, "GET", "/api/usage-records", f.reader, nil).Body)
	if len(all.Value) != 4 || all.Totals["api.calls"] != 60 || all.Totals["storage.gb"] != 3 {
		t.Fatalf("%+v", all)
	}
	calls := decode[usagePageJSON](t, h.must(http.StatusOK, "GET", "/api/usage-records?metric=api.calls&from="+
		base.Add(time.Hour).Format(time.RFC3339)+"&to="+base.Add(3*time.Hour).Format(time.RFC3339), f.reader, nil).Body)
	if len(calls.Value) != 1 || calls.Value[0].Quantity != 20 || len(calls.Totals) != 1 || calls.Totals["api.calls"] != 20 {
		t.Errorf("filtered %+v", calls)
	}
	// Pages of 3 and 1; the totals cover every page.
	p1 := decode[usagePageJSON](t, h.must(http.StatusOK, "GET", "/api/usage-records?limit=3", f.reader, nil).Body)
	if len(p1.Value) != 3 || p1.NextLink == "" || p1.Totals["api.calls"] != 60 {
		t.Fatalf("page 1 %+v", p1)
	}
	p2 := decode[usagePageJSON](t, h.must(http.StatusOK, "GET", p1.NextLink, f.reader, nil).Body)
	if len(p2.Value) != 1 || p2.NextLink != "" {
		t.Errorf("page 2 %+v", p2)
	}
	if r := h.do("GET", "/api/usage-records?from=nope", f.reader, nil); r.Code != http.StatusBadRequest || r.ProblemCode(t) != "invalid-time" {
		t.Errorf("bad from: %d %s", r.Code, r.Body)
	}
}

// usageEdition creates a free edition without a trial of the given rank pricing api.calls at unit
// minor units, and returns its code.
func (h *harness) usageEdition(rank int, unit int64) string {
	b := editionBody()
	b["trialDays"], b["rank"] = 0, rank
	setPrice(b, 0)
	b["entitlements"].(map[string]any)["usagePrices"] = map[string]any{"api.calls": unit}
	code := freshCode()
	h.must(http.StatusCreated, "PUT", "/api/editions/"+code, h.platformAdmin(), b)
	return code
}

func TestUsage_400_QuantityBeyond2p53(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	h.subscribe(f, "free")
	r := h.do("POST", usagePath(f), h.meter(), map[string]any{"usageId": newID(), "metric": "api.calls", "quantity": int64(1 << 53)})
	if r.Code != http.StatusBadRequest || r.ProblemCode(t) != "invalid-input" {
		t.Fatalf("%d %s", r.Code, r.Body)
	}
}

// Usage that would take the period's invoice beyond 2^53 − 1 is refused when recorded, not
// overflowed at the renewal; up to the bound it is recorded.
func TestUsage_409_TotalTooLargeBeyond2p53(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	h.subscribe(f, h.usageEdition(5, 1_000_000))
	post := func(metric string, q int64) apitest.Response {
		return h.do("POST", usagePath(f), h.meter(), map[string]any{"usageId": newID(), "metric": metric, "quantity": q})
	}
	// 9,007,199,254 × 1,000,000 = 9,007,199,254,000,000 ≤ 2^53 − 1; one more unit is beyond.
	if r := post("api.calls", 9_007_199_254); r.Code != http.StatusCreated {
		t.Fatalf("at the bound: %d %s", r.Code, r.Body)
	}
	if r := post("api.calls", 1); r.Code != http.StatusConflict || r.ProblemCode(t) != "total-too-large" {
		t.Fatalf("beyond: %d %s", r.Code, r.Body)
	}
	// An unpriced metric's quantity is bounded too (its sum is shown in GET /api/usage-records).
	if r := post("storage.gb", 1<<53-1); r.Code != http.StatusCreated {
		t.Fatalf("unpriced at the bound: %d %s", r.Code, r.Body)
	}
	if r := post("storage.gb", 1); r.Code != http.StatusConflict || r.ProblemCode(t) != "total-too-large" {
		t.Fatalf("unpriced beyond: %d %s", r.Code, r.Body)
	}
}

// An upgrade whose usage prices would take the period's invoice beyond 2^53 − 1 is refused.
func TestChangeEdition_409_UpgradeWouldMakeTheInvoiceTotalTooLarge(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	s := h.subscribe(f, h.usageEdition(5, 1))
	dear := h.usageEdition(6, 1_000_000)
	h.must(http.StatusCreated, "POST", usagePath(f), h.meter(), map[string]any{"usageId": newID(), "metric": "api.calls", "quantity": int64(10_000_000_000)})
	r := h.do("POST", "/api/subscriptions/"+s.ID+"/change-edition", f.admin, map[string]any{"editionCode": dear})
	if r.Code != http.StatusConflict || r.ProblemCode(t) != "total-too-large" {
		t.Fatalf("%d %s", r.Code, r.Body)
	}
}

// A body tenantId and a ?tenantId= naming two different tenants is 400 tenant-conflict and
// records nothing for either; the same tenant in both is accepted.
func TestUsage_400_TenantConflictWhenBodyAndQueryNameDifferentTenants(t *testing.T) {
	h := newHarness(t)
	a, b := h.tenant(), h.tenant()
	h.subscribe(a, "free")
	h.subscribe(b, "free")
	admin := h.platformAdmin()
	body := map[string]any{"usageId": newID(), "metric": "api.calls", "quantity": 1, "tenantId": b.id.String()}
	r := h.do("POST", usagePath(a), admin, body)
	if r.Code != http.StatusBadRequest || r.ProblemCode(t) != "tenant-conflict" {
		t.Fatalf("%d %s", r.Code, r.Body)
	}
	for _, f := range []tenantFixture{a, b} {
		if p := decode[usagePageJSON](t, h.must(http.StatusOK, "GET", "/api/usage-records", f.reader, nil).Body); len(p.Value) != 0 {
			t.Errorf("usage recorded for %s: %+v", f.id, p.Value)
		}
	}
	u := decode[usageJSON](t, h.must(http.StatusCreated, "POST", usagePath(b), admin, body).Body)
	if u.TenantID != b.id.String() {
		t.Errorf("%+v", u)
	}
}

// An "at" that is sent is used as sent: the zero time, a time before 2000 or more than a day
// ahead is 400 invalid-time (never replaced with now), also on a replay of the same usageId;
// null is absent (now); a day ahead is accepted.
func TestUsage_400_InvalidTimeForZeroAncientOrFarFutureAt(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	h.subscribe(f, "free")
	now := h.clock.now().UTC()
	id := newID()
	for _, at := range []string{"0001-01-01T00:00:00Z", "1999-12-31T23:59:59Z", now.Add(25 * time.Hour).Format(time.RFC3339Nano), ""} {
		for range 2 { // a replay is refused the same way
			r := h.do("POST", usagePath(f), h.meter(), map[string]any{"usageId": id, "metric": "api.calls", "quantity": 1, "at": at})
			if r.Code != http.StatusBadRequest || r.ProblemCode(t) != "invalid-time" {
				t.Fatalf("at %q: %d %s", at, r.Code, r.Body)
			}
		}
	}
	if p := decode[usagePageJSON](t, h.must(http.StatusOK, "GET", "/api/usage-records", f.reader, nil).Body); len(p.Value) != 0 {
		t.Fatalf("recorded: %+v", p.Value)
	}
	ahead := now.Add(23 * time.Hour).Truncate(time.Second)
	u := decode[usageJSON](t, h.must(http.StatusCreated, "POST", usagePath(f), h.meter(),
		map[string]any{"usageId": id, "metric": "api.calls", "quantity": 1, "at": ahead.Format(time.RFC3339)}).Body)
	if !u.At.Equal(ahead) {
		t.Errorf("at %v, want %v", u.At, ahead)
	}
	u = decode[usageJSON](t, h.must(http.StatusCreated, "POST", usagePath(f), h.meter(),
		map[string]any{"usageId": newID(), "metric": "api.calls", "quantity": 1, "at": nil}).Body)
	if u.At.Before(now) {
		t.Errorf("null at: %v, want now (%v)", u.At, now)
	}
}
