package identity

// statements is one engine's SQL for the identity store: every statement store.go sends, the same
// fields for each engine, so the store's Go is written once. The engines' sets are pgStatements
// (statements_postgres.go) and msStatements (statements_sqlserver.go); those files hold SQL only.
//
// Each field's comment gives its parameters, in order, and the columns it returns. Both engines
// take the same parameters in the same order, as Go passes them: times in UTC, ids as canonical
// lowercase text (the tenant first: every statement names its tenant, and row-level security
// checks it again), a nullable time as sql.NullTime. Statements that read a user return
// userColumns, an invitation invitationColumns, a role roleColumns. TestSQLServerQueries walks the
// struct (reflection) and checks every field against store.go's calls.
type statements struct {
	// userByID: tenant, user id → userColumns.
	userByID string
	// lockUser: tenant, user id → userColumns, locking the row until the transaction ends.
	lockUser string
	// lockUserByEmail: tenant, email key → userColumns, locking the row (and, where the engine
	// can, the key's slot) until the transaction ends.
	lockUserByEmail string
	// userByEmail: tenant, email key → userColumns.
	userByEmail string
	// disableLiveUsers: tenant, updated at → the user ids (canonical text) of every Invited or
	// Active user, which it sets Disabled (version + 1), in one statement.
	disableLiveUsers string
	// insertUser: tenant, user id, email, email key, display name, status, version, created at,
	// updated at. Inserts nothing (0 rows affected, no error) when the tenant has the email key
	// already, after waiting for a concurrent insert of it to commit or roll back.
	insertUser string
	// updateUser: tenant, user id, display name, status, version, updated at, activated at.
	updateUser string
	// touchLogin: tenant, user id, last login at.
	touchLogin string
	// listUsers: tenant, after (canonical id text; the zero UUID for the first page), status (""
	// for any), email key ("" for any), limit → userColumns of up to limit users with a greater id,
	// in id order.
	listUsers string
	// userRoles: tenant, user id → role ids of the user's assignments, in id order.
	userRoles string

	// upsertCredential: tenant, user id, password hash, updated at. Inserts or replaces.
	upsertCredential string
	// credential: tenant, user id → password hash.
	credential string

	// insertInvitation: tenant, invitation id, user id, token hash, invited by, created at,
	// expires at.
	insertInvitation string
	// invitation: tenant, invitation id → invitationColumns.
	invitation string
	// lockInvitation: tenant, invitation id → invitationColumns, locking the row.
	lockInvitation string
	// endInvitation: tenant, invitation id, accepted at (nullable), revoked at (nullable). Sets
	// one of the two on a pending invitation; 0 rows affected when it was not pending.
	endInvitation string
	// revokeUserInvitations: tenant, user id, revoked at. Revokes the user's pending invitations.
	revokeUserInvitations string
	// revokeTenantInvitations: tenant, revoked at. Revokes every pending invitation.
	revokeTenantInvitations string

	// role: tenant, role id → roleColumns.
	role string
	// lockRole: tenant, role id → roleColumns, locking the row.
	lockRole string
	// roleByCode: tenant, code → roleColumns.
	roleByCode string
	// insertRole: tenant, role id, code, name, is system, version, created at, updated at.
	insertRole string
	// updateRole: tenant, role id, name, version, updated at.
	updateRole string
	// deleteRole: tenant, role id.
	deleteRole string
	// listRoles: tenant, after (canonical id text; the zero UUID for the first page), limit →
	// roleColumns of up to limit roles with a greater id, in id order, each followed by its
	// permission codes joined with ',' in any order ('' for none; codes hold no ','): the page
	// and its permissions in one round trip.
	listRoles string
	// rolePermissions: tenant, role id → permission codes (the store sorts them in Go: an ORDER BY
	// follows the database's collation, which may ignore '.' and '-').
	rolePermissions string
	// insertRolePermission: tenant, role id, permission code.
	insertRolePermission string
	// deleteRolePermission: tenant, role id, permission code.
	deleteRolePermission string
	// deleteRolePermissions: tenant, role id. Every permission of the role.
	deleteRolePermissions string
	// grantCatalog: tenant, role id. Grants the role (holding none yet) every catalog permission.
	grantCatalog string
	// roleHolders: tenant, role id → user ids assigned the role, in id order.
	roleHolders string
	// insertAssignment: tenant, role id, user id, assigned by, assigned at. Inserts nothing (0
	// rows affected) when the user holds the role already.
	insertAssignment string
	// deleteAssignment: tenant, role id, user id.
	deleteAssignment string
	// deleteRoleAssignments: tenant, role id. Every assignment of the role.
	deleteRoleAssignments string

	// effective: tenant, user id → the distinct permission codes the user holds through its
	// roles, none unless the user is Active (the store sorts them in Go).
	effective string
	// catalog: → code, name, category of every catalog permission (the store sorts them by code
	// in Go).
	catalog string
}

// The column lists the scan functions read, in their order:
//
//	userColumns:       user id (canonical text), email, display name, status, version, created at,
//	                   updated at, activated at (nullable), last login at (nullable)
//	invitationColumns: invitation id, user id (canonical text), token hash, invited by, created at,
//	                   expires at, accepted at (nullable), revoked at (nullable)
//	roleColumns:       role id (canonical text), code, name, is system, version, created at,
//	                   updated at
