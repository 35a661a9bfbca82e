package main

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The sustained event case's rows.
const (
	caseSustain    = "sustained commit → audit entry @ steady rate"
	caseSustainMax = "sustained: highest rate held (events/s)"
)

// sustainLatencyQuery reads the commit → consumer latency of the TenantRegistered events the audit
// consumer recorded since $1 (the run's start): the inbox row and the entry share the consumer's
// transaction, so the inbox says which entries came from which event type without a list of ids.
const sustainLatencyQuery = `
SELECT count(*),
       coalesce(percentile_cont(0.5)  WITHIN GROUP (ORDER BY extract(epoch FROM a.recorded_at - a.occurred_at)), 0) * 1000,
       coalesce(percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM a.recorded_at - a.occurred_at)), 0) * 1000,
       coalesce(max(extract(epoch FROM a.recorded_at - a.occurred_at)), 0) * 1000
FROM inbox i JOIN audit_entries a ON a.tenant_id = i.tenant_id AND a.source_event_id = i.event_id
WHERE i.consumer = 'audit' AND i.event_type = 'TenantRegistered' AND i.received_at >= $1`

// sustainRecordedQuery counts the TenantRegistered events the audit consumer recorded since $1.
const sustainRecordedQuery = `SELECT count(*) FROM inbox
WHERE consumer = 'audit' AND event_type = 'TenantRegistered' AND received_at >= $1`

// backlogSample is one second of a sustained run.
type backlogSample struct {
	T         float64 `json:"t"`         // seconds since the run started
	Committed int64   `json:"committed"` // registrations answered 201 so far
	Recorded  int64   `json:"recorded"`  // their audit entries so far
	Outbox    int64   `json:"outbox"`    // tenants outbox rows pending (not parked)
	// Unrecorded = Committed − Recorded: events committed but not yet recorded by the consumer.
	Unrecorded int64 `json:"unrecorded"`
}

// sustainRun is one sustained run at one offered rate.
type sustainRun struct {
	Rate      int             `json:"rate"` // asked, events/s
	Achieved  float64         `json:"achieved"`
	Duration  string          `json:"duration"`
	Sent      int             `json:"sent"`
	Failed    int             `json:"failed"`
	Recorded  int64           `json:"recorded"` // entries whose latency was read
	P50MS     float64         `json:"p50Ms"`
	P99MS     float64         `json:"p99Ms"`
	MaxMS     float64         `json:"maxMs"`
	Held      bool            `json:"held"`
	Why       string          `json:"why,omitempty"` // why it was not held
	Backlog   []backlogSample `json:"backlog"`
	StoppedAt string          `json:"stoppedEarlyAt,omitempty"`
}

// line is the run's one-line summary under the table.
func (s sustainRun) line() string {
	held := "held"
	if !s.Held {
		held = "not held: " + s.Why
	}
	early := ""
	if s.StoppedAt != "" {
		early = ", sending stopped early at " + s.StoppedAt
	}
	return fmt.Sprintf("sustained %s events/s for %s (achieved %s/s, %d sent, %d failed%s): p50 %s, p99 %s, max %s over %d entries — %s; backlog per second: outbox %s; committed not recorded %s",
		fmtRate(float64(s.Rate)), s.Duration, fmtRate(s.Achieved), s.Sent, s.Failed, early,
		fmtMS(&s.P50MS), fmtMS(&s.P99MS), fmtMS(&s.MaxMS), s.Recorded, held,
		backlogSummary(s.Backlog, func(b backlogSample) int64 { return b.Outbox }),
		backlogSummary(s.Backlog, func(b backlogSample) int64 { return b.Unrecorded }))
}

// backlogSummary prints a series compactly: min/median/max and the last value.
func backlogSummary(bs []backlogSample, f func(backlogSample) int64) string {
	if len(bs) == 0 {
		return "no samples"
	}
	vs := make([]float64, len(bs))
	for i, b := range bs {
		vs[i] = float64(f(b))
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	return fmt.Sprintf("min %.0f / median %.0f / max %.0f / last %.0f", s[0], median(s), s[len(s)-1], vs[len(vs)-1])
}

// caseSustained runs the sustained event case: opt.eventRate events/s for opt.sustainDuration
// through the whole pipeline (registration commits TenantRegistered → drainer → in-process
// transport → AuditOnTenantsEvent → audit entry), then searches for the highest rate the machine
// holds with p99 within the goal, in at most opt.sustainSteps more runs (doubling until a rate
// fails, then bisecting), each after a drain-and-idle wait.
func (b *bench) caseSustained(ctx context.Context) error {
	limit := goals[caseSustain].MaxP99MS
	b.pgStatsBegin(ctx, caseSustain, true) // the run at --event-rate, up to its drain-and-idle wait
	base, err := b.sustainOnce(ctx, b.opt.eventRate, limit, false)
	if err != nil {
		return err
	}
	p50, p99, maxMS := base.P50MS, base.P99MS, base.MaxMS
	b.res.add(row{Case: caseSustain, Kind: kindCase, RPS: base.Achieved, P50: &p50, P99: &p99, MaxMS: &maxMS,
		Requests: int64(base.Sent), Failures: int64(base.Failed), Sustain: []sustainRun{base},
		Note: fmt.Sprintf("%s at %d/s asked; latency = recorded_at − occurred_at of the TenantRegistered entries; backlog sampled every second",
			base.Duration, base.Rate)})
	b.pgStatsEnd(ctx, caseSustain, int64(base.Sent-base.Failed), "event")

	lo, hi := 0, 0 // highest rate held, lowest not held (0: not known yet)
	if base.Held {
		lo = base.Rate
	} else {
		hi = base.Rate
	}
	var steps []sustainRun
	for i := 0; i < b.opt.sustainSteps && ctx.Err() == nil; i++ {
		next := lo * 2
		if hi > 0 {
			next = (lo + hi) / 2
		}
		next = int(math.Round(float64(next)/50)) * 50
		if next <= lo || (hi > 0 && next >= hi) || next < 50 {
			break // the interval is down to the 50 events/s step
		}
		b.logf("sustained search: %d events/s for %s …", next, b.opt.sustainDuration)
		r, err := b.sustainOnce(ctx, next, limit, true)
		if err != nil {
			return err
		}
		steps = append(steps, r)
		if r.Held {
			lo = next
		} else {
			hi = next
		}
	}
	var tried []string
	for _, r := range append([]sustainRun{base}, steps...) {
		verdict := "held"
		if !r.Held {
			verdict = "not held"
		}
		tried = append(tried, fmt.Sprintf("%s/s %s", fmtRate(float64(r.Rate)), verdict))
	}
	note := fmt.Sprintf("highest offered rate whose %s run kept p99 ≤ %s ms, every event recorded and ≥ 95%% of the rate achieved; tried %s",
		b.opt.sustainDuration, trimFloat(limit), strings.Join(tried, ", "))
	if hi > 0 {
		note += fmt.Sprintf("; %s/s was not held", fmtRate(float64(hi)))
	} else {
		note += "; no rate failed within the steps: the ceiling is higher"
	}
	b.res.add(row{Case: caseSustainMax, Kind: kindCase, RPS: float64(lo), Sustain: steps, Note: note})
	b.logf("highest sustained rate with p99 ≤ %s ms: %d events/s (%s)", trimFloat(limit), lo, strings.Join(tried, ", "))
	return nil
}

// sustainOnce registers tenants at rate/s for opt.sustainDuration (bounded in count and time),
// samples the backlog every second until every event is recorded (or a bounded wait passes),
// reads the latency, and waits for the outboxes and consumers to go idle. search allows stopping
// early once the backlog makes the verdict certain (more than 2 s of events unrecorded for 3 s).
func (b *bench) sustainOnce(ctx context.Context, rate int, limitMS float64, search bool) (sustainRun, error) {
	dur := b.opt.sustainDuration
	run := sustainRun{Rate: rate, Duration: dur.String()}
	tenantsDB, err := b.stack.openAdmin(ctx, "tenants")
	if err != nil {
		return run, err
	}
	defer tenantsDB.Close()
	audit, err := b.stack.openAdmin(ctx, "audit")
	if err != nil {
		return run, err
	}
	defer audit.Close()

	total := max(1, int(float64(rate)*dur.Seconds()))
	interval := time.Second / time.Duration(rate)
	sem := make(chan struct{}, 256) // at most this many registrations in flight
	var (
		committed, failed atomic.Int64
		mu                sync.Mutex
		firstErr          error
		wg                sync.WaitGroup
		stopSend          atomic.Bool
	)
	start := time.Now()
	since := start.UTC().Add(-time.Millisecond)

	// The sampler: every second, the tenants outbox and the consumer's progress.
	sampleCtx, stopSampling := context.WithCancel(ctx)
	samplerDone := make(chan struct{})
	var samples []backlogSample
	var sampleMu sync.Mutex
	go func() {
		defer close(samplerDone)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		over := 0
		for {
			select {
			case <-sampleCtx.Done():
				return
			case <-tick.C:
			}
			s := backlogSample{T: math.Round(time.Since(start).Seconds()*10) / 10, Committed: committed.Load()}
			// A sample whose queries failed (typically cancelled as sampling stops) is dropped, not
			// recorded as zeros.
			if err := tenantsDB.QueryRowContext(sampleCtx, `SELECT count(*) FROM outbox WHERE parked_at IS NULL`).Scan(&s.Outbox); err != nil {
				continue
			}
			if err := audit.QueryRowContext(sampleCtx, sustainRecordedQuery, since).Scan(&s.Recorded); err != nil {
				continue
			}
			s.Unrecorded = max(0, s.Committed-s.Recorded)
			sampleMu.Lock()
			samples = append(samples, s)
			sampleMu.Unlock()
			if search && s.Unrecorded > int64(2*rate) {
				if over++; over >= 3 {
					stopSend.Store(true)
				}
			} else {
				over = 0
			}
		}
	}()

	deadline := start.Add(dur + 30*time.Second)
	sent := 0
	for i := 0; i < total && time.Now().Before(deadline) && ctx.Err() == nil && !stopSend.Load(); i++ {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		sem <- struct{}{}
		wg.Add(1)
		sent++
		go func(i int) {
			defer func() { <-sem; wg.Done() }()
			if _, err := b.register(ctx, fmt.Sprintf("sus-%s-%d-%d", b.runID, rate, i)); err != nil {
				failed.Add(1)
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
				return
			}
			committed.Add(1)
		}(i)
	}
	sendTime := time.Since(start)
	if stopSend.Load() {
		run.StoppedAt = sendTime.Round(time.Second).String()
	}
	wg.Wait()
	if ctx.Err() != nil {
		stopSampling()
		<-samplerDone
		return run, ctx.Err()
	}
	run.Sent, run.Failed = sent, int(failed.Load())
	run.Achieved = float64(committed.Load()) / sendTime.Seconds()
	if committed.Load() == 0 {
		stopSampling()
		<-samplerDone
		return run, fmt.Errorf("sustained %d/s: every registration failed: %v", rate, firstErr)
	}

	// Keep sampling until every committed event is recorded, bounded.
	wait := 60 * time.Second
	if b.opt.smoke {
		wait = 20 * time.Second
	}
	var recorded int64
	for waitStart := time.Now(); ; {
		if err := audit.QueryRowContext(ctx, sustainRecordedQuery, since).Scan(&recorded); err != nil {
			stopSampling()
			<-samplerDone
			return run, fmt.Errorf("sustained: inbox count: %w", err)
		}
		if recorded >= committed.Load() || time.Since(waitStart) > wait || ctx.Err() != nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	stopSampling()
	<-samplerDone
	run.Backlog = samples

	if err := audit.QueryRowContext(ctx, sustainLatencyQuery, since).Scan(&run.Recorded, &run.P50MS, &run.P99MS, &run.MaxMS); err != nil {
		return run, fmt.Errorf("sustained: latency query: %w", err)
	}
	var why []string
	if run.StoppedAt != "" {
		why = append(why, "more than 2 s of events unrecorded for 3 s")
	}
	if run.Achieved < 0.95*float64(rate) {
		why = append(why, fmt.Sprintf("registrations reached %s/s", fmtRate(run.Achieved)))
	}
	if float64(run.Failed) > 0.01*float64(run.Sent) {
		why = append(why, fmt.Sprintf("%d of %d registrations failed (%v)", run.Failed, run.Sent, firstErr))
	}
	if run.Recorded < committed.Load() {
		why = append(why, fmt.Sprintf("only %d of %d entries within %s of the last send", run.Recorded, committed.Load(), wait))
	}
	if run.P99MS > limitMS {
		why = append(why, fmt.Sprintf("p99 %s > %s ms", fmtMS(&run.P99MS), trimFloat(limitMS)))
	}
	run.Held, run.Why = len(why) == 0, strings.Join(why, "; ")
	b.logf("sustained %d/s: %s", rate, run.line())
	return run, b.waitOutboxDrained(ctx, fmt.Sprintf("the sustained run at %d/s", rate))
}
