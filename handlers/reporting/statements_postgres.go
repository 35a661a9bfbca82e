package reporting

const (
	pgReportCols = `report_id::text, name, source, parameters::text, format, created_by, version, created_at, updated_at`
	pgRunCols    = `run_id::text, report_id::text, status, source, format, parameters::text, requested_by, attempts, lease_until,
		row_count, blob_name, sha256, size_bytes, error_class, created_at, started_at, finished_at, expires_at, expired_at`
)

// pgStatements is the whole of what the reporting service asks of PostgreSQL.
var pgStatements = statements{
	insertReport: `INSERT INTO report_definitions (tenant_id, report_id, name, source, parameters, format, created_by, version, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9, $9)`,
	report:      `SELECT ` + pgReportCols + ` FROM report_definitions WHERE tenant_id = $1 AND report_id = $2 AND deleted_at IS NULL`,
	lockReport:  `SELECT ` + pgReportCols + ` FROM report_definitions WHERE tenant_id = $1 AND report_id = $2 AND deleted_at IS NULL FOR UPDATE`,
	listReports: `SELECT ` + pgReportCols + ` FROM report_definitions WHERE tenant_id = $1 AND report_id > $2::uuid AND deleted_at IS NULL ORDER BY report_id LIMIT $3`,
	updateReport: `UPDATE report_definitions SET name = $3, parameters = $4::jsonb, format = $5, version = $6, updated_at = $7
		WHERE tenant_id = $1 AND report_id = $2 AND deleted_at IS NULL`,
	deleteReport: `UPDATE report_definitions SET deleted_at = $3 WHERE tenant_id = $1 AND report_id = $2 AND deleted_at IS NULL`,

	insertRun: `INSERT INTO report_runs (tenant_id, run_id, report_id, status, source, format, parameters, requested_by, attempts, created_at)
		VALUES ($1, $2, $3, 'Queued', $4, $5, $6::jsonb, $7, 0, $8)`,
	run:      `SELECT ` + pgRunCols + ` FROM report_runs WHERE tenant_id = $1 AND run_id = $2`,
	lockRun:  `SELECT ` + pgRunCols + ` FROM report_runs WHERE tenant_id = $1 AND run_id = $2 FOR UPDATE`,
	listRuns: `SELECT ` + pgRunCols + ` FROM report_runs WHERE tenant_id = $1 AND report_id = $2 AND run_id < $3::uuid ORDER BY run_id DESC LIMIT $4`,
	claimRun: `UPDATE report_runs SET status = 'Running', attempts = $3, lease_until = $4, started_at = $5, error_class = NULL
		WHERE tenant_id = $1 AND run_id = $2`,
	renewLease: `UPDATE report_runs SET lease_until = $4 WHERE tenant_id = $1 AND run_id = $2 AND status = 'Running' AND attempts = $3`,
	succeedRun: `UPDATE report_runs SET status = 'Succeeded', row_count = $4, blob_name = $5, sha256 = $6, size_bytes = $7,
			finished_at = $8, expires_at = $9, lease_until = NULL
		WHERE tenant_id = $1 AND run_id = $2 AND status = 'Running' AND attempts = $3`,
	failRun: `UPDATE report_runs SET status = 'Failed', error_class = $3, finished_at = $4, lease_until = NULL
		WHERE tenant_id = $1 AND run_id = $2`,
	requeueRun: `UPDATE report_runs SET status = 'Queued', error_class = $4, lease_until = NULL
		WHERE tenant_id = $1 AND run_id = $2 AND status = 'Running' AND attempts = $3`,

	usersAndRoles: `SELECT u.user_id::text, u.email, u.status, r.role_code, u.invited_at, u.activated_at
		FROM rm_users AS u LEFT JOIN rm_user_roles AS r ON r.tenant_id = u.tenant_id AND r.user_id = u.user_id
		WHERE u.tenant_id = $1 AND ($2 = '' OR u.status = $2)
		ORDER BY u.email, u.user_id, r.role_code`,
	activityByDay: `SELECT day::timestamp AT TIME ZONE 'UTC', event_type, event_count FROM rm_activity_daily
		WHERE tenant_id = $1 AND day BETWEEN $2::date AND $3::date AND ($4 = '' OR event_type = $4)
		ORDER BY day, event_type`,

	userInvited: `INSERT INTO rm_users (tenant_id, user_id, email, status, invited_at, updated_at) VALUES ($1, $2, $3, 'Invited', $4, $4)
		ON CONFLICT (tenant_id, user_id) DO UPDATE SET email = EXCLUDED.email, invited_at = EXCLUDED.invited_at, updated_at = EXCLUDED.updated_at`,
	userStatus: `INSERT INTO rm_users (tenant_id, user_id, status, activated_at, updated_at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (tenant_id, user_id) DO UPDATE SET status = EXCLUDED.status,
			activated_at = COALESCE(EXCLUDED.activated_at, rm_users.activated_at), updated_at = EXCLUDED.updated_at`,
	roleAssigned: `INSERT INTO rm_user_roles (tenant_id, user_id, role_id, role_code, assigned_at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (tenant_id, user_id, role_id) DO NOTHING`,
	roleRevoked:   `DELETE FROM rm_user_roles WHERE tenant_id = $1 AND user_id = $2 AND role_id = $3`,
	expiryTenants: `SELECT DISTINCT tenant_id::text FROM report_runs WHERE status = 'Succeeded' AND expires_at < $1`,
	expiryNext: `SELECT run_id::text, expires_at FROM report_runs
		WHERE tenant_id = $1 AND status = 'Succeeded' AND blob_name IS NOT NULL AND expires_at < $4
			AND (expires_at, run_id) > ($2, $3::uuid)
		ORDER BY expires_at, run_id LIMIT $5`,
	expiryRange: `SELECT run_id::text, blob_name FROM report_runs
		WHERE tenant_id = $1 AND status = 'Succeeded' AND blob_name IS NOT NULL AND expires_at < $6
			AND (expires_at, run_id) >= ($2, $3::uuid) AND (expires_at, run_id) <= ($4, $5::uuid)
		ORDER BY expires_at, run_id`,
	expireRange: `UPDATE report_runs SET status = 'Expired', expired_at = $7
		WHERE tenant_id = $1 AND status = 'Succeeded' AND blob_name IS NOT NULL AND expires_at < $6
			AND (expires_at, run_id) >= ($2, $3::uuid) AND (expires_at, run_id) <= ($4, $5::uuid)`,

	addActivity: `INSERT INTO rm_activity_daily (tenant_id, day, event_type, event_count)
		SELECT x.tenant_id, x.day, x.event_type, x.n FROM jsonb_to_recordset($1::jsonb) AS x(tenant_id uuid, day date, event_type text, n bigint)
		ON CONFLICT (tenant_id, day, event_type) DO UPDATE SET event_count = rm_activity_daily.event_count + EXCLUDED.event_count`,
}
