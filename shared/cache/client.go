package cache

import (
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// Client timeouts: Redis is a cache, and a slow cache must not make reads slow. A failed command
// costs at most one dial (DialTimeout) and one read (ReadTimeout); the cache then bypasses Redis
// for its Cooldown and reads go to SQL.
const (
	DialTimeout  = 250 * time.Millisecond
	ReadTimeout  = 200 * time.Millisecond
	WriteTimeout = 200 * time.Millisecond
)

// ClientOptions parses a redis:// or rediss:// URL into go-redis options that fail fast: no
// command retries (MaxRetries -1; go-redis reads 0 as "the default, 3"), one dial attempt per
// connection (DialerRetries 1; the default 5 adds 4 × 100 ms of backoff), and a pool wait no
// longer than a dial. The error never repeats the URL, which may hold a password.
func ClientOptions(url string) (*redis.Options, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, errors.New("not a valid Redis URL")
	}
	opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout = DialTimeout, ReadTimeout, WriteTimeout
	opt.MaxRetries = -1
	opt.DialerRetries = 1
	opt.PoolTimeout = DialTimeout
	return opt, nil
}
