package authz

// pgClientCols, pgCodeCols and pgRefreshCols are clientColumns, codeColumns and refreshColumns
// (statements.go) in PostgreSQL.
const (
	pgClientCols = `tenant_id::text, client_id::text, name, client_type, redirect_uris::text, post_logout_redirect_uris::text,
		grant_types::text, scopes::text, first_party, platform_admin, secret_hash, secret_rotated_at, version,
		created_at, updated_at, deleted_at`
	pgCodeCols    = `code_hash, auth_request_id, client_id::text, subject, request::text, family_id::text, created_at, expires_at, redeemed_at`
	pgRefreshCols = `token_id::text, family_id::text, client_id::text, subject, scopes::text, audience::text, amr::text,
		auth_time, created_at, expires_at, consumed_at, COALESCE(replaced_by::text, ''), revoked_at`
)

// pgStatements is the whole of what the authz service asks of PostgreSQL.
var pgStatements = statements{
	insertClient: `INSERT INTO clients (tenant_id, client_id, name, client_type, redirect_uris, post_logout_redirect_uris,
			grant_types, scopes, first_party, platform_admin, secret_hash, secret_rotated_at, version, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
	insertDirectory: `INSERT INTO client_directory (client_id, tenant_id) VALUES ($1, $2)`,
	directoryTenant: `SELECT tenant_id::text FROM client_directory WHERE client_id = $1`,
	client:          `SELECT ` + pgClientCols + ` FROM clients WHERE tenant_id = $1 AND client_id = $2 AND deleted_at IS NULL`,
	lockClient: `SELECT ` + pgClientCols + ` FROM clients WHERE tenant_id = $1 AND client_id = $2 AND deleted_at IS NULL
		FOR UPDATE`,
	listClients: `SELECT ` + pgClientCols + ` FROM clients
		WHERE tenant_id = $1 AND client_id > $2::uuid AND deleted_at IS NULL
		ORDER BY client_id LIMIT $3`,
	updateClient: `UPDATE clients SET name = $3, redirect_uris = $4, post_logout_redirect_uris = $5, grant_types = $6,
			scopes = $7, first_party = $8, platform_admin = $9, secret_hash = $10, secret_rotated_at = $11, version = $12,
			updated_at = $13, deleted_at = $14
		WHERE tenant_id = $1 AND client_id = $2`,
	revokeClientTokens: `UPDATE refresh_tokens SET revoked_at = $3
		WHERE tenant_id = $1 AND client_id = $2 AND revoked_at IS NULL`,

	insertCode: `INSERT INTO auth_codes (tenant_id, code_hash, auth_request_id, client_id, subject, request, family_id,
			created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
	redeemCode: `UPDATE auth_codes SET redeemed_at = $3
		WHERE tenant_id = $1 AND code_hash = $2 AND redeemed_at IS NULL AND expires_at > $3
		RETURNING ` + pgCodeCols,
	codeByHash:     `SELECT ` + pgCodeCols + ` FROM auth_codes WHERE tenant_id = $1 AND code_hash = $2`,
	markCodeReused: `UPDATE auth_codes SET reused_at = $3 WHERE tenant_id = $1 AND code_hash = $2`,
	// FOR SHARE conflicts with markCodeReused's row lock (FOR NO KEY UPDATE), not with others'
	// FOR SHARE: refresh tokens of one family may be created side by side.
	lockCodeFamily: `SELECT CASE WHEN reused_at IS NULL THEN 0 ELSE 1 END FROM auth_codes
		WHERE tenant_id = $1 AND family_id = $2 FOR SHARE`,

	insertRefreshToken: `INSERT INTO refresh_tokens (tenant_id, token_id, token_hash, family_id, client_id, subject, scopes,
			audience, auth_time, amr, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
	refreshTokenByHash: `SELECT ` + pgRefreshCols + ` FROM refresh_tokens WHERE tenant_id = $1 AND token_hash = $2`,
	// In READ COMMITTED a second consumer blocks on the row lock, then re-checks the WHERE on the
	// committed row (consumed) and updates nothing.
	consumeRefreshToken: `UPDATE refresh_tokens SET consumed_at = $4, replaced_by = $5
		WHERE tenant_id = $1 AND token_hash = $2 AND client_id = $3::uuid
			AND consumed_at IS NULL AND revoked_at IS NULL AND expires_at > $4
		RETURNING ` + pgRefreshCols,
	revokeSubjectTokens: `UPDATE refresh_tokens SET revoked_at = $3
		WHERE tenant_id = $1 AND subject = $2 AND revoked_at IS NULL`,
	revokeTenantTokens: `UPDATE refresh_tokens SET revoked_at = $2 WHERE tenant_id = $1 AND revoked_at IS NULL`,
	revokeFamily: `UPDATE refresh_tokens SET revoked_at = $3
		WHERE tenant_id = $1 AND family_id = $2 AND revoked_at IS NULL`,
	subjectFamilies: `SELECT DISTINCT family_id::text FROM refresh_tokens
		WHERE tenant_id = $1 AND subject = $2 AND expires_at > $3`,
	familyRevoked: `SELECT 1 WHERE
		EXISTS (SELECT 1 FROM refresh_tokens WHERE tenant_id = $1 AND family_id = $2 AND revoked_at IS NOT NULL)
		OR EXISTS (SELECT 1 FROM auth_codes WHERE tenant_id = $1 AND family_id = $2 AND reused_at IS NOT NULL)`,

	insertRevokedToken: `INSERT INTO revoked_tokens (tenant_id, jti, client_id, expires_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT DO NOTHING`,
	revokedToken: `SELECT 1 FROM revoked_tokens WHERE tenant_id = $1 AND jti = $2`,

	consent:     `SELECT scopes::text FROM consents WHERE tenant_id = $1 AND subject = $2 AND client_id = $3`,
	lockConsent: `SELECT scopes::text FROM consents WHERE tenant_id = $1 AND subject = $2 AND client_id = $3 FOR UPDATE`,
	// FOR UPDATE of a missing row locks nothing, so two first grants can both insert: ON CONFLICT
	// makes the second wait and merge its scopes into the first's, in order, without duplicates.
	upsertConsent: `INSERT INTO consents (tenant_id, subject, client_id, scopes, granted_at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (tenant_id, subject, client_id) DO UPDATE SET granted_at = EXCLUDED.granted_at,
			scopes = (SELECT COALESCE(jsonb_agg(DISTINCT s ORDER BY s), '[]'::jsonb)
				FROM jsonb_array_elements_text(consents.scopes || EXCLUDED.scopes) AS s)`,

	// Row comparisons follow the pruning indexes (auth_codes_expires, ...): a next is an index
	// range scan of at most limit entries, a delete an index range.
	pruneCodesNext: `SELECT expires_at, tenant_id::text, code_hash FROM auth_codes
		WHERE expires_at < $1 AND (expires_at, tenant_id, code_hash) > ($2, $3::uuid, $4)
		ORDER BY expires_at, tenant_id, code_hash LIMIT $5`,
	pruneCodes: `DELETE FROM auth_codes
		WHERE expires_at < $1 AND (expires_at, tenant_id, code_hash) >= ($2, $3::uuid, $4)
			AND (expires_at, tenant_id, code_hash) <= ($5, $6::uuid, $7)`,
	pruneRefreshNext: `SELECT expires_at, tenant_id::text, token_id::text FROM refresh_tokens
		WHERE expires_at < $1 AND (expires_at, tenant_id, token_id) > ($2, $3::uuid, $4::uuid)
		ORDER BY expires_at, tenant_id, token_id LIMIT $5`,
	pruneRefresh: `DELETE FROM refresh_tokens
		WHERE expires_at < $1 AND (expires_at, tenant_id, token_id) >= ($2, $3::uuid, $4::uuid)
			AND (expires_at, tenant_id, token_id) <= ($5, $6::uuid, $7::uuid)`,
	pruneRevokedNext: `SELECT expires_at, tenant_id::text, jti::text FROM revoked_tokens
		WHERE expires_at < $1 AND (expires_at, tenant_id, jti) > ($2, $3::uuid, $4::uuid)
		ORDER BY expires_at, tenant_id, jti LIMIT $5`,
	pruneRevoked: `DELETE FROM revoked_tokens
		WHERE expires_at < $1 AND (expires_at, tenant_id, jti) >= ($2, $3::uuid, $4::uuid)
			AND (expires_at, tenant_id, jti) <= ($5, $6::uuid, $7::uuid)`,
}
