package auth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestCache_SecondVerifySkipsSignature(t *testing.T) {
	e := newEnv(t, 0)
	tok := e.es256(t, claims(time.Now()))

	p1, err := e.v.Verify(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if n := e.lookups.Load(); n != 1 {
		t.Fatalf("key lookups after first Verify = %d, want 1", n)
	}
	p1.Scopes[0] = "mutated" // a caller's copy must not leak into the cache

	p2, err := e.v.Verify(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if n := e.lookups.Load(); n != 1 {
		t.Fatalf("key lookups after second Verify = %d, want 1 (cache hit)", n)
	}
	if p2.Scopes[0] != "tenant.read" || p2.Subject != "user-1" || p2.TenantID != "tenant-1" {
		t.Fatalf("cached principal = %+v", p2)
	}
}

// emptyStore is a key set with no keys.
type emptyStore struct{}

func (emptyStore) key(context.Context, string) (verKey, error) {
	return verKey{}, errKeyNotFound
}

func TestCache_SurvivesKeySetSwap(t *testing.T) {
	e := newEnv(t, 0)
	tok := e.es256(t, claims(time.Now()))
	if _, err := e.v.Verify(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	e.v.keys = emptyStore{} // from now on no key can be found

	if p, err := e.v.Verify(context.Background(), tok); err != nil || p.Subject != "user-1" {
		t.Fatalf("cached token after key swap: %+v, %v", p, err)
	}
	fresh := claims(time.Now())
	fresh["jti"] = "another"
	if _, err := e.v.Verify(context.Background(), e.es256(t, fresh)); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("uncached token after key swap: err = %v, want ErrUnknownKey", err)
	}
}

func TestCache_ExpiredEntryRejected(t *testing.T) {
	e := newEnv(t, 0)
	start := time.Now()
	clock := newFakeClock(start)
	e.v.now = clock.Now

	c := claims(start)
	exp := time.Unix(start.Add(time.Minute).Unix(), 0)
	c["exp"] = exp.Unix()
	tok := e.es256(t, c)
	if _, err := e.v.Verify(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	deadline := exp.Add(DefaultClockSkew)

	clock.ns.Store(deadline.Add(-time.Nanosecond).UnixNano()) // last instant the full check would accept
	if _, err := e.v.Verify(context.Background(), tok); err != nil {
		t.Fatalf("just before exp+skew: %v", err)
	}
	clock.ns.Store(deadline.UnixNano())
	if _, err := e.v.Verify(context.Background(), tok); !errors.Is(err, ErrExpired) || !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("at exp+skew: err = %v, want ErrExpired", err)
	}
	if n := e.lookups.Load(); n != 1 {
		t.Fatalf("key lookups = %d, want 1: the expired entry was rejected from the cache", n)
	}
	// The entry is gone; the full check agrees that the token is expired.
	if _, err := e.v.Verify(context.Background(), tok); !errors.Is(err, ErrExpired) {
		t.Fatalf("after eviction: err = %v, want ErrExpired", err)
	}
	if n := e.lookups.Load(); n != 2 {
		t.Fatalf("key lookups = %d, want 2", n)
	}
}

func TestCache_Disabled(t *testing.T) {
	e := newEnv(t, -1)
	tok := e.es256(t, claims(time.Now()))
	for i := 0; i < 3; i++ {
		if _, err := e.v.Verify(context.Background(), tok); err != nil {
			t.Fatal(err)
		}
	}
	if n := e.lookups.Load(); n != 3 {
		t.Fatalf("key lookups = %d, want 3 with the cache disabled", n)
	}
}

func TestCache_FailuresNotCached(t *testing.T) {
	e := newEnv(t, 0)
	c := claims(time.Now())
	c["iss"] = "https://evil.test"
	tok := e.es256(t, c)
	for i := 0; i < 2; i++ {
		if _, err := e.v.Verify(context.Background(), tok); !errors.Is(err, ErrWrongIssuer) {
			t.Fatalf("err = %v", err)
		}
	}
	if n := e.lookups.Load(); n != 2 {
		t.Fatalf("key lookups = %d, want 2 (rejections are not cached)", n)
	}
}

func keyOf(i int) cacheKey { return sha256.Sum256([]byte(fmt.Sprint("token-", i))) }

func TestTokenCache_Bounded(t *testing.T) {
	for _, size := range []int{1, 3, 31, 100, 10000} {
		c := newTokenCache(size)
		if c.capacity() > size || c.capacity() < size-len(c.shards)+1 {
			t.Fatalf("size %d: capacity %d with %d shards", size, c.capacity(), len(c.shards))
		}
		now := time.Now().UnixNano()
		for i := 0; i < size*5+100; i++ {
			k := keyOf(i)
			c.Put(&k, Principal{Subject: "s"}, now+int64(time.Hour), now)
			if n := c.Len(); n > size {
				t.Fatalf("size %d: %d entries", size, n)
			}
		}
		// The most recent insert is always present.
		k := keyOf(size*5 + 99)
		if _, found, live := c.Get(&k, now); !found || !live {
			t.Fatalf("size %d: latest entry missing", size)
		}
	}
	if newTokenCache(0) != nil || newTokenCache(-1) != nil {
		t.Fatal("a non-positive size must disable the cache")
	}
}

func TestTokenCache_EvictsExpiredFirst(t *testing.T) {
	c := newTokenCache(1) // one shard, one slot: eviction is deterministic
	now := time.Now().UnixNano()
	a, b := keyOf(1), keyOf(2)
	c.Put(&a, Principal{Subject: "a"}, now+10, now)
	c.Put(&b, Principal{Subject: "b"}, now+int64(time.Hour), now+20) // a has expired by now+20
	if _, found, _ := c.Get(&a, now+20); found {
		t.Fatal("expired entry kept")
	}
	if p, _, live := c.Get(&b, now+20); !live || p.Subject != "b" {
		t.Fatal("new entry missing")
	}

	// With a full shard of live entries, the one closest to expiry goes.
	c = &tokenCache{shards: make([]cacheShard[Principal], 1), mask: 0, perShard: 3}
	c.shards[0].m = map[cacheKey]cacheEntry[Principal]{}
	for i, dl := range []int64{300, 100, 200} {
		k := keyOf(i)
		c.Put(&k, Principal{}, now+dl, now)
	}
	k := keyOf(9)
	c.Put(&k, Principal{}, now+400, now)
	soonest := keyOf(1)
	if _, found, _ := c.Get(&soonest, now); found {
		t.Fatal("the soonest-expiring entry was not the one evicted")
	}
	if c.Len() != 3 {
		t.Fatalf("len = %d, want 3", c.Len())
	}
}

func TestTokenCache_Concurrent(t *testing.T) {
	c := newTokenCache(64)
	now := time.Now().UnixNano()
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				k := keyOf(g*100000 + i%200)
				if _, found, live := c.Get(&k, now+int64(i)); !found || !live {
					c.Put(&k, Principal{Subject: "s", Scopes: []string{"a"}}, now+int64(i)+1000, now+int64(i))
				}
			}
		}(g)
	}
	wg.Wait()
	if c.Len() > 64 {
		t.Fatalf("len = %d > 64", c.Len())
	}
}

func TestVerify_ConcurrentSameToken(t *testing.T) {
	e := newEnv(t, 0)
	tok := e.es256(t, claims(time.Now()))
	other := sign(t, jwt.SigningMethodRS256, e.rsaKey, map[string]any{"kid": e.rsaKID}, claims(time.Now()))
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				raw := tok
				if (g+i)%2 == 0 {
					raw = other
				}
				p, err := e.v.Verify(context.Background(), raw)
				if err != nil {
					errs <- err
					return
				}
				p.Scopes[0] = "x" // must never be seen by another goroutine
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := e.lookups.Load(); n > 32 {
		t.Fatalf("key lookups = %d; the cache did not absorb repeats", n)
	}
	p, err := e.v.Verify(context.Background(), tok)
	if err != nil || p.Scopes[0] != "tenant.read" {
		t.Fatalf("%+v %v", p, err)
	}
}
