package tests

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// putEdition defines (or replaces) an edition through the platform-admin catalog API with one
// tenant-wide limit of rate requests per second and the given burst (rate 0: no limits).
func (s *server) putEdition(code string, rate, burst int) {
	s.t.Helper()
	limits := []map[string]any{}
	if rate > 0 {
		limits = append(limits, map[string]any{"route": "", "rate": rate, "burst": burst, "periodSeconds": 1, "shadow": false})
	}
	r := s.call("PUT", "/api/editions/"+code, s.admin, map[string]any{"name": "E2E " + code, "price": map[string]any{"amountMinor": 0, "currency": "EUR"},
		"periodMonths": 1, "trialDays": 0, "rank": 500,
		"entitlements": map[string]any{"maxUsers": 0, "limits": limits, "featureDefaults": map[string]any{}, "retentionDays": map[string]any{}, "usagePrices": map[string]any{}}}, nil)
	if r.Code != http.StatusCreated && r.Code != http.StatusOK {
		s.t.Fatalf("PUT /api/editions/%s: %d %s", code, r.Code, r.Body)
	}
}

// waitEdition waits until the tenant's entitlements name the edition (billing subscribes a
// registered tenant when it consumes TenantRegistered). It asks as a platform admin, so the
// tenant's own limits are untouched.
func (s *server) waitEdition(tenant, edition string) {
	s.t.Helper()
	eventually(s.t, "the tenant's subscription on "+edition, func() bool {
		r := s.call("GET", "/api/entitlements?tenantId="+tenant, s.admin, nil, nil)
		return r.Code == http.StatusOK && r.JSON(s.t)["editionCode"] == edition
	})
}

// A tenant on an edition with a tight limit is refused past its burst with 429 problem+json and
// the draft's headers; another tenant and a platform admin are not; raising the edition's limit in
// the catalog lifts the refusals within the stated staleness bound.
func TestRateLimits_TheEditionsLimitsEndToEnd(t *testing.T) {
	s := startServer(t, nil)
	tight := "e2e-tight-" + strconv.FormatInt(seq.Add(1), 10)
	s.putEdition(tight, 1, 5)
	limited, other := s.register(slug("rl-a"), tight), s.register(slug("rl-b"), "standard")
	s.waitEdition(limited, tight)
	s.waitEdition(other, "standard")
	tokA := s.mint("user-a", limited, false, "tenant.read")
	tokB := s.mint("user-b", other, false, "tenant.read")

	var refused reply
	ok := 0
	for i := 0; i < 20 && refused.Code == 0; i++ {
		r := s.call("GET", "/api/tenants/"+limited, tokA, nil, nil)
		switch r.Code {
		case http.StatusOK:
			ok++
			if got := r.Hdr.Get("RateLimit-Policy"); got != `"tenant";q=5;w=1` {
				t.Fatalf("RateLimit-Policy = %q", got)
			}
			if !strings.HasPrefix(r.Hdr.Get("RateLimit"), `"tenant";r=`) {
				t.Fatalf("RateLimit = %q", r.Hdr.Get("RateLimit"))
			}
		case http.StatusTooManyRequests:
			refused = r
		default:
			t.Fatalf("request %d: %d %s", i, r.Code, r.Body)
		}
	}
	// The burst is 5 and one request is earned per second: 5 or 6 pass before the first refusal.
	if refused.Code != http.StatusTooManyRequests || ok < 5 || ok > 7 {
		t.Fatalf("%d passed before a refusal (%d), want 5-7 then 429", ok, refused.Code)
	}
	if ct := refused.Hdr.Get("Content-Type"); ct != "application/problem+json" || !strings.Contains(string(refused.Body), `"rate-limited"`) {
		t.Fatalf("429: %s %s", ct, refused.Body)
	}
	retry, err := strconv.Atoi(refused.Hdr.Get("Retry-After"))
	st := refused.Hdr.Get("RateLimit")
	tIdx := strings.LastIndex(st, ";t=")
	if err != nil || tIdx < 0 {
		t.Fatalf("Retry-After %q, RateLimit %q", refused.Hdr.Get("Retry-After"), st)
	}
	if tv, err := strconv.Atoi(st[tIdx+3:]); err != nil || retry < tv || retry < 1 {
		t.Fatalf("Retry-After %d, RateLimit t=%q: want Retry-After ≥ t ≥ 1", retry, st[tIdx+3:])
	}

	for i := range 10 {
		if r := s.call("GET", "/api/tenants/"+other, tokB, nil, nil); r.Code != http.StatusOK {
			t.Fatalf("the other tenant's request %d: %d %s", i, r.Code, r.Body)
		}
		if r := s.call("GET", "/api/tenants/"+limited, s.admin, nil, nil); r.Code != http.StatusOK || r.Hdr.Get("RateLimit-Policy") != "" {
			t.Fatalf("a platform admin reading the limited tenant: %d, policy %q", r.Code, r.Hdr.Get("RateLimit-Policy"))
		}
	}

	s.putEdition(tight, 1000, 1000)
	start := time.Now()
	eventually(t, "the raised limit", func() bool {
		return s.call("GET", "/api/tenants/"+limited, tokA, nil, nil).Hdr.Get("RateLimit-Policy") == `"tenant";q=1000;w=1`
	})
	t.Logf("the raised limit applied %v after the catalog change", time.Since(start).Round(time.Millisecond))
	// The debt run up under the tight limit counts as an empty burst of the new one, which refills
	// in burst × interval = 1 s.
	time.Sleep(1100 * time.Millisecond)
	for i := range 50 {
		if r := s.call("GET", "/api/tenants/"+limited, tokA, nil, nil); r.Code != http.StatusOK {
			t.Fatalf("request %d after the raise: %d %s", i, r.Code, r.Body)
		}
	}
}
