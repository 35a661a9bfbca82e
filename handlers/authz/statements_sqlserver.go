package authz

// Azure SQL (SQL Server): the same statements as statements_postgres.go, in T-SQL. Written and
// reviewed; not run on these machines (no SQL Server): TestSQLServerQueries checks them without a
// server, TestSQLServerStore_Conformance runs them where SPINE_TEST_SQLSERVER_URL names one.
//
// Driver facts these statements rely on (go-mssqldb):
//   - Parameters are @p1..@pN. Go strings travel as nvarchar and ints as bigint; SQL Server
//     converts them implicitly (nvarchar → uniqueidentifier keeps index seeks, since
//     uniqueidentifier has the higher type precedence). []byte travels as varbinary, a nil one as
//     NULL.
//   - A uniqueidentifier read back raw arrives as bytes in SQL Server's mixed-endian order, so ids
//     are always read as LOWER(CONVERT(char(36), ...)) or through client_key.
//   - time.Time travels as datetimeoffset(7). Converted into a datetime2(6) column it keeps its
//     clock reading and drops the offset, which is why the store passes every time in UTC.
//   - SELECT ... FOR UPDATE is WITH (UPDLOCK, ROWLOCK, HOLDLOCK); FOR SHARE is WITH (HOLDLOCK,
//     ROWLOCK): a shared lock kept to the end of the transaction, which an UPDATE's exclusive
//     lock waits for.
//   - UPDATE ... RETURNING is OUTPUT (no trigger on these tables, so OUTPUT needs no INTO);
//     OUTPUT deleted.* gives the row as it was, inserted.* as it is.
//   - Row comparisons do not exist: the pruning keyset (expires_at, tenant_id, key) > (a, b, c) is
//     spelt out, with a leading expires_at >= a so the index is sought. uniqueidentifier compares
//     in SQL Server's own order, the same order the index and ORDER BY use, so the keyset holds.

// msClientCols, msCodeCols and msRefreshCols are clientColumns, codeColumns and refreshColumns
// (statements.go) in T-SQL; prefix is the table alias or OUTPUT pseudo-table with its dot.
const (
	msClientCols = `LOWER(CONVERT(char(36), tenant_id)), client_key, name, client_type, redirect_uris, post_logout_redirect_uris,
		grant_types, scopes, first_party, platform_admin, secret_hash, secret_rotated_at, version, created_at, updated_at, deleted_at`
	msCodeCols = `code_hash, auth_request_id, LOWER(CONVERT(char(36), client_id)), subject, request,
		LOWER(CONVERT(char(36), family_id)), created_at, expires_at, redeemed_at`
	msCodeOutput = `deleted.code_hash, deleted.auth_request_id, LOWER(CONVERT(char(36), deleted.client_id)), deleted.subject,
		deleted.request, LOWER(CONVERT(char(36), deleted.family_id)), deleted.created_at, deleted.expires_at, inserted.redeemed_at`
	msRefreshCols = `LOWER(CONVERT(char(36), token_id)), LOWER(CONVERT(char(36), family_id)), LOWER(CONVERT(char(36), client_id)),
		subject, scopes, audience, amr, auth_time, created_at, expires_at, consumed_at,
		COALESCE(LOWER(CONVERT(char(36), replaced_by)), ''), revoked_at`
	msRefreshOutput = `LOWER(CONVERT(char(36), deleted.token_id)), LOWER(CONVERT(char(36), deleted.family_id)),
		LOWER(CONVERT(char(36), deleted.client_id)), deleted.subject, deleted.scopes, deleted.audience, deleted.amr,
		deleted.auth_time, deleted.created_at, deleted.expires_at, deleted.consumed_at,
		COALESCE(LOWER(CONVERT(char(36), deleted.replaced_by)), ''), deleted.revoked_at`
)

// msStatements is the whole of what the authz service asks of Azure SQL.
var msStatements = statements{
	insertClient: `INSERT INTO dbo.clients (tenant_id, client_id, name, client_type, redirect_uris, post_logout_redirect_uris,
			grant_types, scopes, first_party, platform_admin, secret_hash, secret_rotated_at, version, created_at, updated_at)
		VALUES (@p1, @p2, @p3, @p4, @p5, @p6, @p7, @p8, @p9, @p10, @p11, @p12, @p13, @p14, @p15)`,
	insertDirectory: `INSERT INTO dbo.client_directory (client_id, tenant_id) VALUES (@p1, @p2)`,
	directoryTenant: `SELECT LOWER(CONVERT(char(36), tenant_id)) FROM dbo.client_directory WHERE client_id = @p1`,
	client:          `SELECT ` + msClientCols + ` FROM dbo.clients WHERE tenant_id = @p1 AND client_id = @p2 AND deleted_at IS NULL`,
	lockClient: `SELECT ` + msClientCols + ` FROM dbo.clients WITH (UPDLOCK, ROWLOCK, HOLDLOCK)
		WHERE tenant_id = @p1 AND client_id = @p2 AND deleted_at IS NULL`,
	// Pages on client_key (see the migration): the text order is PostgreSQL's uuid order. TOP
	// rather than OFFSET/FETCH (FETCH NEXT 0 ROWS is an error where LIMIT 0 returns nothing).
	listClients: `SELECT TOP (@p3) ` + msClientCols + ` FROM dbo.clients
		WHERE tenant_id = @p1 AND client_key > CAST(@p2 AS char(36)) AND deleted_at IS NULL
		ORDER BY client_key`,
	updateClient: `UPDATE dbo.clients SET name = @p3, redirect_uris = @p4, post_logout_redirect_uris = @p5, grant_types = @p6,
			scopes = @p7, first_party = @p8, platform_admin = @p9, secret_hash = @p10, secret_rotated_at = @p11, version = @p12,
			updated_at = @p13, deleted_at = @p14
		WHERE tenant_id = @p1 AND client_id = @p2`,
	revokeClientTokens: `UPDATE dbo.refresh_tokens SET revoked_at = @p3
		WHERE tenant_id = @p1 AND client_id = @p2 AND revoked_at IS NULL`,

	insertCode: `INSERT INTO dbo.auth_codes (tenant_id, code_hash, auth_request_id, client_id, subject, request, family_id,
			created_at, expires_at)
		VALUES (@p1, @p2, @p3, @p4, @p5, @p6, @p7, @p8, @p9)`,
	redeemCode: `UPDATE dbo.auth_codes SET redeemed_at = @p3
		OUTPUT ` + msCodeOutput + `
		WHERE tenant_id = @p1 AND code_hash = @p2 AND redeemed_at IS NULL AND expires_at > @p3`,
	codeByHash:     `SELECT ` + msCodeCols + ` FROM dbo.auth_codes WHERE tenant_id = @p1 AND code_hash = @p2`,
	markCodeReused: `UPDATE dbo.auth_codes SET reused_at = @p3 WHERE tenant_id = @p1 AND code_hash = @p2`,
	lockCodeFamily: `SELECT CASE WHEN reused_at IS NULL THEN 0 ELSE 1 END FROM dbo.auth_codes WITH (HOLDLOCK, ROWLOCK)
		WHERE tenant_id = @p1 AND family_id = @p2`,

	insertRefreshToken: `INSERT INTO dbo.refresh_tokens (tenant_id, token_id, token_hash, family_id, client_id, subject, scopes,
			audience, auth_time, amr, created_at, expires_at)
		VALUES (@p1, @p2, @p3, @p4, @p5, @p6, @p7, @p8, @p9, @p10, @p11, @p12)`,
	refreshTokenByHash: `SELECT ` + msRefreshCols + ` FROM dbo.refresh_tokens WHERE tenant_id = @p1 AND token_hash = @p2`,
	// The UPDATE's own lock makes a concurrent consumer wait, then re-read the committed row
	// (consumed) and update nothing.
	consumeRefreshToken: `UPDATE dbo.refresh_tokens SET consumed_at = @p4, replaced_by = @p5
		OUTPUT ` + msRefreshOutput + `
		WHERE tenant_id = @p1 AND token_hash = @p2 AND client_id = @p3
			AND consumed_at IS NULL AND revoked_at IS NULL AND expires_at > @p4`,
	revokeSubjectTokens: `UPDATE dbo.refresh_tokens SET revoked_at = @p3
		WHERE tenant_id = @p1 AND subject = @p2 AND revoked_at IS NULL`,
	revokeTenantTokens: `UPDATE dbo.refresh_tokens SET revoked_at = @p2 WHERE tenant_id = @p1 AND revoked_at IS NULL`,
	revokeFamily: `UPDATE dbo.refresh_tokens SET revoked_at = @p3
		WHERE tenant_id = @p1 AND family_id = @p2 AND revoked_at IS NULL`,
	subjectFamilies: `SELECT DISTINCT LOWER(CONVERT(char(36), family_id)) FROM dbo.refresh_tokens
		WHERE tenant_id = @p1 AND subject = @p2 AND expires_at > @p3`,
	familyRevoked: `SELECT 1 WHERE
		EXISTS (SELECT 1 FROM dbo.refresh_tokens WHERE tenant_id = @p1 AND family_id = @p2 AND revoked_at IS NOT NULL)
		OR EXISTS (SELECT 1 FROM dbo.auth_codes WHERE tenant_id = @p1 AND family_id = @p2 AND reused_at IS NOT NULL)`,

	// PostgreSQL's ON CONFLICT DO NOTHING: UPDLOCK+HOLDLOCK range-locks the slot, so a concurrent
	// revocation of the same jti waits and then inserts nothing.
	insertRevokedToken: `INSERT INTO dbo.revoked_tokens (tenant_id, jti, client_id, expires_at)
		SELECT @p1, @p2, @p3, @p4
		WHERE NOT EXISTS (SELECT 1 FROM dbo.revoked_tokens WITH (UPDLOCK, HOLDLOCK) WHERE tenant_id = @p1 AND jti = @p2)`,
	revokedToken: `SELECT 1 FROM dbo.revoked_tokens WHERE tenant_id = @p1 AND jti = @p2`,

	consent: `SELECT scopes FROM dbo.consents WHERE tenant_id = @p1 AND subject = @p2 AND client_id = @p3`,
	// HOLDLOCK keeps the key's range locked when there is no row, so two first grants serialize
	// here and the second reads the first's scopes.
	lockConsent: `SELECT scopes FROM dbo.consents WITH (UPDLOCK, ROWLOCK, HOLDLOCK)
		WHERE tenant_id = @p1 AND subject = @p2 AND client_id = @p3`,
	// The store passed the union of the locked row's scopes and the new ones (lockConsent
	// serializes concurrent grants), so the row takes them as they are.
	upsertConsent: `IF EXISTS (SELECT 1 FROM dbo.consents WITH (UPDLOCK, HOLDLOCK) WHERE tenant_id = @p1 AND subject = @p2 AND client_id = @p3)
			UPDATE dbo.consents SET scopes = @p4, granted_at = @p5 WHERE tenant_id = @p1 AND subject = @p2 AND client_id = @p3
		ELSE
			INSERT INTO dbo.consents (tenant_id, subject, client_id, scopes, granted_at) VALUES (@p1, @p2, @p3, @p4, @p5);`,

	pruneCodesNext: `SELECT TOP (@p5) expires_at, LOWER(CONVERT(char(36), tenant_id)), code_hash FROM dbo.auth_codes
		WHERE expires_at < @p1 AND expires_at >= @p2
			AND (expires_at > @p2 OR tenant_id > @p3 OR (tenant_id = @p3 AND code_hash > @p4))
		ORDER BY expires_at, tenant_id, code_hash`,
	pruneCodes: `DELETE FROM dbo.auth_codes
		WHERE expires_at < @p1 AND expires_at >= @p2 AND expires_at <= @p5
			AND (expires_at > @p2 OR tenant_id > @p3 OR (tenant_id = @p3 AND code_hash >= @p4))
			AND (expires_at < @p5 OR tenant_id < @p6 OR (tenant_id = @p6 AND code_hash <= @p7))`,
	pruneRefreshNext: `SELECT TOP (@p5) expires_at, LOWER(CONVERT(char(36), tenant_id)), LOWER(CONVERT(char(36), token_id)) FROM dbo.refresh_tokens
		WHERE expires_at < @p1 AND expires_at >= @p2
			AND (expires_at > @p2 OR tenant_id > @p3 OR (tenant_id = @p3 AND token_id > @p4))
		ORDER BY expires_at, tenant_id, token_id`,
	pruneRefresh: `DELETE FROM dbo.refresh_tokens
		WHERE expires_at < @p1 AND expires_at >= @p2 AND expires_at <= @p5
			AND (expires_at > @p2 OR tenant_id > @p3 OR (tenant_id = @p3 AND token_id >= @p4))
			AND (expires_at < @p5 OR tenant_id < @p6 OR (tenant_id = @p6 AND token_id <= @p7))`,
	pruneRevokedNext: `SELECT TOP (@p5) expires_at, LOWER(CONVERT(char(36), tenant_id)), LOWER(CONVERT(char(36), jti)) FROM dbo.revoked_tokens
		WHERE expires_at < @p1 AND expires_at >= @p2
			AND (expires_at > @p2 OR tenant_id > @p3 OR (tenant_id = @p3 AND jti > @p4))
		ORDER BY expires_at, tenant_id, jti`,
	pruneRevoked: `DELETE FROM dbo.revoked_tokens
		WHERE expires_at < @p1 AND expires_at >= @p2 AND expires_at <= @p5
			AND (expires_at > @p2 OR tenant_id > @p3 OR (tenant_id = @p3 AND jti >= @p4))
			AND (expires_at < @p5 OR tenant_id < @p6 OR (tenant_id = @p6 AND jti <= @p7))`,
}
