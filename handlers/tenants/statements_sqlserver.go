package tenants

import (
	"spine/shared/outbox"
	"spine/shared/sqlstore"
)

// Azure SQL (SQL Server): the same statements as statements_postgres.go, in T-SQL. Written and
// reviewed; not run on these machines (no SQL Server): TestSQLServerQueries checks them without a
// server, TestSQLServerStore_Conformance runs them where SPINE_TEST_SQLSERVER_URL names one.
//
// Driver facts these statements rely on (go-mssqldb):
//   - Parameters are @p1..@pN. Go strings travel as nvarchar and ints as bigint; SQL Server
//     converts them implicitly (nvarchar → uniqueidentifier keeps index seeks, since
//     uniqueidentifier has the higher type precedence).
//   - A uniqueidentifier read back raw arrives as bytes in SQL Server's mixed-endian order, so
//     ids are always read through dbo.tenants.tenant_key, the persisted canonical lowercase text.
//   - time.Time travels as datetimeoffset(7). Converted into a datetime2(6) column it keeps its
//     clock reading and drops the offset, which is why sqlStore passes every time in UTC.

// msTenantCols is tenantColumns (statements.go) in T-SQL. tenant_key, not tenant_id: see above.
const msTenantCols = `tenant_key, name, slug, status, edition_code, owner_email, version, created_at, updated_at, provisioned_at`

// msOutboxInsert is the outbox's insert of create's events (outbox.InsertSQL): rows @p12, now @p13.
var msOutboxInsert = outbox.InsertSQL(sqlstore.SQLServer, "@p12", "@p13")

// msStatements is the whole of what the tenants service asks of Azure SQL.
var msStatements = statements{
	// One batch, one round trip. TRY/CATCH stops it at the first error and re-raises that error
	// as it was (a statement error does not end a batch by itself, and later statements' errors
	// would follow it). OPENJSON's WITH clause gives each step property its column's type.
	create: `BEGIN TRY
		INSERT INTO dbo.tenants
			(tenant_id, name, slug, status, edition_code, owner_email, version, created_at, updated_at, provisioned_at)
			VALUES (@p1, @p2, @p3, @p4, @p5, @p6, @p7, @p8, @p9, @p10);
		INSERT INTO dbo.tenant_provisioning_steps (tenant_id, seq, name, status, attempts, updated_at)
			SELECT @p1, s.seq, s.name, s.status, 0, @p8
			FROM OPENJSON(@p11) WITH (seq int '$.seq', name varchar(64) '$.name', status varchar(16) '$.status') AS s;
		` + msOutboxInsert + `;
	END TRY
	BEGIN CATCH
		THROW;
	END CATCH`,

	tenantByID: `SELECT ` + msTenantCols + ` FROM dbo.tenants WHERE tenant_id = @p1`,

	// The nvarchar parameter is cast to the column's type so the unique index on slug is sought
	// rather than scanned (varchar vs nvarchar would convert the column). The cast cannot
	// truncate or fold case: the store only sends valid slugs.
	tenantBySlug: `SELECT ` + msTenantCols + ` FROM dbo.tenants WHERE slug = CAST(@p1 AS varchar(63))`,

	steps: `SELECT seq, name, status, attempts, COALESCE(last_error, ''), updated_at
		FROM dbo.tenant_provisioning_steps WHERE tenant_id = @p1 ORDER BY seq`,

	// Pages on tenant_key (see the migration): comparing and ordering the text form gives
	// PostgreSQL's uuid order, which uniqueidentifier's own order does not. The cast gives the
	// parameter the column's type, so the column's binary collation applies and the index on
	// tenant_key is sought. TOP rather than OFFSET/FETCH because FETCH NEXT 0 ROWS is an error
	// where PostgreSQL's LIMIT 0 returns nothing.
	list: `SELECT TOP (@p3) ` + msTenantCols + ` FROM dbo.tenants
		WHERE tenant_key > CAST(@p1 AS char(36)) AND (@p2 = N'' OR status = @p2)
		ORDER BY tenant_key`,

	// SELECT ... FOR UPDATE: UPDLOCK makes concurrent Updates of one tenant queue here (readers
	// are not blocked), ROWLOCK keeps it to the row, HOLDLOCK keeps the lock (and, for a missing
	// id, the empty range) until commit.
	lockTenant: `SELECT ` + msTenantCols + ` FROM dbo.tenants WITH (UPDLOCK, ROWLOCK, HOLDLOCK) WHERE tenant_id = @p1`,

	updateTenant: `UPDATE dbo.tenants SET name = @p2, slug = @p3, status = @p4, edition_code = @p5,
		owner_email = @p6, version = @p7, updated_at = @p8, provisioned_at = @p9 WHERE tenant_id = @p1`,

	bumpTenant: `UPDATE dbo.tenants SET version = version + 1, updated_at = @p2 WHERE tenant_id = @p1`,

	updateStep: `UPDATE dbo.tenant_provisioning_steps
		SET status = @p3, attempts = attempts + 1, last_error = @p4, updated_at = @p5
		WHERE tenant_id = @p1 AND seq = @p2`,

	retryDue: `SELECT TOP (@p3) t.tenant_key FROM dbo.tenants t
		WHERE t.status = 'Provisioning' AND EXISTS (
			SELECT 1 FROM dbo.tenant_provisioning_steps s
			WHERE s.tenant_id = t.tenant_id AND s.status = 'Failed' AND s.updated_at < @p1 AND s.attempts < @p2)
		ORDER BY t.updated_at`,
}
