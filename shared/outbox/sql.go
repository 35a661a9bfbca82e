package outbox

import "spine/shared/sqlstore"

// insertSQL is the outbox insert per engine; next_attempt_at = created_at makes a row due at once.
var insertSQL = map[sqlstore.Dialect]string{
	sqlstore.Postgres: `INSERT INTO outbox (tenant_id, event_id, subject, event_type, envelope, created_at, next_attempt_at)
		VALUES ($1, $2, $3, $4, $5::jsonb, $6, $6)`,
	sqlstore.SQLServer: `INSERT INTO dbo.outbox (tenant_id, event_id, subject, event_type, envelope, created_at, next_attempt_at)
		VALUES (@p1, @p2, @p3, @p4, @p5, @p6, @p6)`,
}
