package tenants

// statements is one engine's SQL for the tenants store: every statement sqlStore (store_sql.go)
// sends, the same fields for each engine, so the store's Go is written once. The engines' sets
// are pgStatements (statements_postgres.go) and msStatements (statements_sqlserver.go); those
// files hold SQL only.
//
// Each field's comment gives its parameters, in order, and the columns it returns. Both engines
// take the same parameters in the same order, as Go passes them: times in UTC, ids as canonical
// text, a nullable text or time as sql.NullString or sql.NullTime. Statements that read a tenant
// return tenantColumns; statements that read steps return stepColumns. TestSQLServerQueries walks
// the struct (reflection) and checks every field against store_sql.go's calls.
type statements struct {
	// create: tenant id, name, slug, status, edition code, owner email, version, created at,
	// updated at, provisioned at, the steps as a JSON array of {"seq","name","status"}, the
	// events as outbox rows (outbox.Rows), now. Inserts the tenant, every step (attempts 0,
	// updated at = created at) and the events' outbox rows (outbox.InsertSQL) in one round trip;
	// a first failure stops it, with that failure's error.
	create string
	// tenantByID: tenant id → tenantColumns.
	tenantByID string
	// tenantBySlug: slug → tenantColumns.
	tenantBySlug string
	// steps: tenant id → stepColumns, in seq order.
	steps string
	// list: after (canonical id text; the zero UUID for the first page), status ("" for any),
	// limit → tenantColumns of up to limit tenants with a greater id, in id order.
	list string
	// lockTenant: tenant id → tenantColumns, locking the row against concurrent lockTenant and
	// writes until the transaction ends (SELECT ... FOR UPDATE).
	lockTenant string
	// updateTenant: tenant id, name, slug, status, edition code, owner email, version, updated at,
	// provisioned at.
	updateTenant string
	// bumpTenant: tenant id, updated at. Adds one to the version.
	bumpTenant string
	// updateStep: tenant id, seq, status, last error, updated at. Adds one to the attempts.
	updateStep string
	// retryDue: before, max attempts, limit → tenant ids (canonical text) of Provisioning tenants
	// with a Failed step updated before `before` and fewer than max attempts, oldest update first.
	retryDue string
}

// The column lists scanTenant and scanSteps read, in their order:
//
//	tenantColumns: tenant id (canonical text), name, slug, status, edition code, owner email,
//	               version, created at, updated at, provisioned at (nullable)
//	stepColumns:   seq, name, status, attempts, last error ('' for none), updated at
