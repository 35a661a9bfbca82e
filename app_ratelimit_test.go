package main

import (
	"context"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"spine/shared/entitlements"
	"spine/shared/httpx"
	"spine/shared/ratelimit"
	"spine/shared/tenancy"
	"spine/shared/testenv/apitest"
)

// oneEdition answers the same limits for every tenant.
type oneEdition struct{ limits []entitlements.Limit }

func (o oneEdition) Of(context.Context, tenancy.TenantID) (entitlements.Entitlements, error) {
	return entitlements.Entitlements{Edition: "test", Limits: o.limits}, nil
}

func (o oneEdition) Edition(context.Context, string) (entitlements.Entitlements, error) {
	return entitlements.Entitlements{}, entitlements.ErrUnknownEdition
}

// rateLimitedAPI builds the /api edge as wire does, with mountRateLimits over ents.
func rateLimitedAPI(t *testing.T, ents *lateEntitlements) (*echo.Echo, string) {
	t.Helper()
	tokens := apitest.NewTokens(t)
	e := echo.New()
	_, secured := httpx.NewAPI(e, httpx.APIConfig{Verifier: tokens.Verifier(t), MaxBodyBytes: 64 << 10})
	if err := (&app{log: slog.New(slog.DiscardHandler)}).mountRateLimits(secured, ents, nil); err != nil {
		t.Fatal(err)
	}
	secured.GET("/things", func(c echo.Context) error { return c.NoContent(http.StatusNoContent) })
	return e, tokens.Mint(t, "0193a8a0-0000-7000-8000-000000000001", false)
}

// No module answers entitlements (billing not enabled): no limits are mounted.
func TestRateLimits_OffWithoutAnEntitlementsProvider(t *testing.T) {
	e, tok := rateLimitedAPI(t, &lateEntitlements{})
	for range 5 {
		r := apitest.Do(t, e, http.MethodGet, "/api/things", tok, nil)
		if r.Code != http.StatusNoContent || r.Header.Get(ratelimit.HeaderPolicy) != "" {
			t.Fatalf("%d, RateLimit-Policy %q", r.Code, r.Header.Get(ratelimit.HeaderPolicy))
		}
	}
}

// With a provider, the authenticated group is limited by the tenant's edition.
func TestRateLimits_OnWithAnEntitlementsProvider(t *testing.T) {
	ents := &lateEntitlements{}
	ents.set(oneEdition{[]entitlements.Limit{{Rate: 1, Burst: 2, Period: time.Minute}}})
	e, tok := rateLimitedAPI(t, ents)
	var codes []int
	for range 3 {
		codes = append(codes, apitest.Do(t, e, http.MethodGet, "/api/things", tok, nil).Code)
	}
	if codes[0] != http.StatusNoContent || codes[1] != http.StatusNoContent || codes[2] != http.StatusTooManyRequests {
		t.Fatalf("answers %v, want 204 204 429", codes)
	}
}

// A root alias (kit.RootAliaser) is the /api route itself: same handler, same authentication, same
// limits; other root paths stay unknown.
func TestRootAliases_AnswerTheAPIRouteAtTheRoot(t *testing.T) {
	ents := &lateEntitlements{}
	ents.set(oneEdition{[]entitlements.Limit{{Rate: 1, Burst: 2, Period: time.Minute}}})
	e, tok := rateLimitedAPI(t, ents)
	e.Pre(rootAliases([]string{"/things"}))
	if r := apitest.Do(t, e, http.MethodGet, "/things", "", nil); r.Code != http.StatusUnauthorized {
		t.Fatalf("no token at the alias: %d, want 401", r.Code)
	}
	var codes []int
	for _, p := range []string{"/things", "/api/things", "/things"} {
		codes = append(codes, apitest.Do(t, e, http.MethodGet, p, tok, nil).Code)
	}
	if codes[0] != http.StatusNoContent || codes[1] != http.StatusNoContent || codes[2] != http.StatusTooManyRequests {
		t.Fatalf("answers %v, want 204 204 429 (one limit across both paths)", codes)
	}
	if r := apitest.Do(t, e, http.MethodGet, "/other", tok, nil); r.Code != http.StatusNotFound {
		t.Fatalf("a root path nobody aliases: %d, want 404", r.Code)
	}
}
