package tests

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/open-feature/go-sdk-contrib/providers/ofrep"
	"github.com/open-feature/go-sdk/openfeature"
)

// ofClient is an OpenFeature client over the OFREP provider, against s with a tenant's token. The
// Functions host serves every route under /api, so the provider's base URL is <host>/api (it
// appends /ofrep/v1/evaluate/flags/{key}); reached directly, the handler also answers the bare
// host (root: true).
func ofClient(t *testing.T, s *server, domain, token string, root bool) *openfeature.Client {
	t.Helper()
	base := s.base + "/api"
	if root {
		base = s.base
	}
	p := ofrep.NewProvider(base, ofrep.WithBearerToken(token))
	if err := openfeature.SetNamedProviderAndWait(domain, p); err != nil {
		t.Fatal(err)
	}
	return openfeature.NewClient(domain)
}

func (s *server) putFlag(ops, key string, body map[string]any) {
	s.t.Helper()
	if r := s.call("PUT", "/api/feature-flags/"+key, ops, body, nil); r.Code != http.StatusCreated && r.Code != http.StatusOK {
		s.t.Fatalf("PUT flag %s: %d %s", key, r.Code, r.Body)
	}
}

// An OpenFeature SDK, unchanged, evaluates every flag type through the binary; a rollout splits
// 10,000 targeting keys within ±2 % of its weights; an override changes one tenant only; and a
// PUT through one instance is seen by the next evaluation on another instance within the bound.
func TestConfig_OpenFeatureSDKOverOFREP(t *testing.T) {
	one := startServer(t, nil)
	two := startInstance(t, one)
	ops := one.mint("ops", "", true, "config.read", "config.manage")
	// 10,000 evaluations in a few seconds are above the seeded editions' limits: an edition far above them.
	open := "e2e-roomy-" + strconv.FormatInt(seq.Add(1), 10)
	one.putEdition(open, 1_000_000, 1_000_000)
	a, b := one.register(slug("cfg-a"), open), one.register(slug("cfg-b"), open)
	one.waitEdition(a, open)
	sfx := slug("")
	boolKey, strKey, numKey, objKey, splitKey := "e2e.bool"+sfx, "e2e.str"+sfx, "e2e.num"+sfx, "e2e.obj"+sfx, "e2e.split"+sfx
	one.putFlag(ops, boolKey, map[string]any{"type": "boolean", "variants": map[string]any{"on": true, "off": false}, "defaultVariant": "off",
		"rules": []any{map[string]any{"when": []any{map[string]any{"attribute": "plan", "op": "equals", "values": []any{"gold"}}}, "variant": "on"}}})
	one.putFlag(ops, strKey, map[string]any{"type": "string", "variants": map[string]any{"red": "#f00", "blue": "#00f"}, "defaultVariant": "blue"})
	one.putFlag(ops, numKey, map[string]any{"type": "number", "variants": map[string]any{"low": 2.5, "high": 100}, "defaultVariant": "low"})
	one.putFlag(ops, objKey, map[string]any{"type": "object", "variants": map[string]any{"v": map[string]any{"limit": 5}}, "defaultVariant": "v"})
	one.putFlag(ops, splitKey, map[string]any{"type": "string", "variants": map[string]any{"x": "x", "y": "y", "z": "z"}, "defaultVariant": "x",
		"rules": []any{map[string]any{"split": []any{map[string]any{"variant": "x", "weight": 20}, map[string]any{"variant": "y", "weight": 30},
			map[string]any{"variant": "z", "weight": 50}}}}})

	ctx := t.Context()
	ca := ofClient(t, one, "tenant-a"+sfx, one.mint("user-a", a, false, "config.read"), false)
	cb := ofClient(t, one, "tenant-b"+sfx, one.mint("user-b", b, false, "config.read"), true)
	ec := openfeature.NewEvaluationContext("user-1", map[string]any{"plan": "gold"})

	d, err := ca.BooleanValueDetails(ctx, boolKey, false, ec)
	if err != nil || !d.Value || d.Reason != openfeature.TargetingMatchReason {
		t.Fatalf("boolean: %+v %v", d, err)
	}
	if s, err := ca.StringValueDetails(ctx, strKey, "", ec); err != nil || s.Value != "#00f" || s.Reason != openfeature.StaticReason {
		t.Fatalf("string: %+v %v", s, err)
	}
	if f, err := ca.FloatValue(ctx, numKey, 0, ec); err != nil || f != 2.5 {
		t.Fatalf("number: %v %v", f, err)
	}
	if o, err := ca.ObjectValue(ctx, objKey, nil, ec); err != nil || fmt.Sprint(o) != "map[limit:5]" {
		t.Fatalf("object: %v %v", o, err)
	}
	if _, err := ca.BooleanValue(ctx, "e2e.missing"+sfx, false, ec); err == nil {
		t.Fatal("a missing flag evaluated without an error")
	}

	counts := map[string]int{}
	const n = 10000
	for i := range n {
		v, err := ca.StringValue(ctx, splitKey, "", openfeature.NewEvaluationContext(fmt.Sprintf("user-%d", i), nil))
		if err != nil {
			t.Fatalf("split %d: %v", i, err)
		}
		counts[v]++
	}
	for v, w := range map[string]float64{"x": 20, "y": 30, "z": 50} {
		if got := float64(counts[v]) / n * 100; math.Abs(got-w) > 2 {
			t.Errorf("split %s: %.2f %%, want %.0f %% ± 2", v, got, w)
		}
	}

	if r := one.call("PUT", "/api/feature-flags/"+strKey+"/overrides/"+a, ops, map[string]any{"variant": "red"}, nil); r.Code != http.StatusCreated {
		t.Fatalf("override: %d %s", r.Code, r.Body)
	}
	if s, _ := ca.StringValue(ctx, strKey, "", ec); s != "#f00" {
		t.Fatalf("A after its override: %s", s)
	}
	if s, _ := cb.StringValue(ctx, strKey, "", ec); s != "#00f" {
		t.Fatalf("B after A's override: %s", s)
	}

	// Another instance: warm its local copy, change through the first, poll the second.
	c2 := ofClient(t, two, "tenant-a-two"+sfx, one.mint("user-a", a, false, "config.read"), false)
	if v, _ := c2.FloatValue(ctx, numKey, 0, ec); v != 2.5 {
		t.Fatalf("instance two before: %v", v)
	}
	start := time.Now()
	one.putFlag(ops, numKey, map[string]any{"type": "number", "variants": map[string]any{"low": 2.5, "high": 100}, "defaultVariant": "high"})
	for {
		if v, _ := c2.FloatValue(ctx, numKey, 0, ec); v == 100 {
			t.Logf("PUT on instance one seen on instance two %v after the PUT returned", time.Since(start))
			break
		}
		if time.Since(start) > 60*time.Second {
			t.Fatal("instance two did not see the PUT within the 60s bound")
		}
		time.Sleep(time.Millisecond)
	}
}
