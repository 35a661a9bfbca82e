package functions

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/robfig/cron/v3"
)

// maxLoggedBody bounds how much of a failed invocation's answer the Scheduler logs.
const maxLoggedBody = 1024

// Scheduler plays the host's timer part in standalone mode: it runs every timer function of a
// registry on its schedule by invoking it through Invoke, so the invocation takes the same path
// (echo, Mount, middleware, problem handler) as under the host.
type Scheduler struct {
	reg    *Registry
	h      http.Handler
	logger *slog.Logger
}

// NewScheduler returns a scheduler for r's timer functions that invokes them on h (the app's echo,
// with Mount applied). A nil logger discards.
func NewScheduler(r *Registry, h http.Handler, logger *slog.Logger) *Scheduler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Scheduler{reg: r, h: h, logger: logger}
}

// Run schedules the registry's timer functions (as registered when Run starts) and blocks until ctx
// is done; it then stops scheduling, waits for invocations still running, and returns nil. It returns
// an error at once, scheduling nothing, if a schedule does not parse.
//
// Each function runs on its six-field NCRONTAB schedule in UTC, and once at start if RunOnStartup.
// Each invocation gets host-shaped timer data, with the host's meaning: Last is the previous
// occurrence invoked (the time Run started, for the first), Next the occurrence being invoked (for
// the start-up run, the first scheduled occurrence), IsPastDue false. An occurrence that comes while
// the function's previous invocation still runs is skipped and logged; occurrences missed while the
// process could not run (clock jumps, suspension) are skipped, not replayed. Invocations run on a
// context that ctx's cancellation does not cancel, so a stop lets them finish. Failures (non-2xx, or no
// answer) are logged; the Logs of a Result are logged at Info, as the host would.
//
// Run must not be called more than once at a time on the same Scheduler.
func (s *Scheduler) Run(ctx context.Context) error {
	type job struct {
		fn    Function
		sched cron.Schedule
	}
	var jobs []job
	for _, fn := range s.reg.Functions() {
		if fn.Timer == nil {
			continue
		}
		sched, err := parseSchedule(fn.Timer.Schedule)
		if err != nil {
			return fmt.Errorf("functions: schedule of %s: %w", fn.Name, err)
		}
		jobs = append(jobs, job{fn, sched})
	}
	start := time.Now().UTC()
	invokeCtx := context.WithoutCancel(ctx)
	var loops, invocations sync.WaitGroup
	for _, j := range jobs {
		loops.Go(func() { s.loop(ctx, invokeCtx, &invocations, j.fn, j.sched, start) })
	}
	loops.Wait() // the loops return once ctx is done
	invocations.Wait()
	return nil
}

// loop runs one function's schedule until ctx is done. Only this goroutine reads and writes prev.
func (s *Scheduler) loop(ctx, invokeCtx context.Context, invocations *sync.WaitGroup, fn Function, sched cron.Schedule, start time.Time) {
	var running atomic.Bool
	prev := start
	// fire invokes the occurrence at, reporting reportNext as the timer's Next, unless the previous
	// invocation is still running.
	fire := func(at, reportNext time.Time) {
		if !running.CompareAndSwap(false, true) {
			s.logger.WarnContext(ctx, "timer occurrence skipped: the previous invocation is still running",
				"function", fn.Name, "occurrence", at)
			return
		}
		last := prev
		prev = at
		invocations.Go(func() {
			defer running.Store(false)
			s.invoke(invokeCtx, fn, last, reportNext)
		})
	}

	next := sched.Next(start)
	if fn.Timer.RunOnStartup {
		fire(start, next)
	}
	timer := time.NewTimer(time.Hour) // reset before every wait; Go ≥ 1.23 timers drop stale ticks on Reset
	defer timer.Stop()
	for {
		if next.IsZero() {
			s.logger.WarnContext(ctx, "timer schedule has no further occurrence", "function", fn.Name)
			return
		}
		timer.Reset(time.Until(next))
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		fire(next, next)
		following := sched.Next(next)
		if now := time.Now(); following.Before(now) {
			following = sched.Next(now)
		}
		next = following
	}
}

// invoke runs one timer invocation through Invoke and logs what the host would.
func (s *Scheduler) invoke(ctx context.Context, fn Function, last, next time.Time) {
	status, res, body, err := Invoke(ctx, s.h, fn.Name, TimerData(last, next, false), SysMetadata(fn.Name, time.Now()))
	switch {
	case err != nil:
		s.logger.ErrorContext(ctx, "scheduled invocation failed", "function", fn.Name, "status", status, "error", err)
	case status < 200 || status > 299:
		if len(body) > maxLoggedBody {
			body = body[:maxLoggedBody]
		}
		s.logger.ErrorContext(ctx, "scheduled invocation failed", "function", fn.Name, "status", status, "body", string(body))
	default:
		for _, line := range res.Logs {
			s.logger.InfoContext(ctx, line, "function", fn.Name)
		}
	}
}
