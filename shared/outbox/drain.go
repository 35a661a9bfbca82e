package outbox

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"spine/shared/events"
	"spine/shared/sqlstore"
)

// DrainerConfig tunes a Drainer. Zero fields take the documented defaults.
type DrainerConfig struct {
	// BatchSize is how many rows one claim takes. Default 200.
	BatchSize int
	// MaxAttempts is how often a row is tried before it is parked. Default 10.
	MaxAttempts int
	// BackoffBase is the wait after the first failure; it doubles per attempt. Default 1s.
	BackoffBase time.Duration
	// BackoffMax caps the wait. Default 5m.
	BackoffMax time.Duration
	// PublishTimeout bounds one Publish call (the claim's locks are held meanwhile). Default 10s.
	PublishTimeout time.Duration
	// PollInterval is how often Run drains without being kicked. Default 1s.
	PollInterval time.Duration
}

// Validate checks the configuration after defaults are applied.
func (c DrainerConfig) Validate() error {
	if c.BatchSize < 1 || c.BatchSize > 5000 || c.MaxAttempts < 1 || c.BackoffBase <= 0 ||
		c.BackoffMax < c.BackoffBase || c.PublishTimeout <= 0 || c.PollInterval <= 0 {
		return errors.New("outbox: invalid DrainerConfig (BatchSize 1–5000, MaxAttempts ≥ 1, positive durations, BackoffMax ≥ BackoffBase)")
	}
	return nil
}

func (c DrainerConfig) withDefaults() DrainerConfig {
	if c.BatchSize == 0 {
		c.BatchSize = 200
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = 10
	}
	if c.BackoffBase == 0 {
		c.BackoffBase = time.Second
	}
	if c.BackoffMax == 0 {
		c.BackoffMax = 5 * time.Minute
	}
	if c.PublishTimeout == 0 {
		c.PublishTimeout = 10 * time.Second
	}
	if c.PollInterval == 0 {
		c.PollInterval = time.Second
	}
	return c
}

// Result counts what a drain did.
type Result struct {
	Published, Failed, Parked, Blocked int
}

func (r *Result) add(o Result) {
	r.Published += o.Published
	r.Failed += o.Failed
	r.Parked += o.Parked
	r.Blocked += o.Blocked
}

// Drainer moves one service's outbox rows to the broker: it claims due rows without blocking other
// drainers, publishes them, and deletes them only after the broker accepted them, all in one
// transaction, so a crash before the commit leaves the rows to be published again (and consumers'
// inboxes absorb the duplicate). Order is kept per aggregate (tenant + subject): a failing row
// holds back only its own aggregate's later rows. Safe for concurrent use, across processes too.
type Drainer struct {
	db    *sqlstore.DB
	topic string
	pub   Publisher
	cfg   DrainerConfig
	log   *slog.Logger
	sql   drainSQL

	kick chan struct{}
	mu   sync.Mutex // serializes drains in this process; other processes rely on row locks
}

// NewDrainer drains db's outbox to topic (the service's own topic) through pub.
func NewDrainer(db *sqlstore.DB, topic string, pub Publisher, cfg DrainerConfig, logger *slog.Logger) (*Drainer, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.Default()
	}
	q, ok := drainQueries[db.Dialect]
	if !ok {
		return nil, fmt.Errorf("outbox: no drain queries for %s", db.Dialect)
	}
	d := &Drainer{db: db, topic: topic, pub: pub, cfg: cfg, log: logger, sql: q, kick: make(chan struct{}, 1)}
	db.OnCommit(sqlstore.SignalOutbox, d.Kick) // every commit that emitted events kicks the drain
	return d, nil
}

// Kick asks Run to drain now. It never blocks; kicks while a drain is pending coalesce.
func (d *Drainer) Kick() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// Run drains whenever kicked and every PollInterval until ctx is done. Errors are logged and
// retried on the next round; they never stop the loop.
func (d *Drainer) Run(ctx context.Context) {
	t := time.NewTicker(d.cfg.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.kick:
		case <-t.C:
		}
		if _, err := d.Drain(ctx, 30*time.Second); err != nil && ctx.Err() == nil {
			d.log.Warn("outbox: drain failed", "topic", d.topic, "error", err)
		}
	}
}

// Drain claims and publishes batches until no due row is left, budget is spent, or ctx is done.
func (d *Drainer) Drain(ctx context.Context, budget time.Duration) (Result, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	deadline := time.Now().Add(budget)
	var total Result
	for time.Now().Before(deadline) {
		r, claimed, err := d.drainBatch(ctx)
		total.add(r)
		if err != nil {
			return total, err
		}
		if claimed < d.cfg.BatchSize || r.Published == 0 {
			return total, nil
		}
	}
	return total, nil
}

type row struct {
	tenant, eventID, subject, eventType string
	seq                                 int64
	envelope                            []byte
	attempts                            int
}

// drainBatch runs one claim → publish → delete/backoff transaction. A batch that claims rows is
// traced (see startDrainSpan); an empty claim is not.
func (d *Drainer) drainBatch(ctx context.Context) (r Result, claimed int, err error) {
	start := time.Now()
	var span trace.Span
	defer func() {
		if span != nil {
			endDrainSpan(span, r, err)
		}
	}()
	err = d.db.InTx(ctx, sqlstore.PlatformScope(), func(tx *sqlstore.Tx) error {
		r = Result{}
		if d.sql.lock != "" {
			var got int
			if err := tx.QueryRowContext(ctx, d.sql.lock, d.topic).Scan(&got); err != nil {
				return err
			}
			if got < 0 { // another process drains this outbox right now
				return nil
			}
		}
		if d.sql.plan != "" {
			if _, err := tx.ExecContext(ctx, d.sql.plan); err != nil {
				return err
			}
		}
		rows, err := d.claim(ctx, tx)
		claimed = len(rows)
		if err != nil || len(rows) == 0 {
			return err
		}
		if rows, err = d.keepHeads(ctx, tx, rows); err != nil || len(rows) == 0 {
			return err
		}
		msgs := make([]Message, len(rows))
		for i, rw := range rows {
			if msgs[i], err = toMessage(rw); err != nil {
				return err
			}
		}
		if span != nil { // a retried transaction: the previous attempt's span ends as failed
			endDrainSpan(span, Result{}, sqlstore.ErrRetryable)
			span = nil
		}
		var sctx context.Context
		sctx, span = d.startDrainSpan(ctx, start, msgs)
		propagate(sctx, msgs)
		pctx, cancel := context.WithTimeout(sctx, d.cfg.PublishTimeout)
		perr := d.publish(pctx, rows, msgs)
		cancel()

		var pe *PublishError
		failed := map[int]string{}
		blocked := map[int]bool{}
		switch {
		case perr == nil:
		case errors.As(perr, &pe):
			failed, blocked = pe.Failed, pe.Blocked
		default:
			for i := range rows {
				failed[i] = "broker-unavailable"
			}
			d.log.Warn("outbox: publish failed", "topic", d.topic, "rows", len(rows), "error", perr)
		}
		var done []int64
		for i, rw := range rows {
			code, isFailed := failed[i]
			switch {
			case blocked[i]:
				r.Blocked++ // untouched: its aggregate's failed row now holds it back
			case isFailed:
				parked, err := d.fail(sctx, tx, rw, code)
				if err != nil {
					return err
				}
				r.Failed++
				if parked {
					r.Parked++
				}
			default:
				done = append(done, rw.seq)
			}
		}
		if len(done) > 0 {
			if err := d.delete(sctx, tx, done); err != nil {
				return err
			}
		}
		r.Published = len(done)
		return nil
	})
	return r, claimed, err
}

func (d *Drainer) claim(ctx context.Context, tx *sqlstore.Tx) ([]row, error) {
	rs, err := tx.QueryContext(ctx, d.sql.claim, d.cfg.BatchSize)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []row
	for rs.Next() {
		var rw row
		var env string
		if err := rs.Scan(&rw.tenant, &rw.eventID, &rw.seq, &rw.subject, &rw.eventType, &env, &rw.attempts); err != nil {
			return nil, err
		}
		rw.envelope = []byte(env)
		out = append(out, rw)
	}
	return out, rs.Err()
}

// keepHeads drops every claimed aggregate whose first claimed row is not the aggregate's first
// row in the table (see drainSQL.heads).
func (d *Drainer) keepHeads(ctx context.Context, tx *sqlstore.Tx, rows []row) ([]row, error) {
	if d.sql.heads == "" {
		return rows, nil
	}
	seqs := make([]int64, len(rows))
	for i, rw := range rows {
		seqs[i] = rw.seq
	}
	rs, err := tx.QueryContext(ctx, d.sql.heads, d.sql.seqParam(seqs))
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	first := map[int64]int64{} // seq -> its aggregate's first seq
	for rs.Next() {
		var seq, head int64
		if err := rs.Scan(&seq, &head); err != nil {
			return nil, err
		}
		first[seq] = head
	}
	if err := rs.Err(); err != nil {
		return nil, err
	}
	ok := map[string]bool{}
	seen := map[string]bool{}
	kept := rows[:0]
	for _, rw := range rows { // rows are in seq order: an aggregate's first claimed row comes first
		key := rw.tenant + "/" + rw.subject
		if !seen[key] {
			seen[key] = true
			ok[key] = first[rw.seq] == rw.seq
		}
		if ok[key] {
			kept = append(kept, rw)
		}
	}
	return kept, nil
}

// fail records a refused row: one more attempt, a doubling backoff, and parking after MaxAttempts.
func (d *Drainer) fail(ctx context.Context, tx *sqlstore.Tx, rw row, code string) (parked bool, err error) {
	attempts := rw.attempts + 1
	wait := d.cfg.BackoffBase << min(attempts-1, 20)
	if wait > d.cfg.BackoffMax || wait <= 0 {
		wait = d.cfg.BackoffMax
	}
	now := time.Now().UTC()
	var parkedAt sql.NullTime
	if attempts >= d.cfg.MaxAttempts {
		parkedAt = sql.NullTime{Time: now, Valid: true}
		d.log.Error("outbox: row parked", "topic", d.topic, "eventId", rw.eventID, "tenantId", rw.tenant,
			"eventType", rw.eventType, "attempts", attempts, "reason", code)
	}
	_, err = tx.ExecContext(ctx, d.sql.fail, rw.seq, attempts, now.Add(wait), parkedAt, code)
	return parkedAt.Valid, err
}

func (d *Drainer) delete(ctx context.Context, tx *sqlstore.Tx, seqs []int64) error {
	_, err := tx.ExecContext(ctx, d.sql.deleteSeqs, d.sql.seqParam(seqs))
	return err
}

func toMessage(rw row) (Message, error) {
	var ev events.Event
	if err := json.Unmarshal(rw.envelope, &ev); err != nil {
		return Message{}, fmt.Errorf("outbox: row %s holds no CloudEvent: %w", rw.eventID, err)
	}
	props := map[string]any{"eventType": ev.Type, "tenantId": ev.TenantID}
	if ev.TraceParent != "" {
		props["traceparent"] = ev.TraceParent
	}
	return Message{ID: ev.ID, Key: rw.tenant + "/" + rw.subject, Body: rw.envelope, ContentType: events.ContentType,
		Subject: ev.Type, CorrelationID: ev.CorrelationID, Properties: props}, nil
}

// ParkedRow is a parked outbox row, for operators.
type ParkedRow struct {
	TenantID  string    `json:"tenantId"`
	EventID   string    `json:"eventId"`
	EventType string    `json:"eventType"`
	Subject   string    `json:"subject"`
	Attempts  int       `json:"attempts"`
	LastError string    `json:"lastError"`
	CreatedAt time.Time `json:"createdAt"`
	ParkedAt  time.Time `json:"parkedAt"`
}

// Counts are an outbox's pending and parked rows.
type Counts struct {
	Pending int64 `json:"pending"`
	Parked  int64 `json:"parked"`
}

// Counts returns how many rows wait and how many are parked.
func (d *Drainer) Counts(ctx context.Context) (Counts, error) {
	var c Counts
	err := d.db.InReadTx(ctx, sqlstore.PlatformScope(), func(tx *sqlstore.Tx) error {
		return tx.QueryRowContext(ctx, d.sql.counts).Scan(&c.Pending, &c.Parked)
	})
	return c, err
}

// Parked lists up to limit parked rows, oldest first.
func (d *Drainer) Parked(ctx context.Context, limit int) ([]ParkedRow, error) {
	var out []ParkedRow
	err := d.db.InReadTx(ctx, sqlstore.PlatformScope(), func(tx *sqlstore.Tx) error {
		rs, err := tx.QueryContext(ctx, d.sql.parked, limit)
		if err != nil {
			return err
		}
		defer rs.Close()
		for rs.Next() {
			var p ParkedRow
			if err := rs.Scan(&p.TenantID, &p.EventID, &p.EventType, &p.Subject, &p.Attempts, &p.LastError, &p.CreatedAt, &p.ParkedAt); err != nil {
				return err
			}
			p.CreatedAt, p.ParkedAt = p.CreatedAt.UTC(), p.ParkedAt.UTC()
			out = append(out, p)
		}
		return rs.Err()
	})
	return out, err
}

// ErrNotParked is returned by Replay for an event that is not a parked row of this outbox.
var ErrNotParked = errors.New("outbox: no parked row with this event id")

// Replay makes a parked row due again with a fresh attempt count, and kicks the drainer.
func (d *Drainer) Replay(ctx context.Context, eventID string) error {
	err := d.db.InTx(ctx, sqlstore.PlatformScope(), func(tx *sqlstore.Tx) error {
		res, err := tx.ExecContext(ctx, d.sql.replay, eventID, time.Now().UTC())
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotParked
		}
		tx.Notify(sqlstore.SignalOutbox)
		return nil
	})
	return err
}
