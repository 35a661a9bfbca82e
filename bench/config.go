package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"spine/shared/auth"
)

// The OFREP cases: one flag, and the bulk of the tenant's five (Unleash Edge's anchor set).
const (
	caseOFREPSingle = "POST /api/ofrep/v1/evaluate/flags/{key}"
	caseOFREPBulk   = "POST /api/ofrep/v1/evaluate/flags (5 flags)"
	ofrepAnchor     = "Unleash Edge 39k rps p95 1.6 ms on 1 CPU (5 flags); flagd in-process 2.2 µs/op"
)

// ofrepCases defines five flags (a targeting rule and a 50/50 split on the measured one), warms the
// first seeded tenant's compiled set and measures single and bulk evaluation with a tenant token.
// Skipped (with the reason) when the handler does not serve config.
func (b *bench) ofrepCases(ctx context.Context) error {
	status, out, err := b.do(ctx, http.MethodGet, "/api/health", "", nil)
	if err != nil || status != http.StatusOK {
		return fmt.Errorf("GET /api/health: %d %v", status, err)
	}
	var h struct{ Services []string }
	_ = json.Unmarshal(out, &h)
	if !slices.Contains(h.Services, "config") {
		for _, c := range []string{caseOFREPSingle, caseOFREPBulk} {
			b.res.add(row{Case: c, Kind: kindCase, Skipped: "the handler does not serve the config service (GET /api/health lists " + strings.Join(h.Services, ", ") + ")"})
		}
		return nil
	}
	ops, err := b.signer.Mint(auth.TokenClaims{Issuer: b.issuer, Audience: audience, Subject: "bench-ops", PlatformAdmin: true,
		Scopes: []string{"config.read", "config.manage"}}, 2*time.Hour)
	if err != nil {
		return err
	}
	flag := func() map[string]any {
		return map[string]any{"type": "boolean", "variants": map[string]any{"on": true, "off": false}, "defaultVariant": "off",
			"rules": []any{
				map[string]any{"when": []any{map[string]any{"attribute": "email", "op": "endsWith", "values": []any{"@internal.example"}}}, "variant": "on"},
				map[string]any{"split": []any{map[string]any{"variant": "on", "weight": 50}, map[string]any{"variant": "off", "weight": 50}}},
			}}
	}
	for i := range 5 {
		body, _ := json.Marshal(flag())
		status, out, err := b.do(ctx, http.MethodPut, fmt.Sprintf("/api/feature-flags/bench.flag%d", i), ops, body)
		if err != nil || (status != http.StatusCreated && status != http.StatusOK) {
			return fmt.Errorf("PUT flag: %d %v %s", status, err, truncate(out, 200))
		}
	}
	tok, err := b.signer.Mint(auth.TokenClaims{Issuer: b.issuer, Audience: audience, Subject: "bench-sdk",
		TenantID: b.tenantIDs[0], Scopes: []string{"config.read"}}, 2*time.Hour)
	if err != nil {
		return err
	}
	req := `{"context":{"targetingKey":"user-123456","email":"someone@example.com"}}`
	for _, c := range []struct{ name, path string }{
		{caseOFREPSingle, "/api/ofrep/v1/evaluate/flags/bench.flag0"},
		{caseOFREPBulk, "/api/ofrep/v1/evaluate/flags"},
	} {
		status, out, err := b.do(ctx, http.MethodPost, c.path, tok, []byte(req))
		if err != nil || status != http.StatusOK {
			return fmt.Errorf("%s: %d %v %s", c.name, status, err, truncate(out, 200))
		}
		w := wrkRun{name: caseSlug[c.name], baseURL: b.baseURL(), script: luaPost(c.path, tok, req)}
		r, err := b.measureWrk(ctx, c.name, w)
		if err != nil {
			return err
		}
		b.res.add(row{Case: c.name, Kind: kindCase, RPS: r.RPS, P50: ms(r.P50), P99: ms(r.P99), Ceiling: ceilEcho,
			Requests: r.Requests, Failures: r.failures(), NewSessions: r.NewSessions,
			Note: "tenant token; the compiled set from the local copy (no SQL, no Redis once warm); anchor: " + ofrepAnchor})
	}
	return nil
}
