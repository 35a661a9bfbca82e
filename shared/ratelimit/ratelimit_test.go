package ratelimit

import (
	"context"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"spine/shared/entitlements"
	"spine/shared/functions"
	"spine/shared/testenv"
)

// N concurrent clients saturate one tenant's limit for a few seconds: the requests allowed are
// burst + rate × (the time from the first request to the last allowed one), within ±2 %, and
// another tenant, served meanwhile below its own limit, is never refused. The burst is a full
// second of rate, so a client stall shorter than that (a loaded machine) costs no capacity; the
// window ends at the last allowed request, so a stall at the end does not count either. Each end of
// the window is the midpoint of a request's send and answer (when it reached Redis is unknown
// within that span).
func TestAccuracy_ConcurrentClientsGetRateTimesTimePlusBurst(t *testing.T) {
	const (
		rate, burst = 100, 100 // per second
		clients     = 8
		window      = 5 * time.Second
	)
	src := newSource()
	a, b := newTenant(t), newTenant(t)
	lim := entitlements.Limit{Rate: rate, Burst: burst, Period: time.Second}
	src.set(a, lim)
	src.set(b, lim)
	h := newHarness(t, Config{Redis: stackRedis(t), Source: src})
	tokA, tokB := h.token(t, a), h.token(t, b)

	var allowed, refused, other atomic.Int64
	var lastAllowed atomic.Int64 // unix nanos, midpoint of the latest allowed request
	var firstDone atomic.Int64   // unix nanos when the first answer came
	start := time.Now()
	deadline := start.Add(window)
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				sent := time.Now().UnixNano()
				r := h.get(t, routeList, tokA)
				done := time.Now().UnixNano()
				firstDone.CompareAndSwap(0, done)
				switch r.Code {
				case http.StatusOK:
					allowed.Add(1)
					mid := sent + (done-sent)/2
					for {
						prev := lastAllowed.Load()
						if mid <= prev || lastAllowed.CompareAndSwap(prev, mid) {
							break
						}
					}
				case http.StatusTooManyRequests:
					refused.Add(1)
				default:
					other.Add(1)
				}
				time.Sleep(time.Millisecond) // saturating needs > rate, not every CPU cycle
			}
		}()
	}
	var bAllowed, bOther atomic.Int64
	wg.Add(1)
	go func() { // tenant B: 20 requests per second, a fifth of its rate
		defer wg.Done()
		for time.Now().Before(deadline) {
			if r := h.get(t, routeList, tokB); r.Code == http.StatusOK {
				bAllowed.Add(1)
			} else {
				bOther.Add(1)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	wg.Wait()

	t0 := start.UnixNano() + (firstDone.Load()-start.UnixNano())/2
	elapsed := time.Duration(lastAllowed.Load() - t0)
	want := float64(burst) + rate*elapsed.Seconds()
	got := float64(allowed.Load())
	t.Logf("tenant A: %d allowed, %d refused over %s (want %.0f ± 2 %%); tenant B: %d allowed", allowed.Load(), refused.Load(), elapsed, want, bAllowed.Load())
	if other.Load() != 0 {
		t.Fatalf("%d answers were neither 200 nor 429", other.Load())
	}
	if refused.Load() == 0 {
		t.Fatal("the clients never saturated the limit: the test measured nothing")
	}
	if got < want*0.98 || got > want*1.02 {
		t.Fatalf("allowed %v requests, want %.0f ± 2 %%", got, want)
	}
	if bOther.Load() != 0 || bAllowed.Load() == 0 {
		t.Fatalf("tenant B, below its limit, was refused %d times (allowed %d)", bOther.Load(), bAllowed.Load())
	}
	if s := h.lim.Stats(); s.Memory != 0 || s.RedisErrors != 0 {
		t.Fatalf("decided in memory during the accuracy run: %+v", s)
	}
}

var stateRe = regexp.MustCompile(`^"(tenant|route)";r=(\d+);t=(\d+)$`)

// state parses one item of the RateLimit field.
func state(t *testing.T, item string) (name string, r, tt int) {
	t.Helper()
	m := stateRe.FindStringSubmatch(strings.TrimSpace(item))
	if m == nil {
		t.Fatalf("RateLimit item %q is not \"name\";r=<n>;t=<n>", item)
	}
	r, _ = strconv.Atoi(m[2])
	tt, _ = strconv.Atoi(m[3])
	return m[1], r, tt
}

func TestHeaders_TenantPolicyAndStateOnEveryLimitedResponse(t *testing.T) {
	src := newSource()
	tn := newTenant(t)
	src.set(tn, perMinute("", 10, 5)) // one request per 6 s, bursts of 5
	h := newHarness(t, Config{Redis: stackRedis(t), Source: src})
	tok := h.token(t, tn)
	for i := range 3 {
		r := h.get(t, routeList, tok)
		if r.Code != http.StatusOK {
			t.Fatalf("request %d: %d %s", i, r.Code, r.Body)
		}
		if got := r.Header.Get(HeaderPolicy); got != `"tenant";q=5;w=60` {
			t.Fatalf("RateLimit-Policy = %q", got)
		}
		name, rem, tt := state(t, r.Header.Get(HeaderState))
		// After i+1 requests: 4-i left; full again after (i+1) × 6 s (t rounds up).
		if name != "tenant" || rem != 4-i || tt < 6*(i+1)-1 || tt > 6*(i+1) {
			t.Fatalf("request %d: RateLimit = %q", i, r.Header.Get(HeaderState))
		}
	}
}

func TestHeaders_RouteLimitAddsARoutePolicy(t *testing.T) {
	src := newSource()
	tn := newTenant(t)
	src.set(tn, perMinute("", 100, 50), perMinute(routeOne, 6, 2))
	h := newHarness(t, Config{Redis: stackRedis(t), Source: src})
	r := h.get(t, "/api/things/42", h.token(t, tn))
	if r.Code != http.StatusOK {
		t.Fatal(r.Code)
	}
	if got := r.Header.Get(HeaderPolicy); got != `"tenant";q=50;w=60, "route";q=2;w=60` {
		t.Fatalf("RateLimit-Policy = %q", got)
	}
	items := strings.Split(r.Header.Get(HeaderState), ",")
	if len(items) != 2 {
		t.Fatalf("RateLimit = %q", r.Header.Get(HeaderState))
	}
	if n, rem, _ := state(t, items[0]); n != "tenant" || rem != 49 {
		t.Fatalf("RateLimit = %q", r.Header.Get(HeaderState))
	}
	if n, rem, _ := state(t, items[1]); n != "route" || rem != 1 {
		t.Fatalf("RateLimit = %q", r.Header.Get(HeaderState))
	}
	// The other route has no limit of its own.
	if got := h.get(t, routeList, h.token(t, tn)).Header.Get(HeaderPolicy); got != `"tenant";q=50;w=60` {
		t.Fatalf("RateLimit-Policy on an unlimited route = %q", got)
	}
}

func TestLimited_429ProblemWithRetryAfterAtLeastT(t *testing.T) {
	src := newSource()
	tn := newTenant(t)
	src.set(tn, perMinute("", 1, 3))
	h := newHarness(t, Config{Redis: stackRedis(t), Source: src})
	tok := h.token(t, tn)
	for range 3 {
		if r := h.get(t, routeList, tok); r.Code != http.StatusOK {
			t.Fatal(r.Code)
		}
	}
	r := h.get(t, routeList, tok)
	if r.Code != http.StatusTooManyRequests {
		t.Fatalf("4th request: %d, want 429", r.Code)
	}
	if code := r.ProblemCode(t); code != "rate-limited" {
		t.Fatalf("code %q", code)
	}
	if st, _ := r.JSON(t)["status"].(float64); st != 429 {
		t.Fatalf("problem status %v", st)
	}
	name, rem, tt := state(t, r.Header.Get(HeaderState))
	retry, err := strconv.Atoi(r.Header.Get("Retry-After"))
	if err != nil || name != "tenant" || rem != 0 || tt < 1 || retry < tt || tt > 60 {
		t.Fatalf("Retry-After %q, RateLimit %q", r.Header.Get("Retry-After"), r.Header.Get(HeaderState))
	}
	if got := r.Header.Get(HeaderPolicy); got != `"tenant";q=3;w=60` {
		t.Fatalf("RateLimit-Policy = %q", got)
	}
	if s := h.lim.Stats(); s.Limited != 1 || s.Allowed != 3 {
		t.Fatalf("stats %+v", s)
	}
}

// A request the route's limit refuses consumes nothing of the tenant's limit, and its answer names
// only the limit that refused it.
func TestRouteLimit_RefusalConsumesNoTenantBudget(t *testing.T) {
	src := newSource()
	tn := newTenant(t)
	src.set(tn, perMinute("", 100, 100), perMinute(routeOne, 1, 1))
	h := newHarness(t, Config{Redis: stackRedis(t), Source: src})
	tok := h.token(t, tn)
	if r := h.get(t, "/api/things/1", tok); r.Code != http.StatusOK {
		t.Fatal(r.Code)
	}
	for range 3 {
		r := h.get(t, "/api/things/2", tok)
		if r.Code != http.StatusTooManyRequests {
			t.Fatalf("%d, want 429", r.Code)
		}
		if got := r.Header.Get(HeaderPolicy); got != `"route";q=1;w=60` {
			t.Fatalf("RateLimit-Policy of the refusal = %q", got)
		}
	}
	r := h.get(t, routeList, tok)
	if _, rem, _ := state(t, r.Header.Get(HeaderState)); r.Code != http.StatusOK || rem != 98 {
		t.Fatalf("tenant budget after 1 allowed and 3 refused: %d %q (want r=98)", r.Code, r.Header.Get(HeaderState))
	}
}

// The keys follow the {t:<tenant>}:ratelimit:… convention (one cluster slot per tenant).
func TestKeys_CarryTheTenantHashTag(t *testing.T) {
	src := newSource()
	tn := newTenant(t)
	src.set(tn, perMinute("", 10, 10), perMinute(routeOne, 10, 10))
	rdb := stackRedis(t)
	h := newHarness(t, Config{Redis: rdb, Source: src})
	if r := h.get(t, "/api/things/1", h.token(t, tn)); r.Code != http.StatusOK {
		t.Fatal(r.Code)
	}
	ctx := context.Background()
	for _, k := range []string{"{t:" + tn.String() + "}:ratelimit:tenant", "{t:" + tn.String() + "}:ratelimit:route:" + routeOne} {
		if ttl := rdb.PTTL(ctx, k).Val(); ttl <= 0 {
			t.Fatalf("key %s: PTTL %v (want a key that expires)", k, ttl)
		}
	}
}

// Redis stopped while clients keep sending: no answer is a 5xx, decisions move to memory at the
// same limits (a tenant over its burst is still refused), and come back to Redis once it returns.
func TestRedisStopped_NoFiveHundredsAndInMemoryFallback(t *testing.T) {
	rs := testenv.StartRedis(t)
	src := newSource()
	busy, fresh := newTenant(t), newTenant(t)
	src.set(busy, entitlements.Limit{Rate: 50, Burst: 10, Period: time.Second})
	src.set(fresh, perMinute("", 1, 5))
	h := newHarness(t, Config{Redis: redisClient(t, rs.URL()), Source: src, Cooldown: 50 * time.Millisecond})
	tok := h.token(t, busy)

	var fives, oks, limited atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				r := h.get(t, routeList, tok)
				switch {
				case r.Code >= 500:
					fives.Add(1)
				case r.Code == http.StatusOK:
					oks.Add(1)
				case r.Code == http.StatusTooManyRequests:
					limited.Add(1)
				}
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	rs.Stop()
	time.Sleep(700 * time.Millisecond)

	// During the outage a fresh tenant still gets exactly its burst, from memory.
	ft := h.token(t, fresh)
	for i := range 5 {
		r := h.get(t, routeList, ft)
		if r.Code != http.StatusOK || r.Header.Get(HeaderPolicy) != `"tenant";q=5;w=60` {
			t.Fatalf("request %d during the outage: %d %q", i, r.Code, r.Header.Get(HeaderPolicy))
		}
	}
	if r := h.get(t, routeList, ft); r.Code != http.StatusTooManyRequests || r.ProblemCode(t) != "rate-limited" {
		t.Fatalf("over the burst during the outage: %d", r.Code)
	}
	outage := h.lim.Stats()

	rs.Start()
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()
	after := h.lim.Stats()
	t.Logf("200: %d, 429: %d, stats at the outage's end %+v, at the end %+v", oks.Load(), limited.Load(), outage, after)
	if fives.Load() != 0 {
		t.Fatalf("%d answers were 5xx", fives.Load())
	}
	if outage.Memory == 0 || outage.RedisErrors == 0 {
		t.Fatalf("the outage went unnoticed: %+v", outage)
	}
	if oks.Load() == 0 || limited.Load() == 0 {
		t.Fatalf("the busy tenant was not limited throughout: 200 %d, 429 %d", oks.Load(), limited.Load())
	}
	// Back on Redis: decisions leave memory. go-redis re-dials once a second after a run of dial
	// errors, so this waits (bounded) for a decision that is not taken in memory.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		before := h.lim.Stats().Memory
		if r := h.get(t, routeList, tok); r.Code >= 500 {
			t.Fatal(r.Code)
		}
		if h.lim.Stats().Memory == before {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("still deciding in memory 10 s after Redis returned")
		}
	}
}

// Redis frozen (it accepts connections but answers nothing): requests pass on the in-memory
// limiter after the client's read timeout, never as a 5xx.
func TestRedisFrozen_FailsOpenToMemory(t *testing.T) {
	rs := testenv.StartRedis(t)
	src := newSource()
	tn := newTenant(t)
	src.set(tn, perMinute("", 1, 2))
	// A cooldown longer than the test: after the first timeout, every decision is in memory.
	h := newHarness(t, Config{Redis: redisClient(t, rs.URL()), Source: src, Cooldown: time.Minute})
	tok := h.token(t, tn)
	if r := h.get(t, routeList, tok); r.Code != http.StatusOK {
		t.Fatal(r.Code)
	}
	rs.Pause()
	defer rs.Resume()
	codes := []int{h.get(t, routeList, tok).Code, h.get(t, routeList, tok).Code, h.get(t, routeList, tok).Code}
	// Memory starts afresh: its burst of 2, then 429.
	if codes[0] != http.StatusOK || codes[1] != http.StatusOK || codes[2] != http.StatusTooManyRequests {
		t.Fatalf("answers while Redis is frozen: %v", codes)
	}
	if s := h.lim.Stats(); s.RedisErrors == 0 || s.Memory != 3 {
		t.Fatalf("stats %+v", s)
	}
}

// A shadow route counts what its limit would refuse, refuses nothing, and shows no policy; the
// metric records the shadow-limited requests.
func TestShadowRoute_CountsWithoutRefusing(t *testing.T) {
	src := newSource()
	tn := newTenant(t)
	src.set(tn, perMinute("", 100, 100), perMinute(routeOne, 1, 1))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	h := newHarness(t, Config{Redis: stackRedis(t), Source: src, Shadow: []string{routeOne}, Meter: mp})
	tok := h.token(t, tn)
	for i := range 4 {
		r := h.get(t, "/api/things/7", tok)
		if r.Code != http.StatusOK {
			t.Fatalf("request %d on a shadow route: %d", i, r.Code)
		}
		if got := r.Header.Get(HeaderPolicy); got != `"tenant";q=100;w=60` {
			t.Fatalf("RateLimit-Policy on a shadow route = %q", got)
		}
	}
	if s := h.lim.Stats(); s.ShadowLimited != 3 || s.Limited != 0 || s.Allowed != 4 {
		t.Fatalf("stats %+v", s)
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var shadow int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "spine.ratelimit.decisions" {
				continue
			}
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				if v, _ := dp.Attributes.Value(attribute.Key("outcome")); v.AsString() == "shadow-limited" {
					if r, _ := dp.Attributes.Value(attribute.Key("route")); r.AsString() != routeOne {
						t.Fatalf("shadow-limited recorded for route %q", r.AsString())
					}
					shadow += dp.Value
				}
			}
		}
	}
	if shadow != 3 {
		t.Fatalf("metric spine.ratelimit.decisions{outcome=shadow-limited} = %d, want 3", shadow)
	}
}

// An edition's own shadow limit (entitlements.Limit.Shadow) counts without refusing, with no
// deployment setting; the tenant-wide limit next to it is still enforced.
func TestShadowLimitOfTheEdition_CountsWithoutRefusing(t *testing.T) {
	src := newSource()
	tn := newTenant(t)
	shadow := perMinute(routeOne, 1, 1)
	shadow.Shadow = true
	src.set(tn, perMinute("", 5, 5), shadow)
	h := newHarness(t, Config{Redis: stackRedis(t), Source: src})
	tok := h.token(t, tn)
	var codes []int
	for range 7 {
		codes = append(codes, h.get(t, "/api/things/7", tok).Code)
	}
	want := []int{200, 200, 200, 200, 200, 429, 429}
	if !slices.Equal(codes, want) {
		t.Fatalf("codes %v, want %v (the route limit is shadow, the tenant limit of 5 is not)", codes, want)
	}
	if s := h.lim.Stats(); s.ShadowLimited != 6 || s.Limited != 2 {
		t.Fatalf("stats %+v, want 6 shadow-limited (requests 2-7: what enforcing it would refuse) and 2 limited", s)
	}
}

func TestExempt_PlatformAdminIsNeverLimited(t *testing.T) {
	src := newSource()
	tn := newTenant(t)
	src.set(tn, perMinute("", 1, 1))
	h := newHarness(t, Config{Redis: stackRedis(t), Source: src})
	admin := h.tokens.Mint(t, tn.String(), true) // even one carrying a tenant_id
	for i := range 5 {
		r := h.get(t, routeList+"?tenantId="+tn.String(), admin)
		if r.Code != http.StatusOK || r.Header.Get(HeaderPolicy) != "" || r.Header.Get(HeaderState) != "" {
			t.Fatalf("platform admin request %d: %d, policy %q", i, r.Code, r.Header.Get(HeaderPolicy))
		}
	}
	if src.calls.Load() != 0 {
		t.Fatal("a platform admin's request asked for limits")
	}
}

// Host invocations (POST /<Function>) are not on the /api group the limiter is mounted on.
func TestExempt_HostInvokedFunctionsAreNotLimited(t *testing.T) {
	src := newSource()
	h := newHarness(t, Config{Redis: stackRedis(t), Source: src})
	reg := &functions.Registry{}
	var ran atomic.Int64
	if err := reg.Add(functions.Function{Name: "Tick", Timer: &functions.TimerTrigger{Schedule: "0 * * * * *"},
		Handler: func(context.Context, *functions.Invocation) (*functions.Result, error) {
			ran.Add(1)
			return &functions.Result{}, nil
		}}); err != nil {
		t.Fatal(err)
	}
	functions.Mount(h.e, reg, nil)
	for i := range 5 {
		status, _, body, err := functions.Invoke(context.Background(), h.e, "Tick", functions.TimerData(time.Now(), time.Now().Add(time.Minute), false), nil)
		if err != nil || status != http.StatusOK {
			t.Fatalf("invocation %d: %d %s %v", i, status, body, err)
		}
	}
	if ran.Load() != 5 || src.calls.Load() != 0 || h.lim.Stats() != (Stats{}) {
		t.Fatalf("ran %d, limits asked %d, stats %+v", ran.Load(), src.calls.Load(), h.lim.Stats())
	}
}

// An edition without a tenant-wide limit (no limits at all, or only per-route ones) still limits
// the tenant: the fallback edition's tenant-wide limit applies next to its own route limits.
func TestNoTenantLimit_TheFallbackTenantLimitApplies(t *testing.T) {
	src := newSource()
	none, routeOnly := newTenant(t), newTenant(t)
	src.set(none) // an edition without limits
	src.set(routeOnly, perMinute(routeOne, 60, 7))
	h := newHarness(t, Config{Redis: stackRedis(t), Source: src})
	if r := h.get(t, routeList, h.tokens.Mint(t, none.String(), false)); r.Code != http.StatusOK || r.Header.Get(HeaderPolicy) != `"tenant";q=20;w=1` {
		t.Fatalf("no limits: %d, policy %q, want the built-in fallback", r.Code, r.Header.Get(HeaderPolicy))
	}
	r := h.get(t, "/api/things/7", h.tokens.Mint(t, routeOnly.String(), false))
	if r.Code != http.StatusOK || r.Header.Get(HeaderPolicy) != `"tenant";q=20;w=1, "route";q=7;w=60` {
		t.Fatalf("route limit only: %d, policy %q", r.Code, r.Header.Get(HeaderPolicy))
	}
}

// A tenant the Source knows no entitlements of (no live subscription: cancelled, not yet
// subscribed) is limited by the fallback edition, or by FallbackLimits when that edition is
// unknown too: a tenant token is never unlimited.
func TestUnknownTenant_LimitedByTheFallbackEdition(t *testing.T) {
	src := newSource()
	h := newHarness(t, Config{Redis: stackRedis(t), Source: src})
	r := h.get(t, routeList, h.tokens.Mint(t, newTenant(t).String(), false))
	if r.Code != http.StatusOK || r.Header.Get(HeaderPolicy) != `"tenant";q=20;w=1` {
		t.Fatalf("no fallback edition: %d, policy %q, want the built-in fallback", r.Code, r.Header.Get(HeaderPolicy))
	}
	src.setEdition("basic", perMinute("", 60, 3))
	h2 := newHarness(t, Config{Redis: stackRedis(t), Source: src, FallbackEdition: "basic"})
	tok := h2.tokens.Mint(t, newTenant(t).String(), false)
	var codes []int
	for range 4 {
		r := h2.get(t, routeList, tok)
		codes = append(codes, r.Code)
		if r.Header.Get(HeaderPolicy) != `"tenant";q=3;w=60` {
			t.Fatalf("policy %q, want the fallback edition's", r.Header.Get(HeaderPolicy))
		}
	}
	if !slices.Equal(codes, []int{200, 200, 200, 429}) {
		t.Fatalf("codes %v, want the fallback edition's burst of 3 then 429", codes)
	}
}

// A copy of a tenant's limits older than twice LimitsTTL is not served while it reloads: after an
// idle spell, the first request is decided by the Source's current limits.
func TestLimits_AfterAnIdleSpellTheFirstRequestSeesTheChange(t *testing.T) {
	src := newSource()
	tn := newTenant(t)
	src.set(tn, perMinute("", 100, 30))
	h := newHarness(t, Config{Redis: stackRedis(t), Source: src, LimitsTTL: 50 * time.Millisecond})
	tok := h.token(t, tn)
	if r := h.get(t, routeList, tok); r.Header.Get(HeaderPolicy) != `"tenant";q=30;w=60` {
		t.Fatalf("policy %q", r.Header.Get(HeaderPolicy))
	}
	src.set(tn, perMinute("", 100, 31))
	time.Sleep(120 * time.Millisecond) // past 2 × LimitsTTL
	if r := h.get(t, routeList, tok); r.Header.Get(HeaderPolicy) != `"tenant";q=31;w=60` {
		t.Fatalf("the first request after the idle spell: policy %q, want the changed limit", r.Header.Get(HeaderPolicy))
	}
}

// Limits are asked once per tenant per LimitsTTL; a Source failure keeps the last known limits
// (never a 5xx).
func TestLimits_CachedPerTenantAndKeptWhenTheSourceFails(t *testing.T) {
	src := newSource()
	tn := newTenant(t)
	src.set(tn, perMinute("", 100, 100))
	h := newHarness(t, Config{Redis: stackRedis(t), Source: src, LimitsTTL: 100 * time.Millisecond})
	tok := h.token(t, tn)
	for range 10 {
		if r := h.get(t, routeList, tok); r.Code != http.StatusOK {
			t.Fatal(r.Code)
		}
	}
	if n := src.calls.Load(); n != 1 {
		t.Fatalf("Source asked %d times within the TTL, want 1", n)
	}
	src.fail(errBillingDown)
	time.Sleep(150 * time.Millisecond)
	// The stale copy serves while the reload (which fails) runs in the background, and after it.
	for i := range 2 {
		r := h.get(t, routeList, tok)
		if r.Code != http.StatusOK || r.Header.Get(HeaderPolicy) != `"tenant";q=100;w=60` {
			t.Fatalf("request %d with the Source failing: %d, policy %q", i, r.Code, r.Header.Get(HeaderPolicy))
		}
		for deadline := time.Now().Add(5 * time.Second); src.calls.Load() < 2 && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if n := src.calls.Load(); n != 2 {
		t.Fatalf("Source asked %d times, want 2", n)
	}
}

// A Source that does not answer holds a tenant's first request at most SourceTimeout; it passes
// unlimited, and the answer, once it comes, limits the next ones.
func TestLimits_SlowSourcePassesTheFirstRequestUnlimited(t *testing.T) {
	src := newSource()
	tn := newTenant(t)
	src.set(tn, perMinute("", 100, 100))
	release := make(chan struct{})
	src.block = release
	h := newHarness(t, Config{Redis: stackRedis(t), Source: src, SourceTimeout: 20 * time.Millisecond})
	tok := h.token(t, tn)
	if r := h.get(t, routeList, tok); r.Code != http.StatusOK || r.Header.Get(HeaderPolicy) != "" {
		t.Fatalf("first request with the Source stuck: %d, policy %q", r.Code, r.Header.Get(HeaderPolicy))
	}
	close(release)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		r := h.get(t, routeList, tok)
		if r.Code != http.StatusOK {
			t.Fatal(r.Code)
		}
		if r.Header.Get(HeaderPolicy) == `"tenant";q=100;w=60` {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the late answer never limited the tenant")
		}
	}
	if n := src.calls.Load(); n != 1 {
		t.Fatalf("Source asked %d times, want 1 (one shared load)", n)
	}
}

// Without Redis every decision is in memory, with the same GCRA.
func TestMemoryOnly_BurstThenRefused(t *testing.T) {
	src := newSource()
	tn := newTenant(t)
	src.set(tn, perMinute("", 2, 4))
	h := newHarness(t, Config{Source: src})
	tok := h.token(t, tn)
	for i := range 4 {
		r := h.get(t, routeList, tok)
		if _, rem, _ := state(t, r.Header.Get(HeaderState)); r.Code != http.StatusOK || rem != 3-i {
			t.Fatalf("request %d: %d %q", i, r.Code, r.Header.Get(HeaderState))
		}
	}
	r := h.get(t, routeList, tok)
	retry, _ := strconv.Atoi(r.Header.Get("Retry-After"))
	if r.Code != http.StatusTooManyRequests || retry < 29 || retry > 30 {
		t.Fatalf("5th: %d, Retry-After %q", r.Code, r.Header.Get("Retry-After"))
	}
	if s := h.lim.Stats(); s.Memory != 5 || s.RedisErrors != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestNew_RequiresASource(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Fatal("New without a Source succeeded")
	}
}

// A raised limit applies within one new interval: the first request under it finds the old debt
// and stores it as an empty burst of the new limit, so a request one new interval later passes
// instead of waiting out the old debt. (Two limiters over one Redis: instances whose limits were
// reloaded at different times.)
func TestRaisedLimit_AppliesAtOnceWhateverTheOldDebt(t *testing.T) {
	rdb := stackRedis(t)
	tn := newTenant(t)
	tight := newSource()
	tight.set(tn, perMinute("", 1, 3))
	h := newHarness(t, Config{Redis: rdb, Source: tight})
	tok := h.token(t, tn)
	for i := range 3 {
		if r := h.get(t, "/api/things/7", tok); r.Code != http.StatusOK {
			t.Fatalf("request %d within the burst: %d", i, r.Code)
		}
	}
	if r := h.get(t, "/api/things/7", tok); r.Code != http.StatusTooManyRequests {
		t.Fatalf("past the tight burst: %d", r.Code)
	}
	raised := newSource()
	raised.set(tn, perMinute("", 600_000, 100)) // one request per 100 µs
	h2 := newHarness(t, Config{Redis: rdb, Source: raised})
	if r := h2.get(t, "/api/things/7", h2.token(t, tn)); r.Code != http.StatusTooManyRequests && r.Code != http.StatusOK {
		t.Fatalf("the first request under the raised limit: %d", r.Code)
	}
	time.Sleep(time.Millisecond) // ten new intervals
	for i := range 50 {
		if r := h2.get(t, "/api/things/7", h2.token(t, tn)); r.Code != http.StatusOK {
			t.Fatalf("request %d under the raised limit: %d (RateLimit %q)", i, r.Code, r.Header.Get(HeaderState))
		}
	}
}
