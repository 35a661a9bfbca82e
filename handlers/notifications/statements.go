package notifications

// statements is one engine's SQL for the notifications store: every statement store.go sends, the
// same fields for each engine (pgStatements, msStatements; those files hold SQL only). Parameters
// in order as given; times in UTC, ids as canonical text, nullable values as sql.Null*. A
// notification is read as notificationColumns (tenant id, id, channel, recipient, event type,
// subject, body or ”, body blob or ”, body size, body SHA-256, status, attempts, next attempt at,
// last error class or ”, created at, updated at, delivered at, failed at); an endpoint as
// endpointColumns (tenant id, id, url, description, event types JSON or ”, secret vault, secret
// name, secret version, enabled, failing since, disabled reason or ”, disabled at, version,
// created at, updated at). TestSQLServerQueries checks every field of msStatements.
type statements struct {
	// insertEndpoint: tenant, id, url, description, event types JSON (nullable), secret vault,
	// secret name, secret version, enabled, version, created at (= updated at).
	insertEndpoint string
	// endpoint: tenant, id → endpointColumns.
	endpoint string
	// lockEndpoint: endpoint, the row locked until the transaction ends.
	lockEndpoint string
	// listEndpoints: tenant, after id ("" or the zero UUID for the first page), limit →
	// endpointColumns in id order.
	listEndpoints string
	// updateEndpoint: tenant, id, url, description, event types JSON (nullable), secret vault,
	// secret name, secret version, enabled, failing since, disabled reason (nullable), disabled at,
	// version, updated at.
	updateEndpoint string
	// deleteEndpoint: tenant, id.
	deleteEndpoint string

	// insertNotification: tenant, id, channel, recipient, event type, subject, body (nullable),
	// body blob (nullable), body size, body SHA-256, status, next attempt at, created at (= updated
	// at).
	insertNotification string
	// insertAttachment: tenant, notification id, name, content type, size, SHA-256, blob name.
	insertAttachment string
	// notification: tenant, id → notificationColumns.
	notification string
	// lockNotification: notification, the row locked until the transaction ends.
	lockNotification string
	// listNotifications: tenant, status ("" for any), channel ("" for any), recipient ("" for
	// any), before id (the max UUID for the first page), limit → notificationColumns, newest
	// (highest id) first.
	listNotifications string
	// attachments: tenant, notification id → name, content type, size, SHA-256, blob name by name.
	attachments string
	// attempts: tenant, notification id → attempt, attempted at, status code (nullable), latency
	// ms, error class or ”, by attempt.
	attempts string
	// claimOne: tenant, id, now, lease until → notificationColumns after the claim, when the row is
	// Pending or Sending, due (next attempt at ≤ now) and not locked by another transaction: the
	// row becomes Sending with attempts + 1 and next attempt at = lease until.
	claimOne string
	// claimDue: now, lease until, limit, per-tenant limit → notificationColumns of at most limit
	// due rows of every tenant (platform scope), at most per-tenant limit of any one tenant, the
	// oldest due first (within a tenant and across), claimed as claimOne claims, skipping locked
	// rows.
	claimDue string
	// finishNotification: tenant, id, status, next attempt at (nullable), last error class
	// (nullable), updated at, delivered at, failed at.
	finishNotification string
	// insertAttempt: tenant, notification id, attempt, attempted at, status code (nullable),
	// latency ms, error class (nullable).
	insertAttempt string

	// The archive sweep (archive.go). A range is a tenant's rows from (from at, from id) to (to at,
	// to id) inclusive in (created_at, id) order that are Delivered or Failed: the range
	// statements take tenant, from at, from id, to at, to id.

	// archiveUnits: before → the tenant ids (text) with a notification created before it
	// (platform scope).
	archiveUnits string
	// archiveNext: tenant, after at, after id, cutoff, limit → created at, id, status of the first
	// limit rows after (after at, after id) created before cutoff, in (created_at, id) order.
	archiveNext string
	// archiveRows: the range → notificationColumns in (created_at, id) order.
	archiveRows string
	// archiveAttachments: the range → notification id, name, content type, size, SHA-256, blob
	// name of the range's attachments, by notification and name.
	archiveAttachments string
	// archiveAttempts: the range → notification id, attempt, attempted at, status code
	// (nullable), latency ms, error class or '' of the range's delivery log, by notification and
	// attempt.
	archiveAttempts string
	// deleteArchivedAttachments, deleteArchivedAttempts, deleteArchivedNotifications: the range;
	// the children first (their foreign keys).
	deleteArchivedAttachments   string
	deleteArchivedAttempts      string
	deleteArchivedNotifications string
}
