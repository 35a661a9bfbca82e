package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"time"
)

// benchEdition is the edition the bench defines when the handler serves billing: a tenant-wide
// limit far above anything the machine serves, so every tenant-token case pays for the limiter (a
// Redis round trip per request) without ever being refused.
const benchEdition = "bench-unmetered"

// The rate-limit case: the cached tenant read of one tenant, once with a platform-admin token
// (exempt: the limiter returns before any lookup) and once with the tenant's own token (limited,
// never refused), at a few connections so p50 is a request's latency, not a queue's; the added p50
// is the difference. (Every tenant token is limited — an edition without limits gets the fallback
// edition's — so the exempt admin is the baseline without a limiter.)
const (
	caseLimitOff    = "GET /api/tenants/{id}, platform-admin token, exempt (4 connections)"
	caseLimitOn     = "GET /api/tenants/{id}, tenant token, rate-limited (4 connections)"
	caseLimitAdded  = "rate limiting: added p50 on a cached read"
	limitCaseConns  = 4
	limitCaseRounds = 2
)

// benchEditions defines benchEdition through the platform-admin catalog API and makes it the
// edition seeded tenants get; without billing the tenants are registered on "standard" (no limits
// are enforced then).
func (b *bench) benchEditions(ctx context.Context) error {
	b.edition = "standard"
	if !b.serves(ctx, "billing") {
		b.res.note("the handler does not serve billing: tenants are registered on \"standard\" and no rate limits apply")
		return nil
	}
	limits := []map[string]any{{"route": "", "rate": 10_000_000, "burst": 10_000_000, "periodSeconds": 1, "shadow": false}}
	body, _ := json.Marshal(map[string]any{"name": "Bench " + benchEdition, "price": map[string]any{"amountMinor": 0, "currency": "EUR"},
		"periodMonths": 1, "trialDays": 0, "rank": 1000,
		"entitlements": map[string]any{"maxUsers": 0, "limits": limits, "featureDefaults": map[string]any{}, "retentionDays": map[string]any{}, "usagePrices": map[string]any{}}})
	status, out, err := b.do(ctx, http.MethodPut, "/api/editions/"+benchEdition, b.adminToken, body)
	if err != nil || (status != http.StatusCreated && status != http.StatusOK) {
		return fmt.Errorf("PUT /api/editions/%s: %d %v %s", benchEdition, status, err, truncate(out, 300))
	}
	b.edition = benchEdition
	return nil
}

// serves reports whether GET /api/health lists the service.
func (b *bench) serves(ctx context.Context, service string) bool {
	status, out, err := b.do(ctx, http.MethodGet, "/api/health", "", nil)
	if err != nil || status != http.StatusOK {
		return false
	}
	var h struct{ Services []string }
	_ = json.Unmarshal(out, &h)
	return slices.Contains(h.Services, service)
}

// rateLimitCases measures what the limiter adds to a cached read: one tenant on benchEdition is read
// with the exempt platform-admin token and with its own token, alternately, limitCaseRounds times
// each; each row keeps the run with the lower p50 (the quieter one), and the added p50 is their
// difference.
func (b *bench) rateLimitCases(ctx context.Context) error {
	if b.edition != benchEdition {
		why := "the handler does not serve billing (no limits to measure)"
		for _, c := range []string{caseLimitOff, caseLimitOn, caseLimitAdded} {
			b.res.add(row{Case: c, Kind: kindCase, Skipped: why})
		}
		return nil
	}
	limited := b.tenantIDs[0]
	if err := b.waitEdition(ctx, limited, benchEdition); err != nil {
		return err
	}
	own, err := b.tenantToken(limited)
	if err != nil {
		return err
	}
	best := map[string]wrkResult{}
	for round := range limitCaseRounds {
		for _, c := range []struct{ name, tenant, tok string }{{caseLimitOff, limited, b.adminToken}, {caseLimitOn, limited, own}} {
			tok := c.tok
			status, out, err := b.do(ctx, http.MethodGet, "/api/tenants/"+c.tenant, tok, nil)
			if err != nil || status != http.StatusOK {
				return fmt.Errorf("%s: %d %v %s", c.name, status, err, truncate(out, 200))
			}
			w := wrkRun{name: fmt.Sprintf("ratelimit-%s-%d", map[string]string{caseLimitOff: "off", caseLimitOn: "on"}[c.name], round),
				baseURL: b.baseURL(), script: luaGetRotating("/api/tenants/", []string{c.tenant}, tok), connections: limitCaseConns}
			r, err := b.measureWrk(ctx, c.name, w)
			if err != nil {
				return err
			}
			if prev, ok := best[c.name]; !ok || r.P50 < prev.P50 {
				best[c.name] = r
			}
		}
	}
	note := fmt.Sprintf("tenant token, %d connections, best p50 of %d runs", limitCaseConns, limitCaseRounds)
	for _, c := range []string{caseLimitOff, caseLimitOn} {
		r := best[c]
		b.res.add(row{Case: c, Kind: kindCase, RPS: r.RPS, P50: ms(r.P50), P99: ms(r.P99), Requests: r.Requests,
			Failures: r.failures(), Note: note})
	}
	added := best[caseLimitOn].P50 - best[caseLimitOff].P50
	b.res.add(row{Case: caseLimitAdded, Kind: kindCase, P50: ms(max(added, 0)),
		Note: fmt.Sprintf("p50 %s (tenant token, limited) − %s (exempt admin); one Lua GCRA call on Redis per request",
			best[caseLimitOn].P50.Round(time.Microsecond), best[caseLimitOff].P50.Round(time.Microsecond))})
	return nil
}

// waitEdition waits (at most 15 s) until billing answers the tenant's entitlements with edition:
// its subscription is created by billing's consumer of TenantRegistered, after the registration.
func (b *bench) waitEdition(ctx context.Context, tenant, edition string) error {
	tok, err := b.tenantToken(tenant)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		status, out, err := b.do(ctx, http.MethodGet, "/api/entitlements", tok, nil)
		var e struct{ EditionCode string }
		_ = json.Unmarshal(out, &e)
		if err == nil && status == http.StatusOK && e.EditionCode == edition {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("GET /api/entitlements of %s: %d %v %s, want edition %s", tenant, status, err, truncate(out, 200), edition)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
