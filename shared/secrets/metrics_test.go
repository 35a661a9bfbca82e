package secrets_test

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"spine/shared/secrets"
	"spine/shared/telemetry"
)

// Every Vault call is one keyvault store operation for Config.Service, platform-level; a read of
// a missing secret is notfound.
func TestVault_RecordsKeyvaultStoreOperations(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	rec, err := telemetry.NewRecorder(mp, 10)
	if err != nil {
		t.Fatal(err)
	}
	telemetry.SetDefault(rec)
	t.Cleanup(func() { telemetry.SetDefault(nil); _ = mp.Shutdown(context.Background()) })

	ts, _ := newFake(t)
	v, err := secrets.Open(secrets.Config{VaultURL: ts.URL, CAFile: ts.CAFile, Service: "authz"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := v.Set(ctx(t), "metered", "x", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = v.Get(ctx(t), "metered")
	_, _ = v.Get(ctx(t), "absent")
	_, _ = v.Versions(ctx(t), "metered")
	_ = v.SetEnabled(ctx(t), "metered", s.Version, true)

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx(t), &rm); err != nil {
		t.Fatal(err)
	}
	type key = struct{ service, store, op, outcome, tenant string }
	got := map[key]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if sum, ok := m.Data.(metricdata.Sum[int64]); ok {
				for _, dp := range sum.DataPoints {
					attr := func(k string) string { v, _ := dp.Attributes.Value(attribute.Key(k)); return v.AsString() }
					got[key{attr(telemetry.AttrService), attr(telemetry.AttrStore), attr(telemetry.AttrOp),
						attr(telemetry.AttrOutcome), attr(telemetry.AttrTenant)}] += dp.Value
				}
			}
		}
	}
	want := map[key]int64{
		{"authz", "keyvault", "set", "ok", "none"}:       1,
		{"authz", "keyvault", "get", "ok", "none"}:       1,
		{"authz", "keyvault", "get", "notfound", "none"}: 1,
		{"authz", "keyvault", "list", "ok", "none"}:      1,
		{"authz", "keyvault", "update", "ok", "none"}:    1,
	}
	if len(got) != len(want) {
		t.Fatalf("operations %v, want %v", got, want)
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%v = %d, want %d (all: %v)", k, got[k], n, got)
		}
	}
}
