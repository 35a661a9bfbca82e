package identity

// pgUserCols, pgInvitationCols and pgRoleCols are userColumns, invitationColumns and roleColumns
// (statements.go) in PostgreSQL.
const (
	pgUserCols       = `user_id::text, email, display_name, status, version, created_at, updated_at, activated_at, last_login_at`
	pgInvitationCols = `invitation_id::text, user_id::text, token_hash, invited_by, created_at, expires_at, accepted_at, revoked_at`
	pgRoleCols       = `role_id::text, code, name, is_system, version, created_at, updated_at`
)

// pgStatements is the whole of what the identity service asks of PostgreSQL.
var pgStatements = statements{
	userByID:        `SELECT ` + pgUserCols + ` FROM users WHERE tenant_id = $1 AND user_id = $2`,
	lockUser:        `SELECT ` + pgUserCols + ` FROM users WHERE tenant_id = $1 AND user_id = $2 FOR UPDATE`,
	lockUserByEmail: `SELECT ` + pgUserCols + ` FROM users WHERE tenant_id = $1 AND email_key = $2 FOR UPDATE`,
	userByEmail:     `SELECT ` + pgUserCols + ` FROM users WHERE tenant_id = $1 AND email_key = $2`,
	disableLiveUsers: `UPDATE users SET status = 'Disabled', version = version + 1, updated_at = $2
		WHERE tenant_id = $1 AND status IN ('Invited', 'Active') RETURNING user_id::text`,
	// FOR UPDATE of an address that has no row locks nothing, so two invitations of one new
	// address both get here; ON CONFLICT makes the second wait for the first and insert nothing
	// (a unique violation would abort its transaction), and the service then locks the row.
	insertUser: `INSERT INTO users (tenant_id, user_id, email, email_key, display_name, status, version, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (tenant_id, email_key) DO NOTHING`,
	updateUser: `UPDATE users SET display_name = $3, status = $4, version = $5, updated_at = $6, activated_at = $7
		WHERE tenant_id = $1 AND user_id = $2`,
	touchLogin: `UPDATE users SET last_login_at = $3 WHERE tenant_id = $1 AND user_id = $2`,
	listUsers: `SELECT ` + pgUserCols + ` FROM users
		WHERE tenant_id = $1 AND user_id > $2::uuid AND ($3 = '' OR status = $3) AND ($4 = '' OR email_key = $4)
		ORDER BY user_id LIMIT $5`,
	userRoles: `SELECT role_id::text FROM role_assignments WHERE tenant_id = $1 AND user_id = $2 ORDER BY role_id`,

	upsertCredential: `INSERT INTO user_credentials (tenant_id, user_id, password_hash, updated_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (tenant_id, user_id) DO UPDATE SET password_hash = EXCLUDED.password_hash, updated_at = EXCLUDED.updated_at`,
	credential: `SELECT password_hash FROM user_credentials WHERE tenant_id = $1 AND user_id = $2`,

	insertInvitation: `INSERT INTO invitations (tenant_id, invitation_id, user_id, token_hash, invited_by, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`,
	invitation:     `SELECT ` + pgInvitationCols + ` FROM invitations WHERE tenant_id = $1 AND invitation_id = $2`,
	lockInvitation: `SELECT ` + pgInvitationCols + ` FROM invitations WHERE tenant_id = $1 AND invitation_id = $2 FOR UPDATE`,
	endInvitation: `UPDATE invitations SET accepted_at = $3, revoked_at = $4
		WHERE tenant_id = $1 AND invitation_id = $2 AND accepted_at IS NULL AND revoked_at IS NULL`,
	revokeUserInvitations: `UPDATE invitations SET revoked_at = $3
		WHERE tenant_id = $1 AND user_id = $2 AND accepted_at IS NULL AND revoked_at IS NULL`,
	revokeTenantInvitations: `UPDATE invitations SET revoked_at = $2
		WHERE tenant_id = $1 AND accepted_at IS NULL AND revoked_at IS NULL`,

	role:       `SELECT ` + pgRoleCols + ` FROM roles WHERE tenant_id = $1 AND role_id = $2`,
	lockRole:   `SELECT ` + pgRoleCols + ` FROM roles WHERE tenant_id = $1 AND role_id = $2 FOR UPDATE`,
	roleByCode: `SELECT ` + pgRoleCols + ` FROM roles WHERE tenant_id = $1 AND code = $2`,
	insertRole: `INSERT INTO roles (tenant_id, role_id, code, name, is_system, version, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
	updateRole: `UPDATE roles SET name = $3, version = $4, updated_at = $5 WHERE tenant_id = $1 AND role_id = $2`,
	deleteRole: `DELETE FROM roles WHERE tenant_id = $1 AND role_id = $2`,
	// One statement for the page, its permissions aggregated per role (role_permissions_pkey).
	listRoles: `SELECT r.role_id::text, r.code, r.name, r.is_system, r.version, r.created_at, r.updated_at,
			COALESCE((SELECT string_agg(rp.permission_code, ',') FROM role_permissions rp
				WHERE rp.tenant_id = r.tenant_id AND rp.role_id = r.role_id), '')
		FROM roles r WHERE r.tenant_id = $1 AND r.role_id > $2::uuid
		ORDER BY r.role_id LIMIT $3`,
	rolePermissions: `SELECT permission_code FROM role_permissions WHERE tenant_id = $1 AND role_id = $2
		ORDER BY permission_code`,
	insertRolePermission:  `INSERT INTO role_permissions (tenant_id, role_id, permission_code) VALUES ($1, $2, $3)`,
	deleteRolePermission:  `DELETE FROM role_permissions WHERE tenant_id = $1 AND role_id = $2 AND permission_code = $3`,
	deleteRolePermissions: `DELETE FROM role_permissions WHERE tenant_id = $1 AND role_id = $2`,
	grantCatalog: `INSERT INTO role_permissions (tenant_id, role_id, permission_code)
		SELECT $1, $2, code FROM permissions`,
	roleHolders: `SELECT user_id::text FROM role_assignments WHERE tenant_id = $1 AND role_id = $2
		ORDER BY user_id`,
	insertAssignment: `INSERT INTO role_assignments (tenant_id, role_id, user_id, assigned_by, assigned_at)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`,
	deleteAssignment:      `DELETE FROM role_assignments WHERE tenant_id = $1 AND role_id = $2 AND user_id = $3`,
	deleteRoleAssignments: `DELETE FROM role_assignments WHERE tenant_id = $1 AND role_id = $2`,

	// Index role_assignments_user finds the user's roles, role_permissions_pkey their permissions.
	effective: `SELECT DISTINCT rp.permission_code
		FROM users u
		JOIN role_assignments ra ON ra.tenant_id = u.tenant_id AND ra.user_id = u.user_id
		JOIN role_permissions rp ON rp.tenant_id = ra.tenant_id AND rp.role_id = ra.role_id
		WHERE u.tenant_id = $1 AND u.user_id = $2 AND u.status = 'Active'
		ORDER BY rp.permission_code`,
	catalog: `SELECT code, name, category FROM permissions ORDER BY code`,
}
