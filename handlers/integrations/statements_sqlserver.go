package integrations

// Azure SQL (SQL Server): the same statements as statements_postgres.go, in T-SQL. Written and
// reviewed; not run on these machines (no SQL Server): TestSQLServerQueries checks them without a
// server, TestSQLServerStore_Conformance runs them where SPINE_TEST_SQLSERVER_URL names one. Ids
// are read and paged through the persisted canonical text column connection_key; FOR UPDATE is
// WITH (UPDLOCK, ROWLOCK, HOLDLOCK).

const msConnectionCols = `connection_key, connector_type, name, settings, secret_vault, secret_name, secret_version,
	status, last_tested_at, last_sync_at, ISNULL(last_error_class, ''), version, created_at, updated_at`

// msStatements is the whole of what the integrations service asks of Azure SQL.
var msStatements = statements{
	insert: `INSERT INTO dbo.connections (tenant_id, connection_id, connector_type, name, settings, secret_vault, secret_name,
			secret_version, status, version, created_at, updated_at)
		VALUES (@p1, @p2, @p3, @p4, @p5, @p6, @p7, @p8, @p9, @p10, @p11, @p11)`,
	connection: `SELECT ` + msConnectionCols + ` FROM dbo.connections
		WHERE tenant_id = @p1 AND connection_id = @p2 AND deleted_at IS NULL`,
	lockConnection: `SELECT ` + msConnectionCols + ` FROM dbo.connections WITH (UPDLOCK, ROWLOCK, HOLDLOCK)
		WHERE tenant_id = @p1 AND connection_id = @p2 AND deleted_at IS NULL`,
	list: `SELECT TOP (@p3) ` + msConnectionCols + ` FROM dbo.connections
		WHERE tenant_id = @p1 AND deleted_at IS NULL AND connection_key > @p2 ORDER BY connection_key`,
	update: `UPDATE dbo.connections SET name = @p3, settings = @p4, secret_version = @p5, status = @p6, last_tested_at = @p7,
			last_sync_at = @p8, last_error_class = @p9, version = @p10, updated_at = @p11, deleted_at = @p12
		WHERE tenant_id = @p1 AND connection_id = @p2`,

	// The purge pages on connection_key (canonical text), row comparisons spelled out.
	purgeTenants: `SELECT DISTINCT LOWER(CONVERT(char(36), tenant_id)) FROM dbo.connections WHERE deleted_at < @p1`,
	purgeNext: `SELECT TOP (@p5) connection_key, deleted_at FROM dbo.connections
		WHERE tenant_id = @p1 AND deleted_at < @p4 AND (deleted_at > @p2 OR (deleted_at = @p2 AND connection_key > @p3))
		ORDER BY deleted_at, connection_key`,
	purgeRange: `DELETE FROM dbo.connections
		WHERE tenant_id = @p1 AND deleted_at < @p6
			AND (deleted_at > @p2 OR (deleted_at = @p2 AND connection_key >= @p3))
			AND (deleted_at < @p4 OR (deleted_at = @p4 AND connection_key <= @p5))`,
}
