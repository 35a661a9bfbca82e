package ratelimit

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

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

// When the batch in flight did not reach Redis, the calls queued behind it fail at once with its
// error (their requests are then decided in memory) instead of waiting for another timeout.
func TestPipeline_QueuedCallsFailAtOnceWhenRedisIsUnreachable(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { _ = rdb.Close() })
	b := &batcher{rdb: rdb, max: 1}
	lost := b.send(context.Background(), []*scriptCall{{keys: []string{"{t:x}:ratelimit:tenant"}, args: []any{"1", "1", "1"}}})
	if lost == nil {
		t.Fatal("a batch sent to an address nobody listens on reported Redis reachable")
	}
	b.inFlight = 1 // a batch in flight: the calls below queue
	const queued = 3
	errs := make(chan error, queued)
	for range queued {
		go func() {
			_, err := b.eval(context.Background(), []string{"{t:x}:ratelimit:tenant"}, []any{"1", "1", "1"})
			errs <- err
		}()
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		b.mu.Lock()
		n := len(b.pending)
		b.mu.Unlock()
		if n == queued {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d calls queued", n, queued)
		}
	}
	if next := b.handOn(lost); next != nil {
		t.Fatalf("handOn returned %d calls to send to an unreachable Redis", len(next))
	}
	for range queued {
		if err := <-errs; !errors.Is(err, lost) {
			t.Fatalf("queued call: %v, want the batch's error %v", err, lost)
		}
	}
	if b.inFlight != 0 {
		t.Fatalf("in flight %d after the queue was failed, want 0", b.inFlight)
	}
}
