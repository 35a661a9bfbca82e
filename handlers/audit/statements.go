package audit

// statements is one engine's SQL for the audit store: every statement sqlStore (store_sql.go)
// sends or assembles, the same fields for each engine, so the store's Go is written once. The
// engines' sets are pgStatements (statements_postgres.go) and msStatements
// (statements_sqlserver.go); those files hold SQL and one placeholder hook only.
//
// Each statement's comment gives its parameters, in order, and the columns it returns. Both
// engines take the same parameters in the same order, as Go passes them: times in UTC, ids as
// canonical text, the payload as JSON text, a missing source event id as a NULL sql.NullString.
// Statements that read entries return entryColumns (store_scan.go's scanEntry reads them).
// TestSQLServerQueries walks the struct (reflection) and checks every field against store_sql.go.
type statements struct {
	// lockTenant: tenant id. Takes the tenant's append lock, a transaction-scoped exclusive lock
	// keyed by the tenant (held until commit or rollback), so appends for one tenant queue while
	// appends for different tenants never wait on each other; fails the statement if not granted.
	lockTenant string
	// lastLink: tenant id → seq, hash of the tenant's last entry (no row when it has none), read
	// after lockTenant: it must see the previous lock holder's committed entries.
	lastLink string
	// insertEntry: tenant id, seq, entry id, occurred at, recorded at, actor type, actor id, action,
	// resource type, resource id, trace id, correlation id, source event id (nullable), payload
	// (JSON text), prev hash, hash.
	insertEntry string
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
