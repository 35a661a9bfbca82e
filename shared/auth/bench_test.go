package auth

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// BenchmarkVerify_Cold verifies the same token with the cache disabled: a full parse, key lookup and
// ES256 signature check on every iteration.
func BenchmarkVerify_Cold(b *testing.B) {
	e := newEnv(b, -1)
	e.v.onKeyLookup = nil
	tok := e.es256(b, claims(time.Now()))
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := e.v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerify_ColdInProcess is BenchmarkVerify_Cold with the key from an in-process KeySource
// (the authorization server's ring in the same binary: current and previous key) instead of a file.
func BenchmarkVerify_ColdInProcess(b *testing.B) {
	e := newEnv(b, -1)
	prev := newECKey(b)
	ring := &ringSource{}
	ring.set(PublicKey{ID: e.signer.kid, Algorithm: "ES256", Key: &e.signer.key.PublicKey},
		PublicKey{ID: "previous", Algorithm: "ES256", Key: &prev.PublicKey})
	v := newInProcessVerifier(b, ring, "", -1)
	tok := e.es256(b, claims(time.Now()))
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerify_Cached verifies a token that is already in the verified-token cache.
func BenchmarkVerify_Cached(b *testing.B) {
	e := newEnv(b, 0)
	e.v.onKeyLookup = nil
	tok := e.es256(b, claims(time.Now()))
	ctx := context.Background()
	if _, err := e.v.Verify(ctx, tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := e.v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerify_CachedParallel is BenchmarkVerify_Cached from GOMAXPROCS goroutines over 64 tokens.
func BenchmarkVerify_CachedParallel(b *testing.B) {
	e := newEnv(b, 0)
	e.v.onKeyLookup = nil
	ctx := context.Background()
	toks := make([]string, 64)
	for i := range toks {
		c := claims(time.Now())
		c["jti"] = fmt.Sprint("jti-", i)
		toks[i] = e.es256(b, c)
		if _, err := e.v.Verify(ctx, toks[i]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := e.v.Verify(ctx, toks[i%len(toks)]); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}
