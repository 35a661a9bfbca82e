// Command handler is Spine's Azure Functions custom handler: one binary that serves every owning
// service's HTTP APIs, Service Bus workers and timers, plus the operator subcommands around it.
//
//	handler [serve]        serve HTTP on FUNCTIONS_CUSTOMHANDLER_PORT or PORT (default 7071)
//	handler migrate        apply the platform schema, then every enabled service's migrations, with its owner connection
//	handler functions      write functions/<Name>/function.json from the registry (--check to verify)
//	handler events         print the event catalog: types, topics, consumers (--json, --write)
//	handler devkey         create the local dev signing key and its JWKS (SPINE_DEV_KEY_DIR)
//	handler token          print an access token from the running server, through a dev client (make token)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"spine/migrations"
	"spine/shared/auth"
	"spine/shared/config"
	"spine/shared/functions"
	"spine/shared/sqlstore"
	"spine/shared/telemetry"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	processLog = true
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// processLog is set by main: the logger of serve and migrate becomes the process's one log
// (telemetry.UseLogger), so what libraries log is JSON too. Tests that call run leave the
// process's globals alone.
var processLog bool

// run is main without the process: testable, and every exit goes through one place.
func run(ctx context.Context, args []string, getenv config.Getenv, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "serve":
		err = serveCmd(ctx, getenv, stderr)
	case "migrate":
		err = migrateCmd(ctx, getenv, stderr)
	case "functions":
		err = functionsCmd(args, stdout)
	case "events":
		err = eventsCmd(args, stdout)
	case "devkey":
		err = devkeyCmd(args, getenv, stdout)
	case "token":
		err = tokenCmd(ctx, args, getenv, stdout, stderr)
	case "keyvault-fake":
		err = keyvaultFakeCmd(ctx, args, stderr)
	case "smtp-sink":
		err = smtpSinkCmd(ctx, args, stderr)
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, "usage: handler [serve|migrate|functions|events|devkey|token] [flags]")
		return 0
	default:
		err = fmt.Errorf("unknown command %q (want serve, migrate, functions, events, devkey or token)", cmd)
	}
	if err != nil {
		fmt.Fprintf(stderr, "handler %s: %s\n", cmd, oneLine(err.Error()))
		return 1
	}
	return 0
}

// oneLine joins a message that spans lines into the one line a failure prints: pgx names every
// address and TLS mode it tried on a line of its own, and invalid settings name one problem a
// line. Blank lines and a line repeating the one before it are dropped.
func oneLine(msg string) string {
	var b strings.Builder
	prev := ""
	for _, l := range strings.Split(msg, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || l == prev {
			continue
		}
		switch {
		case b.Len() == 0:
		case strings.HasSuffix(prev, ":"):
			b.WriteString(" ")
		default:
			b.WriteString("; ")
		}
		b.WriteString(l)
		prev = l
	}
	return b.String()
}

// newLogger logs JSON lines at level and above, with durations written for people ("1.5ms").
func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: telemetry.ReadableDurations}))
}

func serveCmd(ctx context.Context, getenv config.Getenv, stderr io.Writer) error {
	cfg, err := config.Load(getenv, moduleNames())
	if err != nil {
		return fmt.Errorf("invalid settings:\n%w", err)
	}
	logger := newLogger(stderr, cfg.LogLevel)
	if processLog {
		telemetry.UseLogger(logger)
	}
	logger.Info("starting", "config", cfg)
	if processLog {
		limit, source := memoryLimit(cfg, getenv)
		if source == "SPINE_MEMORY_LIMIT" {
			debug.SetMemoryLimit(limit)
		}
		logger.Info("memory limit", "bytes", limit, "source", source)
	}
	a, err := newApp(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer a.Close()
	return a.Serve(ctx)
}

// memoryLimit is the soft memory limit serve runs with and the setting it comes from: GOMEMLIMIT
// when set (the runtime has applied it already), else SPINE_MEMORY_LIMIT or its default
// (config.DefaultMemoryLimit). A limit of 0 means none (math.MaxInt64 for the runtime).
func memoryLimit(cfg config.Config, getenv config.Getenv) (int64, string) {
	if getenv("GOMEMLIMIT") != "" {
		return debug.SetMemoryLimit(-1), "GOMEMLIMIT"
	}
	if cfg.MemoryLimit == 0 {
		return math.MaxInt64, "SPINE_MEMORY_LIMIT"
	}
	return cfg.MemoryLimit, "SPINE_MEMORY_LIMIT"
}

func migrateCmd(ctx context.Context, getenv config.Getenv, stderr io.Writer) error {
	cfg, err := config.Load(getenv, moduleNames())
	if err != nil {
		return fmt.Errorf("invalid settings:\n%w", err)
	}
	logger := newLogger(stderr, cfg.LogLevel)
	if processLog {
		telemetry.UseLogger(logger)
	}
	for _, svc := range cfg.Enabled {
		dbc := cfg.DB[svc]
		if dbc.MigrateURL == "" {
			return fmt.Errorf("SPINE_%s_DB_MIGRATE_URL: required for migrate (the owner role's connection string)", strings.ToUpper(svc))
		}
		applied, err := migrateService(ctx, svc, dbc, logger)
		if err != nil {
			return err
		}
		logger.Info("migrated", "service", svc, "platform", applied.Platform, "applied", applied.Service)
	}
	return nil
}

// migrateService applies the platform schema and then the service's own migrations to one
// service's database, with its owner connection.
func migrateService(ctx context.Context, svc string, dbc config.DB, logger *slog.Logger) (migrations.Applied, error) {
	d, err := sqlstore.ParseDialect(dbc.Dialect)
	if err != nil {
		return migrations.Applied{}, err
	}
	db, err := sqlstore.Open(ctx, svc, d, dbc.MigrateURL, sqlstore.PoolConfig{MaxOpen: 2})
	if err != nil {
		return migrations.Applied{}, fmt.Errorf("%s: %w", svc, err)
	}
	defer db.Close()
	return migrations.Apply(ctx, db, svc, logger)
}

func functionsCmd(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("functions", flag.ContinueOnError)
	out := fs.String("out", "functions", "folder to write function.json files into")
	check := fs.Bool("check", false, "only verify that the folder matches the registry")
	if err := fs.Parse(args); err != nil {
		return err
	}
	reg, err := declaredRegistry()
	if err != nil {
		return err
	}
	if *check {
		return functions.CheckDir(*out, reg)
	}
	if err := functions.WriteDir(*out, reg); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %d functions to %s\n", len(reg.Functions()), *out)
	return nil
}

func devkeyCmd(args []string, getenv config.Getenv, stdout io.Writer) error {
	fs := flag.NewFlagSet("devkey", flag.ContinueOnError)
	dir := fs.String("dir", getenv("SPINE_DEV_KEY_DIR"), "folder for the dev signing key (SPINE_DEV_KEY_DIR)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		return errors.New("SPINE_DEV_KEY_DIR or --dir: required")
	}
	s, err := auth.EnsureDevKey(*dir)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "dev signing key %s in %s (JWKS: %s/jwks.json)\n", s.KeyID(), *dir, *dir)
	return nil
}
