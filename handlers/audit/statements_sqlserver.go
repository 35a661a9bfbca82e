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
	// Each tenant's "audit:<tenant id>" lock, in one global order (the ids' text order): one
	// sp_getapplock per tenant (exclusive, owned by the transaction, so appends for one tenant
	// queue and different tenants never meet; THROW fails the transaction when one is not
	// granted), assembled from the ids after they are parsed as uniqueidentifiers (so nothing but
	// canonical ids reaches the assembled text) and run as one batch in the transaction.
	lockTenants: `DECLARE @locks nvarchar(max);
		SELECT @locks = STRING_AGG(CAST(N'EXEC @granted = sp_getapplock @Resource = N''audit:' + t.tid
		           + N''', @LockMode = ''Exclusive'', @LockOwner = ''Transaction'', @LockTimeout = 30000;
		           IF @granted < 0 THROW 51000, ''audit: the tenant append lock was not granted'', 1;' AS nvarchar(max)), NCHAR(10))
		       WITHIN GROUP (ORDER BY t.tid)
		FROM (SELECT DISTINCT LOWER(CONVERT(char(36), CAST(value AS uniqueidentifier))) AS tid FROM OPENJSON(@p1)) AS t;
		SET @locks = N'DECLARE @granted int;' + NCHAR(10) + @locks;
		EXEC sys.sp_executesql @locks;`,

	lastLinks: `SELECT LOWER(CONVERT(char(36), x.tid)), l.seq, l.hash
		FROM (SELECT DISTINCT CAST(value AS uniqueidentifier) AS tid FROM OPENJSON(@p1)) AS x
		OUTER APPLY (SELECT TOP (1) a.seq, a.hash FROM dbo.audit_entries AS a WITH (READCOMMITTEDLOCK)
		             WHERE a.tenant_id = x.tid ORDER BY a.seq DESC) AS l`,

	insertEntries: `INSERT INTO dbo.audit_entries (tenant_id, seq, entry_id, occurred_at, recorded_at,
		actor_type, actor_id, action, resource_type, resource_id, trace_id, correlation_id, source_event_id,
		payload, prev_hash, hash)
		SELECT x.tid, x.seq, x.eid, x.occurred_at, x.recorded_at, x.actor_type, x.actor_id, x.action,
		       x.resource_type, x.resource_id, x.trace_id, x.correlation_id, CAST(NULLIF(x.sid, N'') AS uniqueidentifier),
		       x.payload, CONVERT(binary(32), x.prev_hash, 2), CONVERT(binary(32), x.hash, 2)
		FROM OPENJSON(@p1) WITH (tid uniqueidentifier '$.tenant_id', seq bigint, eid uniqueidentifier '$.entry_id',
		     occurred_at datetime2(6), recorded_at datetime2(6), actor_type nvarchar(128), actor_id nvarchar(400),
		     action nvarchar(256), resource_type nvarchar(128), resource_id nvarchar(400), trace_id varchar(32),
		     correlation_id nvarchar(256), sid nvarchar(36) '$.source_event_id', payload nvarchar(max), prev_hash varchar(64),
		     hash varchar(64)) AS x`,

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

// msExportCols is exportColumns (store_archive.go) in T-SQL.
const msExportCols = `from_seq, to_seq, [count], blob, sha256, first_prev_hash, last_hash,
	LOWER(CONVERT(char(36), evidence_id)), exported_at`

// msArchive is the retention sweeps' SQL for Azure SQL.
var msArchive = archiveStatements{
	entryTenants: `SELECT DISTINCT LOWER(CONVERT(char(36), tenant_id)) FROM dbo.audit_entries
		WHERE tenant_id <> CAST(@p1 AS uniqueidentifier)`,

	exportedTenants: `SELECT DISTINCT LOWER(CONVERT(char(36), tenant_id)) FROM dbo.audit_exports`,

	seqSpan: `SELECT TOP (@p4) seq, recorded_at FROM dbo.audit_entries WHERE tenant_id = @p1 AND seq > @p2 AND seq <= @p3
		ORDER BY seq`,

	chainBounds: `SELECT COALESCE(MIN(seq), 0), COALESCE(MAX(seq), 0) FROM dbo.audit_entries WHERE tenant_id = @p1`,

	exportsCovering: `SELECT from_seq, to_seq, blob, sha256 FROM dbo.audit_exports WHERE tenant_id = @p1 AND to_seq >= @p2 AND from_seq <= @p3
		ORDER BY from_seq`,

	exportedThrough: `SELECT COALESCE(MAX(to_seq), 0) FROM dbo.audit_exports WHERE tenant_id = @p1`,

	// EXEC takes no expressions as arguments: the hashes and the time are converted first.
	recordExport: `DECLARE @first_prev_hash binary(32) = CONVERT(binary(32), @p7, 2), @last_hash binary(32) = CONVERT(binary(32), @p8, 2),
		        @exported_at datetime2(6) = CAST(@p10 AS datetime2(6));
		EXEC dbo.audit_record_export @p1, @p2, @p3, @p4, @p5, @p6, @first_prev_hash, @last_hash, @p9, @exported_at;`,

	listExports: `SELECT TOP (@p3) ` + msExportCols + ` FROM dbo.audit_exports WHERE tenant_id = @p1 AND from_seq > @p2
		ORDER BY from_seq`,

	exportEnding: `SELECT ` + msExportCols + ` FROM dbo.audit_exports WHERE tenant_id = @p1 AND to_seq = @p2`,

	// The cutoff arrives as datetimeoffset in UTC; the procedure's datetime2(6) parameter keeps its
	// clock reading.
	purge: `EXEC dbo.audit_purge @p1, @p2, @p3`,
}
