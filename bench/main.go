// Command bench is `make bench`: it measures Spine's hot paths side by side with the machine's own
// ceilings, in one run, and prints ratios (absolute figures drift on shared machines; ratios hold).
//
//	go run ./bench [--smoke] [--duration 10s] [--connections 32] [--out .bench] [--profile read,register]
//
// It brings up its own local stack (scripts/stack.sh --name bench, purged first), builds the handler
// as a release binary and serves it in standalone mode, seeds tenants, and measures with one load
// generator (wrk) for every HTTP case, ceiling included, at one concurrency:
//
//   - ceilings: a bare echo server answering a constant; redis-benchmark GET on the stack's Redis;
//     pgbench with a one-row INSERT on the stack's PostgreSQL;
//   - cases: the cached tenant read, tenant registration, audit appends (one tenant and 32), outbox
//     commit → consumer latency at a steady rate, the drainer's maximum rate, the sustained event
//     case (--sustain-duration at --event-rate with the backlog sampled every second, then up to
//     --sustain-steps runs searching for the highest rate held), cold start, memory, and the Go
//     benchmarks (invocation decoder, JWT check, cache path).
//
// Per case it also records PostgreSQL's own statistics (pg_stat_statements: statements and commits
// per operation and the top statements; wait events during the event cases; EXPLAIN of the drainer's
// claim) under <out>/pgstats/ (pgstats.go).
//
// It prints one Markdown table and writes it as JSON to <out>/results-<time>.json and
// <out>/latest.json. Goals come from one table (goals.go) and are printed with met / not met, never asserted: the bench fails only when the harness does
// (a server that does not start, a tool that crashes, no successful request, more than 1% errors).
// --smoke runs every case for a second on small seeds, for CI. `bench --echo-server --port N` is the
// ceiling's echo server (the bench re-executes itself).
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/labstack/echo/v4"

	"spine/shared/auth"
)

// options are the command line.
type options struct {
	smoke       bool
	duration    time.Duration // per measured case
	warmup      time.Duration // per case, before it is measured
	connections int
	out         string
	tenants     int // seeded
	eventRate   int // outbox latency case, events/s
	drainEvents int // outbox drain case
	coldStarts  int
	// sustained event case: run length per rate, and search steps after the run at eventRate
	sustainDuration time.Duration
	sustainSteps    int
	profile         []string // case slugs to CPU-profile
	only            []string // step slugs to run (empty: all); skips cold start and the Go benchmarks
	skipGoBench     bool
}

func parseOptions(args []string, stderr io.Writer) (options, bool, int, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	echoServer := fs.Bool("echo-server", false, "serve the bare echo ceiling on --port (used by the bench itself)")
	port := fs.Int("port", 0, "port for --echo-server")
	fs.BoolVar(&o.smoke, "smoke", false, "every case for 1 s on small seeds (CI: proves the harness works)")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "measured time per case (whole seconds)")
	fs.IntVar(&o.connections, "connections", 32, "concurrent connections of every load generator")
	fs.StringVar(&o.out, "out", ".bench", "folder for results, scripts, logs and profiles (git-ignored)")
	fs.IntVar(&o.tenants, "tenants", 1000, "tenants to seed")
	fs.IntVar(&o.eventRate, "event-rate", 1000, "events/s of the outbox latency case")
	fs.IntVar(&o.drainEvents, "drain-events", 20000, "outbox rows of the drain case")
	fs.IntVar(&o.coldStarts, "cold-starts", 10, "cold starts to take the median of")
	fs.DurationVar(&o.sustainDuration, "sustain-duration", 60*time.Second, "length of each sustained event run (at --event-rate, then each search step)")
	fs.IntVar(&o.sustainSteps, "sustain-steps", 4, "sustained runs searching for the highest rate held with p99 within the goal (0: none)")
	profile := fs.String("profile", "", "comma-separated cases to CPU-profile: read, register, audit-1, audit-32, outbox-latency, outbox-drain")
	fs.BoolVar(&o.skipGoBench, "skip-go-bench", false, "do not run the Go benchmarks")
	only := fs.String("only", "", "comma-separated steps to run, the rest left out (also cold start and the Go benchmarks): "+strings.Join(stepSlugs, ", "))
	if err := fs.Parse(args); err != nil {
		return o, false, 0, err
	}
	if *echoServer {
		return o, true, *port, nil
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if o.smoke {
		for name, apply := range map[string]func(){
			"duration": func() { o.duration = time.Second }, "tenants": func() { o.tenants = 50 },
			"drain-events": func() { o.drainEvents = 200 }, "cold-starts": func() { o.coldStarts = 3 },
			"sustain-duration": func() { o.sustainDuration = 2 * time.Second }, "sustain-steps": func() { o.sustainSteps = 1 },
		} {
			if !set[name] {
				apply()
			}
		}
	}
	o.warmup = min(2*time.Second, o.duration)
	for _, p := range strings.Split(*profile, ",") {
		if p = strings.TrimSpace(p); p != "" {
			o.profile = append(o.profile, p)
		}
	}
	for _, p := range strings.Split(*only, ",") {
		if p = strings.TrimSpace(p); p != "" {
			if !slices.Contains(stepSlugs, p) {
				return o, false, 0, fmt.Errorf("--only: unknown step %q (want %s)", p, strings.Join(stepSlugs, ", "))
			}
			o.only = append(o.only, p)
		}
	}
	switch {
	case o.duration < time.Second:
		return o, false, 0, errors.New("--duration: at least 1s")
	case o.sustainDuration < time.Second || o.sustainSteps < 0 || o.sustainSteps > 10:
		return o, false, 0, errors.New("--sustain-duration: at least 1s; --sustain-steps: 0 to 10")
	case o.connections < 1 || o.tenants < 32 || o.eventRate < 1 || o.drainEvents < 1 || o.coldStarts < 1:
		return o, false, 0, errors.New("--connections, --event-rate, --drain-events and --cold-starts must be positive; --tenants at least 32")
	}
	return o, false, 0, nil
}

// stepSlugs name the steps --only picks from: the ceilings, the cases (the authorization server's
// two and the audit and outbox group each run together).
var stepSlugs = []string{"echo", "read", "check", "ofrep", "redis", "pgbench", "register", "authz", "audit"}

// bench is one run: its settings, its stack and server, and what it measured.
type bench struct {
	opt        options
	root       string // module root
	out        string // absolute output folder
	keyDir     string
	handler    string // the release binary
	runID      string // makes this run's slugs unique
	wrkRuns    int    // wrk invocations so far (each gets its own slug prefix)
	stack      *stack
	tools      tools
	pin        pinning
	server     *process
	pprofPort  int
	port       int    // the handler's, chosen before it is migrated: the issuer names it
	issuer     string // SPINE_AUTH_ISSUER: http://127.0.0.1:<port>/api/connect
	client     *http.Client
	signer     *auth.DevSigner
	adminToken string
	tenantIDs  []string
	edition    string // the seeded tenants' edition when not "standard" (edition.go)
	res        *results
	stderr     io.Writer
	// pgCaptures are the open PostgreSQL statistics windows by case (pgstats.go); pgUnavailable
	// says why pg_stat_statements cannot be read, once it is known.
	pgCaptures    map[string]*pgCapture
	pgUnavailable string
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.stderr, "bench: "+format+"\n", args...)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run is main without the process; it returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	opt, echoMode, port, err := parseOptions(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		if !strings.HasPrefix(err.Error(), "flag") {
			fmt.Fprintln(stderr, "bench:", err)
		}
		return 2
	}
	if echoMode {
		if err := runEchoServer(ctx, port); err != nil {
			fmt.Fprintln(stderr, "echo server:", err)
			return 1
		}
		return 0
	}
	root, err := os.Getwd()
	if err == nil {
		_, err = os.Stat(filepath.Join(root, "scripts", "stack.sh"))
	}
	if err != nil {
		fmt.Fprintln(stderr, "bench: run it from the module root (make bench):", err)
		return 2
	}
	b := &bench{opt: opt, root: root, stderr: stderr, runID: randomID(),
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 512}}}
	started := time.Now()
	b.out, _ = filepath.Abs(opt.out)
	b.res = &results{Timestamp: started.UTC().Format(time.RFC3339), Command: command(args),
		Settings: settings{Smoke: opt.smoke, Duration: opt.duration.String(), Connections: opt.connections,
			Tenants: opt.tenants, EventRate: opt.eventRate, DrainEvents: opt.drainEvents, ColdStarts: opt.coldStarts,
			SustainDuration: opt.sustainDuration.String(), SustainSteps: opt.sustainSteps}}

	err = b.execute(ctx)
	b.cleanup()
	b.res.Elapsed = time.Since(started).Round(time.Second).String()
	b.res.finish()
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("interrupted (%w)", err)
	}
	if err != nil {
		b.res.Error = err.Error()
		fmt.Fprintln(stderr)
		b.res.writeTable(stderr)
		fmt.Fprintf(stderr, "\nbench: FAILED: %v\n", err)
		if opt.smoke {
			fmt.Fprintf(stdout, "bench-smoke: %d passed, 1 failed\n", b.passed())
		}
		return 1
	}
	b.res.writeTable(stdout)
	file, err := b.res.save(b.out)
	if err != nil {
		fmt.Fprintln(stderr, "bench: writing results:", err)
		return 1
	}
	fmt.Fprintf(stdout, "\nResults: %s (and %s)\n", file, filepath.Join(b.out, "latest.json"))
	if opt.smoke {
		// The one line CI reads: how many cases ran through the harness (figures are not judged).
		skipped := b.skipped()
		fmt.Fprintf(stdout, "bench-smoke: %d passed, 0 failed", b.passed())
		if skipped > 0 {
			fmt.Fprintf(stdout, ", %d skipped", skipped)
		}
		fmt.Fprintln(stdout)
	}
	return 0
}

// passed counts measured rows and single-figure results; skipped counts skipped rows.
func (b *bench) passed() int {
	n := 0
	for _, r := range b.res.Rows {
		if r.Skipped == "" {
			n++
		}
	}
	if b.res.ColdStart != nil {
		n++
	}
	if b.res.Memory != nil {
		n++
	}
	if len(b.res.GoBench) > 0 {
		n++
	}
	return n
}

func (b *bench) skipped() int {
	n := 0
	for _, r := range b.res.Rows {
		if r.Skipped != "" {
			n++
		}
	}
	return n
}

// execute runs every step in order; the first harness failure stops it.
func (b *bench) execute(ctx context.Context) error {
	for _, d := range []string{"", "lua", "wrk", "profiles", "pgstats"} {
		if err := os.MkdirAll(filepath.Join(b.out, d), 0o755); err != nil {
			return err
		}
	}
	var err error
	if b.tools, err = findTools(ctx, b.logf); err != nil {
		return err
	}
	b.pin = choosePinning(b.tools.taskset)
	b.res.Machine = describeMachine(b.pin)
	if !strings.HasPrefix(b.pin.note, "server on") {
		b.res.note("%s", b.pin.note)
	}

	b.logf("building the release handler …")
	b.handler = filepath.Join(b.out, "handler")
	if err := buildRelease(ctx, b.root, b.handler); err != nil {
		return err
	}
	mode := "fsync on"
	if b.opt.smoke {
		mode = "--fast: fsync off"
	}
	b.logf("stack up (%s) …", mode)
	if b.stack, err = stackUp(ctx, b.root, b.opt.smoke); err != nil {
		return err
	}
	b.res.Machine.Postgres = b.postgresVersion(ctx) + " (" + b.durability() + ")"
	// From here the harness itself is a load generator: pin it (children started later inherit it
	// unless they are pinned elsewhere).
	if err := b.tools.pinSelf(b.pin.generator); err != nil {
		b.res.note("could not pin the harness itself: %v", err)
	}
	b.keyDir = filepath.Join(b.out, "keys")
	if b.port, err = freePort(); err != nil {
		return err
	}
	b.issuer = fmt.Sprintf("http://127.0.0.1:%d/api/connect", b.port)
	if err := b.prepareHandler(ctx); err != nil {
		return err
	}
	if err := b.addBenchEdition(ctx); err != nil {
		return err
	}
	if err := b.mintTokens(); err != nil {
		return err
	}
	if b.server, err = b.startHandler(ctx); err != nil {
		return err
	}
	b.memorySnapshot(ctx, "start")
	b.logf("seeding %d tenants …", b.opt.tenants)
	if err := b.seed(ctx); err != nil {
		return err
	}
	if err := b.idleMemory(ctx); err != nil {
		return err
	}

	steps := []struct {
		name, slug string
		fn         func(context.Context) error
	}{
		{ceilEcho, "echo", b.ceilingEcho},
		{caseRead, caseSlug[caseRead], b.caseTenantRead},
		{caseCheck, caseSlug[caseCheck], b.caseAuthzCheck},
		{"OFREP", "ofrep", b.ofrepCases},
		{ceilRedis, "redis", b.ceilingRedis},
		{ceilPG, "pgbench", b.ceilingPostgres},
		{caseRegister, caseSlug[caseRegister], b.caseRegister},
		{"authorization server", "authz", b.authzCases},
		{"audit", "audit", b.auditCases},
	}
	for _, s := range steps {
		if len(b.opt.only) > 0 && !slices.Contains(b.opt.only, s.slug) {
			continue
		}
		b.logf("%s …", s.name)
		if err := s.fn(ctx); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	if rss, err := b.server.rssMB(); err == nil {
		b.res.Memory.LoadedMB = rss
	}
	b.memorySnapshot(ctx, "loaded")
	rest := idleAfterLoad
	if b.opt.smoke {
		rest = time.Second
	}
	select { // idle after the load: what the runtime keeps, or gives back, once the work stops
	case <-time.After(rest):
	case <-ctx.Done():
		return ctx.Err()
	}
	b.memorySnapshot(ctx, "idle-after-load")
	b.server.stop()
	b.server = nil

	if len(b.opt.only) > 0 {
		b.res.note("only %s ran (--only): no cold start, no Go benchmarks", strings.Join(b.opt.only, ", "))
		return nil
	}
	b.logf("cold start ×%d …", b.opt.coldStarts)
	if err := b.caseColdStart(ctx); err != nil {
		return err
	}
	if !b.opt.skipGoBench {
		b.logf("Go benchmarks …")
		if err := b.runGoBenchmarks(ctx); err != nil {
			return err
		}
	}
	return nil
}

// auditCases runs the audit and outbox cases when the handler serves the audit service, and
// records them as skipped (with the reason) when it does not yet.
func (b *bench) auditCases(ctx context.Context) error {
	wired, why, err := b.auditWired(ctx)
	if err != nil {
		return err
	}
	if !wired {
		for _, c := range []string{caseAuditOne, caseAuditMany, caseOutboxLat, caseOutboxDrain, caseSustain, caseSustainMax} {
			b.res.add(row{Case: c, Kind: kindCase, Skipped: why})
		}
		return nil
	}
	if err := b.caseAudit(ctx); err != nil {
		return err
	}
	b.logf("%s …", caseOutboxLat)
	if err := b.caseOutboxLatency(ctx); err != nil {
		return err
	}
	b.logf("%s …", caseOutboxDrain)
	if err := b.caseOutboxDrain(ctx); err != nil {
		return err
	}
	b.logf("EXPLAIN of the drainer's claim …")
	b.drainClaimExplain(ctx)
	b.logf("%s: %d events/s for %s, then up to %d search steps …", caseSustain, b.opt.eventRate, b.opt.sustainDuration, b.opt.sustainSteps)
	return b.caseSustained(ctx)
}

// idleAfterLoad is how long the handler rests after the last case before its last memory snapshot
// (a second with --smoke).
const idleAfterLoad = 10 * time.Second

// idleMemory lets the seeded server settle and records its idle RSS.
func (b *bench) idleMemory(ctx context.Context) error {
	select {
	case <-time.After(2 * time.Second):
	case <-ctx.Done():
		return ctx.Err()
	}
	rss, err := b.server.rssMB()
	if err != nil {
		return err
	}
	b.res.Memory = &memory{IdleMB: rss} // goals: goals[goalIdleRSS], goals[goalLoadedRSS]
	b.memorySnapshot(ctx, "idle")
	return nil
}

// cleanup stops whatever is still running and takes the stack down; it runs on success, failure
// and interrupt alike.
func (b *bench) cleanup() {
	if b.server != nil {
		b.server.stop()
	}
	if b.stack != nil {
		b.logf("stack down")
		if err := b.stack.down(); err != nil {
			b.logf("stack down: %v", err)
		}
	}
}

// postgresVersion asks the stack's PostgreSQL for its version number.
func (b *bench) postgresVersion(ctx context.Context) string {
	db, err := b.stack.openAdmin(ctx, "postgres")
	if err != nil {
		return "unknown"
	}
	defer db.Close()
	var v string
	if err := db.QueryRowContext(ctx, "SHOW server_version").Scan(&v); err != nil {
		return "unknown"
	}
	return strings.Fields(v)[0]
}

// command is the command line that reproduces this run.
func command(args []string) string {
	return strings.TrimSpace("go run ./bench " + strings.Join(args, " "))
}

func echoVersion() string { return "v" + echo.Version }

func randomID() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
