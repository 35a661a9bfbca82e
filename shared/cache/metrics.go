package cache

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"spine/shared/telemetry"
)

// MetricsHook is a go-redis hook that records every keyed Redis command as a store operation
// (telemetry.StoreRedis): op is the command ("get", "set", "del", "evalsha", …, or "pipeline" for
// a pipeline), service and tenant come from the key by Spine's convention
// ({t:<tenantId>}:<service>:…, or {p}:<service>:… for platform keys, recorded for the request's
// tenant if any, else "none"),
// outcome is notfound for a nil reply (a cache miss), size is the value's bytes for GET and SET,
// and items the number of keys for DEL and of commands for a pipeline. Commands without a key
// (PING, HELLO, …) are not recorded. Add it to the client (rdb.AddHook) that every Redis user shares,
// so every future user inherits it.
func MetricsHook() redis.Hook { return metricsHook{} }

type metricsHook struct{}

// DialHook implements redis.Hook; dials are not store operations.
func (metricsHook) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessHook implements redis.Hook.
func (metricsHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		key, ok := firstKey(cmd)
		if !ok {
			return next(ctx, cmd)
		}
		tenant, service := ParseKey(key)
		op := telemetry.Start(ctx, service, telemetry.StoreRedis, cmd.Name(), tenant)
		err := next(ctx, cmd)
		if op.Active() {
			items, bytes := sizeOf(cmd)
			op.EndWith(ctx, redisOutcome(err), items, bytes)
		}
		return err
	}
}

// ProcessPipelineHook implements redis.Hook: one operation per pipeline, named by its first keyed
// command's key.
func (metricsHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		var key string
		var ok bool
		for _, c := range cmds {
			if key, ok = firstKey(c); ok {
				break
			}
		}
		if !ok {
			return next(ctx, cmds)
		}
		tenant, service := ParseKey(key)
		op := telemetry.Start(ctx, service, telemetry.StoreRedis, "pipeline", tenant)
		err := next(ctx, cmds)
		op.EndWith(ctx, redisOutcome(err), int64(len(cmds)), telemetry.NoSize)
		return err
	}
}

func redisOutcome(err error) string {
	if errors.Is(err, redis.Nil) {
		return telemetry.OutcomeNotFound
	}
	return telemetry.OutcomeOf(err)
}

// firstKey returns the command's first key argument.
func firstKey(cmd redis.Cmder) (string, bool) {
	args := cmd.Args()
	pos := 1
	switch cmd.Name() {
	case "eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro":
		// script, numkeys, key…
		if len(args) < 4 || argString(args[2]) == "0" {
			return "", false
		}
		pos = 3
	case "ping", "hello", "auth", "client", "select", "info", "quit", "echo", "command", "cluster", "multi", "exec", "discard", "script", "function":
		return "", false
	}
	if len(args) <= pos {
		return "", false
	}
	s := argString(args[pos])
	return s, s != ""
}

func argString(a any) string {
	switch v := a.(type) {
	case string:
		return v
	case []byte:
		return string(v)
	case int:
		return strconv.Itoa(v)
	case int64:
		return strconv.FormatInt(v, 10)
	}
	return ""
}

// sizeOf returns the items and bytes a command moved, NoSize where not meaningful.
func sizeOf(cmd redis.Cmder) (items, bytes int64) {
	items, bytes = telemetry.NoSize, telemetry.NoSize
	switch cmd.Name() {
	case "get":
		if c, ok := cmd.(*redis.StringCmd); ok && c.Err() == nil {
			bytes = int64(len(c.Val()))
		}
	case "set", "setex", "setnx":
		if args := cmd.Args(); len(args) > 2 {
			switch v := args[2].(type) {
			case string:
				bytes = int64(len(v))
			case []byte:
				bytes = int64(len(v))
			}
		}
	case "del", "unlink":
		items = int64(len(cmd.Args()) - 1)
	}
	return items, bytes
}

// ParseKey returns the tenant and service of a key built by TenantKey or PlatformKey: tenant ""
// for a platform key; service "unknown" for a key that follows neither convention.
func ParseKey(key string) (tenant, service string) {
	var rest string
	switch {
	case strings.HasPrefix(key, "{t:"):
		end := strings.IndexByte(key, '}')
		if end < 0 {
			return "", "unknown"
		}
		tenant, rest = key[3:end], key[end+1:]
	case strings.HasPrefix(key, "{p}"):
		rest = key[3:]
	default:
		return "", "unknown"
	}
	rest = strings.TrimPrefix(rest, ":")
	if i := strings.IndexByte(rest, ':'); i > 0 {
		return tenant, rest[:i]
	}
	return tenant, "unknown"
}

// Ping reports whether Redis answers within ctx; a nil Cache (no Redis configured) answers nil.
func (c *Cache) Ping(ctx context.Context) error {
	if c == nil {
		return nil
	}
	return c.rdb.Ping(ctx).Err()
}
