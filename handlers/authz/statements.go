package authz

// statements is one engine's SQL for the authz store: every statement sqlStore (store_sql.go)
// sends, the same fields for each engine, so the store's Go is written once. The engines' sets are
// pgStatements (statements_postgres.go) and msStatements (statements_sqlserver.go); those files
// hold SQL only.
//
// Each field's comment gives its parameters, in order, and the columns it returns. Both engines
// take the same parameters in the same order, as Go passes them: times in UTC, ids as canonical
// lowercase text (the tenant first wherever there is one: every tenant-owned statement names its
// tenant, and row-level security checks it again), hashes as bytes, lists as JSON array text, a
// nullable value as sql.Null* or a nil slice. Statements that read a client return clientColumns,
// a code codeColumns, a refresh token refreshColumns. TestSQLServerQueries walks the struct
// (reflection) and checks every field against store_sql.go's calls.
type statements struct {
	// insertClient: tenant, client id, name, client type, redirect URIs, post-logout redirect
	// URIs, grant types, scopes, first party, platform admin, secret hash (nullable), secret
	// rotated at (nullable), version, created at, updated at.
	insertClient string
	// insertDirectory: client id, tenant.
	insertDirectory string
	// directoryTenant: client id → the client's tenant (canonical text).
	directoryTenant string
	// client: tenant, client id → clientColumns of the live (not deleted) client.
	client string
	// lockClient: tenant, client id → clientColumns of the live client, locking the row until the
	// transaction ends.
	lockClient string
	// listClients: tenant, after (canonical id text; the zero UUID for the first page), limit →
	// clientColumns of up to limit live clients with a greater id, in id order.
	listClients string
	// updateClient: tenant, client id, name, redirect URIs, post-logout redirect URIs, grant
	// types, scopes, first party, platform admin, secret hash (nullable), secret rotated at
	// (nullable), version, updated at, deleted at (nullable).
	updateClient string
	// revokeClientTokens: tenant, client id, revoked at. Revokes every refresh token of the client
	// not revoked yet; rows affected is how many.
	revokeClientTokens string

	// insertCode: tenant, code hash, auth request id, client id, subject, request (JSON object
	// text), family id, created at, expires at.
	insertCode string
	// redeemCode: tenant, code hash, now → codeColumns of the code, which it marks redeemed at
	// now, when it was neither redeemed nor expired (no row otherwise).
	redeemCode string
	// codeByHash: tenant, code hash → codeColumns.
	codeByHash string
	// markCodeReused: tenant, code hash, now. Sets reused_at (after waiting for every
	// transaction that holds lockCodeFamily's lock on the row).
	markCodeReused string
	// lockCodeFamily: tenant, family id → for each code of the family, 1 when it was reused and 0
	// otherwise, holding a shared lock on the rows until the transaction ends (so markCodeReused
	// waits for the refresh token being created in the family, or this waits for the reuse).
	lockCodeFamily string

	// insertRefreshToken: tenant, token id, token hash, family id, client id, subject, scopes,
	// audience, auth time, amr, created at, expires at.
	insertRefreshToken string
	// refreshTokenByHash: tenant, token hash → refreshColumns.
	refreshTokenByHash string
	// consumeRefreshToken: tenant, token hash, client id, now, successor id → refreshColumns of the
	// token as it was, which it marks consumed at now and replaced by the successor, when the token
	// is the client's, not consumed, not revoked and not expired at now (no row otherwise). A
	// concurrent consumer of the same token waits for this one's transaction, then finds no row.
	consumeRefreshToken string
	// revokeSubjectTokens: tenant, subject, revoked at. Revokes every refresh token of the
	// subject not revoked yet; rows affected is how many.
	revokeSubjectTokens string
	// revokeTenantTokens: tenant, revoked at. Revokes every refresh token of the tenant not
	// revoked yet; rows affected is how many.
	revokeTenantTokens string
	// revokeFamily: tenant, family id, revoked at. Revokes every token of the family not revoked
	// yet; rows affected is how many (the store repeats it until none: see revokeFamily).
	revokeFamily string
	// subjectFamilies: tenant, subject, now → the family ids (canonical text, each once) of the
	// subject's refresh tokens unexpired at now: the families a subject's revocation ends.
	subjectFamilies string
	// familyRevoked: tenant, family id → one row (1) when a refresh token of the family is
	// revoked or a code of the family was reused (both through their (tenant_id, family_id)
	// index).
	familyRevoked string

	// insertRevokedToken: tenant, jti, client id, expires at. Inserts nothing (no error) when the
	// jti is recorded already.
	insertRevokedToken string
	// revokedToken: tenant, jti → one row (1) when the jti is recorded.
	revokedToken string

	// consent: tenant, subject, client id → the scopes (JSON array text), when there is a consent.
	consent string
	// lockConsent: tenant, subject, client id → the scopes (JSON array text), locking the row —
	// and where the engine can, the key's slot when there is no row — until the transaction ends.
	lockConsent string
	// upsertConsent: tenant, subject, client id, scopes (JSON array text), granted at. Inserts, or
	// sets the scopes to the union of the stored ones and these (a concurrent first grant is not
	// lost) and granted at.
	upsertConsent string

	// The AuthzTokenPrune sweep's statements (prune.go), in platform scope. Each pruned table has
	// two: its next — cutoff, after (expires at, tenant, key), limit → the keys (expires at, tenant
	// text, key) of the first limit expired rows (expires_at < cutoff) after `after` in the table's
	// index order (expires_at, tenant_id, key) — and its delete — cutoff, from (expires at, tenant,
	// key), to (expires at, tenant, key): deletes the expired rows from `from` through `to`
	// (inclusive), an index range; rows affected is how many.
	pruneCodesNext   string
	pruneCodes       string
	pruneRefreshNext string
	pruneRefresh     string
	pruneRevokedNext string
	pruneRevoked     string
}

// The column lists the scan functions read, in their order:
//
//	clientColumns:  tenant (canonical text), client id (canonical text), name, client type,
//	                redirect URIs, post-logout redirect URIs, grant types, scopes (JSON array
//	                text each), first party, platform admin, secret hash (nullable), secret
//	                rotated at (nullable), version, created at, updated at, deleted at (nullable)
//	codeColumns:    code hash, auth request id, client id (canonical text), subject, request
//	                (JSON object text), family id (canonical text), created at, expires at,
//	                redeemed at (nullable)
//	refreshColumns: token id (canonical text), family id (canonical text), client id (canonical
//	                text), subject, scopes, audience, amr (JSON array text each), auth time,
//	                created at, expires at, consumed at (nullable), replaced by (canonical text,
//	                '' for none), revoked at (nullable)
