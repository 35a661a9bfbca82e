package audit

import "strconv"

// pgEntryCols is entryColumns (statements.go) in PostgreSQL.
const pgEntryCols = `seq, entry_id::text, occurred_at, recorded_at, actor_type, actor_id, action,
	resource_type, resource_id, trace_id, correlation_id, COALESCE(source_event_id::text, ''), payload::text,
	prev_hash, hash`

// pgStatements is the whole of what the audit service asks of PostgreSQL.
var pgStatements = statements{
	// The lock is an advisory lock in the two-int form (class, hashtext(tenant)); 1095058516 is
	// 0x41554454, "AUDT", which namespaces it in the key space the whole database shares, so it
	// cannot meet a one-bigint key such as goose's migration lock. Two tenants whose ids hash
	// alike merely share a queue. Under READ COMMITTED (PostgreSQL's default, which sqlstore
	// keeps) every later statement takes a fresh snapshot, so lastLink sees the previous holder's
	// committed entries; that is also why the lock and the read are two statements, not one. The
	// primary key (tenant_id, seq) is the backstop: a lock that failed to serialize could fail an
	// append, never fork the chain.
	lockTenant: `SELECT pg_advisory_xact_lock(1095058516, hashtext($1))`,

	lastLink: `SELECT seq, hash FROM audit_entries WHERE tenant_id = $1 ORDER BY seq DESC LIMIT 1`,

	insertEntry: `INSERT INTO audit_entries (tenant_id, seq, entry_id, occurred_at, recorded_at,
		actor_type, actor_id, action, resource_type, resource_id, trace_id, correlation_id, source_event_id,
		payload, prev_hash, hash)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14::json, $15, $16)`,

	getEntry: `SELECT ` + pgEntryCols + ` FROM audit_entries WHERE tenant_id = $1 AND entry_id = $2`,

	rangeEntries: `SELECT ` + pgEntryCols + ` FROM audit_entries
		WHERE tenant_id = $1 AND seq > $2 AND seq <= $3 ORDER BY seq LIMIT $4`,

	param: func(n int) string { return "$" + strconv.Itoa(n) },

	query: `SELECT ` + pgEntryCols + ` FROM audit_entries WHERE {where} ORDER BY seq LIMIT {rows}`,

	seqRange: `SELECT COALESCE(min(seq), 0), COALESCE(max(seq), 0) FROM audit_entries WHERE {where}`,

	isTenant:       `tenant_id = {p}`,
	occurredFrom:   `occurred_at >= {p}`,
	occurredBefore: `occurred_at < {p}`,
	actorIs:        `actor_id = {p}`,
	actionIs:       `action = {p}`,
	resourceTypeIs: `resource_type = {p}`,
	resourceIDIs:   `resource_id = {p}`,
	traceIs:        `trace_id = {p}`,
	seqAfter:       `seq > {p}`,
}
