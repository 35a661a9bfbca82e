package ratelimit

import (
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// cell is one limit as the GCRA sees it: the emission interval T = Period/Rate and the burst
// offset τ = T × Burst, in microseconds. A request is allowed when, with tat' = max(tat, now) + T,
// now ≥ tat' − τ; tat' is then stored. Burst requests pass at once, then one per T.
type cell struct {
	key      string
	interval float64 // µs
	offset   float64 // µs
	enforce  bool
	argv     [3]any // gcraScript's ARGV for this cell (formatted once, not per request)
}

func newCell(interval, offset float64, enforce bool) cell {
	e := "0"
	if enforce {
		e = "1"
	}
	return cell{interval: interval, offset: offset, enforce: enforce,
		argv: [3]any{strconv.FormatFloat(interval, 'f', -1, 64), strconv.FormatFloat(offset, 'f', -1, 64), e}}
}

// outcome is one cell's answer.
type outcome struct {
	allowed    bool          // this cell would let the request pass
	remaining  int           // requests that could pass at once after this one
	retryAfter time.Duration // until this cell lets one request pass (only when !allowed)
	reset      time.Duration // until this cell is back to its full burst
}

// gcraScript evaluates every cell of one request atomically on Redis's clock (one source of time
// for every instance). The request passes unless an enforced cell refuses it; only then are the
// cells that allowed it advanced (a refused request, or a cell that refused in shadow mode, consumes
// nothing, so a shadow cell counts exactly what enforcing it would refuse). Every key of a request
// carries the tenant's hash tag, so the script is valid on a cluster.
//
// A cell's stored time is never taken as further ahead than the burst offset of the limit asked
// now: under one limit it never is (only allowed requests store it, within the offset), and when an
// edition's limit changes, the debt run up under the old one is stored as an empty burst of the new
// one (a raised limit applies within one new interval, it does not wait out the old debt).
//
// ARGV per key i: interval µs, burst offset µs, 1 to enforce / 0 for shadow. Returns, per key:
// allowed (0/1), remaining, retry-after µs, reset µs.
var gcraScript = redis.NewScript(`
local t = redis.call("TIME")
local now = (tonumber(t[1]) - 1483228800) * 1000000 + tonumber(t[2])
local n = #KEYS
local tat, newtat, ok = {}, {}, {}
local refused = false
for i = 1, n do
  local interval = tonumber(ARGV[3*i-2])
  local offset = tonumber(ARGV[3*i-1])
  local v = tonumber(redis.call("GET", KEYS[i]) or now) or now
  if v < now then v = now end
  if v > now + offset then
    v = now + offset
    redis.call("SET", KEYS[i], string.format("%.0f", v), "PX", math.ceil(offset / 1000) + 1000)
  end
  tat[i] = v
  newtat[i] = v + interval
  ok[i] = now >= newtat[i] - offset
  if not ok[i] and ARGV[3*i] == "1" then refused = true end
end
local out = {}
for i = 1, n do
  local interval = tonumber(ARGV[3*i-2])
  local offset = tonumber(ARGV[3*i-1])
  local allowed, remaining, retry, reset = 0, 0, 0, 0
  if ok[i] then
    allowed = 1
    if refused then
      remaining = math.floor((now - (tat[i] - offset)) / interval)
      reset = tat[i] - now
    else
      remaining = math.floor((now - (newtat[i] - offset)) / interval)
      reset = newtat[i] - now
      redis.call("SET", KEYS[i], string.format("%.0f", newtat[i]), "PX", math.ceil(reset / 1000) + 1000)
    end
  else
    retry = (newtat[i] - offset) - now
    reset = tat[i] - now
  end
  out[#out+1] = allowed
  out[#out+1] = remaining
  out[#out+1] = math.ceil(retry)
  out[#out+1] = math.ceil(reset)
end
return out
`)

// parseScript reads gcraScript's reply for n cells.
func parseScript(v any, n int) ([]outcome, bool) {
	vs, ok := v.([]any)
	if !ok || len(vs) != 4*n {
		return nil, false
	}
	out := make([]outcome, n)
	for i := range out {
		var f [4]int64
		for j := range f {
			x, ok := vs[4*i+j].(int64)
			if !ok {
				return nil, false
			}
			f[j] = x
		}
		out[i] = outcome{allowed: f[0] == 1, remaining: int(f[1]),
			retryAfter: time.Duration(f[2]) * time.Microsecond, reset: time.Duration(f[3]) * time.Microsecond}
	}
	return out, true
}

// memory is the per-instance GCRA used while Redis is unreachable: the same cells and the same
// rule as gcraScript, on this process's clock. Each instance allows the full rate on its own, so
// during an outage a tenant served by k instances may get up to k × its rate.
type memory struct {
	mu    sync.Mutex
	tats  map[string]float64 // key → tat, µs since epoch
	max   int
	epoch time.Time
}

func newMemory(max int) *memory {
	return &memory{tats: map[string]float64{}, max: max, epoch: time.Now()}
}

func (m *memory) now() float64 { return float64(time.Since(m.epoch).Microseconds()) }

// allow is gcraScript in process.
func (m *memory) allow(cells []cell) []outcome {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if len(m.tats) >= m.max {
		m.sweep(now)
	}
	out := make([]outcome, len(cells))
	tat := make([]float64, len(cells))
	refused := false
	for i, c := range cells {
		tat[i] = max(m.tats[c.key], now)
		if tat[i] > now+c.offset {
			tat[i] = now + c.offset
			m.tats[c.key] = tat[i]
		}
		if now < tat[i]+c.interval-c.offset {
			if c.enforce {
				refused = true
			}
			out[i] = outcome{retryAfter: us(tat[i] + c.interval - c.offset - now), reset: us(tat[i] - now)}
			continue
		}
		out[i].allowed = true
	}
	for i, c := range cells {
		if !out[i].allowed {
			continue
		}
		if refused {
			out[i].remaining = int(math.Floor((now - (tat[i] - c.offset)) / c.interval))
			out[i].reset = us(tat[i] - now)
			continue
		}
		n := tat[i] + c.interval
		m.tats[c.key] = n
		out[i].remaining = int(math.Floor((now - (n - c.offset)) / c.interval))
		out[i].reset = us(n - now)
	}
	return out
}

// sweep drops the cells that are back to their full burst (tat in the past); if that frees too
// little, everything (a fresh start errs on the allowing side, like an expired Redis key).
func (m *memory) sweep(now float64) {
	for k, t := range m.tats {
		if t <= now {
			delete(m.tats, k)
		}
	}
	if len(m.tats) >= m.max*3/4 {
		clear(m.tats)
	}
}

func us(f float64) time.Duration { return time.Duration(math.Ceil(f)) * time.Microsecond }
