package tests

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// stackScript runs scripts/stack.sh and returns its stdout and exit status.
func stackScript(t *testing.T, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(filepath.Join(repo, "scripts", "stack.sh"), args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return strings.TrimSpace(string(out)), 0
	case errors.As(err, &exit):
		return strings.TrimSpace(string(out)), exit.ExitCode()
	default:
		t.Fatalf("stack.sh %v: %v\n%s", args, err, stderr.String())
		return "", -1
	}
}

// `stack.sh free` agrees with a real listener: a port held by a client connection's TIME_WAIT,
// which no listener check sees, is not free (a server binding it would fail with EADDRINUSE).
func TestStackScript_FreeSeesClientTimeWait(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
		close(accepted)
	}()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	port := client.LocalAddr().(*net.TCPAddr).Port
	client.Close() // the client closes first: its port goes to TIME_WAIT
	if c, ok := <-accepted; ok {
		time.Sleep(50 * time.Millisecond)
		c.Close()
	}

	_, status := stackScript(t, "free", strconv.Itoa(port))
	probe, listenErr := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if listenErr == nil {
		probe.Close()
	}
	if (status == 0) != (listenErr == nil) {
		t.Fatalf("stack.sh free %d = exit %d, but a listener's bind: %v", port, status, listenErr)
	}
	if status == 0 {
		t.Logf("this kernel lets a listener bind a port in a client's TIME_WAIT; nothing more to check")
	}

	// A listener's port is not free; a closed one's is.
	_, status = stackScript(t, "free", strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
	if status == 0 {
		t.Errorf("a listening port passes as free")
	}
}

// Ports come from outside (below, by default) the kernel's ephemeral range (which every client socket draws from), are
// kept across calls, and are distinct per key.
func TestStackScript_PortsBelowTheEphemeralRange(t *testing.T) {
	raw, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		t.Skipf("no ephemeral range to compare with: %v", err)
	}
	f := strings.Fields(string(raw))
	lo, _ := strconv.Atoi(f[0])
	hi, _ := strconv.Atoi(f[1])
	name := fmt.Sprintf("gotest-%d", os.Getpid())
	t.Cleanup(func() { stackScript(t, "down", "--name", name, "--purge") })

	first, status := stackScript(t, "port", "--name", name, "metrics")
	if status != 0 {
		t.Fatalf("stack.sh port: exit %d", status)
	}
	p, err := strconv.Atoi(first)
	if err != nil || p < 1024 || (p >= lo && p <= hi) {
		t.Fatalf("port %q: want one outside the ephemeral range %d-%d", first, lo, hi)
	}
	again, _ := stackScript(t, "port", "--name", name, "metrics")
	other, _ := stackScript(t, "port", "--name", name, "func-metrics")
	if again != first {
		t.Errorf("the kept port changed: %s, then %s", first, again)
	}
	if other == first {
		t.Errorf("two keys share port %s", first)
	}
}

// A failed `stack.sh up` stops what it started, also a PostgreSQL that is still starting when
// up gives up (pg_ctl's wait timed out, here at once: SPINE_STACK_TIMEOUT=0): before, up's
// clean-up found no pid file yet and left that server running.
func TestStackScript_FailedUpStopsAPostgreSQLStillStarting(t *testing.T) {
	name := fmt.Sprintf("gotest-fail-%d", os.Getpid())
	t.Cleanup(func() { stackScript(t, "down", "--name", name, "--purge") })
	cmd := exec.Command(filepath.Join(repo, "scripts", "stack.sh"), "up", "--name", name, "--fast")
	cmd.Env = append(os.Environ(), "SPINE_STACK_TIMEOUT=0")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("up with a zero timeout succeeded:\n%s", out)
	}
	raw, err := os.ReadFile(filepath.Join(repo, ".stack", name, "pgdir"))
	if err != nil {
		t.Fatalf("no pgdir: %v\n%s", err, out)
	}
	pgdata := filepath.Join(strings.TrimSpace(string(raw)), "pgdata")
	time.Sleep(time.Second) // a server left behind would have written its pid by now
	if ps, _ := exec.Command("pgrep", "-f", "--", "-D "+pgdata+"$").Output(); len(ps) != 0 {
		t.Fatalf("PostgreSQL still runs after the failed up (pid %s):\n%s", strings.TrimSpace(string(ps)), out)
	}
}
