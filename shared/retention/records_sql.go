package retention

import (
	"time"

	"spine/shared/sqlstore"
)

// recordsSQL is one engine's statements of a platform records sweep over one table. Each engine's
// SQL stays visible here, side by side; records.go runs them.
type recordsSQL struct {
	// next: $1 cutoff, $2 limit → the oldest due rows' first time, last time and count.
	next string
	// delete: $1 from, $2 to, $3 cutoff → rows deleted (every row of the range still due): an
	// affected-rows statement, or a query answering the count in one row when countRow.
	delete   string
	countRow bool
	// floor, when set, is the youngest cutoff the database accepts (the inbox's function refuses
	// a younger one): the target never asks for less, even with SPINE_RETENTION_SCALE.
	floor time.Duration
}

// recordsQueries are the statements by table and engine: the idempotency records (24 hours) and
// the consumers' inbox (7 days), both in every service's database (shared/platform), both
// read through their time index (idempotency_keys_created_at, inbox_received_at).
var recordsQueries = map[string]map[sqlstore.Dialect]recordsSQL{
	"idempotency_keys": {
		sqlstore.Postgres: {
			next: `SELECT min(created_at), max(created_at), count(*) FROM (
				SELECT created_at FROM idempotency_keys WHERE created_at < $1 ORDER BY created_at LIMIT $2) s`,
			delete: `DELETE FROM idempotency_keys WHERE created_at >= $1 AND created_at <= $2 AND created_at < $3`,
		},
		sqlstore.SQLServer: {
			next: `SELECT MIN(created_at), MAX(created_at), COUNT(*) FROM (
				SELECT TOP (@p2) created_at FROM dbo.idempotency_keys WHERE created_at < @p1 ORDER BY created_at) s`,
			delete: `DELETE FROM dbo.idempotency_keys WHERE created_at >= @p1 AND created_at <= @p2 AND created_at < @p3`,
		},
	},
	"inbox": {
		sqlstore.Postgres: {
			next: `SELECT min(received_at), max(received_at), count(*) FROM (
				SELECT received_at FROM inbox WHERE received_at < $1 ORDER BY received_at LIMIT $2) s`,
			// The runtime role has no DELETE on inbox: the owner's function deletes, never ids
			// younger than seven days (shared/platform 00004).
			delete:   `SELECT spine_inbox_prune($1, $2, $3)`,
			countRow: true,
			floor:    InboxRetention,
		},
		sqlstore.SQLServer: {
			next: `SELECT MIN(received_at), MAX(received_at), COUNT(*) FROM (
				SELECT TOP (@p2) received_at FROM dbo.inbox WHERE received_at < @p1 ORDER BY received_at) s`,
			delete:   `EXEC dbo.spine_inbox_prune @p1, @p2, @p3`,
			countRow: true,
			floor:    InboxRetention,
		},
	},
}
