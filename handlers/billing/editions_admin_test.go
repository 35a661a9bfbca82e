package billing

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"spine/shared/cache"
	"spine/shared/entitlements"
	"spine/shared/testenv"
)

// editionBody is a valid PUT /api/editions/{code} body; tests change one field at a time.
func editionBody() map[string]any {
	return map[string]any{
		"name": "Team", "price": map[string]any{"amountMinor": 1900, "currency": "EUR"}, "periodMonths": 1, "trialDays": 7, "rank": 15,
		"entitlements": map[string]any{
			"maxUsers": 20,
			"limits": []any{
				map[string]any{"route": "", "rate": 100, "burst": 200, "periodSeconds": 1, "shadow": false},
				map[string]any{"route": "/api/tenants/:id", "rate": 10, "burst": 20, "periodSeconds": 1, "shadow": true},
			},
			"featureDefaults": map[string]any{"beta-ui": true},
			"retentionDays":   map[string]any{"audit": 400},
			"usagePrices":     map[string]any{"api.calls": 3},
		},
		"public": true, // offered to tenants (TestEditions_PrivateEditions… leave it out)
	}
}

// setPrice sets the body's price amount (any JSON value, to test refusals).
func setPrice(b map[string]any, amount any) { b["price"].(map[string]any)["amountMinor"] = amount }

func freshCode() string { return "ed-" + newID()[24:] }

func TestPutEdition_201_CreatesThenGetShowsIt(t *testing.T) {
	h := newHarness(t)
	code := freshCode()
	r := h.must(http.StatusCreated, "PUT", "/api/editions/"+code, h.platformAdmin(), editionBody())
	if r.Header.Get("ETag") != `"1"` || r.Header.Get("Location") != "/api/editions/"+code {
		t.Errorf("headers %v", r.Header)
	}
	e := decode[editionJSON](t, r.Body)
	if e.Code != code || e.Price != (moneyJSON{1900, "EUR"}) || e.Rank != 15 || len(e.Entitlements.Limits) != 2 ||
		!e.Entitlements.Limits[1].Shadow || e.Entitlements.UsagePrices["api.calls"] != 3 {
		t.Fatalf("%+v", e)
	}
	f := h.tenant()
	got := decode[editionJSON](t, h.must(http.StatusOK, "GET", "/api/editions/"+code, f.reader, nil).Body)
	if got.Name != "Team" || got.Entitlements.MaxUsers != 20 || got.Entitlements.RetentionDays["audit"] != 400 {
		t.Errorf("GET %+v", got)
	}
	// The Source states the shadow flag the rate limiter honours.
	g, err := h.svc.Source().Edition(t.Context(), code)
	if err != nil || len(g.Limits) != 2 || !g.Limits[1].Shadow || g.Limits[0].Shadow || g.Limits[1].Route != "/api/tenants/:id" ||
		g.Limits[1].Period != time.Second {
		t.Errorf("source %+v %v", g, err)
	}
}

func TestPutEdition_200_ReplacesAndBumpsTheVersion(t *testing.T) {
	h := newHarness(t)
	code, admin := freshCode(), h.platformAdmin()
	h.must(http.StatusCreated, "PUT", "/api/editions/"+code, admin, editionBody())
	b := editionBody()
	b["name"] = "Team Plus"
	setPrice(b, 2900)
	r := h.must(http.StatusOK, "PUT", "/api/editions/"+code, admin, b, "If-Match", `"1"`)
	if r.Header.Get("ETag") != `"2"` {
		t.Errorf("ETag %q", r.Header.Get("ETag"))
	}
	if e := decode[editionJSON](t, r.Body); e.Name != "Team Plus" || e.Price.AmountMinor != 2900 {
		t.Errorf("%+v", e)
	}
	h.must(http.StatusOK, "PUT", "/api/editions/"+code, admin, b) // If-Match is optional
}

// GET's representation is PUT's body: a client reads an edition, edits it and puts it back.
func TestPutEdition_200_TheGetRepresentationPutBackReplacesIt(t *testing.T) {
	h := newHarness(t)
	code, admin := freshCode(), h.platformAdmin()
	h.must(http.StatusCreated, "PUT", "/api/editions/"+code, admin, editionBody())
	got := h.must(http.StatusOK, "GET", "/api/editions/"+code, admin, nil)
	var body map[string]any
	if err := json.Unmarshal(got.Body, &body); err != nil {
		t.Fatal(err)
	}
	body["name"] = "Team Edited"
	body["price"].(map[string]any)["amountMinor"] = 2500
	r := h.must(http.StatusOK, "PUT", "/api/editions/"+code, admin, body, "If-Match", got.Header.Get("ETag"))
	if e := decode[editionJSON](t, r.Body); e.Name != "Team Edited" || e.Price != (moneyJSON{2500, "EUR"}) || e.Code != code ||
		e.Entitlements.UsagePrices["api.calls"] != 3 || len(e.Entitlements.Limits) != 2 {
		t.Errorf("%+v", e)
	}
}

// The flat priceMinor/currency members of the first draft are not part of the representation.
func TestPutEdition_400_FlatPriceMembersAreUnknown(t *testing.T) {
	h := newHarness(t)
	b := editionBody()
	delete(b, "price")
	b["priceMinor"], b["currency"] = 1900, "EUR"
	r := h.do("PUT", "/api/editions/"+freshCode(), h.platformAdmin(), b)
	if r.Code != http.StatusBadRequest || r.ProblemCode(t) != "unknown-field" {
		t.Fatalf("%d %s", r.Code, r.Body)
	}
}

func TestPutEdition_412_IfMatchMismatch(t *testing.T) {
	h := newHarness(t)
	code, admin := freshCode(), h.platformAdmin()
	if r := h.do("PUT", "/api/editions/"+code, admin, editionBody(), "If-Match", `"1"`); r.Code != http.StatusPreconditionFailed {
		t.Errorf("If-Match on an absent edition: %d %s", r.Code, r.Body)
	}
	h.must(http.StatusCreated, "PUT", "/api/editions/"+code, admin, editionBody())
	if r := h.do("PUT", "/api/editions/"+code, admin, editionBody(), "If-Match", `"7"`); r.Code != http.StatusPreconditionFailed {
		t.Errorf("stale If-Match: %d %s", r.Code, r.Body)
	}
}

func TestPutEdition_403_TenantToken(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	code := freshCode()
	r := h.do("PUT", "/api/editions/"+code, f.admin, editionBody())
	if r.Code != http.StatusForbidden || r.ProblemCode(t) != "platform-admin-required" {
		t.Fatalf("%d %s", r.Code, r.Body)
	}
	// Nor may a tenant rewrite a seeded edition.
	if r := h.do("PUT", "/api/editions/free", f.admin, editionBody()); r.Code != http.StatusForbidden {
		t.Errorf("free: %d %s", r.Code, r.Body)
	}
	if r := h.do("GET", "/api/editions/"+code, f.reader, nil); r.Code != http.StatusNotFound {
		t.Errorf("the refused edition exists: %d", r.Code)
	}
}

func TestPutEdition_400_EachValidationCode(t *testing.T) {
	h := newHarness(t)
	admin := h.platformAdmin()
	limit := func(route string, rate, burst, period any) map[string]any {
		return map[string]any{"route": route, "rate": rate, "burst": burst, "periodSeconds": period, "shadow": false}
	}
	withEnt := func(k string, v any) func(map[string]any) {
		return func(b map[string]any) { b["entitlements"].(map[string]any)[k] = v }
	}
	set := func(k string, v any) func(map[string]any) { return func(b map[string]any) { b[k] = v } }
	price := func(k string, v any) func(map[string]any) {
		return func(b map[string]any) { b["price"].(map[string]any)[k] = v }
	}
	for _, c := range []struct {
		name, code, path string
		change           func(map[string]any)
	}{
		{"code pattern", "invalid-edition-code", "/api/editions/Bad_Code", func(map[string]any) {}},
		{"one-letter code", "invalid-edition-code", "/api/editions/x", func(map[string]any) {}},
		{"body code differs", "invalid-edition-code", "", set("code", "other")},
		{"empty name", "invalid-name", "", set("name", "")},
		{"negative price", "invalid-price", "", price("amountMinor", -1)},
		{"fractional price", "invalid-price", "", price("amountMinor", 19.5)},
		{"string price", "invalid-price", "", price("amountMinor", "100")},
		{"null price", "invalid-price", "", price("amountMinor", nil)},
		{"exponent price", "invalid-price", "", price("amountMinor", json.Number("1e3"))},
		{"lowercase currency", "invalid-currency", "", price("currency", "eur")},
		{"long currency", "invalid-currency", "", price("currency", "EURO")},
		{"period 0", "invalid-period", "", set("periodMonths", 0)},
		{"period 13", "invalid-period", "", set("periodMonths", 13)},
		{"trial 366", "invalid-trial", "", set("trialDays", 366)},
		{"rank beyond int4", "invalid-rank", "", set("rank", int64(1099511627776))},
		{"rank below int4", "invalid-rank", "", set("rank", int64(-1099511627776))},
		{"rank beyond the bound", "invalid-rank", "", set("rank", 1_000_000_001)},
		{"name with a line break", "invalid-name", "", set("name", "Team\nPlus")},
		{"name with a tab", "invalid-name", "", set("name", "Team\tPlus")},
		{"name with a line separator", "invalid-name", "", set("name", "Team\u2028Plus")},
		{"blank name", "invalid-name", "", set("name", "   ")},
		{"price beyond 2^53-1", "invalid-price", "", price("amountMinor", int64(1<<53))},
		{"price beyond int64", "invalid-price", "", price("amountMinor", json.Number("9223372036854775808"))},
		{"currency not in ISO 4217", "invalid-currency", "", price("currency", "ABC")},
		{"currency XXX", "invalid-currency", "", price("currency", "XXX")},
		{"max users beyond a million", "invalid-max-users", "", withEnt("maxUsers", 1_000_001)},
		{"101 limits", "invalid-limit", "", withEnt("limits", manyLimits(101))},
		{"1001 feature defaults", "invalid-feature-default", "", withEnt("featureDefaults", manyKeys(1001, true))},
		{"1001 retention kinds", "invalid-retention", "", withEnt("retentionDays", manyKeys(1001, 30))},
		{"1001 usage prices", "invalid-usage-price", "", withEnt("usagePrices", manyKeys(1001, 1))},
		{"usage price beyond 2^53-1", "invalid-usage-price", "", withEnt("usagePrices", map[string]any{"api.calls": int64(1 << 53)})},
		{"string usage price", "invalid-usage-price", "", withEnt("usagePrices", map[string]any{"api.calls": "3"})},
		{"negative max users", "invalid-max-users", "", withEnt("maxUsers", -1)},
		{"rate 0", "invalid-limit", "", withEnt("limits", []any{limit("", 0, 1, 1)})},
		{"burst 0", "invalid-limit", "", withEnt("limits", []any{limit("", 1, 0, 1)})},
		{"period 0 s", "invalid-limit", "", withEnt("limits", []any{limit("", 1, 1, 0)})},
		{"period beyond a day", "invalid-limit", "", withEnt("limits", []any{limit("", 1, 1, 86401)})},
		{"route outside /api", "invalid-route", "", withEnt("limits", []any{limit("/ofrep/v1/evaluate/flags", 1, 1, 1)})},
		{"route not a template", "invalid-route", "", withEnt("limits", []any{limit("/api/tenants/*", 1, 1, 1)})},
		{"duplicate route", "duplicate-route", "", withEnt("limits", []any{limit("/api/audit-entries", 1, 1, 1), limit("/api/audit-entries", 2, 2, 1)})},
		{"duplicate tenant-wide", "duplicate-route", "", withEnt("limits", []any{limit("", 1, 1, 1), limit("", 2, 2, 1)})},
		{"retention 0 days", "invalid-retention", "", withEnt("retentionDays", map[string]any{"audit": 0})},
		{"negative usage price", "invalid-usage-price", "", withEnt("usagePrices", map[string]any{"api.calls": -2})},
		{"fractional usage price", "invalid-usage-price", "", withEnt("usagePrices", map[string]any{"api.calls": 0.5})},
		{"usage price on a bad metric", "invalid-usage-price", "", withEnt("usagePrices", map[string]any{"API Calls": 1})},
		// Whole numbers are integer literals only: no exponent, no fraction (1.0 neither), no -0.
		{"exponent price 49e2", "invalid-price", "", price("amountMinor", json.Number("49e2"))},
		{"price 1.0", "invalid-price", "", price("amountMinor", json.Number("1.0"))},
		{"price -0", "invalid-price", "", price("amountMinor", json.Number("-0"))},
		{"exponent usage price", "invalid-usage-price", "", withEnt("usagePrices", map[string]any{"api": json.Number("1e2")})},
		{"exponent rank", "invalid-rank", "", set("rank", json.Number("1e3"))},
		{"exponent period", "invalid-period", "", set("periodMonths", json.Number("1e0"))},
		{"fractional trial", "invalid-trial", "", set("trialDays", json.Number("7.0"))},
		{"exponent retention", "invalid-retention", "", withEnt("retentionDays", map[string]any{"audit": json.Number("1e2")})},
		{"exponent max users", "invalid-max-users", "", withEnt("maxUsers", json.Number("2E1"))},
		{"exponent rate", "invalid-limit", "", withEnt("limits", []any{limit("", json.Number("1e2"), 1, 1)})},
		{"string burst", "invalid-limit", "", withEnt("limits", []any{limit("", 1, "1", 1)})},
		{"exponent period seconds", "invalid-limit", "", withEnt("limits", []any{limit("", 1, 1, json.Number("1e0"))})},
		// Beyond int64 is the member's own code, not invalid-json.
		{"rank beyond int64", "invalid-rank", "", set("rank", json.Number("99999999999999999999"))},
		{"trial beyond int64", "invalid-trial", "", set("trialDays", json.Number("99999999999999999999"))},
		{"period beyond int64", "invalid-period", "", set("periodMonths", json.Number("-99999999999999999999"))},
		{"retention beyond int64", "invalid-retention", "", withEnt("retentionDays", map[string]any{"audit": json.Number("99999999999999999999")})},
		{"period seconds beyond int64", "invalid-limit", "", withEnt("limits", []any{limit("", 1, 1, json.Number("99999999999999999999"))})},
		{"rate beyond int64", "invalid-limit", "", withEnt("limits", []any{limit("", json.Number("99999999999999999999"), 1, 1)})},
		{"max users beyond int64", "invalid-max-users", "", withEnt("maxUsers", json.Number("99999999999999999999"))},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := editionBody()
			c.change(b)
			path := c.path
			if path == "" {
				path = "/api/editions/" + freshCode()
			}
			r := h.do("PUT", path, admin, b)
			if r.Code != http.StatusBadRequest || r.ProblemCode(t) != c.code {
				t.Fatalf("%d %s, want 400 %s", r.Code, r.Body, c.code)
			}
		})
	}
}

// An edition change reaches the entitlements of the tenants on that edition at once on the
// writing instance (the edition's cached grants are invalidated after the commit).
func TestPutEdition_TenantsEntitlementsFollowTheChange(t *testing.T) {
	h := newHarness(t)
	code, admin := freshCode(), h.platformAdmin()
	b := editionBody()
	b["trialDays"] = 0
	setPrice(b, 0)
	h.must(http.StatusCreated, "PUT", "/api/editions/"+code, admin, b)
	f := h.tenant()
	h.subscribe(f, code)
	before, err := h.svc.Source().Of(t.Context(), f.id)
	if err != nil || before.Edition != code || before.Limits[0].Rate != 100 {
		t.Fatalf("before %+v %v", before, err)
	}
	b["entitlements"].(map[string]any)["limits"] = []any{map[string]any{"route": "", "rate": 7, "burst": 9, "periodSeconds": 2, "shadow": false}}
	h.must(http.StatusOK, "PUT", "/api/editions/"+code, admin, b)
	after, err := h.svc.Source().Of(t.Context(), f.id)
	want := []entitlements.Limit{{Route: "", Rate: 7, Burst: 9, Period: 2 * time.Second}}
	if err != nil || len(after.Limits) != 1 || after.Limits[0] != want[0] {
		t.Fatalf("after %+v %v", after, err)
	}
	g := decode[entitlementsJSON](t, h.must(http.StatusOK, "GET", "/api/entitlements", f.reader, nil).Body)
	if len(g.Limits) != 1 || g.Limits[0] != (limitJSON{"", 7, 9, 2, false}) {
		t.Errorf("GET /api/entitlements %+v", g)
	}
}

// localCache is a Cache with local copies (as the app runs it) on a Redis client of its own: an
// instance of its own for the invalidation pub/sub.
func localCache(t *testing.T) *cache.Cache {
	t.Helper()
	url, err := testenv.Require("SPINE_REDIS_URL")
	if err != nil {
		t.Fatal(err)
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	c := cache.New(rdb, cache.Config{Local: time.Minute}, nil)
	t.Cleanup(func() { c.Close(); _ = rdb.Close() })
	return c
}

// An edition change made through one instance reaches a tenant's entitlements on another
// instance that holds them in its local copy (kept for a minute here): the invalidation is
// published, not waited out.
func TestSource_EditionChangeReachesAnotherInstancesLocalCopy(t *testing.T) {
	h := newHarness(t)
	one := NewService(NewStore(h.rt), localCache(t), h.dir, ServiceConfig{Now: h.clock.now}, nil)
	two := NewService(NewStore(h.rt), localCache(t), h.dir, ServiceConfig{Now: h.clock.now}, nil)
	admin := Caller{Platform: true}
	code := freshCode()
	e := Edition{Code: code, Name: "Two", Currency: "EUR", PeriodMonths: 1, Public: true, Entitlements: EditionEntitlements{
		Limits: []LimitJSON{{Rate: 10, Burst: 10, PeriodSeconds: 1}}}}
	if _, _, err := one.PutEdition(t.Context(), admin, e, nil); err != nil {
		t.Fatal(err)
	}
	f := h.tenant()
	if _, err := one.Subscribe(t.Context(), Caller{Tenant: f.id}, f.id, code); err != nil {
		t.Fatal(err)
	}
	// Read on instance two until its local copy serves the grants (its subscription is confirmed).
	deadline := time.Now().Add(10 * time.Second)
	for two.cache.Stats().LocalHits < 2 {
		g, err := two.Source().Of(t.Context(), f.id)
		if err != nil || g.Limits[0].Rate != 10 {
			t.Fatalf("before %+v %v", g, err)
		}
		if time.Now().After(deadline) {
			t.Fatal("instance two never served from its local copy")
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.Entitlements.Limits[0].Rate = 99
	if _, _, err := one.PutEdition(t.Context(), admin, e, nil); err != nil {
		t.Fatal(err)
	}
	for {
		g, err := two.Source().Of(t.Context(), f.id)
		if err != nil {
			t.Fatal(err)
		}
		if g.Limits[0].Rate == 99 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("instance two still serves %+v (its local copy lives a minute)", g)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// manyLimits is n distinct valid limits.
func manyLimits(n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = map[string]any{"route": fmt.Sprintf("/api/r%d", i), "rate": 1, "burst": 1, "periodSeconds": 1, "shadow": false}
	}
	if n > 0 {
		out[0].(map[string]any)["route"] = "" // the tenant-wide limit every edition holds
	}
	return out
}

// manyKeys is n distinct valid keys (flag keys, data kinds and metric names alike) with value v.
func manyKeys(n int, v any) map[string]any {
	out := make(map[string]any, n)
	for i := 0; i < n; i++ {
		out[fmt.Sprintf("k%d", i)] = v
	}
	return out
}

// The bounds are inclusive: an edition at every limit is accepted.
func TestPutEdition_201_AtEveryBound(t *testing.T) {
	h := newHarness(t)
	b := editionBody()
	b["name"], b["rank"] = "Bounds édition", 1_000_000_000
	setPrice(b, int64(1<<53-1))
	ent := b["entitlements"].(map[string]any)
	ent["maxUsers"], ent["limits"] = 1_000_000, manyLimits(100)
	ent["featureDefaults"], ent["retentionDays"], ent["usagePrices"] = manyKeys(1000, true), manyKeys(1000, 30), manyKeys(1000, int64(1<<53-1))
	e := decode[editionJSON](t, h.must(http.StatusCreated, "PUT", "/api/editions/"+freshCode(), h.platformAdmin(), b).Body)
	if e.Price.AmountMinor != 1<<53-1 || len(e.Entitlements.Limits) != 100 || len(e.Entitlements.UsagePrices) != 1000 {
		t.Errorf("%+v", e.Price)
	}
}

// Concurrent creates of one new code without If-Match are creates or replaces, never 412: the
// loser of the INSERT race replaces the winner's row. Several rounds make the race likely.
func TestPutEdition_ConcurrentCreatesWithoutIfMatchNeverFail(t *testing.T) {
	h := newHarness(t)
	admin := Caller{Platform: true}
	const writers = 8
	for round := 0; round < 5; round++ {
		code := freshCode()
		e := Edition{Code: code, Name: "Race", Currency: "EUR", PeriodMonths: 1, Entitlements: EditionEntitlements{
			Limits: []LimitJSON{{Rate: 1, Burst: 1, PeriodSeconds: 1}}, FeatureDefaults: map[string]json.RawMessage{}, RetentionDays: map[string]int{},
			UsagePrices: map[string]int64{}}}
		start := make(chan struct{})
		var wg sync.WaitGroup
		var createdN atomic.Int32
		errs := make(chan error, writers)
		for i := 0; i < writers; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, created, err := h.svc.PutEdition(t.Context(), admin, e, nil)
				if created {
					createdN.Add(1)
				}
				errs <- err
			}()
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		got, err := h.svc.Edition(t.Context(), code)
		if err != nil || createdN.Load() != 1 || got.Version != writers {
			t.Fatalf("round %d: %d creates, version %d, %v", round, createdN.Load(), got.Version, err)
		}
	}
}

// With If-Match, of two writers holding the same version one wins and the other gets 412.
func TestPutEdition_ConcurrentIfMatchLoserIsVersionMismatch(t *testing.T) {
	h := newHarness(t)
	admin := Caller{Platform: true}
	code := freshCode()
	e := Edition{Code: code, Name: "Race", Currency: "EUR", PeriodMonths: 1, Entitlements: EditionEntitlements{
		Limits: []LimitJSON{{Rate: 1, Burst: 1, PeriodSeconds: 1}}, FeatureDefaults: map[string]json.RawMessage{}, RetentionDays: map[string]int{},
		UsagePrices: map[string]int64{}}}
	if _, _, err := h.svc.PutEdition(t.Context(), admin, e, nil); err != nil {
		t.Fatal(err)
	}
	v := int64(1)
	start := make(chan struct{})
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		go func() {
			<-start
			_, _, err := h.svc.PutEdition(t.Context(), admin, e, &v)
			errs <- err
		}()
	}
	close(start)
	ok, mismatch := 0, 0
	for i := 0; i < 4; i++ {
		switch err := <-errs; {
		case err == nil:
			ok++
		case errors.Is(err, ErrVersionMismatch):
			mismatch++
		default:
			t.Fatal(err)
		}
	}
	if ok != 1 || mismatch != 3 {
		t.Fatalf("%d succeeded, %d version mismatches; want 1 and 3", ok, mismatch)
	}
}

// Every member of the edition body but code and public is required: missing or null is the
// member's own 400, never a default (a missing maxUsers is not "unlimited", a missing rank not 0).
func TestPutEdition_400_MissingOrNullMemberIsItsOwnCode(t *testing.T) {
	h := newHarness(t)
	admin := h.platformAdmin()
	top := func(b map[string]any) map[string]any { return b }
	ent := func(b map[string]any) map[string]any { return b["entitlements"].(map[string]any) }
	pr := func(b map[string]any) map[string]any { return b["price"].(map[string]any) }
	lim := func(b map[string]any) map[string]any { return ent(b)["limits"].([]any)[0].(map[string]any) }
	for _, c := range []struct {
		member, code, field string
		in                  func(map[string]any) map[string]any
	}{
		{"name", "invalid-name", "name", top},
		{"price", "invalid-price", "price", top},
		{"amountMinor", "invalid-price", "price.amountMinor", pr},
		{"currency", "invalid-currency", "price.currency", pr},
		{"periodMonths", "invalid-period", "periodMonths", top},
		{"trialDays", "invalid-trial", "trialDays", top},
		{"rank", "invalid-rank", "rank", top},
		{"entitlements", "invalid-max-users", "entitlements", top},
		{"maxUsers", "invalid-max-users", "entitlements.maxUsers", ent},
		{"limits", "invalid-limit", "entitlements.limits", ent},
		{"featureDefaults", "invalid-feature-default", "entitlements.featureDefaults", ent},
		{"retentionDays", "invalid-retention", "entitlements.retentionDays", ent},
		{"usagePrices", "invalid-usage-price", "entitlements.usagePrices", ent},
		{"route", "invalid-route", "entitlements.limits[0].route", lim},
		{"rate", "invalid-limit", "entitlements.limits[0].rate", lim},
		{"burst", "invalid-limit", "entitlements.limits[0].burst", lim},
		{"periodSeconds", "invalid-limit", "entitlements.limits[0].periodSeconds", lim},
		{"shadow", "invalid-limit", "entitlements.limits[0].shadow", lim},
	} {
		for _, null := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s null=%v", c.member, null), func(t *testing.T) {
				b := editionBody()
				m := c.in(b)
				if null {
					m[c.member] = nil
				} else {
					delete(m, c.member)
				}
				r := h.do("PUT", "/api/editions/"+freshCode(), admin, b)
				if r.Code != http.StatusBadRequest || r.ProblemCode(t) != c.code {
					t.Fatalf("%d %s, want 400 %s", r.Code, r.Body, c.code)
				}
				var p struct {
					Errors []struct{ Field string } `json:"errors"`
				}
				if err := json.Unmarshal(r.Body, &p); err != nil || len(p.Errors) != 1 || p.Errors[0].Field != c.field {
					t.Errorf("fields %s, want %s", r.Body, c.field)
				}
			})
		}
	}
}

// A rate beyond 2^30 says the range, not "≥ 1".
func TestPutEdition_400_RateBeyond2To30NamesTheRange(t *testing.T) {
	h := newHarness(t)
	b := editionBody()
	b["entitlements"].(map[string]any)["limits"].([]any)[0].(map[string]any)["rate"] = 1<<30 + 1
	r := h.do("PUT", "/api/editions/"+freshCode(), h.platformAdmin(), b)
	if r.Code != http.StatusBadRequest || r.ProblemCode(t) != "invalid-limit" || !strings.Contains(string(r.Body), "from 1 to 1073741824") {
		t.Fatalf("%d %s", r.Code, r.Body)
	}
}
