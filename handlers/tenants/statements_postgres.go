package tenants

import (
	"spine/shared/outbox"
	"spine/shared/sqlstore"
)

// pgTenantCols is tenantColumns (statements.go) in PostgreSQL.
const pgTenantCols = `tenant_id, name, slug, status, edition_code, owner_email, version, created_at, updated_at, provisioned_at`

// pgOutboxInsert is the outbox's insert of create's events (outbox.InsertSQL): rows $12, now $13.
var pgOutboxInsert = outbox.InsertSQL(sqlstore.Postgres, "$12", "$13")

// pgStatements is the whole of what the tenants service asks of PostgreSQL.
var pgStatements = statements{
	// One statement, one round trip: the tenant and its steps in data-modifying CTEs, the outbox
	// rows as the main statement. Foreign keys are checked at the statement's end, when the tenant
	// row is there.
	create: `WITH tenant AS (
			INSERT INTO tenants (` + pgTenantCols + `)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
		), steps AS (
			INSERT INTO tenant_provisioning_steps (tenant_id, seq, name, status, attempts, updated_at)
			SELECT $1, s.seq, s.name, s.status, 0, $8 FROM json_to_recordset($11::json) AS s(seq int, name text, status text)
		)
		` + pgOutboxInsert,

	tenantByID: `SELECT ` + pgTenantCols + ` FROM tenants WHERE tenant_id = $1`,

	tenantBySlug: `SELECT ` + pgTenantCols + ` FROM tenants WHERE slug = $1`,

	steps: `SELECT seq, name, status, attempts, COALESCE(last_error, ''), updated_at
		FROM tenant_provisioning_steps WHERE tenant_id = $1 ORDER BY seq`,

	list: `SELECT ` + pgTenantCols + ` FROM tenants
		WHERE tenant_id > $1 AND ($2 = '' OR status = $2) ORDER BY tenant_id LIMIT $3`,

	lockTenant: `SELECT ` + pgTenantCols + ` FROM tenants WHERE tenant_id = $1 FOR UPDATE`,

	updateTenant: `UPDATE tenants SET name = $2, slug = $3, status = $4, edition_code = $5,
		owner_email = $6, version = $7, updated_at = $8, provisioned_at = $9 WHERE tenant_id = $1`,

	bumpTenant: `UPDATE tenants SET version = version + 1, updated_at = $2 WHERE tenant_id = $1`,

	updateStep: `UPDATE tenant_provisioning_steps
		SET status = $3, attempts = attempts + 1, last_error = $4, updated_at = $5
		WHERE tenant_id = $1 AND seq = $2`,

	retryDue: `SELECT t.tenant_id FROM tenants t
		WHERE t.status = 'Provisioning' AND EXISTS (
			SELECT 1 FROM tenant_provisioning_steps s
			WHERE s.tenant_id = t.tenant_id AND s.status = 'Failed' AND s.updated_at < $1 AND s.attempts < $2)
		ORDER BY t.updated_at LIMIT $3`,
}
