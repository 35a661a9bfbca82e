package config

import (
	"net/http"
	"testing"

	"spine/shared/entitlements"
	"spine/shared/tenancy"
)

func ruleFlagBody(attribute, value string) map[string]any {
	b := boolFlagBody()
	b["rules"] = []any{map[string]any{"when": []any{map[string]any{"attribute": attribute, "op": "equals", "values": []any{value}}}, "variant": "on"}}
	return b
}

// A rule on tenantId matches the token's tenant only: tenant B sending A's id in the context does
// not match A's rule, and A matches it without sending anything.
func TestOFREP_ReservedTenantIDComesFromTheTokenNotTheContext(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	a, b := tenancy.NewTenantID(), tenancy.NewTenantID()
	key := newKey("rsv-tenant")
	h.must(http.StatusCreated, "PUT", "/api/feature-flags/"+key, h.admin(), ruleFlagBody("tenantId", a.String()))
	if m := evaluate(t, h, h.tenantToken(a), key, nil); m["value"] != true || m["reason"] != "TARGETING_MATCH" {
		t.Fatalf("A without a context: %v", m)
	}
	if m := evaluate(t, h, h.tenantToken(a), key, map[string]any{"tenantId": b.String()}); m["value"] != true {
		t.Fatalf("A claiming to be B: %v", m)
	}
	if m := evaluate(t, h, h.tenantToken(b), key, map[string]any{"tenantId": a.String()}); m["value"] != false || m["reason"] != "DEFAULT" {
		t.Fatalf("B claiming to be A matched A's rule: %v", m)
	}
	bulk := h.must(http.StatusOK, "POST", "/api/ofrep/v1/evaluate/flags", h.tenantToken(b), map[string]any{"context": map[string]any{"tenantId": a.String()}})
	flagsOf, _ := bulk.JSON(t)["flags"].([]any)
	for _, e := range flagsOf {
		if f, _ := e.(map[string]any); f["key"] == key && f["value"] != false {
			t.Fatalf("bulk: B claiming to be A matched A's rule: %v", f)
		}
	}
	// A platform admin evaluating for A (?tenantId=) is A.
	if m := h.must(http.StatusOK, "POST", "/api/ofrep/v1/evaluate/flags/"+key+"?tenantId="+a.String(), h.admin(),
		map[string]any{"context": map[string]any{}}).JSON(t); m["value"] != true {
		t.Fatalf("admin for A: %v", m)
	}
}

// A rule on edition matches the tenant's edition from its subscription: a tenant without one
// sending {"edition": "pro"} does not match, a pro tenant matches without sending anything.
func TestOFREP_ReservedEditionComesFromTheSubscriptionNotTheContext(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.ents.editions["pro"] = entitlements.Entitlements{Edition: "pro"}
	h.ents.editions["free"] = entitlements.Entitlements{Edition: "free"}
	pro, free, none := tenancy.NewTenantID(), tenancy.NewTenantID(), tenancy.NewTenantID()
	h.ents.set(pro, "pro")
	h.ents.set(free, "free")
	key := newKey("rsv-edition")
	h.must(http.StatusCreated, "PUT", "/api/feature-flags/"+key, h.admin(), ruleFlagBody("edition", "pro"))
	if m := evaluate(t, h, h.tenantToken(pro), key, nil); m["value"] != true || m["reason"] != "TARGETING_MATCH" {
		t.Fatalf("pro: %v", m)
	}
	for name, tn := range map[string]tenancy.TenantID{"free": free, "no subscription": none} {
		if m := evaluate(t, h, h.tenantToken(tn), key, map[string]any{"edition": "pro"}); m["value"] != false {
			t.Fatalf("%s claiming pro matched: %v", name, m)
		}
	}
}
