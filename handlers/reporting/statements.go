package reporting

// statements is one engine's SQL for the reporting store (the engines' sets: pgStatements,
// msStatements; those files hold SQL only). Each field's comment gives its parameters in order and
// the columns it returns. Every statement names its tenant first (row-level security checks it
// again). Times are UTC; ids canonical text; parameters a JSON object of strings.
type statements struct {
	// insertReport: tenant, report id, name, source, parameters JSON, format, created by, version,
	// created at (also updated at).
	insertReport string
	// report: tenant, report id → reportColumns of a report not deleted.
	report string
	// lockReport: tenant, report id → reportColumns, locking the row (not deleted).
	lockReport string
	// listReports: tenant, after report id (the nil UUID for the first page), limit → reportColumns
	// of reports not deleted, by id.
	listReports string
	// updateReport: tenant, report id, name, parameters JSON, format, version, updated at.
	updateReport string
	// deleteReport: tenant, report id, deleted at (soft; a deleted report is not found again).
	deleteReport string

	// insertRun: tenant, run id, report id, source, format, parameters JSON, requested by, created at
	// (status Queued, attempts 0).
	insertRun string
	// run: tenant, run id → runColumns.
	run string
	// lockRun: tenant, run id → runColumns, locking the row.
	lockRun string
	// listRuns: tenant, report id, before run id (the max UUID for the first page), limit →
	// runColumns of the report's runs, newest first.
	listRuns string
	// claimRun: tenant, run id, attempts, lease until, started at → status Running.
	claimRun string
	// renewLease: tenant, run id, attempts (the claim's), lease until; affects the run only while
	// it is still Running under that claim.
	renewLease string
	// succeedRun: tenant, run id, attempts (the claim's), row count, blob name, sha256, size,
	// finished at, expires at; affects the run only while Running under that claim.
	succeedRun string
	// failRun: tenant, run id, error class, finished at → status Failed.
	failRun string
	// requeueRun: tenant, run id, attempts (the claim's), error class → status Queued, lease
	// cleared, while Running under that claim.
	requeueRun string

	// usersAndRoles: tenant, status ('' for every status) → userId, email, status, roleCode,
	// invitedAt, activatedAt: one row per user and role (a user without roles once, roleCode NULL),
	// by email, user id, role code.
	usersAndRoles string
	// activityByDay: tenant, from date, to date (inclusive), event type ('' for every type) → day,
	// event type, count, by day then type.
	activityByDay string

	// userInvited: tenant, user id, email, at: the user (Invited when new; a known user keeps its
	// status) with its email and invitation time.
	userInvited string
	// userStatus: tenant, user id, status, activated at (nullable: kept when NULL), at.
	userStatus string
	// roleAssigned: tenant, user id, role id, role code, at (a known assignment is kept).
	roleAssigned string
	// roleRevoked: tenant, user id, role id.
	roleRevoked string
	// The ReportArtifactLifecycle sweep's statements (lifecycle.go). A due run is Succeeded, has
	// a blob and expires_at < cutoff; the sweep's keyset is (expires_at, run id).
	//
	// expiryTenants (platform scope): before → tenant id text of every tenant with a due run.
	expiryTenants string
	// expiryNext: tenant, after expires at, after run id, cutoff, limit → run id, expires at of the
	// due runs after (expires at, run id), in keyset order.
	expiryNext string
	// expiryRange: tenant, from expires at, from run id, to expires at, to run id, cutoff → run id,
	// blob name of the due runs from..to (inclusive).
	expiryRange string
	// expireRange: tenant, from expires at, from run id, to expires at, to run id, cutoff, expired
	// at → marks the due runs from..to Expired; rows affected is how many.
	expireRange string

	// addActivity: a JSON array of {"tenant_id","day","event_type","n"}, one per distinct
	// (tenant, day, type): adds n to each count.
	addActivity string
}

// reportColumns: report id, name, source, parameters JSON, format, created by, version, created
// at, updated at.
// runColumns: run id, report id, status, source, format, parameters JSON, requested by, attempts,
// lease until, row count, blob name, sha256, size, error class, created at, started at, finished
// at, expires at, expired at (the nullable ones NULL until set).
