package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"spine/shared/events"
	"spine/shared/outbox"
	"spine/shared/sqlstore"
)

// PostgreSQL's own statistics, per measured case: the bench resets pg_stat_statements before the
// case and reads it after (the handler's statements only: the harness's own queries run as the
// superuser and are left out), samples pg_stat_activity's wait events during the event cases, and
// explains the drainer's claim once. Reading them never fails the run: a failure is a note.

// pgTopN is how many statements each case's file and JSON keep (by total execution time).
const pgTopN = 15

// pgStats is what PostgreSQL counted during one case (rows[].pgStats in the JSON).
type pgStats struct {
	Ops  int64  `json:"ops"`  // requests or events the case completed
	Unit string `json:"unit"` // "request" or "event"
	// Statements counts the top-level statements the service roles ran (client round trips,
	// BEGIN and COMMIT included); Nested those run inside functions and triggers.
	Statements      int64   `json:"statements"`
	StatementsPerOp float64 `json:"statementsPerOp"`
	// Commits and Rollbacks count COMMIT and ROLLBACK statements: every transaction of the handler
	// is explicit (sqlstore.Tx), so they are its transactions.
	Commits      int64   `json:"commits"`
	CommitsPerOp float64 `json:"commitsPerOp"`
	Rollbacks    int64   `json:"rollbacks,omitempty"`
	Nested       int64   `json:"nested,omitempty"`
	// PerDatabase splits statements and commits by database (request path vs consumers).
	PerDatabase []pgDBCount `json:"perDatabase"`
	// XactCommitApprox is pg_stat_database.xact_commit's growth over the services' databases: a
	// cross-check only (it includes the harness's own queries, and idle backends report theirs up
	// to 10 s late).
	XactCommitApprox int64         `json:"xactCommitApprox"`
	Top              []pgStatement `json:"top"`
	Waits            *waitStats    `json:"waits,omitempty"`
	File             string        `json:"file"`
}

// pgDBCount is one database's share of a case's statements and commits.
type pgDBCount struct {
	Database   string `json:"database"`
	Statements int64  `json:"statements"`
	Commits    int64  `json:"commits"`
}

// pgStatement is one pg_stat_statements entry.
type pgStatement struct {
	Database string  `json:"db"`
	Role     string  `json:"role"`
	Toplevel bool    `json:"toplevel"`
	Calls    int64   `json:"calls"`
	TotalMS  float64 `json:"totalMs"`
	MeanMS   float64 `json:"meanMs"`
	Rows     int64   `json:"rows"`
	BlksHit  int64   `json:"blksHit"`
	BlksRead int64   `json:"blksRead"`
	BlksDirt int64   `json:"blksDirtied"`
	WALBytes int64   `json:"walBytes"`
	IOMS     float64 `json:"ioMs,omitempty"` // block read + write time (track_io_timing)
	Query    string  `json:"query"`
}

// waitStats is the wait-event histogram of one event case.
type waitStats struct {
	Samples int `json:"samples"` // pg_stat_activity snapshots taken
	// Busy counts backend-samples of the service roles not idle: the denominator of the shares.
	Busy int         `json:"busy"`
	Idle int         `json:"idle"`
	Top  []waitShare `json:"top"`
	File string      `json:"file"`
}

// waitShare is one wait's share of the busy backend-samples.
type waitShare struct {
	Wait string  `json:"wait"`
	Pct  float64 `json:"pct"`
}

// drainExplain is the drainer's claim, explained (results.drainClaimExplain in the JSON).
type drainExplain struct {
	Pending     int     `json:"pending"` // rows in the outbox when it ran
	BatchSize   int     `json:"batchSize"`
	ExecutionMS float64 `json:"executionMs"`
	PlanningMS  float64 `json:"planningMs"`
	File        string  `json:"file"`
}

// pgCapture is one case's statistics window, from pgStatsBegin to pgStatsEnd.
type pgCapture struct {
	xact0 int64
	ok    bool // the reset worked: the window is the case's
	waits *waitSampler
}

// pgSlug names a case's files under pgstats/.
func pgSlug(name string) string {
	if s, ok := caseSlug[name]; ok {
		return s
	}
	if name == caseSustain {
		return "sustained"
	}
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, strings.ToLower(name))
}

func (b *bench) pgStatsDir() string { return filepath.Join(b.out, "pgstats") }

// pgStatsBegin resets pg_stat_statements and records xact_commit for case name, and starts sampling
// wait events every 100 ms when waits is set. Its failures are notes.
func (b *bench) pgStatsBegin(ctx context.Context, name string, waits bool) {
	c := &pgCapture{}
	if b.pgCaptures == nil {
		b.pgCaptures = map[string]*pgCapture{}
	}
	b.pgCaptures[name] = c
	if err := os.MkdirAll(b.pgStatsDir(), 0o755); err != nil {
		b.res.note("pgstats %s: %v", name, err)
		return
	}
	db, err := b.stack.openAdmin(ctx, "postgres")
	if err != nil {
		b.res.note("pgstats %s: %v", name, err)
		return
	}
	defer db.Close()
	if !b.pgExtensionReady(ctx, db) {
		return
	}
	c.xact0 = b.xactCommits(ctx, db)
	if _, err := db.ExecContext(ctx, `SELECT pg_stat_statements_reset()`); err != nil {
		b.res.note("pgstats %s: pg_stat_statements_reset: %v", name, err)
		return
	}
	c.ok = true
	if waits {
		c.waits = b.startWaitSampler(ctx, name)
	}
}

// pgExtensionReady makes sure the pg_stat_statements view can be read (scripts/stack.sh creates
// the extension; an older stack may lack it), noting once why not.
func (b *bench) pgExtensionReady(ctx context.Context, db *sql.DB) bool {
	if b.pgUnavailable != "" {
		return false
	}
	_, err := db.ExecContext(ctx, `CREATE EXTENSION IF NOT EXISTS pg_stat_statements`)
	if err == nil {
		var n int64
		err = db.QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_statements`).Scan(&n)
	}
	if err != nil {
		b.pgUnavailable = err.Error()
		b.res.note("PostgreSQL statistics not collected: pg_stat_statements cannot be read (%v); scripts/stack.sh preloads it with the server package's contrib modules", err)
		return false
	}
	return true
}

// xactCommits sums pg_stat_database.xact_commit over the services' databases.
func (b *bench) xactCommits(ctx context.Context, db *sql.DB) int64 {
	var n int64
	_ = db.QueryRowContext(ctx, `SELECT coalesce(sum(xact_commit), 0) FROM pg_stat_database WHERE datname = ANY($1::text[])`,
		"{"+strings.Join(b.stack.services(), ",")+"}").Scan(&n)
	return n
}

// pgStatsEnd reads what PostgreSQL counted since pgStatsBegin(name), writes pgstats/<slug>.txt
// (and <slug>-waits.txt), and attaches the figures to the case's row; ops is the number of
// requests or events the case completed. Its failures are notes.
func (b *bench) pgStatsEnd(ctx context.Context, name string, ops int64, unit string) {
	c := b.pgCaptures[name]
	delete(b.pgCaptures, name)
	if c == nil {
		return
	}
	var waits *waitStats
	if c.waits != nil {
		waits = c.waits.stop()
	}
	if !c.ok {
		return
	}
	db, err := b.stack.openAdmin(ctx, "postgres")
	if err != nil {
		b.res.note("pgstats %s: %v", name, err)
		return
	}
	defer db.Close()
	all, err := readStatements(ctx, db)
	if err != nil {
		b.res.note("pgstats %s: reading pg_stat_statements: %v", name, err)
		return
	}
	st := summarize(all, ops, unit)
	st.XactCommitApprox = b.xactCommits(ctx, db) - c.xact0
	st.Waits = waits
	st.File = filepath.Join(b.pgStatsDir(), pgSlug(name)+".txt")
	if err := os.WriteFile(st.File, []byte(st.report(name, all)), 0o644); err != nil {
		b.res.note("pgstats %s: %v", name, err)
	}
	if !b.res.attachPG(name, st) {
		b.res.note("pgstats %s: no row to attach the statistics to", name)
	}
	b.logf("%s", st.line(name))
}

// readStatements reads every pg_stat_statements entry of the roles other than the bench's own
// (the superuser it connects as). to_jsonb keeps it independent of the columns' names, which
// change across PostgreSQL versions.
func readStatements(ctx context.Context, db *sql.DB) ([]pgStatement, error) {
	rows, err := db.QueryContext(ctx, `
		SELECT coalesce(d.datname, s.dbid::text), coalesce(r.rolname, s.userid::text), to_jsonb(s)
		FROM pg_stat_statements s
		LEFT JOIN pg_database d ON d.oid = s.dbid
		LEFT JOIN pg_roles r ON r.oid = s.userid
		WHERE s.userid <> (SELECT oid FROM pg_roles WHERE rolname = current_user)`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []pgStatement
	for rows.Next() {
		var st pgStatement
		var raw []byte
		if err := rows.Scan(&st.Database, &st.Role, &raw); err != nil {
			return nil, err
		}
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, err
		}
		num := func(keys ...string) float64 {
			for _, k := range keys {
				if v, ok := m[k].(float64); ok {
					return v
				}
			}
			return 0
		}
		st.Toplevel = true
		if v, ok := m["toplevel"].(bool); ok {
			st.Toplevel = v
		}
		st.Calls = int64(num("calls"))
		st.TotalMS = num("total_exec_time", "total_time")
		st.MeanMS = num("mean_exec_time", "mean_time")
		st.Rows = int64(num("rows"))
		st.BlksHit = int64(num("shared_blks_hit"))
		st.BlksRead = int64(num("shared_blks_read"))
		st.BlksDirt = int64(num("shared_blks_dirtied"))
		st.WALBytes = int64(num("wal_bytes"))
		st.IOMS = num("shared_blk_read_time", "blk_read_time") + num("shared_blk_write_time", "blk_write_time")
		st.Query, _ = m["query"].(string)
		out = append(out, st)
	}
	return out, rows.Err()
}

// txControl classifies a statement as "begin", "commit", "rollback" or "" (anything else).
func txControl(query string) string {
	f := strings.Fields(strings.ToLower(query))
	if len(f) == 0 {
		return ""
	}
	switch strings.TrimSuffix(f[0], ";") {
	case "begin", "start":
		return "begin"
	case "commit", "end":
		return "commit"
	case "rollback", "abort":
		if len(f) > 1 && strings.HasPrefix(f[1], "to") { // ROLLBACK TO SAVEPOINT ends no transaction
			return ""
		}
		return "rollback"
	}
	return ""
}

// summarize counts statements and commits per operation and keeps the top statements by total
// execution time.
func summarize(all []pgStatement, ops int64, unit string) *pgStats {
	st := &pgStats{Ops: ops, Unit: unit}
	perDB := map[string]*pgDBCount{}
	for _, s := range all {
		if !s.Toplevel {
			st.Nested += s.Calls
			continue
		}
		d := perDB[s.Database]
		if d == nil {
			d = &pgDBCount{Database: s.Database}
			perDB[s.Database] = d
		}
		st.Statements += s.Calls
		d.Statements += s.Calls
		switch txControl(s.Query) {
		case "commit":
			st.Commits += s.Calls
			d.Commits += s.Calls
		case "rollback":
			st.Rollbacks += s.Calls
		}
	}
	for _, d := range perDB {
		st.PerDatabase = append(st.PerDatabase, *d)
	}
	slices.SortFunc(st.PerDatabase, func(a, b pgDBCount) int {
		if a.Statements != b.Statements {
			return int(b.Statements - a.Statements)
		}
		return strings.Compare(a.Database, b.Database)
	})
	if ops > 0 {
		st.StatementsPerOp = float64(st.Statements) / float64(ops)
		st.CommitsPerOp = float64(st.Commits) / float64(ops)
	}
	top := slices.Clone(all)
	slices.SortFunc(top, func(a, b pgStatement) int {
		switch {
		case a.TotalMS > b.TotalMS:
			return -1
		case a.TotalMS < b.TotalMS:
			return 1
		}
		return 0
	})
	top = top[:min(pgTopN, len(top))]
	for i := range top {
		top[i].Query = truncate([]byte(oneLine(top[i].Query)), 240)
	}
	st.Top = top
	return st
}

var spaceRe = regexp.MustCompile(`\s+`)

func oneLine(q string) string { return strings.TrimSpace(spaceRe.ReplaceAllString(q, " ")) }

// line is the case's one line under the table.
func (st *pgStats) line(name string) string {
	if st.Ops == 0 {
		return fmt.Sprintf("%s: %d statements, %d commits (no completed %s to divide by)", name, st.Statements, st.Commits, st.Unit)
	}
	per := func(n int64) string {
		switch v := float64(n) / float64(st.Ops); {
		case v > 0 && v < 0.01:
			return "<0.01"
		case v > 0 && v < 0.1:
			return fmt.Sprintf("%.2f", v)
		}
		return fmt.Sprintf("%.1f", float64(n)/float64(st.Ops))
	}
	var dbs []string
	for _, d := range st.PerDatabase {
		dbs = append(dbs, fmt.Sprintf("%s %s/%s", d.Database, per(d.Statements), per(d.Commits)))
	}
	s := fmt.Sprintf("%s: %.1f statements, %.2f commits per %s (%s; %s %ss", name, st.StatementsPerOp, st.CommitsPerOp, st.Unit,
		strings.Join(dbs, ", "), groupThousands(st.Ops), st.Unit)
	if st.Nested > 0 {
		s += fmt.Sprintf("; %.1f nested per %s", float64(st.Nested)/float64(st.Ops), st.Unit)
	}
	if st.Rollbacks > 0 {
		s += fmt.Sprintf("; %d rollbacks", st.Rollbacks)
	}
	s += ")"
	if st.Waits != nil {
		s += "; waits: " + st.Waits.line()
	}
	return s
}

// report is the case's pgstats/<slug>.txt.
func (st *pgStats) report(name string, all []pgStatement) string {
	var w strings.Builder
	fmt.Fprintf(&w, "# %s — pg_stat_statements from the reset before the case to its end (drained), the service roles only\n", name)
	fmt.Fprintf(&w, "# (the harness's own queries run as the superuser and are left out; pg_stat_statements.track = all)\n\n")
	fmt.Fprintf(&w, "operations:          %d %ss\n", st.Ops, st.Unit)
	per := func(n int64) string {
		if st.Ops == 0 {
			return "—"
		}
		return fmt.Sprintf("%.2f", float64(n)/float64(st.Ops))
	}
	fmt.Fprintf(&w, "statements:          %d top level (round trips, BEGIN/COMMIT included) = %s per %s\n", st.Statements, per(st.Statements), st.Unit)
	fmt.Fprintf(&w, "commits:             %d COMMIT = %s per %s; rollbacks %d\n", st.Commits, per(st.Commits), st.Unit, st.Rollbacks)
	fmt.Fprintf(&w, "nested:              %d (inside functions and triggers) = %s per %s\n", st.Nested, per(st.Nested), st.Unit)
	for _, d := range st.PerDatabase {
		fmt.Fprintf(&w, "  %-17s  %d statements (%s per %s), %d commits (%s per %s)\n", d.Database, d.Statements, per(d.Statements), st.Unit, d.Commits, per(d.Commits), st.Unit)
	}
	fmt.Fprintf(&w, "pg_stat_database:    xact_commit +%d over the services' databases (cross-check only: includes the harness's queries; idle backends report up to 10 s late)\n", st.XactCommitApprox)
	if st.Waits != nil {
		fmt.Fprintf(&w, "waits:               %s (%s)\n", st.Waits.line(), st.Waits.File)
	}
	fmt.Fprintf(&w, "\nTop %d of %d statements by total execution time:\n\n", len(st.Top), len(all))
	tw := tabwriter.NewWriter(&w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "#\tdb\trole\tlevel\tcalls\ttotal ms\tmean ms\trows\tblks hit\tread\tdirtied\tWAL bytes\tI/O ms\t")
	for i, s := range st.Top {
		level := "top"
		if !s.Toplevel {
			level = "nested"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%.1f\t%.3f\t%d\t%d\t%d\t%d\t%d\t%.1f\t\n", i+1, s.Database, s.Role, level, s.Calls,
			s.TotalMS, s.MeanMS, s.Rows, s.BlksHit, s.BlksRead, s.BlksDirt, s.WALBytes, s.IOMS)
	}
	_ = tw.Flush()
	fmt.Fprintln(&w)
	for i, s := range st.Top {
		fmt.Fprintf(&w, "%2d. %s\n", i+1, s.Query)
	}
	return w.String()
}

// attachPG sets the pgStats of the last row named name.
func (r *results) attachPG(name string, st *pgStats) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.Rows) - 1; i >= 0; i-- {
		if r.Rows[i].Case == name {
			r.Rows[i].PG = st
			return true
		}
	}
	return false
}

// waitSampler samples pg_stat_activity every 100 ms during an event case.
type waitSampler struct {
	b      *bench
	name   string
	cancel context.CancelFunc
	done   chan struct{}
	// keyed by wait, state and database; busy/idle counts; samples taken; errors
	counts  map[[3]string]int
	samples int
	errs    int
	lastErr error
}

// waitLabel names a backend's wait: "Lock:advisory", or "CPU" for an active backend that waits
// on nothing.
func waitLabel(typ, event, state string) string {
	if typ == "" {
		if state == "active" {
			return "CPU"
		}
		return "none"
	}
	return typ + ":" + event
}

func (b *bench) startWaitSampler(ctx context.Context, name string) *waitSampler {
	ctx, cancel := context.WithCancel(ctx)
	s := &waitSampler{b: b, name: name, cancel: cancel, done: make(chan struct{}), counts: map[[3]string]int{}}
	db, err := b.stack.openAdmin(ctx, "postgres")
	if err != nil {
		s.lastErr, s.errs = err, 1
		close(s.done)
		return s
	}
	db.SetMaxOpenConns(1)
	// The service roles' client backends only: the harness's own sessions (the superuser's, this
	// sampler's included) are not what is measured.
	const q = `SELECT coalesce(wait_event_type, ''), coalesce(wait_event, ''), coalesce(state, ''), coalesce(datname, '')
		FROM pg_stat_activity
		WHERE backend_type = 'client backend' AND usename IS DISTINCT FROM current_user`
	go func() {
		defer close(s.done)
		defer db.Close()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			rows, err := db.QueryContext(ctx, q)
			if err != nil {
				if ctx.Err() == nil {
					s.errs++
					s.lastErr = err
				}
				continue
			}
			snap := map[[3]string]int{}
			for rows.Next() {
				var typ, ev, state, dat string
				if rows.Scan(&typ, &ev, &state, &dat) == nil {
					snap[[3]string{waitLabel(typ, ev, state), state, dat}]++
				}
			}
			if rows.Err() != nil || rows.Close() != nil {
				continue
			}
			s.samples++
			for k, v := range snap {
				s.counts[k] += v
			}
		}
	}()
	return s
}

// stop ends the sampling and writes pgstats/<slug>-waits.txt.
func (s *waitSampler) stop() *waitStats {
	s.cancel()
	<-s.done
	ws := &waitStats{Samples: s.samples, File: filepath.Join(s.b.pgStatsDir(), pgSlug(s.name)+"-waits.txt")}
	if s.errs > 0 {
		s.b.res.note("pgstats %s: %d wait samples failed (%v)", s.name, s.errs, s.lastErr)
	}
	byWait := map[string]int{}
	for k, v := range s.counts {
		if k[1] == "idle" {
			ws.Idle += v
			continue
		}
		ws.Busy += v
		w := k[0]
		if k[1] == "idle in transaction" || k[1] == "idle in transaction (aborted)" {
			w += " (idle in transaction)"
		}
		byWait[w] += v
	}
	type kv struct {
		k string
		v int
	}
	var waits []kv
	for k, v := range byWait {
		waits = append(waits, kv{k, v})
	}
	slices.SortFunc(waits, func(a, b kv) int {
		if a.v != b.v {
			return b.v - a.v
		}
		return strings.Compare(a.k, b.k)
	})
	for _, w := range waits {
		ws.Top = append(ws.Top, waitShare{Wait: w.k, Pct: 100 * float64(w.v) / float64(ws.Busy)})
	}
	var f strings.Builder
	fmt.Fprintf(&f, "# %s — pg_stat_activity sampled every 100 ms (client backends of the service roles)\n", s.name)
	fmt.Fprintf(&f, "# %d snapshots; %d busy backend-samples (not idle), %d idle (idle pooled connections, left out of the shares)\n\n", ws.Samples, ws.Busy, ws.Idle)
	fmt.Fprintln(&f, "By wait (share of busy backend-samples; CPU = active, waiting on nothing):")
	for _, w := range ws.Top {
		fmt.Fprintf(&f, "  %6.1f%%  %s\n", w.Pct, w.Wait)
	}
	fmt.Fprintln(&f, "\nBy wait, state and database (backend-samples):")
	keys := make([][3]string, 0, len(s.counts))
	for k := range s.counts {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b [3]string) int {
		if s.counts[a] != s.counts[b] {
			return s.counts[b] - s.counts[a]
		}
		return strings.Compare(strings.Join(a[:], "|"), strings.Join(b[:], "|"))
	})
	tw := tabwriter.NewWriter(&f, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  samples\twait\tstate\tdatabase")
	for _, k := range keys {
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\n", s.counts[k], k[0], k[1], k[2])
	}
	_ = tw.Flush()
	if err := os.WriteFile(ws.File, []byte(f.String()), 0o644); err != nil {
		s.b.res.note("pgstats %s: %v", s.name, err)
	}
	return ws
}

// line prints the top 3 waits.
func (ws *waitStats) line() string {
	if ws.Busy == 0 {
		return fmt.Sprintf("no busy backend in %d samples", ws.Samples)
	}
	var parts []string
	for _, w := range ws.Top[:min(3, len(ws.Top))] {
		parts = append(parts, fmt.Sprintf("%s %.0f%%", w.Wait, w.Pct))
	}
	return strings.Join(parts, ", ") + fmt.Sprintf(" of %d busy backend-samples", ws.Busy)
}

var explainTimeRe = regexp.MustCompile(`(?m)^(Planning|Execution) Time: ([0-9.]+) ms`)

// drainClaimExplain explains the drainer's exact claim statement (shared/outbox) with its default
// batch size over opt.drainEvents due rows, as the drainer runs it (role <tenants>_app, platform
// scope), in a transaction that is rolled back: the rows are inserted in that transaction, so the
// drainer never sees them and nothing measured is disturbed. It runs after the drain case, before
// the sustained case resets the statistics. Its failures are notes.
func (b *bench) drainClaimExplain(ctx context.Context) {
	plan, q, batch, ok := outbox.ClaimStatement(sqlstore.Postgres)
	if !ok {
		return
	}
	if err := b.explainClaim(ctx, plan, q, batch); err != nil {
		b.res.note("EXPLAIN of the drainer's claim failed: %v", err)
	}
}

func (b *bench) explainClaim(ctx context.Context, planSettings, claim string, batch int) error {
	if err := os.MkdirAll(b.pgStatsDir(), 0o755); err != nil {
		return err
	}
	db, err := b.stack.openAdmin(ctx, "tenants")
	if err != nil {
		return err
	}
	defer db.Close()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // always rolled back: the rows must never be drained
	n := b.opt.drainEvents
	evs := make([]events.Event, n)
	for i := range evs {
		tid := b.tenantIDs[i%len(b.tenantIDs)]
		if evs[i], err = events.New("tenants", "TenantRegistered", tid, tid, map[string]any{
			"tenantId": tid, "name": "Bench explain", "slug": fmt.Sprintf("explain-%d", i), "editionCode": b.edition,
		}, events.Meta{Actor: "system:bench"}); err != nil {
			return err
		}
	}
	// Due as the claim sees it: its now() is the transaction's start, which a row stamped with the
	// harness's clock would be after.
	var txNow time.Time
	if err := tx.QueryRowContext(ctx, `SELECT now()`).Scan(&txNow); err != nil {
		return err
	}
	if err := insertOutboxRows(ctx, tx, evs, txNow); err != nil {
		return err
	}
	// As the drainer: the service's runtime role (row-level security applies) in platform scope,
	// set the way sqlstore sets it.
	role := "tenants_app"
	if u, err := url.Parse(b.stack.env["SPINE_TENANTS_DB_URL"]); err == nil && u.User.Username() != "" {
		role = u.User.Username()
	}
	if _, err := tx.ExecContext(ctx, `SET LOCAL ROLE `+pgQuoteIdent(role)); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `SELECT set_config('spine.tenant_id', '', true), set_config('spine.platform', 'on', true)`); err != nil {
		return err
	}
	if planSettings != "" { // the drainer's planner settings, as it runs them before the claim
		if _, err := tx.ExecContext(ctx, planSettings); err != nil {
			return err
		}
	}
	rows, err := tx.QueryContext(ctx, `EXPLAIN (ANALYZE, BUFFERS, VERBOSE) `+claim, batch)
	if err != nil {
		return err
	}
	var plan strings.Builder
	for rows.Next() {
		var l string
		if err := rows.Scan(&l); err != nil {
			rows.Close()
			return err
		}
		plan.WriteString(l + "\n")
	}
	if err := rows.Close(); err != nil {
		return err
	}
	ex := &drainExplain{Pending: n, BatchSize: batch, File: filepath.Join(b.pgStatsDir(), "drain-claim-explain.txt")}
	for _, m := range explainTimeRe.FindAllStringSubmatch(plan.String(), -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		if m[1] == "Execution" {
			ex.ExecutionMS = v
		} else {
			ex.PlanningMS = v
		}
	}
	text := fmt.Sprintf("-- EXPLAIN (ANALYZE, BUFFERS, VERBOSE) of the drainer's claim (shared/outbox.ClaimStatement), $1 = %d (the default batch size),\n"+
		"-- over %d due rows inserted in the same transaction (rolled back), as %s in platform scope, after the drainer's\n"+
		"-- planner settings: %s\n-- %s\n\n%s",
		batch, n, role, oneLine(planSettings), oneLine(claim), plan.String())
	if err := os.WriteFile(ex.File, []byte(text), 0o644); err != nil {
		return err
	}
	b.res.mu.Lock()
	b.res.DrainExplain = ex
	b.res.mu.Unlock()
	b.logf("%s", ex.line())
	return nil
}

// pgQuoteIdent quotes a PostgreSQL identifier.
func pgQuoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// line is the EXPLAIN's line under the table.
func (ex *drainExplain) line() string {
	return fmt.Sprintf("drainer claim, EXPLAIN (ANALYZE, BUFFERS) of LIMIT %d over %s due rows: execution %.2f ms, planning %.2f ms (%s)",
		ex.BatchSize, groupThousands(int64(ex.Pending)), ex.ExecutionMS, ex.PlanningMS, ex.File)
}
