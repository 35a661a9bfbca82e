package ratelimit

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"spine/shared/entitlements"
)

// Requests that come while every pipeline slot is in flight go to Redis together, as one
// pipeline; each still gets its own decision: exactly the burst passes. The script cache is
// flushed first, so the pipeline's NOSCRIPT replies are run again with EVAL.
func TestPipeline_QueuedDecisionsGoTogetherAndEachGetsItsOwnAnswer(t *testing.T) {
	const burst, requests = 5, 8
	src := newSource()
	tn := newTenant(t)
	src.set(tn, entitlements.Limit{Rate: 1, Burst: burst, Period: time.Hour})
	rdb := stackRedis(t)
	l, err := New(Config{Redis: rdb, Source: src})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if d := l.Decide(ctx, tn, routeList); !d.Allowed { // loads the limits; consumes one
		t.Fatalf("first request refused: %+v", d)
	}
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	b := l.batch
	b.mu.Lock()
	b.inFlight = maxPipelines // every slot busy: the requests below queue
	b.mu.Unlock()

	var allowed, refused atomic.Int64
	var wg sync.WaitGroup
	for range requests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if l.Decide(ctx, tn, routeList).Allowed {
				allowed.Add(1)
			} else {
				refused.Add(1)
			}
		}()
	}
	for deadline := time.Now().Add(5 * time.Second); ; {
		b.mu.Lock()
		n := len(b.pending)
		b.mu.Unlock()
		if n == requests {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d requests queued", n, requests)
		}
		time.Sleep(time.Millisecond)
	}
	b.mu.Lock()
	batch := b.pending
	b.pending = nil
	b.mu.Unlock()
	b.sendAll(ctx, batch) // as the in-flight sender does when its reply is back
	wg.Wait()

	if allowed.Load() != burst-1 || refused.Load() != requests-(burst-1) {
		t.Fatalf("allowed %d, refused %d; want %d and %d", allowed.Load(), refused.Load(), burst-1, requests-(burst-1))
	}
	if s := l.Stats(); s.Memory != 0 || s.RedisErrors != 0 {
		t.Fatalf("decided in memory: %+v", s)
	}
	if b.inFlight != maxPipelines-1 {
		t.Fatalf("in flight %d after the queue drained, want %d", b.inFlight, maxPipelines-1)
	}
}

// A request whose context ends while it waits in the queue returns at once, unlimited by Redis
// (the in-memory decision), without marking Redis down.
func TestPipeline_CancelledWaiterDoesNotMarkRedisDown(t *testing.T) {
	src := newSource()
	tn := newTenant(t)
	src.set(tn, entitlements.Limit{Rate: 100, Burst: 100, Period: time.Second})
	l, err := New(Config{Redis: stackRedis(t), Source: src})
	if err != nil {
		t.Fatal(err)
	}
	if d := l.Decide(context.Background(), tn, routeList); !d.Allowed || d.Memory {
		t.Fatalf("first request: %+v", d)
	}
	l.batch.mu.Lock()
	l.batch.inFlight = maxPipelines
	l.batch.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	d := l.Decide(ctx, tn, routeList)
	if !d.Allowed || !d.Memory {
		t.Fatalf("cancelled waiter: %+v, want allowed in memory", d)
	}
	if l.downTill.Load() != 0 {
		t.Fatal("a cancelled request marked Redis down")
	}
}
