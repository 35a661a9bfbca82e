package audit

import (
	"context"
	"encoding/json"
	"runtime"
	"sync/atomic"
	"testing"

	"spine/shared/sqlstore"
	"spine/shared/tenancy"
)

// benchPayload is a typical event payload (~200 bytes).
var benchPayload = json.RawMessage(`{"tenantId":"0193a000-0000-7000-8000-00000000000a","name":"Contoso Ltd","slug":"contoso",` +
	`"editionCode":"standard","ownerEmail":"owner@contoso.example","reason":"benchmark","attempt":1}`)

// benchAppend appends batch entries per operation from GOMAXPROCS×4 goroutines (the work waits
// on the database, so more writers than CPUs), each writing to tenantFor()'s tenant, through the
// runtime role's pool, and reports entries appended per second.
func benchAppend(b *testing.B, batch int, tenantFor func() tenancy.TenantID) {
	s := NewPostgresStore(openRuntime(b))
	ctx := context.Background()
	b.ReportAllocs()
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		tenant := tenantFor()
		entries := make([]NewEntry, batch)
		for pb.Next() {
			for i := range entries {
				entries[i] = mkEntry("bench.append", func(e *NewEntry) { e.Payload = benchPayload })
			}
			if _, _, err := s.Append(ctx, sqlstore.TenantScope(tenant), entries, nil, nil); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "appends/s")
}

// BenchmarkAppend_OneTenant: every writer appends to the same tenant, so appends queue on that
// tenant's lock; the figure is one chain's throughput.
func BenchmarkAppend_OneTenant(b *testing.B) {
	tenant := tenancy.NewTenantID()
	benchAppend(b, 1, func() tenancy.TenantID { return tenant })
}

// BenchmarkAppend_ManyTenants: every writer has its own tenant, so no append waits on another's
// lock; the figure is the database's throughput.
func BenchmarkAppend_ManyTenants(b *testing.B) {
	benchAppend(b, 1, tenancy.NewTenantID)
}

// BenchmarkAppend_OneTenantBatchOf10: one tenant, ten entries per transaction (as a caller that
// records several entries at once would): the lock and the commit are paid once per batch.
func BenchmarkAppend_OneTenantBatchOf10(b *testing.B) {
	tenant := tenancy.NewTenantID()
	benchAppend(b, 10, func() tenancy.TenantID { return tenant })
}

// benchRecord records one entry per operation through the service (the API's grouper) from 32
// concurrent callers, as 32 connections of the bench do, spread over tenants tenants, and reports
// entries recorded per second.
func benchRecord(b *testing.B, tenants int) {
	dir := fakeDir{}
	ids := make([]tenancy.TenantID, tenants)
	for i := range ids {
		ids[i] = tenancy.NewTenantID()
		dir[ids[i]] = tenancy.StatusActive
	}
	svc, err := NewService(NewPostgresStore(openRuntime(b)), dir, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var n atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(max(1, 32/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		tenant := ids[int(n.Add(1))%len(ids)]
		caller := Caller{Subject: "bench", Tenant: tenant}
		for pb.Next() {
			if _, err := svc.Record(ctx, caller, tenant, RecordInput{Actor: Actor{Type: "user", ID: "u"}, Action: "bench.record",
				Resource: Resource{Type: "doc", ID: "d"}, Payload: benchPayload}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkRecord_OneTenant: 32 callers of one tenant through the API's grouper.
func BenchmarkRecord_OneTenant(b *testing.B) { benchRecord(b, 1) }

// BenchmarkRecord_ManyTenants: 32 callers, each of its own tenant, through the API's grouper.
func BenchmarkRecord_ManyTenants(b *testing.B) { benchRecord(b, 32) }
