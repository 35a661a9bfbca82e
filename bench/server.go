package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/labstack/echo/v4"
)

// pinning says which CPUs the server and the load generators run on.
type pinning struct {
	server, generator string // taskset CPU lists; "" when not pinned
	genThreads        int    // wrk threads: one per generator CPU
	note              string // what was done, for the report
}

// choosePinning pins the server to CPU 0 and the generators to CPU 1 when there are at least two
// CPUs and taskset exists. PostgreSQL, Redis and Azurite are not pinned: they float over both.
func choosePinning(taskset string) pinning {
	n := numCPU()
	switch {
	case taskset == "":
		return pinning{genThreads: min(n, 2), note: "not pinned: taskset (util-linux) is missing"}
	case n < 2:
		return pinning{genThreads: 1, note: fmt.Sprintf("not pinned: %d CPU", n)}
	}
	return pinning{server: "0", generator: "1", genThreads: 1,
		note: fmt.Sprintf("server on CPU 0, load generators on CPU 1 (taskset; %d CPUs; PostgreSQL, Redis and Azurite unpinned)", n)}
}

// numCPU is the number of CPUs this process could run on when it started (before it pinned itself).
func numCPU() int { return runtime.NumCPU() }

// command builds name args, run through taskset on cpus when cpus is set.
func (t tools) command(ctx context.Context, cpus, name string, args ...string) *exec.Cmd {
	if cpus != "" && t.taskset != "" {
		return exec.CommandContext(ctx, t.taskset, append([]string{"-c", cpus, name}, args...)...)
	}
	return exec.CommandContext(ctx, name, args...)
}

// pinSelf moves every thread of this process to cpus (the harness is a load generator too).
func (t tools) pinSelf(cpus string) error {
	if cpus == "" || t.taskset == "" {
		return nil
	}
	return runQuiet(context.Background(), t.taskset, "-a", "-p", "-c", cpus, strconv.Itoa(os.Getpid()))
}

// buildRelease builds the handler as `make package` does (static, stripped) into out.
func buildRelease(ctx context.Context, root, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, ".")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w\n%s", err, tail(string(b), 30))
	}
	return nil
}

// process is a server the bench started: the handler or the bare echo server.
type process struct {
	name string
	cmd  *exec.Cmd
	port int
	log  string // file with its stderr and stdout
	done chan struct{}
	err  error // set when done is closed
}

// startProcess starts cmd (whose port is port), logging to logPath, and waits until GET url
// answers 200 (at most wait). A process that exits early or never answers is an error naming its log.
func startProcess(ctx context.Context, name string, cmd *exec.Cmd, port int, healthURL, logPath string, wait time.Duration) (*process, error) {
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 15 * time.Second
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, port: port, log: logPath, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); lf.Close(); close(p.done) }()
	if _, err := waitHealthy(ctx, healthURL, wait, time.Millisecond, p.done); err != nil {
		p.stop()
		return nil, fmt.Errorf("%s did not start: %w\n%s", name, err, tailFile(logPath, 20))
	}
	return p, nil
}

// waitHealthy polls GET url every interval until it answers 200, the process exits (exited is
// closed) or wait passes; it returns how long that took from its call.
func waitHealthy(ctx context.Context, url string, wait, interval time.Duration, exited <-chan struct{}) (time.Duration, error) {
	start := time.Now()
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := start.Add(wait)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := client.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(start), nil
			}
		}
		select {
		case <-exited:
			return 0, errors.New("the process exited")
		case <-ctx.Done():
			return 0, ctx.Err()
		default:
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("no 200 from %s within %s", url, wait)
		}
		time.Sleep(interval)
	}
}

// stop sends SIGTERM and waits for the process to exit (15 s, then it is killed).
func (p *process) stop() {
	if p == nil || p.cmd.Process == nil {
		return
	}
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// alive reports whether the process is still running.
func (p *process) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// rssMB reads the process's resident set size (VmRSS) in MiB.
func (p *process) rssMB() (float64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			f := strings.Fields(rest) // "12345 kB"
			if len(f) == 2 && f[1] == "kB" {
				kb, err := strconv.ParseFloat(f[0], 64)
				return kb / 1024, err
			}
		}
	}
	return 0, errors.New("no VmRSS in /proc status")
}

// freePort returns a TCP port free on 127.0.0.1 at the time of the call.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// tailFile returns the last n lines of a file, for error messages.
func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return fmt.Sprintf("(last lines of %s)\n%s", path, tail(string(b), n))
}

// echoConstant is what the bare echo server answers.
const echoConstant = "ok"

// runEchoServer is `bench --echo-server --port N`: a plain echo instance (the app's echo version)
// whose only routes answer a constant, with the tenant read's path shape so that the same wrk script
// drives both. It serves until SIGTERM or SIGINT.
func runEchoServer(ctx context.Context, port int) error {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	constant := func(c echo.Context) error { return c.String(http.StatusOK, echoConstant) }
	e.GET("/", constant)
	e.GET("/api/tenants/:id", constant)
	srv := &http.Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Handler: e,
		ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}

// startEchoServer re-executes this binary as the bare echo server, pinned like the handler.
func (b *bench) startEchoServer(ctx context.Context) (*process, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cmd := b.tools.command(ctx, b.pin.server, self, "--echo-server", "--port", strconv.Itoa(port))
	cmd.Env = environ()
	return startProcess(ctx, "bare echo server", cmd, port, fmt.Sprintf("http://127.0.0.1:%d/", port),
		filepath.Join(b.out, "echo.log"), 10*time.Second)
}

// serverEnv is the handler's environment: the stack's settings plus `make run`'s, in standalone
// mode, warn-level logs (a log line per invocation would dominate) and pprof on loopback.
func (b *bench) serverEnv(port, pprofPort int) []string {
	extra := map[string]string{
		"SPINE_DEV_KEY_DIR":    b.keyDir,
		"SPINE_AUTH_JWKS_FILE": filepath.Join(b.keyDir, "jwks.json"),
		"SPINE_AUTH_ISSUER":    b.issuer,
		"SPINE_AUTH_AUDIENCE":  audience,
		"SPINE_STANDALONE":     "true",
		"SPINE_LOG_LEVEL":      "warn",
	}
	if port > 0 {
		extra["PORT"] = strconv.Itoa(port)
	}
	if pprofPort > 0 {
		extra["SPINE_PPROF_ADDR"] = fmt.Sprintf("127.0.0.1:%d", pprofPort)
	}
	return environ(b.stack.env, extra)
}

// prepareHandler creates the dev signing key and applies every service's migrations.
func (b *bench) prepareHandler(ctx context.Context) error {
	for _, sub := range []string{"devkey", "migrate"} {
		cmd := exec.CommandContext(ctx, b.handler, sub)
		cmd.Env = b.serverEnv(0, 0)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("handler %s: %w\n%s", sub, err, tail(string(out), 20))
		}
	}
	return nil
}

// startHandler starts the release build on b.port pinned to the server CPU, with pprof on a free
// port.
func (b *bench) startHandler(ctx context.Context) (*process, error) {
	port := b.port
	var err error
	if b.pprofPort, err = freePort(); err != nil {
		return nil, err
	}
	cmd := b.tools.command(ctx, b.pin.server, b.handler, "serve")
	cmd.Env = b.serverEnv(port, b.pprofPort)
	return startProcess(ctx, "handler", cmd, port, fmt.Sprintf("http://127.0.0.1:%d/api/health", port),
		filepath.Join(b.out, "handler.log"), 30*time.Second)
}

// coldStart execs the handler with every service configured on a new port and returns the time
// from exec to its first 200 on /api/health, polled every millisecond.
func (b *bench) coldStart(ctx context.Context, i int) (time.Duration, error) {
	port, err := freePort()
	if err != nil {
		return 0, err
	}
	cmd := b.tools.command(ctx, b.pin.server, b.handler, "serve")
	cmd.Env = b.serverEnv(port, 0)
	logPath := filepath.Join(b.out, fmt.Sprintf("coldstart-%d.log", i))
	lf, err := os.Create(logPath)
	if err != nil {
		return 0, err
	}
	defer lf.Close()
	cmd.Stdout, cmd.Stderr = lf, lf
	done := make(chan struct{})
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	go func() { _ = cmd.Wait(); close(done) }()
	_, err = waitHealthy(ctx, fmt.Sprintf("http://127.0.0.1:%d/api/health", port), 10*time.Second, time.Millisecond, done)
	elapsed := time.Since(start)
	p := &process{cmd: cmd, done: done}
	p.stop()
	if err != nil {
		return 0, fmt.Errorf("cold start %d: %w\n%s", i, err, tailFile(logPath, 20))
	}
	return elapsed, nil
}
