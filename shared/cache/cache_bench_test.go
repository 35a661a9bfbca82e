package cache

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// benchValue has the shape and size of a cached tenant view (about 450 bytes of JSON).
type benchValue struct {
	ID, Name, Slug, Status, EditionCode, OwnerEmail string
	CreatedAt, UpdatedAt                            time.Time
	Steps                                           []benchStep
}

type benchStep struct {
	Name, Status string
	Attempts     int
	UpdatedAt    time.Time
}

func newBenchValue() benchValue {
	now := time.Date(2026, 11, 26, 21, 0, 0, 0, time.UTC)
	return benchValue{ID: "01a219ba-55a2-7dd8-9a5c-f4727d9fdd1a", Name: "Contoso", Slug: "contoso", Status: "Active",
		EditionCode: "standard", OwnerEmail: "it@contoso.example", CreatedAt: now, UpdatedAt: now,
		Steps: []benchStep{{"edition", "Succeeded", 1, now}, {"storage", "Succeeded", 1, now}}}
}

// startBenchRedis starts a private redis-server on a free loopback port for the benchmark and stops
// it afterwards. (testenv.StartRedis takes a *testing.T; benchmarks have a *testing.B.)
func startBenchRedis(b *testing.B) *redis.Client {
	b.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		b.Skipf("redis-server is not installed (make test installs it): %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning")
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			_ = c.Close()
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("redis-server on %s did not start", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The app's client settings (app.go openCache): short timeouts, no retries.
	rdb := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: 250 * time.Millisecond,
		ReadTimeout: 200 * time.Millisecond, WriteTimeout: 200 * time.Millisecond, MaxRetries: -1})
	b.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

func benchCache(b *testing.B) *Cache {
	b.Helper()
	rdb := startBenchRedis(b)
	c := New(rdb, Config{}, nil)
	b.Cleanup(c.Close)
	return c
}

// BenchmarkGetOrLoad_Hit is a cache hit on a real Redis: one GET round trip over loopback and a
// JSON decode, the cost of every cached tenant read.
func BenchmarkGetOrLoad_Hit(b *testing.B) {
	c := benchCache(b)
	ctx := context.Background()
	key := TenantKey("01a219ba-55a2-7dd8-9a5c-f4727d9fdd1a", "tenants", "tenant", "v1")
	load := func(context.Context) (benchValue, error) { return newBenchValue(), nil }
	if _, err := GetOrLoad(ctx, c, key, time.Hour, load); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := GetOrLoad(ctx, c, key, time.Hour, load); err != nil {
			b.Fatal(err)
		}
	}
	if s := c.Stats(); s.Loads != 1 || s.RedisErrors != 0 {
		b.Fatalf("stats %+v: want exactly one load and no Redis error", s)
	}
}

// BenchmarkGetOrLoad_HitParallel is BenchmarkGetOrLoad_Hit from GOMAXPROCS×8 goroutines over 1,000
// keys: the pooled client under concurrent readers.
func BenchmarkGetOrLoad_HitParallel(b *testing.B) {
	c := benchCache(b)
	ctx := context.Background()
	keys := make([]string, 1000)
	load := func(context.Context) (benchValue, error) { return newBenchValue(), nil }
	for i := range keys {
		keys[i] = TenantKey(fmt.Sprintf("tenant-%04d", i), "tenants", "tenant", "v1")
		if _, err := GetOrLoad(ctx, c, keys[i], time.Hour, load); err != nil {
			b.Fatal(err)
		}
	}
	b.SetParallelism(8)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := GetOrLoad(ctx, c, keys[i%len(keys)], time.Hour, load); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

// BenchmarkGetOrLoad_NoRedis is the same read with no cache configured (a nil *Cache): the
// loader alone, the floor the cache path is compared with.
func BenchmarkGetOrLoad_NoRedis(b *testing.B) {
	ctx := context.Background()
	load := func(context.Context) (benchValue, error) { return newBenchValue(), nil }
	b.ReportAllocs()
	for b.Loop() {
		if _, err := GetOrLoad[benchValue](ctx, nil, "k", time.Hour, load); err != nil {
			b.Fatal(err)
		}
	}
}
