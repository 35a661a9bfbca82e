package audit

import "strconv"

// pgEntryCols is entryColumns (statements.go) in PostgreSQL.
const pgEntryCols = `seq, entry_id::text, occurred_at, recorded_at, actor_type, actor_id, action,
	resource_type, resource_id, trace_id, correlation_id, COALESCE(source_event_id::text, ''), payload::text,
	prev_hash, hash`

// pgStatements is the whole of what the audit service asks of PostgreSQL.
var pgStatements = statements{
	// Each lock is an advisory lock in the two-int form (class, hashtext(tenant)); 1095058516 is
	// 0x41554454, "AUDT", which namespaces it in the key space the whole database shares, so it
	// cannot meet a one-bigint key such as goose's migration lock. Two tenants whose ids hash alike
	// merely share a queue. pg_advisory_xact_lock is volatile, so PostgreSQL evaluates it after the
	// sort: every group takes its locks in key order, and groups cannot deadlock. Under READ
	// COMMITTED (PostgreSQL's default, which sqlstore keeps) every later statement takes a fresh
	// snapshot, so lastLinks sees the previous holders' committed entries; that is also why the
	// locks and the read are two statements, not one. The primary key (tenant_id, seq) is the
	// backstop: a lock that failed to serialize could fail an append, never fork the chain.
	lockTenants: `SELECT pg_advisory_xact_lock(1095058516, x.h)
		FROM (SELECT DISTINCT hashtext(t.value) AS h FROM json_array_elements_text($1::json) AS t(value)) AS x
		ORDER BY x.h`,

	lastLinks: `SELECT x.tenant_id::text, l.seq, l.hash
		FROM (SELECT DISTINCT t.value::uuid AS tenant_id FROM json_array_elements_text($1::json) AS t(value)) AS x
		LEFT JOIN LATERAL (SELECT seq, hash FROM audit_entries a WHERE a.tenant_id = x.tenant_id
		                   ORDER BY seq DESC LIMIT 1) AS l ON true`,

	insertEntries: `INSERT INTO audit_entries (tenant_id, seq, entry_id, occurred_at, recorded_at,
		actor_type, actor_id, action, resource_type, resource_id, trace_id, correlation_id, source_event_id,
		payload, prev_hash, hash)
		SELECT x.tenant_id, x.seq, x.entry_id, x.occurred_at AT TIME ZONE 'UTC', x.recorded_at AT TIME ZONE 'UTC',
		       x.actor_type, x.actor_id, x.action, x.resource_type, x.resource_id, x.trace_id, x.correlation_id,
		       NULLIF(x.source_event_id, '')::uuid, x.payload::json, decode(x.prev_hash, 'hex'), decode(x.hash, 'hex')
		FROM json_to_recordset($1::json) AS x(tenant_id uuid, seq bigint, entry_id uuid, occurred_at timestamp,
		     recorded_at timestamp, actor_type text, actor_id text, action text, resource_type text, resource_id text,
		     trace_id text, correlation_id text, source_event_id text, payload text, prev_hash text, hash text)`,

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

// pgExportCols is exportColumns (store_archive.go) in PostgreSQL.
const pgExportCols = `from_seq, to_seq, count, blob, sha256, first_prev_hash, last_hash, evidence_id::text, exported_at`

// pgArchive is the retention sweeps' SQL for PostgreSQL.
var pgArchive = archiveStatements{
	// A skip scan of the primary key: one index probe per tenant instead of reading every entry.
	entryTenants: `WITH RECURSIVE t(id) AS (
		  (SELECT tenant_id FROM audit_entries ORDER BY tenant_id LIMIT 1)
		  UNION ALL
		  SELECT (SELECT a.tenant_id FROM audit_entries a WHERE a.tenant_id > t.id ORDER BY a.tenant_id LIMIT 1)
		  FROM t WHERE t.id IS NOT NULL)
		SELECT id::text FROM t WHERE id IS NOT NULL AND id <> $1::uuid`,

	exportedTenants: `SELECT DISTINCT tenant_id::text FROM audit_exports`,

	seqSpan: `SELECT seq, recorded_at FROM audit_entries WHERE tenant_id = $1 AND seq > $2 AND seq <= $3
		ORDER BY seq LIMIT $4`,

	chainBounds: `SELECT COALESCE(min(seq), 0), COALESCE(max(seq), 0) FROM audit_entries WHERE tenant_id = $1`,

	exportsCovering: `SELECT from_seq, to_seq, blob, sha256 FROM audit_exports WHERE tenant_id = $1 AND to_seq >= $2 AND from_seq <= $3
		ORDER BY from_seq`,

	exportedThrough: `SELECT COALESCE(max(to_seq), 0) FROM audit_exports WHERE tenant_id = $1`,

	recordExport: `SELECT audit_record_export($1, $2, $3, $4, $5, $6, decode($7, 'hex'), decode($8, 'hex'), $9, $10)`,

	listExports: `SELECT ` + pgExportCols + ` FROM audit_exports WHERE tenant_id = $1 AND from_seq > $2
		ORDER BY from_seq LIMIT $3`,

	exportEnding: `SELECT ` + pgExportCols + ` FROM audit_exports WHERE tenant_id = $1 AND to_seq = $2`,

	purge: `SELECT audit_purge($1, $2, $3)`,
}
