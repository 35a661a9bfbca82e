package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"spine/shared/events"
)

// auditLatencyQuery reads, for the audit entries of the given tenants recorded from events, how
// long each took from the event's time (set just before its commit) to the consumer's write.
const auditLatencyQuery = `
SELECT count(*),
       coalesce(percentile_cont(0.5)  WITHIN GROUP (ORDER BY extract(epoch FROM recorded_at - occurred_at)), 0) * 1000,
       coalesce(percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM recorded_at - occurred_at)), 0) * 1000,
       coalesce(max(extract(epoch FROM recorded_at - occurred_at)), 0) * 1000
FROM audit_entries
WHERE tenant_id = ANY($1::uuid[]) AND source_event_id IS NOT NULL`

// caseOutboxLatency registers tenants at a steady rate (each emits TenantRegistered → outbox →
// drainer → in-process transport → AuditOnTenantsEvent → audit entry) and reads the commit →
// consumer latency of those events from the audit database.
func (b *bench) caseOutboxLatency(ctx context.Context) error {
	rate := b.opt.eventRate
	total := max(1, int(float64(rate)*b.opt.duration.Seconds()))
	interval := time.Second / time.Duration(rate)
	sem := make(chan struct{}, 256) // at most this many registrations in flight
	var (
		mu       sync.Mutex
		ids      []string
		firstErr error
		failed   int
		wg       sync.WaitGroup
	)
	b.pgStatsBegin(ctx, caseOutboxLat, true)
	stopProfile := b.startProfile(ctx, caseOutboxLat, b.opt.duration)
	defer func() { stopProfile() }()
	start := time.Now()
	deadline := start.Add(b.opt.duration + 30*time.Second)
	sent := 0
	for i := 0; i < total && time.Now().Before(deadline) && ctx.Err() == nil; i++ {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		sem <- struct{}{}
		wg.Add(1)
		sent++
		go func(i int) {
			defer func() { <-sem; wg.Done() }()
			id, err := b.register(ctx, fmt.Sprintf("evt-%s-%d", b.runID, i))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed++
				if firstErr == nil {
					firstErr = err
				}
				return
			}
			ids = append(ids, id)
		}(i)
	}
	sendTime := time.Since(start)
	wg.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if len(ids) == 0 || float64(failed) > 0.01*float64(sent) {
		return fmt.Errorf("outbox latency: %d of %d registrations failed: %v", failed, sent, firstErr)
	}
	achieved := float64(sent) / sendTime.Seconds()
	if achieved < 0.95*float64(rate) {
		b.res.note("outbox latency: one registration per event reached %.0f events/s, not the %d/s asked for: the registration path could not keep up at that rate on this machine", achieved, rate)
	}

	audit, err := b.stack.openAdmin(ctx, "audit")
	if err != nil {
		return err
	}
	defer audit.Close()
	idList := "{" + strings.Join(ids, ",") + "}"
	var n int64
	var p50, p99, maxMS float64
	wait := 60 * time.Second
	if b.opt.smoke {
		wait = 20 * time.Second
	}
	for waitStart := time.Now(); ; {
		if err := audit.QueryRowContext(ctx, auditLatencyQuery, idList).Scan(&n, &p50, &p99, &maxMS); err != nil {
			return fmt.Errorf("audit latency query: %w", err)
		}
		if n >= int64(len(ids)) || time.Since(waitStart) > wait {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if n == 0 {
		b.res.add(row{Case: caseOutboxLat, Kind: kindCase, Skipped: fmt.Sprintf("no audit entry appeared for %d registrations within %s (is AuditOnTenantsEvent wired?)", len(ids), wait)})
		b.pgStatsEnd(ctx, caseOutboxLat, int64(len(ids)), "event")
		return nil
	}
	note := fmt.Sprintf("%d registrations at %.0f/s asked %d/s; latency = recorded_at − occurred_at in the audit database; max %.0f ms", len(ids), achieved, rate, maxMS)
	if n < int64(len(ids)) {
		note += fmt.Sprintf("; only %d of %d entries appeared within %s", n, len(ids), wait)
	}
	b.res.add(row{Case: caseOutboxLat, Kind: kindCase, RPS: achieved, P50: &p50, P99: &p99, Requests: int64(sent),
		Failures: int64(failed), MaxMS: &maxMS, Note: note})
	// Every entry appeared (or the wait ended): the events were consumed, the window closes.
	b.pgStatsEnd(ctx, caseOutboxLat, int64(len(ids)), "event")
	return nil
}

// caseOutboxDrain measures the drainer's ceiling: N valid TenantRegistered envelopes for the seeded
// tenants are inserted straight into the tenants outbox in one transaction (no kick: the drainer's
// 1 s poll finds them), and the rate is N over the span of the consumer's recorded_at times.
func (b *bench) caseOutboxDrain(ctx context.Context) error {
	tenantsDB, err := b.stack.openAdmin(ctx, "tenants")
	if err != nil {
		return err
	}
	defer tenantsDB.Close()
	audit, err := b.stack.openAdmin(ctx, "audit")
	if err != nil {
		return err
	}
	defer audit.Close()

	t0 := time.Now().UTC().Add(-time.Millisecond)
	n := b.opt.drainEvents
	evs := make([]events.Event, n)
	for i := range evs {
		tid := b.tenantIDs[i%len(b.tenantIDs)]
		ev, err := events.New("tenants", "TenantRegistered", tid, tid, map[string]any{
			"tenantId": tid, "name": "Bench drain", "slug": fmt.Sprintf("drain-%d", i), "editionCode": b.edition,
		}, events.Meta{Actor: "system:bench"})
		if err != nil {
			return err
		}
		evs[i] = ev
	}
	// The harness's own INSERTs run as the superuser: left out of the statistics, which count the
	// drainer's and the consumer's statements.
	b.pgStatsBegin(ctx, caseOutboxDrain, true)
	if err := insertOutbox(ctx, tenantsDB, evs); err != nil {
		return err
	}
	committed := time.Now()
	stopProfile := b.startProfile(ctx, caseOutboxDrain, min(b.opt.duration, 5*time.Second)+time.Second)
	defer func() { stopProfile() }()

	const countQ = `SELECT count(*), coalesce(min(recorded_at), now()), coalesce(max(recorded_at), now())
		FROM audit_entries WHERE source_event_id IS NOT NULL AND occurred_at >= $1`
	var got int64
	var first, last time.Time
	wait := 120 * time.Second
	if b.opt.smoke {
		wait = 20 * time.Second
	}
	for {
		if err := audit.QueryRowContext(ctx, countQ, t0).Scan(&got, &first, &last); err != nil {
			return fmt.Errorf("audit count: %w", err)
		}
		if got >= int64(n) || time.Since(committed) > wait || ctx.Err() != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	wall := time.Since(committed)
	if got == 0 {
		b.res.add(row{Case: caseOutboxDrain, Kind: kindCase, Skipped: fmt.Sprintf("no audit entry appeared within %s of inserting %d outbox rows (is AuditOnTenantsEvent wired?)", wait, n)})
		b.pgStatsEnd(ctx, caseOutboxDrain, 0, "event")
		return nil
	}
	span := last.Sub(first)
	rate := float64(got) / max(span.Seconds(), 0.001)
	note := fmt.Sprintf("%d events inserted into the tenants outbox over %d tenants; rate = entries / (last − first recorded_at) = %d / %s; commit → all visible %s (includes the drainer's ≤ 1 s poll)",
		n, min(n, len(b.tenantIDs)), got, span.Round(time.Millisecond), wall.Round(time.Millisecond))
	if got < int64(n) {
		note += fmt.Sprintf("; only %d of %d entries appeared within %s", got, n, wait)
	}
	b.res.add(row{Case: caseOutboxDrain, Kind: kindCase, RPS: rate, Requests: got, Note: note})
	if err := b.waitOutboxDrained(ctx, "the drain case"); err != nil {
		return err
	}
	b.pgStatsEnd(ctx, caseOutboxDrain, got, "event")
	return nil
}

// insertOutbox writes evs into an outbox table exactly as shared/outbox does (created_at =
// next_attempt_at = now: due at once), 500 rows per statement, in one transaction it commits.
func insertOutbox(ctx context.Context, db *sql.DB, evs []events.Event) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	if err := insertOutboxRows(ctx, tx, evs, time.Now().UTC()); err != nil {
		return err
	}
	return tx.Commit()
}

// insertOutboxRows is insertOutbox inside the caller's transaction, with created_at =
// next_attempt_at = now.
func insertOutboxRows(ctx context.Context, tx *sql.Tx, evs []events.Event, now time.Time) error {
	for start := 0; start < len(evs); start += 500 {
		batch := evs[start:min(start+500, len(evs))]
		var q strings.Builder
		q.WriteString(`INSERT INTO outbox (tenant_id, event_id, subject, event_type, envelope, created_at, next_attempt_at) VALUES `)
		args := make([]any, 0, len(batch)*6)
		for i, ev := range batch {
			env, err := json.Marshal(ev)
			if err != nil {
				return err
			}
			if i > 0 {
				q.WriteByte(',')
			}
			p := len(args)
			fmt.Fprintf(&q, "($%d, $%d, $%d, $%d, $%d::jsonb, $%d, $%d)", p+1, p+2, p+3, p+4, p+5, p+6, p+6)
			args = append(args, ev.TenantID, ev.ID, ev.Subject, ev.Type, string(env), now)
		}
		if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
			return fmt.Errorf("insert outbox rows: %w", err)
		}
	}
	return nil
}
