package audit

// statements is one engine's SQL for the audit store: every statement sqlStore (store_sql.go)
// sends or assembles, the same fields for each engine, so the store's Go is written once. The
// engines' sets are pgStatements (statements_postgres.go) and msStatements
// (statements_sqlserver.go); those files hold SQL and one placeholder hook only.
//
// Each statement's comment gives its parameters, in order, and the columns it returns. Both
// engines take the same parameters in the same order, as Go passes them: times in UTC, ids as
// canonical text, the payload as JSON text, a missing source event id as "" (stored as NULL).
// Statements that read entries return entryColumns (store_scan.go's scanEntry reads them).
// TestSQLServerQueries walks the struct (reflection) and checks every field against store_sql.go.
type statements struct {
	// lockTenants: the tenant ids of a group as a JSON array of canonical text. Takes each
	// tenant's append lock, a transaction-scoped exclusive lock keyed by the tenant (held until
	// commit or rollback), so appends for one tenant queue while appends for different tenants
	// never wait on each other; takes them in one global order (by the lock's key), so groups
	// that share tenants cannot deadlock; fails the statement if one is not granted.
	lockTenants string
	// lastLinks: the tenant ids as lockTenants takes them → tenant id (canonical text), seq, hash
	// of each tenant's last entry; seq and hash are NULL for a tenant with none. Read after
	// lockTenants: it must see the previous lock holders' committed entries.
	lastLinks string
	// insertEntries: the entries as a JSON array of objects (groupRow in store_sql.go: ids as
	// canonical text, times as UTC "2006-01-02T15:04:05.999999" without an offset, the payload
	// as JSON text in a string, so its bytes are stored exactly as hashed, hashes as hex, "" for
	// no source event) → inserts them all.
	insertEntries string
	// getEntry: tenant id, entry id → entryColumns.
	getEntry string
	// rangeEntries: tenant id, after seq, through seq, limit → entryColumns of up to limit entries
	// with after < seq <= through, in seq order.
	rangeEntries string

	// Query and SeqRange are assembled per call from the filter members that are set (where, in
	// store_sql.go), so that each combination of filters gets its own plan over the index that
	// fits it. Only these fixed fragments are joined; values always travel as parameters.

	// param is the hook that spells the nth parameter's placeholder.
	param func(n int) string
	// query: {where} the conditions, {rows} the limit's placeholder → entryColumns in seq order.
	query fragment
	// seqRange: {where} the conditions → the lowest and highest seq matched, 0 and 0 for none.
	seqRange fragment
	// The conditions; {p} is the value's placeholder. A filter member that is not set adds none.
	isTenant, occurredFrom, occurredBefore, actorIs, actionIs, resourceTypeIs, resourceIDIs, traceIs, seqAfter fragment
}

// fragment is a piece of SQL the store assembles statements from at run time: a statement with
// {where} and {rows} left open, or a condition with {p} for its value's placeholder.
type fragment string

// archiveStatements is one engine's SQL for the retention sweeps' store methods (store_archive.go):
// the exports of the chain to the archive (audit_exports) and the purge of exported entries. Same
// conventions as statements; TestSQLServerArchiveQueries walks it as TestSQLServerQueries does.
type archiveStatements struct {
	// entryTenants: the platform chain's tenant id (excluded) → the tenant id (canonical text) of
	// every tenant with entries. Platform scope.
	entryTenants string
	// exportedTenants: → the tenant id (canonical text) of every tenant with an export. Platform
	// scope.
	exportedTenants string
	// seqSpan: tenant id, after seq, through seq, limit → seq, recorded_at of up to limit entries
	// with after < seq <= through, in seq order.
	seqSpan string
	// chainBounds: tenant id → the lowest and highest seq of the tenant's entries, 0 and 0 for none.
	chainBounds string
	// exportsCovering: tenant id, first seq, last seq → from_seq, to_seq of the exports with
	// to_seq >= first and from_seq <= last, in from_seq order.
	exportsCovering string
	// exportedThrough: tenant id → the highest to_seq of the tenant's exports, 0 for none.
	exportedThrough string
	// recordExport: tenant id, from seq, to seq, count, blob, sha256 (hex), first prev hash (hex),
	// last hash (hex), evidence id, exported at (UTC) → one row, one boolean column: whether the
	// owner's audit_record_export inserted the export (false: the tenant has one from that seq, and
	// nothing changed). The routine refuses (an error) a row that does not fit the chain; see
	// migrations/audit/*/00002_audit_retention.sql. The runtime role has no INSERT on
	// audit_exports.
	recordExport string
	// listExports: tenant id, after from seq, limit → exportColumns of up to limit exports with
	// from_seq > after, in from_seq order.
	listExports string
	// exportEnding: tenant id, to seq → exportColumns of the export ending at that seq.
	exportEnding string
	// purge: tenant id, to seq, cutoff (UTC) → one row, one column: how many entries the owner's
	// purge routine deleted (audit_purge; see migrations/audit/*/00002_audit_retention.sql). The
	// routine refuses (an error) a cutoff younger than the database's retention floor (migration 00002).
	purge string
}
