package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
)

// Row kinds.
const (
	kindCeiling = "ceiling"
	kindCase    = "case"
)

// row is one line of the table.
type row struct {
	Case string `json:"case"`
	Kind string `json:"kind"`
	// RPS is requests/s (HTTP), operations/s (redis-benchmark), tps (pgbench) or events/s (outbox).
	RPS float64  `json:"rps"`
	P50 *float64 `json:"p50Ms,omitempty"`
	P99 *float64 `json:"p99Ms,omitempty"`
	// Ceiling names the ceiling row the case is compared with; Ratio = RPS / that row's RPS.
	Ceiling    string   `json:"ceiling,omitempty"`
	CeilingRPS float64  `json:"ceilingRps,omitempty"`
	Ratio      *float64 `json:"ratio,omitempty"`
	// RatioOf is set instead of Ceiling for a ratio between two cases (many tenants ÷ one tenant).
	RatioOf []string `json:"ratioOf,omitempty"`
	// Goal is set by finish from the goals table: printed (Goal), structured (GoalSpec) and judged
	// (GoalMet: nil when the row cannot be judged). Never asserted.
	Goal     string `json:"goal,omitempty"`
	GoalSpec *Goal  `json:"goalSpec,omitempty"`
	GoalMet  *bool  `json:"goalMet,omitempty"`
	// MaxMS is the largest latency, where a case measures it (the event cases).
	MaxMS    *float64 `json:"maxMs,omitempty"`
	Requests int64    `json:"requests,omitempty"`
	Failures int64    `json:"failures,omitempty"`
	// NewSessions counts PostgreSQL sessions opened during the measured run (connection churn).
	NewSessions int64  `json:"newPostgresSessions,omitempty"`
	Note        string `json:"note,omitempty"`
	Skipped     string `json:"skipped,omitempty"`
	// Sustain holds the sustained event case's runs (the backlog series included).
	Sustain []sustainRun `json:"sustain,omitempty"`
	// PG is what PostgreSQL counted during the case (pg_stat_statements, wait events; pgstats.go).
	PG *pgStats `json:"pgStats,omitempty"`
}

// coldStart is the cold start line.
type coldStart struct {
	SamplesMS []float64 `json:"samplesMs"`
	MedianMS  float64   `json:"medianMs"`
	Goal      string    `json:"goal"`
	GoalMet   *bool     `json:"goalMet,omitempty"`
}

// memory is the RSS line.
type memory struct {
	IdleMB   float64 `json:"idleMb"`
	LoadedMB float64 `json:"loadedMb,omitempty"`
	Goal     string  `json:"goal"`
	// IdleGoalMet and LoadedGoalMet judge the two figures against goals[goalIdleRSS] and
	// goals[goalLoadedRSS].
	IdleGoalMet   *bool `json:"idleGoalMet,omitempty"`
	LoadedGoalMet *bool `json:"loadedGoalMet,omitempty"`
}

// goBench is one `go test -bench` result.
type goBench struct {
	Package     string   `json:"package"`
	Name        string   `json:"name"`
	NsPerOp     float64  `json:"nsPerOp"`
	BytesPerOp  *float64 `json:"bytesPerOp,omitempty"`
	AllocsPerOp *float64 `json:"allocsPerOp,omitempty"`
}

// profileRef is a CPU profile the bench took.
type profileRef struct {
	Case string `json:"case"`
	File string `json:"file"`
	Top  string `json:"top"` // the file with `go tool pprof -top`
}

// machine describes where the figures come from.
type machine struct {
	CPUs     int    `json:"cpus"`
	CPUModel string `json:"cpuModel"`
	MemoryGB string `json:"memory"`
	Kernel   string `json:"kernel"`
	Go       string `json:"go"`
	Pinning  string `json:"pinning"`
	Postgres string `json:"postgres"`
}

// settings are the bench's knobs for this run.
type settings struct {
	Smoke       bool   `json:"smoke"`
	Duration    string `json:"duration"`
	Connections int    `json:"connections"`
	Tenants     int    `json:"tenants"`
	EventRate   int    `json:"eventRate"`
	DrainEvents int    `json:"drainEvents"`
	ColdStarts  int    `json:"coldStarts"`
	// SustainDuration and SustainSteps: the sustained event case's run length and search steps.
	SustainDuration string `json:"sustainDuration"`
	SustainSteps    int    `json:"sustainSteps"`
}

// results is everything one run measured; it is printed as a table and written as JSON.
type results struct {
	mu        sync.Mutex
	Timestamp string       `json:"timestamp"`
	Command   string       `json:"command"`
	Elapsed   string       `json:"elapsed,omitempty"`
	Settings  settings     `json:"settings"`
	Machine   machine      `json:"machine"`
	Rows      []row        `json:"rows"`
	ColdStart *coldStart   `json:"coldStart,omitempty"`
	Memory    *memory      `json:"memory,omitempty"`
	GoBench   []goBench    `json:"goBenchmarks,omitempty"`
	Profiles  []profileRef `json:"profiles,omitempty"`
	// DrainExplain is EXPLAIN (ANALYZE, BUFFERS) of the drainer's claim (pgstats.go).
	DrainExplain *drainExplain `json:"drainClaimExplain,omitempty"`
	Notes        []string      `json:"notes,omitempty"`
	Error        string        `json:"error,omitempty"`

	// MemorySnapshots are the handler's memory at start, idle after seeding, at the end of the load
	// and idle after it (see memSnapshot).
	MemorySnapshots []memSnapshot `json:"memorySnapshots,omitempty"`
}

func (r *results) add(rw row) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Rows = append(r.Rows, rw)
}

func (r *results) note(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// find returns the row named name.
func (r *results) find(name string) (row, bool) {
	for _, rw := range r.Rows {
		if rw.Case == name && rw.Skipped == "" {
			return rw, true
		}
	}
	return row{}, false
}

// finish computes every ratio from the rows it names, then sets and judges every goal from the
// goals table.
func (r *results) finish() {
	defer r.judge()
	for i := range r.Rows {
		rw := &r.Rows[i]
		switch {
		case rw.Skipped != "":
		case rw.Ceiling != "":
			if c, ok := r.find(rw.Ceiling); ok && c.RPS > 0 {
				rw.CeilingRPS = c.RPS
				v := rw.RPS / c.RPS
				rw.Ratio = &v
			}
		case len(rw.RatioOf) == 2:
			a, okA := r.find(rw.RatioOf[0])
			b, okB := r.find(rw.RatioOf[1])
			if okA && okB && b.RPS > 0 {
				v := a.RPS / b.RPS
				rw.Ratio = &v
			}
		}
	}
}

// judge copies each row's and figure's goal from the goals table and says whether it is met.
func (r *results) judge() {
	for i := range r.Rows {
		rw := &r.Rows[i]
		g, ok := goals[rw.Case]
		if !ok {
			continue
		}
		rw.Goal, rw.GoalSpec, rw.GoalMet = g.String(), &g, g.metRow(*rw)
	}
	if c := r.ColdStart; c != nil {
		g := goals[goalColdStart]
		c.Goal, c.GoalMet = g.String(), g.metFigure(c.MedianMS)
	}
	if m := r.Memory; m != nil {
		idle, loaded := goals[goalIdleRSS], goals[goalLoadedRSS]
		m.Goal = idle.String() + " idle, " + loaded.String() + " loaded"
		m.IdleGoalMet = idle.metFigure(m.IdleMB)
		if m.LoadedMB > 0 {
			m.LoadedGoalMet = loaded.metFigure(m.LoadedMB)
		}
	}
}

// shortCeiling is the ceiling column's label.
func shortCeiling(name string) string {
	switch name {
	case ceilEcho:
		return "echo"
	case ceilRedis:
		return "redis"
	case ceilPG:
		return "pgbench"
	}
	return name
}

// writeTable prints the results as a Markdown table followed by the single-figure lines, so the
// output can be pasted into the README as it is.
func (r *results) writeTable(w io.Writer) {
	fmt.Fprintln(w, "| case | req/s | p50 | p99 | ceiling | ratio | goal (not asserted) | met? |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---|---:|---|---|")
	for _, rw := range r.Rows {
		if rw.Skipped != "" {
			fmt.Fprintf(w, "| %s | — | — | — | — | — | skipped: %s | — |\n", rw.Case, rw.Skipped)
			continue
		}
		ceiling, ratio := "—", "—"
		if rw.Ceiling != "" && rw.CeilingRPS > 0 {
			ceiling = fmt.Sprintf("%s %s", shortCeiling(rw.Ceiling), fmtRate(rw.CeilingRPS))
		}
		if len(rw.RatioOf) == 2 {
			ceiling = "one tenant"
		}
		if rw.Ratio != nil {
			ratio = fmt.Sprintf("%.2f", *rw.Ratio)
		}
		goal := rw.Goal
		if goal == "" {
			goal = "—"
		}
		rps := fmtRate(rw.RPS)
		if len(rw.RatioOf) == 2 {
			rps = "—"
		}
		met := "—"
		if rw.GoalSpec != nil {
			met = fmtMet(rw.GoalMet)
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", rw.Case, rps, fmtMS(rw.P50), fmtMS(rw.P99), ceiling, ratio, goal, met)
	}
	fmt.Fprintln(w)
	if c := r.ColdStart; c != nil {
		fmt.Fprintf(w, "- cold start, exec → first 200 on /api/health with every service configured: median %.0f ms of %d (%s) — goal %s: %s\n",
			c.MedianMS, len(c.SamplesMS), joinMS(c.SamplesMS), c.Goal, fmtMet(c.GoalMet))
	}
	if m := r.Memory; m != nil {
		loaded := "not measured"
		if m.LoadedMB > 0 {
			loaded = fmt.Sprintf("%.1f MB (%s)", m.LoadedMB, fmtMet(m.LoadedGoalMet))
		}
		fmt.Fprintf(w, "- memory (VmRSS of the handler): idle %.1f MB (%s), at the end of the load %s — goal %s\n",
			m.IdleMB, fmtMet(m.IdleGoalMet), loaded, m.Goal)
	}
	for _, rw := range r.Rows {
		for _, s := range rw.Sustain {
			fmt.Fprintf(w, "- %s\n", s.line())
		}
	}
	var pg []string
	for _, rw := range r.Rows {
		if rw.PG != nil {
			pg = append(pg, "  - "+rw.PG.line(rw.Case))
		}
	}
	if len(pg) > 0 {
		fmt.Fprintf(w, "- PostgreSQL per operation (pg_stat_statements of the service roles, case start → drained; per database: statements/commits; files under pgstats/):\n%s\n", strings.Join(pg, "\n"))
	}
	if r.DrainExplain != nil {
		fmt.Fprintf(w, "- %s\n", r.DrainExplain.line())
	}
	if line := r.tokenLine(); line != "" {
		fmt.Fprintln(w, line)
	}
	var churn []string
	for _, rw := range r.Rows {
		if rw.NewSessions > 0 {
			churn = append(churn, fmt.Sprintf("%s %d", rw.Case, rw.NewSessions))
		}
	}
	if len(churn) > 0 {
		fmt.Fprintf(w, "- PostgreSQL sessions the handler opened during the measured runs (pg_stat_database.sessions; each is a backend fork and a SCRAM handshake): %s\n",
			strings.Join(churn, "; "))
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "- %s\n", n)
	}
	if len(r.GoBench) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| Go benchmark | ns/op | B/op | allocs/op |")
		fmt.Fprintln(w, "|---|---:|---:|---:|")
		for _, g := range r.GoBench {
			fmt.Fprintf(w, "| %s.%s | %s | %s | %s |\n", filepath.Base(g.Package), strings.TrimPrefix(g.Name, "Benchmark"),
				fmtFloat(g.NsPerOp), fmtOpt(g.BytesPerOp), fmtOpt(g.AllocsPerOp))
		}
	}
	for _, p := range r.Profiles {
		fmt.Fprintf(w, "- CPU profile of %s: %s (top: %s)\n", p.Case, p.File, p.Top)
	}
	fmt.Fprintln(w)
	m := r.Machine
	fmt.Fprintf(w, "Machine: %d CPUs (%s), %s RAM, Linux %s, %s, PostgreSQL %s; %s.\n", m.CPUs, m.CPUModel, m.MemoryGB, m.Kernel, m.Go, m.Postgres, m.Pinning)
	s := r.Settings
	fmt.Fprintf(w, "Run: `%s` at %s: %s per case, %d connections, %d tenants seeded; took %s.\n",
		r.Command, r.Timestamp, s.Duration, s.Connections, s.Tenants, r.Elapsed)
}

// tokenLine summarises the token validation benchmarks, when they ran.
func (r *results) tokenLine() string {
	var cold, cached *goBench
	for i := range r.GoBench {
		switch r.GoBench[i].Name {
		case "BenchmarkVerify_Cold":
			cold = &r.GoBench[i]
		case "BenchmarkVerify_Cached":
			cached = &r.GoBench[i]
		}
	}
	if cold == nil || cached == nil {
		return ""
	}
	return fmt.Sprintf("- token validation (go test -bench Verify ./shared/auth): signature checked %s/op (%s allocs), "+
		"repeat token from the verified-token cache %s/op (%s allocs): %.0f× cheaper — goal: a repeat request skips the signature check",
		fmtNs(cold.NsPerOp), fmtOpt(cold.AllocsPerOp), fmtNs(cached.NsPerOp), fmtOpt(cached.AllocsPerOp), cold.NsPerOp/cached.NsPerOp)
}

// save writes the JSON to out/results-<timestamp>.json and out/latest.json.
func (r *results) save(out string) (string, error) {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", err
	}
	b = append(b, '\n')
	name := filepath.Join(out, "results-"+strings.NewReplacer(":", "", "-", "").Replace(r.Timestamp)+".json")
	if err := os.WriteFile(name, b, 0o644); err != nil {
		return "", err
	}
	return name, os.WriteFile(filepath.Join(out, "latest.json"), b, 0o644)
}

// describeMachine fills the machine section from /proc and the toolchain.
func describeMachine(pin pinning) machine {
	m := machine{CPUs: numCPU(), Go: runtime.Version(), Pinning: pin.note, CPUModel: "unknown", MemoryGB: "unknown", Kernel: "unknown"}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb float64
		if _, err := fmt.Sscanf(string(b), "MemTotal: %f kB", &kb); err == nil {
			m.MemoryGB = fmt.Sprintf("%.0f GiB", kb/1024/1024)
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

func ms(d time.Duration) *float64 {
	v := float64(d) / float64(time.Millisecond)
	return &v
}

// fmtRate prints a rate with thousands separators.
func fmtRate(v float64) string {
	if v >= 100 {
		return groupThousands(int64(math.Round(v)))
	}
	return fmt.Sprintf("%.1f", v)
}

func groupThousands(n int64) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// fmtMS prints a latency in ms (µs below 1 ms).
func fmtMS(v *float64) string {
	switch {
	case v == nil:
		return "—"
	case *v < 1:
		return fmt.Sprintf("%.0f µs", *v*1000)
	case *v < 10:
		return fmt.Sprintf("%.2f ms", *v)
	}
	return fmt.Sprintf("%.1f ms", *v)
}

func fmtNs(ns float64) string {
	switch {
	case ns >= 1e6:
		return fmt.Sprintf("%.2f ms", ns/1e6)
	case ns >= 1e3:
		return fmt.Sprintf("%.1f µs", ns/1e3)
	}
	return fmt.Sprintf("%.0f ns", ns)
}

func fmtFloat(v float64) string {
	if v >= 100 {
		return groupThousands(int64(math.Round(v)))
	}
	return fmt.Sprintf("%.1f", v)
}

func fmtOpt(v *float64) string {
	if v == nil {
		return "—"
	}
	return fmtFloat(*v)
}

func joinMS(vs []float64) string {
	s := slices.Clone(vs)
	slices.Sort(s)
	return fmt.Sprintf("min %.0f, max %.0f", s[0], s[len(s)-1])
}

func median(vs []float64) float64 {
	s := slices.Clone(vs)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
