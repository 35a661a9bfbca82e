package authz

import (
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"spine/shared/cache"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
	"spine/shared/testenv"
)

// testDB is this package's fresh database (platform schema + authz's migrations), created in
// TestMain and dropped after.
var testDB *testenv.Database

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, "authz", &testDB)) }

// testClock is a settable clock (codes and tokens expire).
type testClock struct{ offset atomic.Int64 }

func (c *testClock) now() time.Time       { return sqlstore.Now().Add(time.Duration(c.offset.Load())) }
func (c *testClock) move(d time.Duration) { c.offset.Add(int64(d)) }

// newTestCache returns a cache over the stack's Redis with local copies on (the strictest path:
// a local copy must be dropped by every invalidation), closed when t ends.
func newTestCache(t testing.TB) *cache.Cache {
	t.Helper()
	url, err := testenv.Require("SPINE_REDIS_URL")
	if err != nil {
		t.Fatal(err)
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	c := cache.New(rdb, cache.Config{Cooldown: 100 * time.Millisecond, RetryInterval: 50 * time.Millisecond, Local: time.Minute}, nil)
	t.Cleanup(func() { c.Close(); _ = rdb.Close() })
	return c
}

// newTenant returns a fresh tenant id's text.
func newTenant() string { return tenancy.NewTenantID().String() }
