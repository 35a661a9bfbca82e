package retention

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"spine/shared/outbox"
	"spine/shared/sqlstore"
)

// The platform records sweeps: every service database's idempotency records and inbox ids, kept
// for a fixed time and then deleted, oldest first, in bounded batches. Their units are the
// services (one database each); their evidence is under the "platform" partition and their
// RetentionApplied events go out on each service's own topic.
const (
	// IdempotencyPrune deletes idempotency records older than IdempotencyRetention: a client
	// retrying a creating POST with the same key after that gets a new resource.
	IdempotencyPrune     = "IdempotencyPrune"
	IdempotencySchedule  = "0 10 * * * *" // hourly
	IdempotencyRetention = 24 * time.Hour
	// InboxPrune deletes consumers' inbox ids older than InboxRetention: far past Service Bus's
	// duplicate-detection window (infra: 10 minutes; Service Bus allows at most 7 days), its
	// delivery retries and a message's time to live, so a redelivered event still finds its id.
	InboxPrune     = "InboxPrune"
	InboxSchedule  = "0 20 2 * * *" // daily
	InboxRetention = 7 * 24 * time.Hour
)

// RecordSweeps are the platform records sweeps over dbs (service name → its database).
func RecordSweeps(dbs map[string]*sqlstore.DB) []Sweep {
	units := make([]string, 0, len(dbs))
	for s := range dbs {
		units = append(units, s)
	}
	slices.Sort(units)
	list := func(context.Context, time.Time) ([]string, error) { return units, nil }
	return []Sweep{
		{Name: IdempotencyPrune, Service: "platform", Schedule: IdempotencySchedule, Action: ActionDelete, Platform: true,
			Retention: IdempotencyRetention, Units: list, Target: &records{dbs: dbs, table: "idempotency_keys", sweep: IdempotencyPrune}, BatchSize: 5000},
		{Name: InboxPrune, Service: "platform", Schedule: InboxSchedule, Action: ActionDelete, Platform: true,
			Retention: InboxRetention, Units: list, Target: &records{dbs: dbs, table: "inbox", sweep: InboxPrune}, BatchSize: 5000},
	}
}

// records is the Target of a platform records sweep: unit = service, range = a span of the
// table's time column (RFC 3339 with nanoseconds).
type records struct {
	NoExport
	dbs   map[string]*sqlstore.DB
	table string
	sweep string
}

var _ Target = (*records)(nil)

func (r *records) db(unit string) (*sqlstore.DB, recordsSQL, error) {
	db, ok := r.dbs[unit]
	if !ok {
		return nil, recordsSQL{}, fmt.Errorf("retention: %s: no database %q", r.sweep, unit)
	}
	return db, recordsQueries[r.table][db.Dialect], nil
}

// Next ignores after: the deleted rows are gone, so the oldest due rows are the next range.
func (r *records) Next(ctx context.Context, unit, _ string, cutoff time.Time, limit int) (Range, bool, error) {
	db, q, err := r.db(unit)
	if err != nil {
		return Range{}, false, err
	}
	cutoff = q.floored(cutoff)
	var first, last sql.NullTime
	var n int
	err = db.InReadTx(ctx, sqlstore.PlatformScope(), func(tx *sqlstore.Tx) error {
		return tx.QueryRowContext(ctx, q.next, sqlstore.UTC(cutoff), limit).Scan(&first, &last, &n)
	})
	if err != nil {
		return Range{}, false, fmt.Errorf("%s: %w", r.table, sqlstore.Translate(db.Dialect, err))
	}
	if n == 0 || !first.Valid {
		return Range{}, false, nil
	}
	f, l := first.Time.UTC(), last.Time.UTC()
	return Range{From: f.Format(time.RFC3339Nano), To: l.Format(time.RFC3339Nano), Count: n, FirstAt: f, LastAt: l,
		Label: r.table}, true, nil
}

// floored is cutoff, or the statement set's floor (now − floor) when that is earlier.
func (q recordsSQL) floored(cutoff time.Time) time.Time {
	if q.floor > 0 {
		if f := time.Now().Add(-q.floor); f.Before(cutoff) {
			// A minute's margin: the database checks against its own clock.
			return f.Add(-time.Minute)
		}
	}
	return cutoff
}

// Apply deletes the range's rows that are still due, with the evidence event, in one transaction.
func (r *records) Apply(ctx context.Context, unit string, rg Range, ev Evidence) (int, error) {
	db, q, err := r.db(unit)
	if err != nil {
		return 0, err
	}
	from, err1 := time.Parse(time.RFC3339Nano, rg.From)
	to, err2 := time.Parse(time.RFC3339Nano, rg.To)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("retention: %s: malformed range %q..%q", r.sweep, rg.From, rg.To)
	}
	var n int64
	cutoff := q.floored(ev.Cutoff)
	err = db.InTx(ctx, sqlstore.PlatformScope(), func(tx *sqlstore.Tx) error {
		args := []any{sqlstore.UTC(from), sqlstore.UTC(to), sqlstore.UTC(cutoff)}
		if q.countRow {
			if err := tx.QueryRowContext(ctx, q.delete, args...).Scan(&n); err != nil {
				return sqlstore.Translate(db.Dialect, err)
			}
		} else {
			res, err := tx.ExecContext(ctx, q.delete, args...)
			if err != nil {
				return sqlstore.Translate(db.Dialect, err)
			}
			if n, err = res.RowsAffected(); err != nil {
				return err
			}
		}
		if n == 0 {
			return nil
		}
		event, err := EvidenceEvent(ev)
		if err != nil {
			return err
		}
		event.Source = "/services/" + unit
		return outbox.Emit(ctx, tx, event)
	})
	if err != nil {
		return 0, fmt.Errorf("%s: %w", r.table, err)
	}
	return int(n), nil
}
