package functions

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"spine/shared/problem"
)

// generous bounds every wait in these tests; nothing asserts how fast the scheduler is.
const generous = 15 * time.Second

func startScheduler(t *testing.T, r *Registry) (stop func() error, logs *syncBuffer) {
	t.Helper()
	logs = &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, nil))
	e := echo.New()
	e.HTTPErrorHandler = (&problem.Handler{}).ServeError
	Mount(e, r, logger)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- NewScheduler(r, e, logger).Run(ctx) }()
	var stopped bool
	var runErr error
	stop = func() error {
		if stopped {
			return runErr
		}
		stopped = true
		cancel()
		select {
		case runErr = <-done:
			return runErr
		case <-time.After(generous):
			runErr = errors.New("Run did not return after cancel")
			return runErr
		}
	}
	t.Cleanup(func() { _ = stop() })
	return stop, logs
}

func TestSchedulerFiresThroughInvokeAndStops(t *testing.T) {
	fired := make(chan TimerInfo, 100)
	var r Registry
	err := r.Add(
		Function{Name: "EverySecond", Timer: &TimerTrigger{Schedule: "* * * * * *"}, Handler: func(ctx context.Context, inv *Invocation) (*Result, error) {
			if inv.HostVersion != StandaloneHostVersion {
				return nil, errors.New("not invoked through Invoke")
			}
			if _, ok := FromContext(ctx); !ok {
				return nil, errors.New("no invocation in context")
			}
			ti, err := inv.Timer(TimerBinding)
			if err != nil {
				return nil, err
			}
			fired <- ti
			return &Result{Logs: []string{"tick handled"}}, nil
		}},
		Function{Name: "AlwaysFails", Timer: &TimerTrigger{Schedule: "* * * * * *"}, Handler: func(context.Context, *Invocation) (*Result, error) {
			return nil, problem.New(409, "busy", "busy")
		}},
		sbFn(), // not a timer: never scheduled
	)
	if err != nil {
		t.Fatal(err)
	}
	stop, logs := startScheduler(t, &r)

	var first, second TimerInfo
	for i, dst := range []*TimerInfo{&first, &second} {
		select {
		case *dst = <-fired:
		case <-time.After(generous):
			t.Fatalf("timer fired %d times within %v", i, generous)
		}
	}
	if err := stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	// Host semantics: Next is the occurrence being run, Last the previous one invoked.
	if first.Next.IsZero() || first.Next.Nanosecond() != 0 || first.Last.After(first.Next) || first.IsPastDue {
		t.Fatalf("first tick = %+v", first)
	}
	if !second.Last.Equal(first.Next) || !second.Next.After(second.Last) {
		t.Fatalf("second tick = %+v after first %+v", second, first)
	}

	// After Run returned, nothing fires any more.
	n := len(fired)
	time.Sleep(1500 * time.Millisecond)
	if len(fired) != n {
		t.Fatal("the timer fired after Run returned")
	}

	var sawFailure, sawHandlerLog, sawSB bool
	for _, l := range logs.lines(t) {
		switch {
		case l["msg"] == "scheduled invocation failed" && l["function"] == "AlwaysFails" && l["status"] == float64(409):
			sawFailure = strings.Contains(l["body"].(string), `"code":"busy"`)
		case l["msg"] == "tick handled" && l["function"] == "EverySecond":
			sawHandlerLog = true
		case l["function"] == "AuditOnEvent":
			sawSB = true
		}
	}
	if !sawFailure || !sawHandlerLog || sawSB {
		t.Fatalf("logs: failure %v, handler log %v, service bus scheduled %v:\n%v", sawFailure, sawHandlerLog, sawSB, logs.lines(t))
	}
}

func TestSchedulerRunOnStartup(t *testing.T) {
	fired := make(chan TimerInfo, 1)
	var r Registry
	// Once a year: only RunOnStartup can fire it during the test.
	if err := r.Add(Function{Name: "Yearly", Timer: &TimerTrigger{Schedule: "0 0 0 1 1 *", RunOnStartup: true}, Handler: func(_ context.Context, inv *Invocation) (*Result, error) {
		ti, err := inv.Timer(TimerBinding)
		if err != nil {
			return nil, err
		}
		fired <- ti
		return nil, nil
	}}); err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	stop, _ := startScheduler(t, &r)
	select {
	case ti := <-fired:
		if ti.Next.Before(before) || ti.Next.Month() != time.January || ti.Next.Day() != 1 || ti.Last.After(ti.Next) {
			t.Fatalf("startup run timer info = %+v", ti)
		}
	case <-time.After(generous):
		t.Fatal("RunOnStartup did not fire")
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

func TestSchedulerSkipsWhileRunningAndWaitsOnStop(t *testing.T) {
	release := make(chan struct{})
	var started, finished atomic.Int32
	var r Registry
	if err := r.Add(Function{Name: "Slow", Timer: &TimerTrigger{Schedule: "* * * * * *"}, Handler: func(ctx context.Context, _ *Invocation) (*Result, error) {
		started.Add(1)
		<-release
		if ctx.Err() != nil {
			return nil, errors.New("invocation context cancelled by stop")
		}
		finished.Add(1)
		return nil, nil
	}}); err != nil {
		t.Fatal(err)
	}
	stop, logs := startScheduler(t, &r)

	// Wait for an occurrence to be skipped because the first invocation still runs.
	deadline := time.Now().Add(generous)
	for !hasLog(logs.lines(t), "timer occurrence skipped: the previous invocation is still running") {
		if time.Now().After(deadline) {
			t.Fatal("no occurrence was skipped while the invocation ran")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := started.Load(); n != 1 {
		t.Fatalf("%d invocations started while the first was running, want 1", n)
	}

	// Stop waits for the running invocation, which completes with a live context.
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	select {
	case <-stopped:
		t.Fatal("Run returned while an invocation was still running")
	case <-time.After(300 * time.Millisecond):
	}
	close(release)
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(generous):
		t.Fatal("Run did not return after the invocation finished")
	}
	if finished.Load() != 1 {
		t.Fatalf("finished = %d, want 1 (the invocation saw a cancelled context?)", finished.Load())
	}
}

func TestSchedulerRejectsBadSchedule(t *testing.T) {
	var r Registry
	// Bypass Add's validation to reach Run's own check.
	r.fns = map[string]Function{"Bad": {Name: "Bad", Timer: &TimerTrigger{Schedule: "bad"}, Handler: nopHandler}}
	err := NewScheduler(&r, echo.New(), nil).Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "Bad") {
		t.Fatalf("Run = %v", err)
	}
}

func hasLog(lines []map[string]any, msg string) bool {
	for _, l := range lines {
		if l["msg"] == msg {
			return true
		}
	}
	return false
}
