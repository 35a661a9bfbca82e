package audit

import "strconv"

// Azure SQL (SQL Server): the same statements as statements_postgres.go, in T-SQL. Written and
// reviewed; not run on these machines (no SQL Server): TestSQLServerQueries checks them without a
// server, TestSQLServerStore_Conformance runs them where SPINE_TEST_SQLSERVER_URL names one.
//
// Driver facts these statements rely on (go-mssqldb):
//   - Parameters are @p1..@pN. Go strings travel as nvarchar, ints as bigint, []byte as varbinary.
//     The payload is therefore passed as a string: bytes converted into nvarchar would be read as
//     UTF-16.
//   - A uniqueidentifier read back raw arrives as bytes in SQL Server's mixed-endian order, so ids
//     are always selected as LOWER(CONVERT(char(36), ...)), the canonical text the hash covers.
//   - time.Time travels as datetimeoffset(7). Converted into a datetime2(6) column it keeps its
//     clock reading and drops the offset, so every time is passed in UTC; comparisons CAST the
//     parameter to datetime2(6), so the column keeps its type and its index.

// msEntryCols is entryColumns (statements.go) in T-SQL.
const msEntryCols = `seq, LOWER(CONVERT(char(36), entry_id)), occurred_at, recorded_at, actor_type, actor_id, action,
	resource_type, resource_id, trace_id, correlation_id, COALESCE(LOWER(CONVERT(char(36), source_event_id)), ''), payload,
	prev_hash, hash`

// msStatements is the whole of what the audit service asks of Azure SQL.
var msStatements = statements{
	// An exclusive application lock owned by the transaction (released at commit or rollback),
	// named "audit:<tenant id>", so appends for one tenant queue and different tenants never meet.
	// sp_getapplock answers < 0 when the lock was not granted (timeout, deadlock victim); THROW
	// then fails the transaction.
	lockTenant: `DECLARE @resource nvarchar(255) = N'audit:' + @p1, @granted int;
		EXEC @granted = sp_getapplock @Resource = @resource, @LockMode = 'Exclusive', @LockOwner = 'Transaction', @LockTimeout = 30000;
		IF @granted < 0 THROW 51000, 'audit: the tenant append lock was not granted', 1;`,

	// READCOMMITTEDLOCK reads the latest committed row rather than a row version, whatever the
	// database's snapshot settings, so the previous lock holder's entries are always seen.
	lastLink: `SELECT TOP (1) seq, hash FROM dbo.audit_entries WITH (READCOMMITTEDLOCK)
		WHERE tenant_id = @p1 ORDER BY seq DESC`,

	insertEntry: `INSERT INTO dbo.audit_entries (tenant_id, seq, entry_id, occurred_at, recorded_at,
		actor_type, actor_id, action, resource_type, resource_id, trace_id, correlation_id, source_event_id,
		payload, prev_hash, hash)
		VALUES (@p1, @p2, @p3, @p4, @p5, @p6, @p7, @p8, @p9, @p10, @p11, @p12, @p13, @p14, @p15, @p16)`,

	getEntry: `SELECT ` + msEntryCols + ` FROM dbo.audit_entries WHERE tenant_id = @p1 AND entry_id = @p2`,

	rangeEntries: `SELECT TOP (@p4) ` + msEntryCols + ` FROM dbo.audit_entries
		WHERE tenant_id = @p1 AND seq > @p2 AND seq <= @p3 ORDER BY seq`,

	param: func(n int) string { return "@p" + strconv.Itoa(n) },

	// OPTION (RECOMPILE) plans each execution with its actual values (a tenant's size and a
	// filter's selectivity vary widely).
	query: `SELECT TOP ({rows}) ` + msEntryCols + ` FROM dbo.audit_entries WHERE {where}
		ORDER BY seq
		OPTION (RECOMPILE)`,

	seqRange: `SELECT COALESCE(MIN(seq), 0), COALESCE(MAX(seq), 0) FROM dbo.audit_entries WHERE {where}`,

	isTenant:       `tenant_id = {p}`,
	occurredFrom:   `occurred_at >= CAST({p} AS datetime2(6))`,
	occurredBefore: `occurred_at < CAST({p} AS datetime2(6))`,
	// The DATALENGTH terms make equality exact: SQL Server's = ignores trailing spaces,
	// PostgreSQL's does not. trace_id needs none: the service accepts only 32 hex digits as a
	// trace filter, and the varchar column's DATALENGTH is never the nvarchar parameter's.
	actorIs:        `(actor_id = {p} AND DATALENGTH(actor_id) = DATALENGTH({p}))`,
	actionIs:       `(action = {p} AND DATALENGTH(action) = DATALENGTH({p}))`,
	resourceTypeIs: `(resource_type = {p} AND DATALENGTH(resource_type) = DATALENGTH({p}))`,
	resourceIDIs:   `(resource_id = {p} AND DATALENGTH(resource_id) = DATALENGTH({p}))`,
	traceIs:        `trace_id = {p}`,
	seqAfter:       `seq > {p}`,
}
