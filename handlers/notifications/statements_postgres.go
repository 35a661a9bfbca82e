package notifications

const (
	pgEndpointCols = `tenant_id::text, endpoint_id::text, url, description, COALESCE(event_types::text, ''), secret_vault, secret_name,
		secret_version, enabled, failing_since, COALESCE(disabled_reason, ''), disabled_at, version, created_at, updated_at`
	pgNotificationCols = `tenant_id::text, notification_id::text, channel, recipient, event_type, subject, COALESCE(body, ''),
		COALESCE(body_blob, ''), body_size, body_sha256, status, attempts, next_attempt_at, COALESCE(last_error_class, ''),
		created_at, updated_at, delivered_at, failed_at`
)

// pgStatements is the whole of what the notifications service asks of PostgreSQL.
var pgStatements = statements{
	insertEndpoint: `INSERT INTO webhook_endpoints (tenant_id, endpoint_id, url, description, event_types, secret_vault, secret_name,
			secret_version, enabled, version, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9, $10, $11, $11)`,
	endpoint:     `SELECT ` + pgEndpointCols + ` FROM webhook_endpoints WHERE tenant_id = $1 AND endpoint_id = $2`,
	lockEndpoint: `SELECT ` + pgEndpointCols + ` FROM webhook_endpoints WHERE tenant_id = $1 AND endpoint_id = $2 FOR UPDATE`,
	listEndpoints: `SELECT ` + pgEndpointCols + ` FROM webhook_endpoints WHERE tenant_id = $1 AND endpoint_id > $2::uuid
		ORDER BY endpoint_id LIMIT $3`,
	updateEndpoint: `UPDATE webhook_endpoints SET url = $3, description = $4, event_types = $5::jsonb, secret_vault = $6, secret_name = $7,
			secret_version = $8, enabled = $9, failing_since = $10, disabled_reason = $11, disabled_at = $12, version = $13, updated_at = $14
		WHERE tenant_id = $1 AND endpoint_id = $2`,
	deleteEndpoint: `DELETE FROM webhook_endpoints WHERE tenant_id = $1 AND endpoint_id = $2`,

	insertNotification: `INSERT INTO notifications (tenant_id, notification_id, channel, recipient, event_type, subject, body, body_blob,
			body_size, body_sha256, status, next_attempt_at, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13)`,
	insertAttachment: `INSERT INTO notification_attachments (tenant_id, notification_id, name, content_type, size, sha256, blob_name)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`,
	notification:     `SELECT ` + pgNotificationCols + ` FROM notifications WHERE tenant_id = $1 AND notification_id = $2`,
	lockNotification: `SELECT ` + pgNotificationCols + ` FROM notifications WHERE tenant_id = $1 AND notification_id = $2 FOR UPDATE`,
	listNotifications: `SELECT ` + pgNotificationCols + ` FROM notifications
		WHERE tenant_id = $1 AND ($2 = '' OR status = $2) AND ($3 = '' OR channel = $3) AND ($4 = '' OR recipient = $4)
			AND notification_id < $5::uuid
		ORDER BY notification_id DESC LIMIT $6`,
	attachments: `SELECT name, content_type, size, sha256, blob_name FROM notification_attachments
		WHERE tenant_id = $1 AND notification_id = $2 ORDER BY name`,
	attempts: `SELECT attempt, attempted_at, status_code, latency_ms, COALESCE(error_class, '') FROM delivery_attempts
		WHERE tenant_id = $1 AND notification_id = $2 ORDER BY attempt`,
	claimOne: `UPDATE notifications SET status = 'Sending', attempts = attempts + 1, next_attempt_at = $4, updated_at = $3
		WHERE (tenant_id, notification_id) IN (SELECT tenant_id, notification_id FROM notifications
			WHERE tenant_id = $1 AND notification_id = $2 AND status IN ('Pending', 'Sending') AND next_attempt_at <= $3
			FOR UPDATE SKIP LOCKED)
		RETURNING ` + pgNotificationCols,
	// ranked numbers every due row within its tenant (oldest first); due locks at most $3 of them,
	// at most $4 per tenant, oldest first. MATERIALIZED: the CTE runs once, so LIMIT bounds what
	// the UPDATE claims (an IN (subquery … LIMIT) may be re-run and claim every due row). FOR
	// UPDATE cannot sit beside a window function, hence the two steps; under READ COMMITTED a row
	// another instance claimed meanwhile is re-checked against the WHERE once locked.
	claimDue: `WITH ranked AS (
			SELECT tenant_id, notification_id,
				ROW_NUMBER() OVER (PARTITION BY tenant_id ORDER BY next_attempt_at, notification_id) AS rn
			FROM notifications WHERE status IN ('Pending', 'Sending') AND next_attempt_at <= $1
		), due AS MATERIALIZED (
			SELECT d.tenant_id AS due_tenant, d.notification_id AS due_id FROM notifications d
			JOIN ranked r ON r.tenant_id = d.tenant_id AND r.notification_id = d.notification_id
			WHERE r.rn <= $4 AND d.status IN ('Pending', 'Sending') AND d.next_attempt_at <= $1
			ORDER BY d.next_attempt_at, d.notification_id LIMIT $3
			FOR UPDATE OF d SKIP LOCKED
		)
		UPDATE notifications SET status = 'Sending', attempts = attempts + 1, next_attempt_at = $2, updated_at = $1
		FROM due WHERE tenant_id = due.due_tenant AND notification_id = due.due_id
		RETURNING ` + pgNotificationCols,
	finishNotification: `UPDATE notifications SET status = $3, next_attempt_at = $4, last_error_class = $5, updated_at = $6,
			delivered_at = $7, failed_at = $8
		WHERE tenant_id = $1 AND notification_id = $2`,
	insertAttempt: `INSERT INTO delivery_attempts (tenant_id, notification_id, attempt, attempted_at, status_code, latency_ms, error_class)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`,

	// Loose index scan over notifications_created: one probe per tenant, not one row per
	// notification (1,000 tenants × 1,000 rows list 1,000 ids in as many index probes).
	archiveUnits: `WITH RECURSIVE t AS (
			(SELECT tenant_id FROM notifications ORDER BY tenant_id LIMIT 1)
			UNION ALL
			SELECT (SELECT n.tenant_id FROM notifications n WHERE n.tenant_id > t.tenant_id ORDER BY n.tenant_id LIMIT 1)
			FROM t WHERE t.tenant_id IS NOT NULL
		)
		SELECT t.tenant_id::text FROM t
		WHERE t.tenant_id IS NOT NULL AND EXISTS (SELECT 1 FROM notifications o WHERE o.tenant_id = t.tenant_id AND o.created_at < $1)`,
	archiveNext: `SELECT created_at, notification_id::text, status FROM notifications
		WHERE tenant_id = $1 AND (created_at, notification_id) > ($2, $3::uuid) AND created_at < $4
		ORDER BY created_at, notification_id LIMIT $5`,
	archiveRows: `SELECT ` + pgNotificationCols + ` FROM notifications WHERE ` + pgArchiveRange + `
		ORDER BY created_at, notification_id`,
	archiveAttachments: `SELECT notification_id::text, name, content_type, size, sha256, blob_name FROM notification_attachments
		WHERE tenant_id = $1 AND notification_id IN (SELECT notification_id FROM notifications WHERE ` + pgArchiveRange + `)
		ORDER BY notification_id, name`,
	archiveAttempts: `SELECT notification_id::text, attempt, attempted_at, status_code, latency_ms, COALESCE(error_class, '') FROM delivery_attempts
		WHERE tenant_id = $1 AND notification_id IN (SELECT notification_id FROM notifications WHERE ` + pgArchiveRange + `)
		ORDER BY notification_id, attempt`,
	deleteArchivedAttachments: `DELETE FROM notification_attachments
		WHERE tenant_id = $1 AND notification_id IN (SELECT notification_id FROM notifications WHERE ` + pgArchiveRange + `)`,
	deleteArchivedAttempts: `DELETE FROM delivery_attempts
		WHERE tenant_id = $1 AND notification_id IN (SELECT notification_id FROM notifications WHERE ` + pgArchiveRange + `)`,
	deleteArchivedNotifications: `DELETE FROM notifications WHERE ` + pgArchiveRange,
}

// pgArchiveRange is an archive range's predicate on notifications (row comparisons: the
// notifications_created index bounds them).
const pgArchiveRange = `tenant_id = $1 AND (created_at, notification_id) >= ($2, $3::uuid) AND (created_at, notification_id) <= ($4, $5::uuid)
			AND status IN ('Delivered', 'Failed')`
