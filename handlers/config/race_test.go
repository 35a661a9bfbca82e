package config

import (
	"net/http"
	"sync"
	"testing"
)

// Concurrent PUTs without If-Match creating the same new flag: each is create-or-replace, so one
// creates (201) and every other replaces (200); none is a 500 from the lost insert race.
func TestPutFlag_ConcurrentCreatesOfOneKey_OneCreatedRestReplaced(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	admin := h.admin()
	const writers = 12
	for round := range 4 {
		key := newKey("race")
		codes := make([]int, writers)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range writers {
			wg.Go(func() {
				<-start
				codes[i] = h.do("PUT", "/api/feature-flags/"+key, admin, boolFlagBody()).Code
			})
		}
		close(start)
		wg.Wait()
		created := 0
		for _, c := range codes {
			switch c {
			case http.StatusCreated:
				created++
			case http.StatusOK:
			default:
				t.Fatalf("round %d: a concurrent create-or-replace answered %d (all: %v)", round, c, codes)
			}
		}
		if created != 1 {
			t.Fatalf("round %d: %d creates, want 1 (all: %v)", round, created, codes)
		}
		if m := h.must(http.StatusOK, "GET", "/api/feature-flags/"+key, admin, nil).JSON(t); m["version"] != float64(writers) {
			t.Fatalf("round %d: version %v after %d writes", round, m["version"], writers)
		}
	}
}

// Concurrent PUTs naming the same current version in If-Match: one replaces, every other is 412.
func TestPutFlag_ConcurrentIfMatch_OneWinsRest412(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	admin := h.admin()
	key := newKey("race-im")
	h.must(http.StatusCreated, "PUT", "/api/feature-flags/"+key, admin, boolFlagBody())
	const writers = 8
	codes := make([]int, writers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			<-start
			codes[i] = h.do("PUT", "/api/feature-flags/"+key, admin, boolFlagBody(), "If-Match", `"1"`).Code
		})
	}
	close(start)
	wg.Wait()
	ok := 0
	for _, c := range codes {
		switch c {
		case http.StatusOK:
			ok++
		case http.StatusPreconditionFailed:
		default:
			t.Fatalf("answered %d (all: %v)", c, codes)
		}
	}
	if ok != 1 {
		t.Fatalf("%d replaced, want 1 (all: %v)", ok, codes)
	}
}
