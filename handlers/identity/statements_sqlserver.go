package identity

// Azure SQL (SQL Server): the same statements as statements_postgres.go, in T-SQL. Written and
// reviewed; not run on these machines (no SQL Server): TestSQLServerQueries checks them without a
// server, TestSQLServerStore_Conformance runs them where SPINE_TEST_SQLSERVER_URL names one.
//
// Driver facts these statements rely on (go-mssqldb):
//   - Parameters are @p1..@pN. Go strings travel as nvarchar and ints as bigint; SQL Server
//     converts them implicitly (nvarchar → uniqueidentifier keeps index seeks, since
//     uniqueidentifier has the higher type precedence).
//   - A uniqueidentifier read back raw arrives as bytes in SQL Server's mixed-endian order, so
//     ids are always read through the persisted canonical text columns (user_key,
//     invitation_key, role_key) or LOWER(CONVERT(char(36), ...)).
//   - time.Time travels as datetimeoffset(7). Converted into a datetime2(6) column it keeps its
//     clock reading and drops the offset, which is why the store passes every time in UTC.
//   - SELECT ... FOR UPDATE is WITH (UPDLOCK, ROWLOCK, HOLDLOCK): concurrent writers of the row
//     queue (readers are not blocked), and for a key that has no row yet the range stays locked,
//     so two invitations of one new e-mail address serialize.

// msUserCols, msInvitationCols and msRoleCols are userColumns, invitationColumns and roleColumns
// (statements.go) in T-SQL.
const (
	msUserCols       = `user_key, email, display_name, status, version, created_at, updated_at, activated_at, last_login_at`
	msInvitationCols = `invitation_key, LOWER(CONVERT(char(36), user_id)), token_hash, invited_by, created_at, expires_at, accepted_at, revoked_at`
	msRoleCols       = `role_key, code, name, is_system, version, created_at, updated_at`
)

// msStatements is the whole of what the identity service asks of Azure SQL.
var msStatements = statements{
	userByID:        `SELECT ` + msUserCols + ` FROM dbo.users WHERE tenant_id = @p1 AND user_id = @p2`,
	lockUser:        `SELECT ` + msUserCols + ` FROM dbo.users WITH (UPDLOCK, ROWLOCK, HOLDLOCK) WHERE tenant_id = @p1 AND user_id = @p2`,
	lockUserByEmail: `SELECT ` + msUserCols + ` FROM dbo.users WITH (UPDLOCK, ROWLOCK, HOLDLOCK) WHERE tenant_id = @p1 AND email_key = @p2`,
	userByEmail:     `SELECT ` + msUserCols + ` FROM dbo.users WHERE tenant_id = @p1 AND email_key = @p2`,
	// PostgreSQL's UPDATE ... RETURNING (users has no trigger, so OUTPUT needs no INTO).
	disableLiveUsers: `UPDATE dbo.users SET status = 'Disabled', version = version + 1, updated_at = @p2
		OUTPUT inserted.user_key
		WHERE tenant_id = @p1 AND status IN ('Invited', 'Active')`,
	// PostgreSQL's ON CONFLICT (tenant_id, email_key) DO NOTHING (lockUserByEmail's HOLDLOCK has
	// the key's range locked already; this keeps the statement's own contract).
	insertUser: `INSERT INTO dbo.users (tenant_id, user_id, email, email_key, display_name, status, version, created_at, updated_at)
		SELECT @p1, @p2, @p3, @p4, @p5, @p6, @p7, @p8, @p9
		WHERE NOT EXISTS (SELECT 1 FROM dbo.users WITH (UPDLOCK, HOLDLOCK) WHERE tenant_id = @p1 AND email_key = @p4)`,
	updateUser: `UPDATE dbo.users SET display_name = @p3, status = @p4, version = @p5, updated_at = @p6, activated_at = @p7
		WHERE tenant_id = @p1 AND user_id = @p2`,
	touchLogin: `UPDATE dbo.users SET last_login_at = @p3 WHERE tenant_id = @p1 AND user_id = @p2`,
	// Pages on user_key (see the migration); TOP rather than OFFSET/FETCH (FETCH NEXT 0 ROWS is an
	// error where LIMIT 0 returns nothing).
	listUsers: `SELECT TOP (@p5) ` + msUserCols + ` FROM dbo.users
		WHERE tenant_id = @p1 AND user_key > CAST(@p2 AS char(36)) AND (@p3 = N'' OR status = @p3) AND (@p4 = N'' OR email_key = @p4)
		ORDER BY user_key`,
	userRoles: `SELECT LOWER(CONVERT(char(36), role_id)) AS role_text FROM dbo.role_assignments
		WHERE tenant_id = @p1 AND user_id = @p2 ORDER BY role_text`,

	// PostgreSQL's INSERT ... ON CONFLICT DO UPDATE; UPDLOCK+HOLDLOCK keeps the key's slot locked
	// between the test and the write (the user's row is locked by the caller anyway).
	upsertCredential: `IF EXISTS (SELECT 1 FROM dbo.user_credentials WITH (UPDLOCK, HOLDLOCK) WHERE tenant_id = @p1 AND user_id = @p2)
			UPDATE dbo.user_credentials SET password_hash = @p3, updated_at = @p4 WHERE tenant_id = @p1 AND user_id = @p2
		ELSE
			INSERT INTO dbo.user_credentials (tenant_id, user_id, password_hash, updated_at) VALUES (@p1, @p2, @p3, @p4);`,
	credential: `SELECT password_hash FROM dbo.user_credentials WHERE tenant_id = @p1 AND user_id = @p2`,

	insertInvitation: `INSERT INTO dbo.invitations (tenant_id, invitation_id, user_id, token_hash, invited_by, created_at, expires_at)
		VALUES (@p1, @p2, @p3, @p4, @p5, @p6, @p7)`,
	invitation:     `SELECT ` + msInvitationCols + ` FROM dbo.invitations WHERE tenant_id = @p1 AND invitation_id = @p2`,
	lockInvitation: `SELECT ` + msInvitationCols + ` FROM dbo.invitations WITH (UPDLOCK, ROWLOCK, HOLDLOCK) WHERE tenant_id = @p1 AND invitation_id = @p2`,
	endInvitation: `UPDATE dbo.invitations SET accepted_at = @p3, revoked_at = @p4
		WHERE tenant_id = @p1 AND invitation_id = @p2 AND accepted_at IS NULL AND revoked_at IS NULL`,
	revokeUserInvitations: `UPDATE dbo.invitations SET revoked_at = @p3
		WHERE tenant_id = @p1 AND user_id = @p2 AND accepted_at IS NULL AND revoked_at IS NULL`,
	revokeTenantInvitations: `UPDATE dbo.invitations SET revoked_at = @p2
		WHERE tenant_id = @p1 AND accepted_at IS NULL AND revoked_at IS NULL`,

	role:       `SELECT ` + msRoleCols + ` FROM dbo.roles WHERE tenant_id = @p1 AND role_id = @p2`,
	lockRole:   `SELECT ` + msRoleCols + ` FROM dbo.roles WITH (UPDLOCK, ROWLOCK, HOLDLOCK) WHERE tenant_id = @p1 AND role_id = @p2`,
	roleByCode: `SELECT ` + msRoleCols + ` FROM dbo.roles WHERE tenant_id = @p1 AND code = CAST(@p2 AS varchar(63))`,
	insertRole: `INSERT INTO dbo.roles (tenant_id, role_id, code, name, is_system, version, created_at, updated_at)
		VALUES (@p1, @p2, @p3, @p4, @p5, @p6, @p7, @p8)`,
	updateRole: `UPDATE dbo.roles SET name = @p3, version = @p4, updated_at = @p5 WHERE tenant_id = @p1 AND role_id = @p2`,
	deleteRole: `DELETE FROM dbo.roles WHERE tenant_id = @p1 AND role_id = @p2`,
	// STRING_AGG (SQL Server 2017+, Azure SQL) over varchar(max), so a long set cannot overflow.
	listRoles: `SELECT TOP (@p3) r.role_key, r.code, r.name, r.is_system, r.version, r.created_at, r.updated_at,
			COALESCE((SELECT STRING_AGG(CAST(rp.permission_code AS varchar(max)), ',') FROM dbo.role_permissions rp
				WHERE rp.tenant_id = r.tenant_id AND rp.role_id = r.role_id), '')
		FROM dbo.roles r WHERE r.tenant_id = @p1 AND r.role_key > CAST(@p2 AS char(36))
		ORDER BY r.role_key`,
	rolePermissions: `SELECT permission_code FROM dbo.role_permissions WHERE tenant_id = @p1 AND role_id = @p2
		ORDER BY permission_code`,
	insertRolePermission:  `INSERT INTO dbo.role_permissions (tenant_id, role_id, permission_code) VALUES (@p1, @p2, @p3)`,
	deleteRolePermission:  `DELETE FROM dbo.role_permissions WHERE tenant_id = @p1 AND role_id = @p2 AND permission_code = CAST(@p3 AS varchar(64))`,
	deleteRolePermissions: `DELETE FROM dbo.role_permissions WHERE tenant_id = @p1 AND role_id = @p2`,
	grantCatalog: `INSERT INTO dbo.role_permissions (tenant_id, role_id, permission_code)
		SELECT @p1, @p2, code FROM dbo.permissions`,
	roleHolders: `SELECT u.user_key FROM dbo.role_assignments ra
		JOIN dbo.users u ON u.tenant_id = ra.tenant_id AND u.user_id = ra.user_id
		WHERE ra.tenant_id = @p1 AND ra.role_id = @p2 ORDER BY u.user_key`,
	// PostgreSQL's ON CONFLICT DO NOTHING: UPDLOCK+HOLDLOCK range-locks the slot, so a
	// concurrent assignment of the same role waits and then inserts nothing.
	insertAssignment: `INSERT INTO dbo.role_assignments (tenant_id, role_id, user_id, assigned_by, assigned_at)
		SELECT @p1, @p2, @p3, @p4, @p5
		WHERE NOT EXISTS (SELECT 1 FROM dbo.role_assignments WITH (UPDLOCK, HOLDLOCK)
			WHERE tenant_id = @p1 AND role_id = @p2 AND user_id = @p3)`,
	deleteAssignment:      `DELETE FROM dbo.role_assignments WHERE tenant_id = @p1 AND role_id = @p2 AND user_id = @p3`,
	deleteRoleAssignments: `DELETE FROM dbo.role_assignments WHERE tenant_id = @p1 AND role_id = @p2`,

	effective: `SELECT DISTINCT rp.permission_code
		FROM dbo.users u
		JOIN dbo.role_assignments ra ON ra.tenant_id = u.tenant_id AND ra.user_id = u.user_id
		JOIN dbo.role_permissions rp ON rp.tenant_id = ra.tenant_id AND rp.role_id = ra.role_id
		WHERE u.tenant_id = @p1 AND u.user_id = @p2 AND u.status = 'Active'
		ORDER BY rp.permission_code`,
	catalog: `SELECT code, name, category FROM dbo.permissions ORDER BY code`,
}
