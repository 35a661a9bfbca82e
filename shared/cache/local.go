package cache

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// GetOrLoadLocal is GetOrLoadCodec with a local copy in front of Redis when the Cache has
// Config.Local on: a value read or loaded here is kept in the process for up to Config.Local and
// served without a Redis round trip until it is invalidated (on any instance: Invalidate publishes
// its keys) or the invalidation subscription is lost. Use it for reads that are frequent and whose
// writers invalidate through this package; with Local off it is GetOrLoadCodec. A value holding a
// slice or map is shared by every caller: treat it as read-only.
func GetOrLoadLocal[T any](ctx context.Context, c *Cache, key string, ttl time.Duration, codec Codec[T], load func(context.Context) (T, error)) (T, error) {
	if c == nil || c.local == nil || !c.localLive.Load() {
		return GetOrLoadCodec(ctx, c, key, ttl, codec, load)
	}
	now := time.Now().UnixNano()
	c.localMu.RLock()
	e, ok := c.local[key]
	c.localMu.RUnlock()
	if ok && now < e.until {
		if v, ok := e.v.(T); ok {
			c.localHits.Add(1)
			return v, nil
		}
	}
	gen := c.localGen.Load()
	v, err := GetOrLoadCodec(ctx, c, key, ttl, codec, load)
	if err != nil {
		return v, err
	}
	c.localMu.Lock()
	// Kept only if no invalidation came in since the read began (it may have been of this key)
	// and the subscription is still live.
	if c.localGen.Load() == gen && c.localLive.Load() {
		if len(c.local) >= c.cfg.LocalMax {
			clear(c.local)
		}
		c.local[key] = localEntry{v: v, until: now + int64(c.cfg.Local)}
	}
	c.localMu.Unlock()
	return v, nil
}

// dropLocal forgets keys' local copies and counts an invalidation.
func (c *Cache) dropLocal(keys []string) {
	c.localMu.Lock()
	c.localGen.Add(1)
	for _, k := range keys {
		delete(c.local, k)
	}
	c.localMu.Unlock()
}

// clearLocal forgets every local copy.
func (c *Cache) clearLocal() {
	c.localMu.Lock()
	c.localGen.Add(1)
	clear(c.local)
	c.localMu.Unlock()
}

// publish tells every instance to drop keys' local copies. A failure is logged with the cache's
// other Redis failures; the copies elsewhere then expire within Config.Local.
func (c *Cache) publish(ctx context.Context, keys []string) {
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := c.rdb.Publish(pctx, InvalidationChannel, strings.Join(keys, "\n")).Err(); err != nil {
		c.fail(ctx, "publish", err)
	}
}

// subscribe keeps the invalidation subscription until Close: local copies are served only while
// it is confirmed, and cleared whenever it is (re)established or lost, since invalidations may
// have been missed in between. A silent connection is found by a ping every 5 s.
func (c *Cache) subscribe() {
	defer close(c.subDone)
	ctx, cancel := context.WithCancel(context.Background())
	var current atomic.Pointer[redis.PubSub]
	go func() {
		<-c.stop
		cancel()
		if ps := current.Load(); ps != nil {
			_ = ps.Close() // a receive blocked on the connection returns now, not at its timeout
		}
	}()
	for ctx.Err() == nil {
		ps := c.rdb.Subscribe(ctx, InvalidationChannel)
		current.Store(ps)
		if ctx.Err() != nil { // stopped while subscribing: the watcher may have missed this one
			_ = ps.Close()
			break
		}
		c.receive(ctx, ps)
		c.localLive.Store(false)
		c.clearLocal()
		_ = ps.Close()
		select {
		case <-ctx.Done():
		case <-time.After(c.cfg.Cooldown):
		}
	}
}

// receive handles ps's messages until it fails or ctx ends.
func (c *Cache) receive(ctx context.Context, ps *redis.PubSub) {
	for {
		msg, err := ps.ReceiveTimeout(ctx, 5*time.Second)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && ctx.Err() == nil {
				if perr := ps.Ping(ctx); perr == nil {
					continue
				}
			}
			return
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" && m.Channel == InvalidationChannel {
				c.clearLocal()
				c.localLive.Store(true)
			}
		case *redis.Message:
			c.dropLocal(strings.Split(m.Payload, "\n"))
		}
	}
}
