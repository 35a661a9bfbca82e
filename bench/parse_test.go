package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The samples in testdata/ are outputs captured on the build machine: wrk 4.1.0 (Debian),
// redis-benchmark 7.0.15, pgbench 15.18 and go test -bench. redis-benchmark-legacy.csv is the
// two-column CSV of redis-benchmark before Redis 7.

func readSample(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParseWrk(t *testing.T) {
	for _, tc := range []struct {
		file                    string
		rps                     float64
		p50, p99                time.Duration
		requests, non2xx, socks int64
		checkOK                 bool
	}{
		{"wrk-latency.txt", 19833.09, 1440 * time.Microsecond, 6760 * time.Microsecond, 59554, 0, 0, true},
		{"wrk-non2xx.txt", 58493.76, 87 * time.Microsecond, 5860 * time.Microsecond, 64471, 64471, 0, false},
		{"wrk-socket-errors.txt", 382.85, 7790 * time.Microsecond, 16610 * time.Microsecond, 766, 0, 6 + 63907, false},
	} {
		t.Run(tc.file, func(t *testing.T) {
			r, err := parseWrk(readSample(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if r.RPS != tc.rps || r.Requests != tc.requests || r.Non2xx != tc.non2xx || r.SocketErrors != tc.socks {
				t.Errorf("got %+v", r)
			}
			if absDur(r.P50-tc.p50) > time.Microsecond || absDur(r.P99-tc.p99) > time.Microsecond {
				t.Errorf("p50 %v p99 %v, want %v %v", r.P50, r.P99, tc.p50, tc.p99)
			}
			if err := r.check(); (err == nil) != tc.checkOK {
				t.Errorf("check() = %v, want ok=%v", err, tc.checkOK)
			}
		})
	}
}

func TestParseWrk_Errors(t *testing.T) {
	if _, err := parseWrk(readSample(t, "wrk-connect-refused.txt")); err == nil {
		t.Error("a run that never connected must not parse")
	}
	noLatency := strings.ReplaceAll(readSample(t, "wrk-latency.txt"), "99%", "98%")
	if _, err := parseWrk(noLatency); err == nil {
		t.Error("output without the 99% line must not parse")
	}
}

func TestParseDurationUnit(t *testing.T) {
	for in, want := range map[[2]string]time.Duration{
		{"87.00", "us"}: 87 * time.Microsecond, {"1.44", "ms"}: 1440 * time.Microsecond,
		{"2.01", "s"}: 2010 * time.Millisecond, {"1.50", "m"}: 90 * time.Second,
	} {
		got, err := parseDurationUnit(in[0], in[1])
		if err != nil || absDur(got-want) > time.Microsecond {
			t.Errorf("%s%s = %v, %v; want %v", in[0], in[1], got, err, want)
		}
	}
}

func TestParseRedisCSV(t *testing.T) {
	r, err := parseRedisCSV(readSample(t, "redis-benchmark-7.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if r.RPS != 122399.02 || r.P50 == nil || *r.P50 != 0.135 || r.P99 == nil || *r.P99 != 0.359 {
		t.Errorf("redis 7: %+v", r)
	}
	r, err = parseRedisCSV(readSample(t, "redis-benchmark-legacy.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if r.RPS != 123456.79 || r.P50 != nil || r.P99 != nil {
		t.Errorf("legacy: %+v", r)
	}
	if _, err := parseRedisCSV(`"test","rps"` + "\n" + `"SET","1"`); err == nil {
		t.Error("no GET line must be an error")
	}
}

func TestParsePgbench(t *testing.T) {
	r, err := parsePgbench(readSample(t, "pgbench.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if r.TPS != 36370.213088 || r.AvgMS != 0.880 || r.Transactions != 103665 || r.Failed != 0 {
		t.Errorf("got %+v", r)
	}
	if _, err := parsePgbench("pgbench: error: connection to server failed"); err == nil {
		t.Error("output without tps must be an error")
	}
}

func TestParsePgbenchLog(t *testing.T) {
	lat, err := parsePgbenchLog(filepath.Join("testdata", "pgbench-tx.log"))
	if err != nil {
		t.Fatal(err)
	}
	if len(lat) != 20 || lat[0] != 0.796 || lat[1] != 0.106 {
		t.Fatalf("got %d latencies starting %v", len(lat), lat[:2])
	}
	if p := percentile(lat, 0.99); p == nil || *p != 0.796 {
		t.Errorf("p99 = %v", p)
	}
}

func TestParseGoBench(t *testing.T) {
	got := parseGoBench(readSample(t, "gobench.txt"))
	if len(got) != 14 {
		t.Fatalf("got %d results: %+v", len(got), got)
	}
	first := got[0]
	if first.Package != "spine/shared/auth" || first.Name != "BenchmarkVerify_Cold" || first.NsPerOp != 98402 ||
		first.BytesPerOp == nil || *first.BytesPerOp != 4881 || first.AllocsPerOp == nil || *first.AllocsPerOp != 83 {
		t.Errorf("first: %+v", first)
	}
	var dq *goBench
	for i := range got {
		if got[i].Name == "BenchmarkPayload/double-quoted" {
			dq = &got[i]
		}
	}
	if dq == nil || dq.Package != "spine/shared/functions" || dq.NsPerOp != 18550 || *dq.AllocsPerOp != 10 {
		t.Errorf("sub-benchmark with MB/s: %+v", dq)
	}
}

func TestParseEnvLine(t *testing.T) {
	for line, want := range map[string][2]string{
		`export SPINE_PG_PORT='34509'`:    {"SPINE_PG_PORT", "34509"},
		`export A='it'\''s'`:              {"A", "it's"},
		`B=plain`:                         {"B", "plain"},
		`export C='x;y=z' `:               {"C", "x;y=z"},
		`export URL='postgres://u:p@h/d'`: {"URL", "postgres://u:p@h/d"},
	} {
		k, v, ok, err := parseEnvLine(line)
		if err != nil || !ok || k != want[0] || v != want[1] {
			t.Errorf("%s → %q %q %v %v", line, k, v, ok, err)
		}
	}
	for _, line := range []string{"", "# comment"} {
		if _, _, ok, err := parseEnvLine(line); ok || err != nil {
			t.Errorf("%q: ok=%v err=%v", line, ok, err)
		}
	}
	if _, _, _, err := parseEnvLine(`export D='unterminated`); err == nil {
		t.Error("an unterminated quote must be an error")
	}
}

func TestLuaScripts(t *testing.T) {
	s := luaGetRotating("/api/tenants/", []string{"a", "b"}, "tok")
	for _, want := range []string{`{"a",`, `"Bearer tok"`, `"/api/tenants/" .. ids[(n % #ids) + 1]`} {
		if !strings.Contains(s, want) {
			t.Errorf("GET script lacks %q:\n%s", want, s)
		}
	}
	if s := luaRegister("tok", "standard"); !strings.Contains(s, `"reg-`+runPlaceholder+`"`) || !strings.Contains(s, `thread:set("tid"`) {
		t.Errorf("register script:\n%s", s)
	}
	if s := luaForm("/api/connect/token", "Basic YTpi", "grant_type=client_credentials&scope=tenant.read"); !strings.Contains(s, `"Basic YTpi"`) ||
		!strings.Contains(s, `"application/x-www-form-urlencoded"`) || !strings.Contains(s, `wrk.format("POST", "/api/connect/token", headers, body)`) {
		t.Errorf("form script:\n%s", s)
	}
	if s := luaAudit([]string{"t1", "t2"}); !strings.Contains(s, `"Bearer t2"`) || !strings.Contains(s, `\"action\":\"document.read\"`) {
		t.Errorf("audit script:\n%s", s)
	}
}

func TestResultsFinishAndTable(t *testing.T) {
	p := func(v float64) *float64 { return &v }
	r := &results{Rows: []row{
		{Case: ceilEcho, Kind: kindCeiling, RPS: 40000, P50: p(0.5), P99: p(3)},
		{Case: caseRead, Kind: kindCase, RPS: 20000, P50: p(1.5), P99: p(12), Ceiling: ceilEcho},
		{Case: caseAuditOne, Kind: kindCase, RPS: 500},
		{Case: caseAuditMany, Kind: kindCase, RPS: 1500},
		{Case: caseAuditRatio, Kind: kindCase, RatioOf: []string{caseAuditMany, caseAuditOne}},
		{Case: caseOutboxDrain, Kind: kindCase, Skipped: "not wired"},
	}}
	r.finish()
	if got := r.Rows[1].Ratio; got == nil || math.Abs(*got-0.5) > 1e-9 {
		t.Errorf("read ratio = %v", got)
	}
	if got := r.Rows[4].Ratio; got == nil || math.Abs(*got-3) > 1e-9 {
		t.Errorf("audit ratio = %v", got)
	}
	var sb strings.Builder
	r.writeTable(&sb)
	for _, want := range []string{"| GET /api/tenants/{id} (cached) | 20,000 | 1.50 ms | 12.0 ms | echo 40,000 | 0.50 | ≥ 0.5 × echo; p99 ≤ 2 ms | not met |",
		"| audit append: 32 tenants ÷ 1 tenant | — | — | — | one tenant | 3.00 | ≥ 1 × 1 tenant | met |",
		"| POST /api/audit-entries, 1 tenant | 500 | — | — | — | — | ≥ 0.5 × pgbench | — |",
		"| bare echo GET (ceiling) | 40,000 | 500 µs | 3.00 ms |", "skipped: not wired"} {
		if !strings.Contains(sb.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, sb.String())
		}
	}
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

func TestGoals(t *testing.T) {
	p := func(v float64) *float64 { return &v }
	for name, want := range map[string]string{
		caseRead:        "≥ 0.5 × echo; p99 ≤ 2 ms",
		caseRegister:    "≥ 0.33 × pgbench",
		caseAuditRatio:  "≥ 1 × 1 tenant",
		caseOutboxLat:   "p50 ≤ 20 ms; p99 ≤ 100 ms at 1,000 events/s",
		caseOutboxDrain: "≥ 5,000 events/s",
		caseSustainMax:  "≥ 1,000 events/s",
		goalIdleRSS:     "≤ 50 MB",
		goalColdStart:   "≤ 150 ms",
		caseTokenIssue:  "above Ory Hydra (2 CPU, in-memory): ≥ 411 req/s",
		caseIntrospect:  "above Ory Hydra (2 CPU, in-memory): ≥ 7,934 req/s; p99 ≤ 38.5 ms",
	} {
		if got := goals[name].String(); got != want {
			t.Errorf("goal of %s = %q, want %q", name, got, want)
		}
	}
	// Every row-named goal with a ratio names a row that exists as a ceiling or a case.
	for name, g := range goals {
		if g.MinRatio > 0 && g.Of == "" {
			t.Errorf("goal of %s has a ratio but no reference row", name)
		}
	}
	intro := goals[caseIntrospect]
	for _, c := range []struct {
		rw   row
		want string
	}{
		{row{Case: caseIntrospect, RPS: 9000, P50: p(2), P99: p(20)}, "met"},
		{row{Case: caseIntrospect, RPS: 9000, P50: p(2), P99: p(40)}, "not met"}, // slower p99 than the anchor
		{row{Case: caseIntrospect, RPS: 7000, P50: p(2), P99: p(20)}, "not met"}, // fewer requests than the anchor
	} {
		if got := fmtMet(intro.metRow(c.rw)); got != c.want {
			t.Errorf("%+v: %s, want %s", c.rw, got, c.want)
		}
	}
	if got := fmtMet(goals[caseTokenIssue].metRow(row{Case: caseTokenIssue, RPS: 400, P50: p(50), P99: p(90)})); got != "not met" {
		t.Errorf("issuance below the anchor: %s", got)
	}
	lat := goals[caseOutboxLat]
	for _, c := range []struct {
		rw   row
		want string
	}{
		{row{Case: caseOutboxLat, RPS: 1000, P50: p(10), P99: p(90)}, "met"},
		{row{Case: caseOutboxLat, RPS: 1000, P50: p(10), P99: p(101)}, "not met"},
		{row{Case: caseOutboxLat, RPS: 800, P50: p(10), P99: p(90)}, "not met"}, // below the rate the goal is meant at
		{row{Case: caseOutboxLat, RPS: 1000}, "—"},                              // no latency: cannot judge
		{row{Case: caseOutboxLat, Skipped: "x"}, "—"},
	} {
		if got := fmtMet(lat.metRow(c.rw)); got != c.want {
			t.Errorf("%+v: %s, want %s", c.rw, got, c.want)
		}
	}
	r := &results{Rows: []row{{Case: caseSustain, Kind: kindCase, RPS: 1000, P50: p(5), P99: p(50),
		Sustain: []sustainRun{{Rate: 1000, Achieved: 999, Duration: "2s", Sent: 2000, Held: true,
			Backlog: []backlogSample{{T: 1, Outbox: 3, Unrecorded: 7}, {T: 2, Outbox: 1, Unrecorded: 2}}}}},
		{Case: caseSustainMax, Kind: kindCase, RPS: 1500}},
		Memory: &memory{IdleMB: 60}, ColdStart: &coldStart{SamplesMS: []float64{30}, MedianMS: 30}}
	r.finish()
	var sb strings.Builder
	r.writeTable(&sb)
	for _, want := range []string{"| ≥ 1,000 events/s | met |", "p50 ≤ 20 ms; p99 ≤ 100 ms at 1,000 events/s | met |",
		"idle 60.0 MB (not met)", "goal ≤ 150 ms: met", "outbox min 1 / median 2 / max 3 / last 1", "committed not recorded min 2 / median"} {
		if !strings.Contains(sb.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, sb.String())
		}
	}
	b, _ := json.Marshal(r)
	for _, want := range []string{`"goal":"≥ 1,000 events/s"`, `"goalSpec":{"minRate":1000}`, `"goalMet":true`, `"idleGoalMet":false`, `"backlog":[{"t":1,`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON lacks %s: %s", want, b)
		}
	}
}
