package outbox

import (
	"strconv"
	"strings"

	"spine/shared/sqlstore"
)

// drainSQL is one engine's drain statements. Each engine's SQL stays visible here, side by side.
type drainSQL struct {
	lock       string // optional: a per-outbox lock taken first; a negative result means "busy, skip"
	plan       string // optional: run before the claim, in its transaction (planner settings)
	claim      string // $1/@p1 = batch size; columns: tenant, event id, seq, subject, type, envelope, attempts
	heads      string // optional: for the claimed seqs, each row's seq and its aggregate's first seq
	fail       string // seq, attempts, next_attempt_at, parked_at, last_error
	deleteSeqs string // the seqs, as seqParam renders them
	seqParam   func([]int64) any
	counts     string
	parked     string // limit
	replay     string // event id, now
}

var drainQueries = map[sqlstore.Dialect]drainSQL{
	// PostgreSQL: many drainers may run at once. FOR UPDATE SKIP LOCKED never waits for another
	// drainer's rows, and the transaction-scoped advisory lock per aggregate keeps a second drainer
	// from taking a later row of an aggregate whose earlier rows the first one holds. Only rows
	// whose aggregate has no earlier row backing off or parked are due, so order holds per aggregate
	// while every other aggregate goes on.
	sqlstore.Postgres: {
		// The claim must walk outbox_pending in seq order and stop at the batch: its advisory lock
		// is tried on every row the scan passes. On a backlog the planner, whose statistics lag an
		// outbox that swings from empty to thousands of rows in seconds, chose a bitmap scan of every
		// pending row, an advisory lock per pending aggregate and a sort of them all: 158 ms per claim
		// of 200 over 20,000 rows (an external merge sort on disk), against 0.95 ms for the ordered
		// index scan (EXPLAIN ANALYZE, bench/README.md). Turning bitmap scans, sorts and sequential
		// scans off for the drain's transaction leaves the planner the ordered scan whatever its
		// statistics say; the drain's other statements address rows by seq through indexes anyway.
		plan: `SELECT set_config('enable_bitmapscan', 'off', true), set_config('enable_sort', 'off', true),
			set_config('enable_seqscan', 'off', true)`,
		claim: `SELECT o.tenant_id::text, o.event_id::text, o.seq, o.subject, o.event_type, o.envelope::text, o.attempts
			FROM outbox o
			WHERE o.parked_at IS NULL AND o.next_attempt_at <= now()
			  AND NOT EXISTS (
			      SELECT 1 FROM outbox p
			      WHERE p.tenant_id = o.tenant_id AND p.subject = o.subject AND p.seq < o.seq
			        AND (p.parked_at IS NOT NULL OR p.next_attempt_at > now()))
			  AND pg_try_advisory_xact_lock(7301, hashtext(o.tenant_id::text || '/' || o.subject))
			ORDER BY o.seq
			LIMIT $1
			FOR UPDATE OF o SKIP LOCKED`,
		// The advisory lock is tried row by row while the claim scans, so it can fail for an
		// aggregate's early rows (another drainer held it) and succeed for a later one (that drainer
		// just committed). Holding the lock now, the claim keeps an aggregate only if it starts at the
		// aggregate's first row.
		heads: `SELECT x.seq, (SELECT min(p.seq) FROM outbox p WHERE p.tenant_id = x.tenant_id AND p.subject = x.subject)
			FROM outbox x WHERE x.seq = ANY($1::bigint[])`,
		fail:       `UPDATE outbox SET attempts = $2, next_attempt_at = $3, parked_at = $4, last_error = $5 WHERE seq = $1`,
		deleteSeqs: `DELETE FROM outbox WHERE seq = ANY($1::bigint[])`,
		seqParam:   func(seqs []int64) any { return "{" + joinSeqs(seqs) + "}" }, // a bigint[] literal
		counts:     `SELECT count(*) FILTER (WHERE parked_at IS NULL), count(*) FILTER (WHERE parked_at IS NOT NULL) FROM outbox`,
		parked: `SELECT tenant_id::text, event_id::text, event_type, subject, attempts, COALESCE(last_error, ''), created_at, parked_at
			FROM outbox WHERE parked_at IS NOT NULL ORDER BY seq LIMIT $1`,
		replay: `UPDATE outbox SET parked_at = NULL, attempts = 0, next_attempt_at = $2, last_error = NULL
			WHERE event_id = $1::uuid AND parked_at IS NOT NULL`,
	},
	// SQL Server: one drainer per outbox at a time (sp_getapplock with no wait: a second drainer
	// skips the round instead of blocking), READPAST so writers are never waited on. Written and
	// reviewed; not run on these machines (no SQL Server).
	sqlstore.SQLServer: {
		lock: `DECLARE @r int;
			EXEC @r = sp_getapplock @Resource = @p1, @LockMode = 'Exclusive', @LockOwner = 'Transaction', @LockTimeout = 0;
			SELECT @r;`,
		claim: `SELECT TOP (@p1) LOWER(CONVERT(char(36), o.tenant_id)), LOWER(CONVERT(char(36), o.event_id)), o.seq, o.subject,
			       o.event_type, o.envelope, o.attempts
			FROM dbo.outbox o WITH (UPDLOCK, ROWLOCK, READPAST)
			WHERE o.parked_at IS NULL AND o.next_attempt_at <= SYSUTCDATETIME()
			  AND NOT EXISTS (
			      SELECT 1 FROM dbo.outbox p WITH (READPAST)
			      WHERE p.tenant_id = o.tenant_id AND p.subject = o.subject AND p.seq < o.seq
			        AND (p.parked_at IS NOT NULL OR p.next_attempt_at > SYSUTCDATETIME()))
			ORDER BY o.seq`,
		fail:       `UPDATE dbo.outbox SET attempts = @p2, next_attempt_at = @p3, parked_at = @p4, last_error = @p5 WHERE seq = @p1`,
		deleteSeqs: `DELETE FROM dbo.outbox WHERE seq IN (SELECT CAST(value AS bigint) FROM STRING_SPLIT(@p1, ','))`,
		seqParam:   func(seqs []int64) any { return joinSeqs(seqs) }, // for STRING_SPLIT
		counts:     `SELECT COALESCE(SUM(CASE WHEN parked_at IS NULL THEN 1 ELSE 0 END), 0), COALESCE(SUM(CASE WHEN parked_at IS NULL THEN 0 ELSE 1 END), 0) FROM dbo.outbox`,
		parked: `SELECT TOP (@p1) LOWER(CONVERT(char(36), tenant_id)), LOWER(CONVERT(char(36), event_id)), event_type, subject, attempts,
			       COALESCE(last_error, ''), created_at, parked_at
			FROM dbo.outbox WHERE parked_at IS NOT NULL ORDER BY seq`,
		replay: `UPDATE dbo.outbox SET parked_at = NULL, attempts = 0, next_attempt_at = @p2, last_error = NULL
			WHERE event_id = @p1 AND parked_at IS NOT NULL`,
	},
}

// joinSeqs renders seqs as "1,2,3".
func joinSeqs(seqs []int64) string {
	parts := make([]string, len(seqs))
	for i, s := range seqs {
		parts[i] = strconv.FormatInt(s, 10)
	}
	return strings.Join(parts, ",")
}
