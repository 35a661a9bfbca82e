package cache

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"spine/shared/telemetry"
	"spine/shared/testenv"
)

func TestParseKey(t *testing.T) {
	for key, want := range map[string][2]string{
		TenantKey("0193a0c4-0000-7000-8000-000000000001", "tenants", "tenant", "v1"): {"0193a0c4-0000-7000-8000-000000000001", "tenants"},
		PlatformKey("tenants", "slug", "acme"):                                       {"", "tenants"},
		"plain":                                                                      {"", "unknown"},
		"{t:broken":                                                                  {"", "unknown"},
		"{p}nothing":                                                                 {"", "unknown"},
	} {
		if tenant, service := ParseKey(key); tenant != want[0] || service != want[1] {
			t.Errorf("ParseKey(%q) = %q, %q; want %q, %q", key, tenant, service, want[0], want[1])
		}
	}
}

// The hook records every keyed command with the key's service and tenant: a miss as notfound,
// a hit with its bytes, a DEL with its key count; keyless commands are not recorded.
func TestMetricsHook_RecordsKeyedCommands(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	rec, err := telemetry.NewRecorder(mp, 10)
	if err != nil {
		t.Fatal(err)
	}
	telemetry.SetDefault(rec)
	t.Cleanup(func() { telemetry.SetDefault(nil); _ = mp.Shutdown(context.Background()) })

	r := testenv.StartRedis(t)
	c, rdb := newCache(t, r.URL())
	rdb.AddHook(MetricsHook())
	ctx := context.Background()
	const tenant = "0193a0c4-0000-7000-8000-000000000001"
	key := TenantKey(tenant, "tenants", "tenant", "v1")
	for i := 0; i < 2; i++ { // miss + set, then hit
		if _, err := GetOrLoad(ctx, c, key, time.Minute, func(context.Context) (string, error) { return "hello", nil }); err != nil {
			t.Fatal(err)
		}
	}
	c.Invalidate(ctx, key, PlatformKey("tenants", "slug", "acme"))
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	type k = struct{ service, op, outcome, tenant string }
	counts, bytes, items := map[k]int64{}, map[k]int64{}, map[k]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch data := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, dp := range data.DataPoints {
					counts[key4(dp.Attributes)] += dp.Value
				}
			case metricdata.Histogram[int64]:
				for _, dp := range data.DataPoints {
					if m.Name == "spine.store.size" {
						bytes[key4(dp.Attributes)] += dp.Sum
					} else {
						items[key4(dp.Attributes)] += dp.Sum
					}
				}
			}
		}
	}
	want := map[k]int64{
		{"tenants", "get", "notfound", tenant}: 1,
		{"tenants", "set", "ok", tenant}:       1,
		{"tenants", "get", "ok", tenant}:       1,
		{"tenants", "del", "ok", tenant}:       1,
	}
	if len(counts) != len(want) {
		t.Fatalf("operations %v, want %v (PING is not recorded)", counts, want)
	}
	for kk, n := range want {
		if counts[kk] != n {
			t.Errorf("operations %v = %d, want %d (all: %v)", kk, counts[kk], n, counts)
		}
	}
	if b := bytes[k{"tenants", "get", "ok", tenant}]; b != int64(len(`"hello"`)) {
		t.Errorf("hit bytes = %d", b)
	}
	if n := items[k{"tenants", "del", "ok", tenant}]; n != 2 {
		t.Errorf("del items = %d, want 2", n)
	}
}

// key4 is the service, op, outcome and tenant of a data point.
func key4(set attribute.Set) struct{ service, op, outcome, tenant string } {
	get := func(k string) string { v, _ := set.Value(attribute.Key(k)); return v.AsString() }
	return struct{ service, op, outcome, tenant string }{get(telemetry.AttrService), get(telemetry.AttrOp),
		get(telemetry.AttrOutcome), get(telemetry.AttrTenant)}
}
