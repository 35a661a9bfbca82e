package cache

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// A Redis that crashed costs one attempt, never a retry: counted, not timed. The "crashed" server
// accepts and drops every connection (the handshake fails); the "gone" one refuses every dial.
func TestClientOptions_RedisDownCostsOneAttempt(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	var accepted atomic.Int32
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			_ = conn.Close()
		}
	}()

	for _, tc := range []struct {
		name  string
		dial  func(opt *redis.Options, dials *atomic.Int32)
		count func(dials *atomic.Int32) int32
	}{
		{"crashed: accepts and drops", func(opt *redis.Options, dials *atomic.Int32) {}, func(*atomic.Int32) int32 { return accepted.Load() }},
		{"gone: refuses", func(opt *redis.Options, dials *atomic.Int32) {
			opt.Dialer = func(context.Context, string, string) (net.Conn, error) {
				dials.Add(1)
				return nil, errors.New("connection refused")
			}
		}, func(d *atomic.Int32) int32 { return d.Load() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			accepted.Store(0)
			opt, err := ClientOptions("redis://" + ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			var dials atomic.Int32
			tc.dial(opt, &dials)
			rdb := redis.NewClient(opt)
			defer rdb.Close()
			c := New(rdb, Config{}, nil)
			defer c.Close()
			v, err := GetOrLoad(context.Background(), c, "k", time.Minute, func(context.Context) (int, error) { return 7, nil })
			if err != nil || v != 7 {
				t.Fatalf("read with Redis down = %v, %v; want the loader's 7", v, err)
			}
			if n := tc.count(&dials); n != 1 {
				t.Fatalf("Redis was tried %d times for one read; want 1 (no command retries, no dial retries)", n)
			}
		})
	}
}

func TestClientOptions_BadURLDoesNotEchoIt(t *testing.T) {
	_, err := ClientOptions("redis://:s3cret@host:notaport")
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("err = %v; want an error without the URL", err)
	}
}
