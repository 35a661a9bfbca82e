package ratelimit

import (
	"context"
	"errors"
	"sync"

	"github.com/redis/go-redis/v9"
)

// maxPipelines bounds the round trips in flight to Redis at once: up to maxPipelines requests go
// to Redis at once, each alone; a request that comes while all of them are in flight waits for
// one to come back and then goes with every other request that waited meanwhile, as one pipeline
// (one write, one read). Under load this turns N round trips into a few, which is what the
// profile of a rate-limited read showed as its largest cost (the script's write and read
// syscalls); a request never waits for a timer, only for a round trip already under way.
// Two, not one: one slow reply does not hold every other request (BenchmarkMiddlewareParallel:
// one and two cost the same CPU per request; four and more cost more, on both sides).
const maxPipelines = 2

// batcher sends concurrent requests' scripts to Redis in pipelines (see maxPipelines). Each
// script still runs atomically and on Redis's clock: batching changes only how the commands
// travel, not what they decide.
type batcher struct {
	rdb redis.UniversalClient
	max int // in-flight bound: maxPipelines (tests raise it to send every call alone)

	mu       sync.Mutex
	pending  []*scriptCall
	inFlight int
}

// scriptCall is one request's gcraScript call and, once done is closed, its reply.
type scriptCall struct {
	keys []string
	args []any
	v    any
	err  error
	done chan struct{} // closed when v and err are set; nil for the call its sender makes itself
}

// eval runs gcraScript for keys and args, alone or in a pipeline with other requests' calls.
// A caller whose ctx ends first gets ctx's error (the call still completes for the others).
func (b *batcher) eval(ctx context.Context, keys []string, args []any) (any, error) {
	c := &scriptCall{keys: keys, args: args}
	b.mu.Lock()
	b.pending = append(b.pending, c)
	if b.inFlight >= b.max {
		c.done = make(chan struct{}) // only a queued call is waited for
		b.mu.Unlock()                // an in-flight sender takes it with the next pipeline
		select {
		case <-c.done:
			return c.v, c.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	b.inFlight++
	batch := b.pending
	b.pending = nil
	b.mu.Unlock()
	err := b.send(ctx, batch)
	if next := b.handOn(err); next != nil {
		// Calls queued while this one was in flight: another goroutine sends them, so this
		// request answers now.
		go b.sendAll(context.WithoutCancel(ctx), next)
	}
	return c.v, c.err
}

// handOn is what a sender does once its batch is back: it returns the calls queued meanwhile, to
// send next (nil: none, and the sender's slot is released). When the batch could not reach Redis
// (err), the queued calls fail at once with err instead of waiting another timeout: a request
// never waits for Redis longer than one round trip's timeouts (then it is decided in memory).
func (b *batcher) handOn(err error) []*scriptCall {
	for {
		next := b.next()
		if next == nil || err == nil {
			return next
		}
		for _, c := range next {
			c.err = err
			c.finish()
		}
	}
}

// next takes the queued calls, or releases the caller's in-flight slot when there are none.
func (b *batcher) next() []*scriptCall {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.pending) == 0 {
		b.inFlight--
		return nil
	}
	batch := b.pending
	b.pending = nil
	return batch
}

// sendAll sends batch, then whatever queued meanwhile, until nothing is queued.
func (b *batcher) sendAll(ctx context.Context, batch []*scriptCall) {
	for batch != nil {
		batch = b.handOn(b.send(ctx, batch))
	}
}

// send runs batch's calls (one: as Script.Run; several: one pipeline, NOSCRIPT replies run
// again with EVAL) and closes their done channels. The Redis client's timeouts bound it; it is
// not cancelled with the request that started it, which other requests' calls ride with. It
// returns the error of a batch that did not reach Redis (a timeout, a refused or closed
// connection), nil when Redis answered (an error reply is the call's own).
func (b *batcher) send(ctx context.Context, batch []*scriptCall) (unreachable error) {
	ctx = context.WithoutCancel(ctx)
	if len(batch) == 1 {
		c := batch[0]
		c.v, c.err = gcraScript.Run(ctx, b.rdb, c.keys, c.args...).Result()
		c.finish()
		return transportError(c.err)
	}
	cmds := make([]*redis.Cmd, len(batch))
	pipe := b.rdb.Pipeline()
	for i, c := range batch {
		cmds[i] = gcraScript.EvalSha(ctx, pipe, c.keys, c.args...)
	}
	_, _ = pipe.Exec(ctx) // each command carries its own error
	var again redis.Pipeliner
	for i, cmd := range cmds {
		if redis.HasErrorPrefix(cmd.Err(), "NOSCRIPT") {
			if again == nil {
				again = b.rdb.Pipeline()
			}
			cmds[i] = gcraScript.Eval(ctx, again, batch[i].keys, batch[i].args...)
		}
	}
	if again != nil {
		_, _ = again.Exec(ctx)
	}
	for i, c := range batch {
		c.v, c.err = cmds[i].Result()
		c.finish()
		if unreachable == nil {
			unreachable = transportError(c.err)
		}
	}
	return unreachable
}

// transportError is err unless it is nil or a reply from Redis (redis.Error).
func transportError(err error) error {
	if err == nil {
		return nil
	}
	var reply redis.Error
	if errors.As(err, &reply) {
		return nil
	}
	return err
}

func (c *scriptCall) finish() {
	if c.done != nil {
		close(c.done)
	}
}
