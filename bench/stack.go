package main

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

// stackName is the name of the bench's own local stack (scripts/stack.sh --name).
const stackName = "bench"

// stack is the bench's local stack: PostgreSQL, Redis and Azurite started by scripts/stack.sh,
// described by the env file the script writes.
type stack struct {
	root string            // module root (where scripts/stack.sh lives)
	env  map[string]string // the env file's variables
}

// stackUp starts the bench stack from scratch: a previous bench stack is purged first, so every run
// measures the same (empty) databases. fast selects the script's --fast mode (fsync off).
func stackUp(ctx context.Context, root string, fast bool) (*stack, error) {
	script := filepath.Join(root, "scripts", "stack.sh")
	_ = runQuiet(ctx, script, "down", "--name", stackName, "--purge")
	args := []string{"up", "--name", stackName}
	if fast {
		args = append(args, "--fast")
	}
	cmd := exec.CommandContext(ctx, script, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("scripts/stack.sh up --name %s: %w\n%s", stackName, err, tail(stderr.String(), 20))
	}
	envPath := strings.TrimSpace(string(out))
	if i := strings.LastIndexByte(envPath, '\n'); i >= 0 {
		envPath = envPath[i+1:]
	}
	f, err := os.Open(envPath)
	if err != nil {
		return nil, fmt.Errorf("stack env file: %w", err)
	}
	defer f.Close()
	env, err := parseEnvFile(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", envPath, err)
	}
	for _, k := range []string{"SPINE_PG_ADMIN_URL", "SPINE_REDIS_HOST", "SPINE_REDIS_PORT", "SPINE_TENANTS_DB_URL"} {
		if env[k] == "" {
			return nil, fmt.Errorf("%s: %s is missing", envPath, k)
		}
	}
	return &stack{root: root, env: env}, nil
}

// down stops the stack (keeping its data for inspection; the next run purges it). It uses its own
// context so that it also runs after an interrupt.
func (s *stack) down() error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return runQuiet(ctx, filepath.Join(s.root, "scripts", "stack.sh"), "down", "--name", stackName)
}

// services lists the owning services the stack created a database for.
func (s *stack) services() []string { return strings.Fields(s.env["SPINE_DB_SERVICES"]) }

// adminURL is the superuser's URL on database db (superusers bypass row-level security, which the
// bench needs to seed the outbox and to read every tenant's audit entries).
func (s *stack) adminURL(db string) string {
	u, err := url.Parse(s.env["SPINE_PG_ADMIN_URL"])
	if err != nil {
		return s.env["SPINE_PG_ADMIN_URL"]
	}
	u.Path = "/" + db
	return u.String()
}

// openAdmin opens database db as the superuser.
func (s *stack) openAdmin(ctx context.Context, db string) (*sql.DB, error) {
	d, err := sql.Open("pgx", s.adminURL(db))
	if err != nil {
		return nil, err
	}
	d.SetMaxOpenConns(4)
	if err := d.PingContext(ctx); err != nil {
		d.Close()
		return nil, fmt.Errorf("database %s: %w", db, err)
	}
	return d, nil
}

// scratchDB creates (again) the database bench_scratch with the pgbench table and returns its URL.
func (s *stack) scratchDB(ctx context.Context) (string, error) {
	admin, err := s.openAdmin(ctx, "postgres")
	if err != nil {
		return "", err
	}
	defer admin.Close()
	for _, q := range []string{`DROP DATABASE IF EXISTS bench_scratch`, `CREATE DATABASE bench_scratch`} {
		if _, err := admin.ExecContext(ctx, q); err != nil {
			return "", fmt.Errorf("%s: %w", q, err)
		}
	}
	db, err := s.openAdmin(ctx, "bench_scratch")
	if err != nil {
		return "", err
	}
	defer db.Close()
	const q = `CREATE TABLE bench_insert(id bigserial primary key, payload text not null, created_at timestamptz not null default now())`
	if _, err := db.ExecContext(ctx, q); err != nil {
		return "", fmt.Errorf("%s: %w", q, err)
	}
	return s.adminURL("bench_scratch"), nil
}

// parseEnvFile reads the stack's env file: `export KEY='value'` lines (POSIX single quoting, with
// '\” for a quote inside), comments and blank lines.
func parseEnvFile(f *os.File) (map[string]string, error) {
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		k, v, ok, err := parseEnvLine(sc.Text())
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if ok {
			env[k] = v
		}
	}
	return env, sc.Err()
}

// parseEnvLine parses one env file line; ok is false for blank and comment lines.
func parseEnvLine(line string) (key, value string, ok bool, err error) {
	line = strings.TrimSpace(line)
	if line == "" || strings.HasPrefix(line, "#") {
		return "", "", false, nil
	}
	line = strings.TrimPrefix(line, "export ")
	key, rest, found := strings.Cut(line, "=")
	if !found || key == "" {
		return "", "", false, fmt.Errorf("not KEY=value: %q", line)
	}
	var b strings.Builder
	for len(rest) > 0 {
		switch {
		case rest[0] == '\'':
			end := strings.IndexByte(rest[1:], '\'')
			if end < 0 {
				return "", "", false, fmt.Errorf("%s: unterminated quote", key)
			}
			b.WriteString(rest[1 : 1+end])
			rest = rest[end+2:]
		case strings.HasPrefix(rest, `\'`):
			b.WriteByte('\'')
			rest = rest[2:]
		default:
			i := strings.IndexAny(rest, `'\`)
			if i < 0 {
				i = len(rest)
			} else if i == 0 { // a lone backslash
				i = 1
			}
			b.WriteString(rest[:i])
			rest = rest[i:]
		}
	}
	return key, b.String(), true, nil
}

// environ returns the process environment without any SPINE_* or FUNCTIONS_* setting (a shell that
// sourced another stack's env must not leak into the bench), plus extra (KEY → value), sorted.
func environ(extra ...map[string]string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "SPINE_") || strings.HasPrefix(kv, "FUNCTIONS_") {
			continue
		}
		out = append(out, kv)
	}
	keys := map[string]string{}
	for _, m := range extra {
		for k, v := range m {
			keys[k] = v
		}
	}
	names := make([]string, 0, len(keys))
	for k := range keys {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		out = append(out, k+"="+keys[k])
	}
	return out
}

// tools are the external programs the bench drives.
type tools struct {
	wrk, redisBenchmark, pgbench, taskset string
}

// findTools locates wrk, redis-benchmark, pgbench and taskset, installing the Debian packages of the
// missing ones with apt-get when running as root (wrk: wrk; redis-benchmark: redis-tools).
// pgbench ships with the PostgreSQL server package, which scripts/stack.sh needs anyway.
func findTools(ctx context.Context, logf func(string, ...any)) (tools, error) {
	var t tools
	want := map[string]string{"wrk": "wrk", "redis-benchmark": "redis-tools"}
	var missing []string
	for bin, pkg := range want {
		if _, err := exec.LookPath(bin); err != nil {
			missing = append(missing, pkg)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		if os.Geteuid() != 0 {
			return t, fmt.Errorf("missing tools: install the Debian packages %s", strings.Join(missing, " "))
		}
		logf("installing %s with apt-get", strings.Join(missing, " "))
		if err := runQuiet(ctx, "apt-get", "update"); err != nil {
			return t, fmt.Errorf("apt-get update: %w", err)
		}
		args := append([]string{"install", "-y", "--no-install-recommends"}, missing...)
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			return t, fmt.Errorf("apt-get install %s: %w\n%s", strings.Join(missing, " "), err, tail(string(out), 20))
		}
	}
	var err error
	if t.wrk, err = exec.LookPath("wrk"); err != nil {
		return t, err
	}
	if t.redisBenchmark, err = exec.LookPath("redis-benchmark"); err != nil {
		return t, err
	}
	// The versioned server bin dir first: /usr/bin/pgbench is a wrapper that needs a cluster config.
	if dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pgbench"); len(dirs) > 0 {
		sort.Strings(dirs)
		t.pgbench = dirs[len(dirs)-1]
	} else if t.pgbench, err = exec.LookPath("pgbench"); err != nil {
		return t, errors.New("pgbench not found: it ships with the PostgreSQL server package (postgresql-15)")
	}
	t.taskset, _ = exec.LookPath("taskset") // optional: without it nothing is pinned
	return t, nil
}

// runQuiet runs a command, returning its error with the tail of its combined output.
func runQuiet(ctx context.Context, name string, args ...string) error {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w\n%s", filepath.Base(name), strings.Join(args, " "), err, tail(string(out), 20))
	}
	return nil
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
