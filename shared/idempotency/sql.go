package idempotency

import "spine/shared/sqlstore"

// The statements over the platform schema's idempotency_keys table (shared/platform: 00001 and
// 00002), per engine. A claimed key whose response is not recorded yet has status_code 0. The
// package keeps its keys in the empty scope (the table's key is caller, key, scope): a key names one
// request of its caller, on whichever route, and the request hash (method, path, body) tells a
// reuse on another route from a repeat.
var (
	claimSQL = map[sqlstore.Dialect]string{
		sqlstore.Postgres: `INSERT INTO idempotency_keys (caller, key, scope, request_hash, status_code, response_body, headers, created_at)
			VALUES ($1, $2, '', $3, 0, ''::bytea, '', $4) ON CONFLICT DO NOTHING`,
		sqlstore.SQLServer: `INSERT INTO dbo.idempotency_keys (caller, [key], scope, request_hash, status_code, response_body, headers, created_at)
			SELECT @p1, @p2, '', @p3, 0, 0x, N'', @p4
			WHERE NOT EXISTS (SELECT 1 FROM dbo.idempotency_keys WITH (UPDLOCK, HOLDLOCK) WHERE caller = @p1 AND [key] = @p2 AND scope = '')`,
	}
	lookupSQL = map[sqlstore.Dialect]string{
		sqlstore.Postgres: `SELECT request_hash, status_code, response_body, headers FROM idempotency_keys
			WHERE caller = $1 AND key = $2 AND scope = ''`,
		sqlstore.SQLServer: `SELECT request_hash, status_code, response_body, headers FROM dbo.idempotency_keys
			WHERE caller = @p1 AND [key] = @p2 AND scope = ''`,
	}
	completeSQL = map[sqlstore.Dialect]string{
		sqlstore.Postgres: `UPDATE idempotency_keys SET status_code = $3, response_body = $4, headers = $5
			WHERE caller = $1 AND key = $2 AND scope = '' AND status_code = 0`,
		sqlstore.SQLServer: `UPDATE dbo.idempotency_keys SET status_code = @p3, response_body = @p4, headers = @p5
			WHERE caller = @p1 AND [key] = @p2 AND scope = '' AND status_code = 0`,
	}
)
