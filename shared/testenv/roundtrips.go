package testenv

import (
	"encoding/binary"
	"io"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"

	"spine/shared/sqlstore"
)

// RoundTrips is a TCP proxy in front of PostgreSQL that counts the client's round trips: the
// ReadyForQuery messages the server sends, one at the end of every simple query and of every
// extended-protocol Sync (and one when a connection starts). It needs an unencrypted connection
// (sslmode=disable, as the stack's URLs are).
type RoundTrips struct {
	n     atomic.Int64
	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns []net.Conn
}

// Count is the number of round trips completed so far over every proxied connection.
func (r *RoundTrips) Count() int64 { return r.n.Load() }

// OpenRuntimeCounted is OpenRuntime through a RoundTrips proxy; both are closed when tb ends.
func (d *Database) OpenRuntimeCounted(tb testing.TB, cfg sqlstore.PoolConfig) (*sqlstore.DB, *RoundTrips) {
	tb.Helper()
	rt, u := countRoundTrips(tb, d.RuntimeURL)
	return openPool(tb, d.Service, u, cfg), rt
}

// countRoundTrips starts a proxy to raw's host and returns it and raw pointed at it.
func countRoundTrips(tb testing.TB, raw string) (*RoundTrips, string) {
	tb.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		tb.Fatal(err)
	}
	target := u.Host
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	r := &RoundTrips{ln: ln}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				_ = c.Close()
				continue
			}
			r.mu.Lock()
			r.conns = append(r.conns, c, s)
			r.mu.Unlock()
			r.wg.Add(2)
			go func() { defer r.wg.Done(); _, _ = io.Copy(s, c); _ = s.Close() }()
			go func() { defer r.wg.Done(); r.server(c, s); _ = c.Close() }()
		}
	}()
	tb.Cleanup(func() {
		_ = ln.Close()
		r.mu.Lock()
		for _, c := range r.conns {
			_ = c.Close()
		}
		r.mu.Unlock()
		r.wg.Wait()
	})
	u.Host = ln.Addr().String()
	return r, u.String()
}

// server copies the server's messages to the client, counting ReadyForQuery ('Z').
func (r *RoundTrips) server(client, server net.Conn) {
	var head [5]byte
	for {
		if _, err := io.ReadFull(server, head[:]); err != nil {
			return
		}
		n := int64(binary.BigEndian.Uint32(head[1:])) - 4
		if n < 0 {
			return
		}
		if head[0] == 'Z' { // counted before the client can see it, so a count read after a call includes its round trips
			r.n.Add(1)
		}
		if _, err := client.Write(head[:]); err != nil {
			return
		}
		if _, err := io.CopyN(client, server, n); err != nil {
			return
		}
	}
}
