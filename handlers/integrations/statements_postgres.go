package integrations

const pgConnectionCols = `connection_id::text, connector_type, name, settings::text, secret_vault, secret_name, secret_version,
	status, last_tested_at, last_sync_at, COALESCE(last_error_class, ''), version, created_at, updated_at`

// pgStatements is the whole of what the integrations service asks of PostgreSQL.
var pgStatements = statements{
	insert: `INSERT INTO connections (tenant_id, connection_id, connector_type, name, settings, secret_vault, secret_name,
			secret_version, status, version, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9, $10, $11, $11)`,
	connection: `SELECT ` + pgConnectionCols + ` FROM connections
		WHERE tenant_id = $1 AND connection_id = $2 AND deleted_at IS NULL`,
	lockConnection: `SELECT ` + pgConnectionCols + ` FROM connections
		WHERE tenant_id = $1 AND connection_id = $2 AND deleted_at IS NULL FOR UPDATE`,
	list: `SELECT ` + pgConnectionCols + ` FROM connections
		WHERE tenant_id = $1 AND deleted_at IS NULL AND connection_id > $2::uuid ORDER BY connection_id LIMIT $3`,
	update: `UPDATE connections SET name = $3, settings = $4::jsonb, secret_version = $5, status = $6, last_tested_at = $7,
			last_sync_at = $8, last_error_class = $9, version = $10, updated_at = $11, deleted_at = $12
		WHERE tenant_id = $1 AND connection_id = $2`,

	purgeTenants: `SELECT DISTINCT tenant_id::text FROM connections WHERE deleted_at < $1`,
	purgeNext: `SELECT connection_id::text, deleted_at FROM connections
		WHERE tenant_id = $1 AND deleted_at < $4 AND (deleted_at, connection_id) > ($2, $3::uuid)
		ORDER BY deleted_at, connection_id LIMIT $5`,
	purgeRange: `DELETE FROM connections
		WHERE tenant_id = $1 AND deleted_at < $6
			AND (deleted_at, connection_id) >= ($2, $3::uuid) AND (deleted_at, connection_id) <= ($4, $5::uuid)`,
}
