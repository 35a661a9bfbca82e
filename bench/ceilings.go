package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Ceiling rows: what the machine does with no application in the way, measured in the same run
// at the same concurrency.
const (
	ceilEcho  = "bare echo GET (ceiling)"
	ceilRedis = "redis-benchmark GET (ceiling)"
	ceilPG    = "pgbench 1-row INSERT (ceiling)"
)

// ceilingEcho measures the bare echo server with the tenant read's own wrk script.
func (b *bench) ceilingEcho(ctx context.Context) error {
	srv, err := b.startEchoServer(ctx)
	if err != nil {
		return err
	}
	defer srv.stop()
	w := wrkRun{name: "ceiling-echo", baseURL: fmt.Sprintf("http://127.0.0.1:%d", srv.port),
		script: luaGetRotating("/api/tenants/", b.readIDs(), b.adminToken)}
	w.duration = b.opt.warmup
	if _, err := b.runWrk(ctx, w); err != nil {
		return err
	}
	w.duration = b.opt.duration
	r, err := b.runWrk(ctx, w)
	if err != nil {
		return err
	}
	b.res.add(row{Case: ceilEcho, Kind: kindCeiling, RPS: r.RPS, P50: ms(r.P50), P99: ms(r.P99),
		Requests: r.Requests, Failures: r.failures(),
		Note: fmt.Sprintf("echo %s, one GET route answering %q, same wrk script as the tenant read", echoVersion(), echoConstant)})
	return nil
}

// redisResult is what redis-benchmark measured.
type redisResult struct {
	RPS      float64
	P50, P99 *float64 // ms; nil when this redis-benchmark does not print them
}

// parseRedisCSV reads `redis-benchmark --csv` output for the GET test. Redis 7 prints a header
// ("test","rps","avg_latency_ms",...,"p50_latency_ms",...,"p99_latency_ms",...); older versions
// print only "GET","<rps>".
func parseRedisCSV(out string) (redisResult, error) {
	recs, err := csv.NewReader(strings.NewReader(strings.TrimSpace(out))).ReadAll()
	if err != nil && !errors.Is(err, csv.ErrFieldCount) {
		return redisResult{}, fmt.Errorf("redis-benchmark CSV: %w", err)
	}
	var header []string
	for _, rec := range recs {
		if len(rec) > 0 && rec[0] == "test" {
			header = rec
			continue
		}
		if len(rec) < 2 || !strings.HasPrefix(strings.ToUpper(rec[0]), "GET") {
			continue
		}
		var r redisResult
		col := func(name string, fallback int) (float64, bool) {
			i := slices.Index(header, name)
			if i < 0 {
				i = fallback
			}
			if i < 0 || i >= len(rec) {
				return 0, false
			}
			v, err := strconv.ParseFloat(rec[i], 64)
			return v, err == nil
		}
		v, ok := col("rps", 1)
		if !ok {
			return redisResult{}, fmt.Errorf("redis-benchmark CSV: unreadable rps in %q", rec)
		}
		r.RPS = v
		if v, ok := col("p50_latency_ms", -1); ok {
			r.P50 = &v
		}
		if v, ok := col("p99_latency_ms", -1); ok {
			r.P99 = &v
		}
		return r, nil
	}
	return redisResult{}, errors.New("redis-benchmark CSV: no GET line")
}

// ceilingRedis runs redis-benchmark GET against the stack's Redis on a key holding a value the size
// of a cached tenant. redis-benchmark counts requests, not time, so a short calibration run sizes
// the measured one to the bench duration.
func (b *bench) ceilingRedis(ctx context.Context) error {
	host, port := b.stack.env["SPINE_REDIS_HOST"], b.stack.env["SPINE_REDIS_PORT"]
	rdb := redis.NewClient(&redis.Options{Addr: host + ":" + port})
	// redis-benchmark's GET reads the key "key:__rand_int__" (no -r: the literal name).
	err := rdb.Set(ctx, "key:__rand_int__", strings.Repeat("x", 470), time.Hour).Err()
	rdb.Close()
	if err != nil {
		return fmt.Errorf("redis SET: %w", err)
	}
	run := func(name string, n int) (redisResult, error) {
		cmd := b.tools.command(ctx, b.pin.generator, b.tools.redisBenchmark, "-h", host, "-p", port,
			"-t", "get", "-c", strconv.Itoa(b.opt.connections), "-n", strconv.Itoa(n), "--csv", "-q")
		out, err := cmd.CombinedOutput()
		_ = os.WriteFile(filepath.Join(b.out, "wrk", name+".csv"), out, 0o644)
		if err != nil {
			return redisResult{}, fmt.Errorf("redis-benchmark: %w\n%s", err, tail(string(out), 10))
		}
		return parseRedisCSV(string(out))
	}
	cal, err := run("ceiling-redis-calibration", 20000)
	if err != nil {
		return err
	}
	n := int(cal.RPS * b.opt.duration.Seconds())
	n = min(max(n, 20000), 5_000_000)
	r, err := run("ceiling-redis", n)
	if err != nil {
		return err
	}
	b.res.add(row{Case: ceilRedis, Kind: kindCeiling, RPS: r.RPS, P50: r.P50, P99: r.P99, Requests: int64(n),
		Note: "470-byte value, the stack's Redis"})
	return nil
}

// pgbenchResult is what pgbench measured.
type pgbenchResult struct {
	TPS          float64
	AvgMS        float64
	Transactions int64
	Failed       int64
}

var (
	pgTPSRe    = regexp.MustCompile(`(?m)^tps = ([0-9.]+)`)
	pgAvgRe    = regexp.MustCompile(`(?m)^latency average = ([0-9.]+) ms`)
	pgTxRe     = regexp.MustCompile(`(?m)^number of transactions actually processed: (\d+)`)
	pgFailedRe = regexp.MustCompile(`(?m)^number of failed transactions: (\d+)`)
)

// parsePgbench reads pgbench's summary: tps, latency average and the transaction counts.
func parsePgbench(out string) (pgbenchResult, error) {
	var r pgbenchResult
	m := pgTPSRe.FindStringSubmatch(out)
	if m == nil {
		return r, errors.New("pgbench output has no tps line")
	}
	r.TPS, _ = strconv.ParseFloat(m[1], 64)
	if m := pgAvgRe.FindStringSubmatch(out); m != nil {
		r.AvgMS, _ = strconv.ParseFloat(m[1], 64)
	}
	if m := pgTxRe.FindStringSubmatch(out); m != nil {
		r.Transactions, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if m := pgFailedRe.FindStringSubmatch(out); m != nil {
		r.Failed, _ = strconv.ParseInt(m[1], 10, 64)
	}
	return r, nil
}

// parsePgbenchLog reads pgbench's per-transaction log lines ("client_id transaction_no time
// script_no time_epoch time_us", time in microseconds) and returns the latencies in milliseconds.
func parsePgbenchLog(path string) ([]float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []float64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 {
			continue
		}
		us, err := strconv.ParseFloat(fields[2], 64)
		if err != nil {
			return nil, fmt.Errorf("%s: %q: %w", path, sc.Text(), err)
		}
		out = append(out, us/1000)
	}
	return out, sc.Err()
}

// ceilingPostgres runs pgbench with a one-row INSERT script against a scratch database of the same
// PostgreSQL, logging every transaction so p50/p99 can be reported like the HTTP cases.
func (b *bench) ceilingPostgres(ctx context.Context) error {
	dbURL, err := b.stack.scratchDB(ctx)
	if err != nil {
		return err
	}
	dir := filepath.Join(b.out, "pgbench")
	_ = os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	script := filepath.Join(dir, "insert.sql")
	if err := os.WriteFile(script, []byte("INSERT INTO bench_insert(payload) VALUES ('x');\n"), 0o644); err != nil {
		return err
	}
	secs := max(1, int(b.opt.duration.Round(time.Second)/time.Second))
	cmd := b.tools.command(ctx, b.pin.generator, b.tools.pgbench, "-n", "-c", strconv.Itoa(b.opt.connections),
		"-j", "2", "-T", strconv.Itoa(secs), "-f", script, "-r", "-l", "--log-prefix=tx", dbURL)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	_ = os.WriteFile(filepath.Join(dir, "pgbench.txt"), out, 0o644)
	if err != nil {
		return fmt.Errorf("pgbench: %w\n%s", err, tail(string(out), 15))
	}
	r, err := parsePgbench(string(out))
	if err != nil {
		return fmt.Errorf("%w\n%s", err, tail(string(out), 15))
	}
	if r.Transactions == 0 {
		return fmt.Errorf("pgbench: no transaction processed\n%s", tail(string(out), 15))
	}
	logs, _ := filepath.Glob(filepath.Join(dir, "tx.*"))
	var lat []float64
	for _, l := range logs {
		v, err := parsePgbenchLog(l)
		if err != nil {
			return err
		}
		lat = append(lat, v...)
		_ = os.Remove(l) // large; the summary stays in pgbench.txt
	}
	rw := row{Case: ceilPG, Kind: kindCeiling, RPS: r.TPS, Requests: r.Transactions, Failures: r.Failed,
		Note: fmt.Sprintf("pgbench -c %d -j 2, latency average %.3f ms; %s", b.opt.connections, r.AvgMS, b.durability())}
	if len(lat) > 0 {
		rw.P50, rw.P99 = percentile(lat, 0.50), percentile(lat, 0.99)
	}
	b.res.add(rw)
	return nil
}

// durability names the stack's PostgreSQL durability mode.
func (b *bench) durability() string {
	if b.opt.smoke {
		return "fsync off (--fast stack)"
	}
	return "fsync on"
}

// percentile returns the p-quantile (nearest rank) of vs in a new pointer; vs is sorted in place.
func percentile(vs []float64, p float64) *float64 {
	if len(vs) == 0 {
		return nil
	}
	slices.Sort(vs)
	i := int(p*float64(len(vs))+0.5) - 1
	i = min(max(i, 0), len(vs)-1)
	v := vs[i]
	return &v
}
