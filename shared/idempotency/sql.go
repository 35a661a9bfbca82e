package idempotency

import "spine/shared/sqlstore"

// The statements over the platform schema's idempotency_keys table, per engine. A claimed key
// whose response is not recorded yet has status_code 0.
var (
	claimSQL = map[sqlstore.Dialect]string{
		sqlstore.Postgres: `INSERT INTO idempotency_keys (caller, key, scope, request_hash, status_code, response_body, headers, created_at)
			VALUES ($1, $2, $3, $4, 0, ''::bytea, '', $5) ON CONFLICT DO NOTHING`,
		sqlstore.SQLServer: `INSERT INTO dbo.idempotency_keys (caller, [key], scope, request_hash, status_code, response_body, headers, created_at)
			SELECT @p1, @p2, @p3, @p4, 0, 0x, N'', @p5
			WHERE NOT EXISTS (SELECT 1 FROM dbo.idempotency_keys WITH (UPDLOCK, HOLDLOCK)
				WHERE caller = @p1 AND [key] = @p2 AND scope = @p3)`,
	}
	lookupSQL = map[sqlstore.Dialect]string{
		sqlstore.Postgres: `SELECT request_hash, status_code, response_body, headers, created_at FROM idempotency_keys
			WHERE caller = $1 AND key = $2 AND scope = $3`,
		sqlstore.SQLServer: `SELECT request_hash, status_code, response_body, headers, created_at FROM dbo.idempotency_keys
			WHERE caller = @p1 AND [key] = @p2 AND scope = @p3`,
	}
	completeSQL = map[sqlstore.Dialect]string{
		sqlstore.Postgres: `UPDATE idempotency_keys SET status_code = $4, response_body = $5, headers = $6
			WHERE caller = $1 AND key = $2 AND scope = $3 AND status_code = 0`,
		sqlstore.SQLServer: `UPDATE dbo.idempotency_keys SET status_code = @p4, response_body = @p5, headers = @p6
			WHERE caller = @p1 AND [key] = @p2 AND scope = @p3 AND status_code = 0`,
	}
)
