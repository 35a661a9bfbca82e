package reporting

// Azure SQL (SQL Server): the same statements as statements_postgres.go, in T-SQL. Written and
// reviewed; not run on these machines (no SQL Server): TestSQLServerStatements checks them without
// a server. Ids are read (and paged) through the persisted canonical text columns (report_key,
// run_key, user_key); FOR UPDATE is WITH (UPDLOCK, ROWLOCK, HOLDLOCK); upserts are an UPDATE then
// an INSERT ... WHERE NOT EXISTS (... WITH (UPDLOCK, HOLDLOCK)) in one batch (no MERGE), so a
// concurrent insert of the same key waits instead of failing.

const (
	msReportCols = `report_key, name, source, parameters, format, created_by, version, created_at, updated_at`
	msRunCols    = `run_key, LOWER(CONVERT(char(36), report_id)), status, source, format, parameters, requested_by, attempts, lease_until,
		row_count, blob_name, sha256, size_bytes, error_class, created_at, started_at, finished_at, expires_at, expired_at`
)

// msStatements is the whole of what the reporting service asks of Azure SQL.
var msStatements = statements{
	insertReport: `INSERT INTO dbo.report_definitions (tenant_id, report_id, name, source, parameters, format, created_by, version, created_at, updated_at)
		VALUES (@p1, @p2, @p3, @p4, @p5, @p6, @p7, @p8, @p9, @p9)`,
	report: `SELECT ` + msReportCols + ` FROM dbo.report_definitions WHERE tenant_id = @p1 AND report_id = @p2 AND deleted_at IS NULL`,
	lockReport: `SELECT ` + msReportCols + ` FROM dbo.report_definitions WITH (UPDLOCK, ROWLOCK, HOLDLOCK)
		WHERE tenant_id = @p1 AND report_id = @p2 AND deleted_at IS NULL`,
	listReports: `SELECT TOP (@p3) ` + msReportCols + ` FROM dbo.report_definitions
		WHERE tenant_id = @p1 AND report_key > @p2 AND deleted_at IS NULL ORDER BY report_key`,
	updateReport: `UPDATE dbo.report_definitions SET name = @p3, parameters = @p4, format = @p5, version = @p6, updated_at = @p7
		WHERE tenant_id = @p1 AND report_id = @p2 AND deleted_at IS NULL`,
	deleteReport: `UPDATE dbo.report_definitions SET deleted_at = @p3 WHERE tenant_id = @p1 AND report_id = @p2 AND deleted_at IS NULL`,

	insertRun: `INSERT INTO dbo.report_runs (tenant_id, run_id, report_id, status, source, format, parameters, requested_by, attempts, created_at)
		VALUES (@p1, @p2, @p3, 'Queued', @p4, @p5, @p6, @p7, 0, @p8)`,
	run:     `SELECT ` + msRunCols + ` FROM dbo.report_runs WHERE tenant_id = @p1 AND run_id = @p2`,
	lockRun: `SELECT ` + msRunCols + ` FROM dbo.report_runs WITH (UPDLOCK, ROWLOCK, HOLDLOCK) WHERE tenant_id = @p1 AND run_id = @p2`,
	listRuns: `SELECT TOP (@p4) ` + msRunCols + ` FROM dbo.report_runs
		WHERE tenant_id = @p1 AND report_id = @p2 AND run_key < @p3 ORDER BY run_key DESC`,
	claimRun: `UPDATE dbo.report_runs SET status = 'Running', attempts = @p3, lease_until = @p4, started_at = @p5, error_class = NULL
		WHERE tenant_id = @p1 AND run_id = @p2`,
	renewLease: `UPDATE dbo.report_runs SET lease_until = @p4 WHERE tenant_id = @p1 AND run_id = @p2 AND status = 'Running' AND attempts = @p3`,
	succeedRun: `UPDATE dbo.report_runs SET status = 'Succeeded', row_count = @p4, blob_name = @p5, sha256 = @p6, size_bytes = @p7,
			finished_at = @p8, expires_at = @p9, lease_until = NULL
		WHERE tenant_id = @p1 AND run_id = @p2 AND status = 'Running' AND attempts = @p3`,
	failRun: `UPDATE dbo.report_runs SET status = 'Failed', error_class = @p3, finished_at = @p4, lease_until = NULL
		WHERE tenant_id = @p1 AND run_id = @p2`,
	requeueRun: `UPDATE dbo.report_runs SET status = 'Queued', error_class = @p4, lease_until = NULL
		WHERE tenant_id = @p1 AND run_id = @p2 AND status = 'Running' AND attempts = @p3`,

	usersAndRoles: `SELECT u.user_key, u.email, u.status, r.role_code, u.invited_at, u.activated_at
		FROM dbo.rm_users AS u LEFT JOIN dbo.rm_user_roles AS r ON r.tenant_id = u.tenant_id AND r.user_id = u.user_id
		WHERE u.tenant_id = @p1 AND (@p2 = '' OR u.status = @p2)
		ORDER BY u.email, u.user_key, r.role_code`,
	activityByDay: `SELECT CAST(CAST(day AS datetime2) AS datetimeoffset), event_type, event_count FROM dbo.rm_activity_daily
		WHERE tenant_id = @p1 AND day BETWEEN CAST(@p2 AS date) AND CAST(@p3 AS date) AND (@p4 = '' OR event_type = @p4)
		ORDER BY day, event_type`,

	userInvited: `UPDATE dbo.rm_users SET email = @p3, invited_at = @p4, updated_at = @p4 WHERE tenant_id = @p1 AND user_id = @p2;
		INSERT INTO dbo.rm_users (tenant_id, user_id, email, status, invited_at, updated_at)
		SELECT @p1, @p2, @p3, 'Invited', @p4, @p4
		WHERE NOT EXISTS (SELECT 1 FROM dbo.rm_users WITH (UPDLOCK, HOLDLOCK) WHERE tenant_id = @p1 AND user_id = @p2);`,
	userStatus: `UPDATE dbo.rm_users SET status = @p3, activated_at = COALESCE(@p4, activated_at), updated_at = @p5
		WHERE tenant_id = @p1 AND user_id = @p2;
		INSERT INTO dbo.rm_users (tenant_id, user_id, status, activated_at, updated_at)
		SELECT @p1, @p2, @p3, @p4, @p5
		WHERE NOT EXISTS (SELECT 1 FROM dbo.rm_users WITH (UPDLOCK, HOLDLOCK) WHERE tenant_id = @p1 AND user_id = @p2);`,
	roleAssigned: `INSERT INTO dbo.rm_user_roles (tenant_id, user_id, role_id, role_code, assigned_at)
		SELECT @p1, @p2, @p3, @p4, @p5
		WHERE NOT EXISTS (SELECT 1 FROM dbo.rm_user_roles WITH (UPDLOCK, HOLDLOCK) WHERE tenant_id = @p1 AND user_id = @p2 AND role_id = @p3)`,
	roleRevoked: `DELETE FROM dbo.rm_user_roles WHERE tenant_id = @p1 AND user_id = @p2 AND role_id = @p3`,
	// The sweep pages on run_key (canonical text; uniqueidentifier orders otherwise), row
	// comparisons spelled out.
	expiryTenants: `SELECT DISTINCT LOWER(CONVERT(char(36), tenant_id)) FROM dbo.report_runs WHERE status = 'Succeeded' AND expires_at < @p1`,
	expiryNext: `SELECT TOP (@p5) run_key, expires_at FROM dbo.report_runs
		WHERE tenant_id = @p1 AND status = 'Succeeded' AND blob_name IS NOT NULL AND expires_at < @p4
			AND (expires_at > @p2 OR (expires_at = @p2 AND run_key > @p3))
		ORDER BY expires_at, run_key`,
	expiryRange: `SELECT run_key, blob_name FROM dbo.report_runs
		WHERE tenant_id = @p1 AND status = 'Succeeded' AND blob_name IS NOT NULL AND expires_at < @p6
			AND (expires_at > @p2 OR (expires_at = @p2 AND run_key >= @p3))
			AND (expires_at < @p4 OR (expires_at = @p4 AND run_key <= @p5))
		ORDER BY expires_at, run_key`,
	expireRange: `UPDATE dbo.report_runs SET status = 'Expired', expired_at = @p7
		WHERE tenant_id = @p1 AND status = 'Succeeded' AND blob_name IS NOT NULL AND expires_at < @p6
			AND (expires_at > @p2 OR (expires_at = @p2 AND run_key >= @p3))
			AND (expires_at < @p4 OR (expires_at = @p4 AND run_key <= @p5))`,

	addActivity: `UPDATE dbo.rm_activity_daily SET event_count = dbo.rm_activity_daily.event_count + s.n
		FROM dbo.rm_activity_daily WITH (UPDLOCK, HOLDLOCK)
		JOIN OPENJSON(@p1) WITH (tid uniqueidentifier '$.tenant_id', d date '$.day', et varchar(128) '$.event_type', n bigint '$.n') AS s
			ON dbo.rm_activity_daily.tenant_id = s.tid AND dbo.rm_activity_daily.day = s.d AND dbo.rm_activity_daily.event_type = s.et;
		INSERT INTO dbo.rm_activity_daily (tenant_id, day, event_type, event_count)
		SELECT s.tid, s.d, s.et, s.n
		FROM OPENJSON(@p1) WITH (tid uniqueidentifier '$.tenant_id', d date '$.day', et varchar(128) '$.event_type', n bigint '$.n') AS s
		WHERE NOT EXISTS (SELECT 1 FROM dbo.rm_activity_daily AS a WITH (UPDLOCK, HOLDLOCK)
			WHERE a.tenant_id = s.tid AND a.day = s.d AND a.event_type = s.et);`,
}
