package notifications

// Azure SQL (SQL Server): the same statements as statements_postgres.go, in T-SQL. Written and
// reviewed; not run on these machines (no SQL Server): TestSQLServerQueries checks them without a
// server. Ids are read through the persisted canonical text columns (*_key); FOR UPDATE is WITH
// (UPDLOCK, ROWLOCK, HOLDLOCK), SKIP LOCKED is READPAST.

const (
	msEndpointCols = `LOWER(CONVERT(char(36), tenant_id)), endpoint_key, url, description, COALESCE(event_types, N''), secret_vault,
		secret_name, secret_version, enabled, failing_since, COALESCE(disabled_reason, ''), disabled_at, version, created_at, updated_at`
	msNotificationCols = `LOWER(CONVERT(char(36), tenant_id)), notification_key, channel, recipient, event_type, subject,
		COALESCE(body, N''), COALESCE(body_blob, N''), body_size, body_sha256, status, attempts, next_attempt_at,
		COALESCE(last_error_class, ''), created_at, updated_at, delivered_at, failed_at`
	msInsertedNotificationCols = `LOWER(CONVERT(char(36), inserted.tenant_id)), inserted.notification_key, inserted.channel,
		inserted.recipient, inserted.event_type, inserted.subject, COALESCE(inserted.body, N''), COALESCE(inserted.body_blob, N''),
		inserted.body_size, inserted.body_sha256, inserted.status, inserted.attempts, inserted.next_attempt_at,
		COALESCE(inserted.last_error_class, ''), inserted.created_at, inserted.updated_at, inserted.delivered_at, inserted.failed_at`
)

// msStatements is the whole of what the notifications service asks of Azure SQL.
var msStatements = statements{
	insertEndpoint: `INSERT INTO dbo.webhook_endpoints (tenant_id, endpoint_id, url, description, event_types, secret_vault, secret_name,
			secret_version, enabled, version, created_at, updated_at)
		VALUES (@p1, @p2, @p3, @p4, @p5, @p6, @p7, @p8, @p9, @p10, @p11, @p11)`,
	endpoint:     `SELECT ` + msEndpointCols + ` FROM dbo.webhook_endpoints WHERE tenant_id = @p1 AND endpoint_id = @p2`,
	lockEndpoint: `SELECT ` + msEndpointCols + ` FROM dbo.webhook_endpoints WITH (UPDLOCK, ROWLOCK, HOLDLOCK) WHERE tenant_id = @p1 AND endpoint_id = @p2`,
	listEndpoints: `SELECT TOP (@p3) ` + msEndpointCols + ` FROM dbo.webhook_endpoints WHERE tenant_id = @p1 AND endpoint_key > @p2
		ORDER BY endpoint_key`,
	updateEndpoint: `UPDATE dbo.webhook_endpoints SET url = @p3, description = @p4, event_types = @p5, secret_vault = @p6, secret_name = @p7,
			secret_version = @p8, enabled = @p9, failing_since = @p10, disabled_reason = @p11, disabled_at = @p12, version = @p13, updated_at = @p14
		WHERE tenant_id = @p1 AND endpoint_id = @p2`,
	deleteEndpoint: `DELETE FROM dbo.webhook_endpoints WHERE tenant_id = @p1 AND endpoint_id = @p2`,

	insertNotification: `INSERT INTO dbo.notifications (tenant_id, notification_id, channel, recipient, event_type, subject, body, body_blob,
			body_size, body_sha256, status, next_attempt_at, created_at, updated_at)
		VALUES (@p1, @p2, @p3, @p4, @p5, @p6, @p7, @p8, @p9, @p10, @p11, @p12, @p13, @p13)`,
	insertAttachment: `INSERT INTO dbo.notification_attachments (tenant_id, notification_id, name, content_type, size, sha256, blob_name)
		VALUES (@p1, @p2, @p3, @p4, @p5, @p6, @p7)`,
	notification:     `SELECT ` + msNotificationCols + ` FROM dbo.notifications WHERE tenant_id = @p1 AND notification_id = @p2`,
	lockNotification: `SELECT ` + msNotificationCols + ` FROM dbo.notifications WITH (UPDLOCK, ROWLOCK, HOLDLOCK) WHERE tenant_id = @p1 AND notification_id = @p2`,
	listNotifications: `SELECT TOP (@p6) ` + msNotificationCols + ` FROM dbo.notifications
		WHERE tenant_id = @p1 AND (@p2 = '' OR status = @p2) AND (@p3 = '' OR channel = @p3) AND (@p4 = N'' OR recipient = @p4)
			AND notification_key < @p5
		ORDER BY notification_key DESC`,
	attachments: `SELECT name, content_type, size, sha256, blob_name FROM dbo.notification_attachments
		WHERE tenant_id = @p1 AND notification_id = @p2 ORDER BY name`,
	attempts: `SELECT attempt, attempted_at, status_code, latency_ms, COALESCE(error_class, '') FROM dbo.delivery_attempts
		WHERE tenant_id = @p1 AND notification_id = @p2 ORDER BY attempt`,
	// READPAST skips rows another transaction holds locked (PostgreSQL's SKIP LOCKED); the update
	// takes its own update locks.
	claimOne: `UPDATE dbo.notifications WITH (ROWLOCK, READPAST)
		SET status = 'Sending', attempts = attempts + 1, next_attempt_at = @p4, updated_at = @p3
		OUTPUT ` + msInsertedNotificationCols + `
		WHERE tenant_id = @p1 AND notification_id = @p2 AND status IN ('Pending', 'Sending') AND next_attempt_at <= @p3`,
	// r numbers every due row within its tenant (oldest first, skipping rows another transaction
	// holds); due is the TOP (@p3) oldest of them with at most @p4 per tenant, computed once for
	// the statement (Halloween protection: it never sees the rows the UPDATE changes). The UPDATE
	// takes its update locks on those rows only, skips any locked since (READPAST) and re-checks
	// that each is still due, so it claims at most @p3. (Derived tables, not CTEs: tsqlcheck reads
	// every FROM name as a table.)
	claimDue: `UPDATE dbo.notifications
		SET status = 'Sending', attempts = attempts + 1, next_attempt_at = @p2, updated_at = @p1
		OUTPUT ` + msInsertedNotificationCols + `
		FROM dbo.notifications WITH (UPDLOCK, ROWLOCK, READPAST)
		JOIN (SELECT TOP (@p3) r.t, r.n FROM (
				SELECT LOWER(CONVERT(char(36), d.tenant_id)) AS t, d.notification_key AS n, d.next_attempt_at AS due_at,
					ROW_NUMBER() OVER (PARTITION BY LOWER(CONVERT(char(36), d.tenant_id)) ORDER BY d.next_attempt_at, d.notification_key) AS rn
				FROM dbo.notifications AS d WITH (READPAST)
				WHERE d.status IN ('Pending', 'Sending') AND d.next_attempt_at <= @p1) AS r
			WHERE r.rn <= @p4 ORDER BY r.due_at, r.n) AS due
			ON dbo.notifications.tenant_id = CONVERT(uniqueidentifier, due.t) AND dbo.notifications.notification_key = due.n
		WHERE dbo.notifications.status IN ('Pending', 'Sending') AND dbo.notifications.next_attempt_at <= @p1`,
	finishNotification: `UPDATE dbo.notifications SET status = @p3, next_attempt_at = @p4, last_error_class = @p5, updated_at = @p6,
			delivered_at = @p7, failed_at = @p8
		WHERE tenant_id = @p1 AND notification_id = @p2`,
	insertAttempt: `INSERT INTO dbo.delivery_attempts (tenant_id, notification_id, attempt, attempted_at, status_code, latency_ms, error_class)
		VALUES (@p1, @p2, @p3, @p4, @p5, @p6, @p7)`,

	archiveUnits: `SELECT DISTINCT LOWER(CONVERT(char(36), tenant_id)) FROM dbo.notifications WHERE created_at < @p1`,
	archiveNext: `SELECT TOP (@p5) created_at, notification_key, status FROM dbo.notifications
		WHERE tenant_id = @p1 AND (created_at > @p2 OR (created_at = @p2 AND notification_key > @p3)) AND created_at < @p4
		ORDER BY created_at, notification_key`,
	archiveRows: `SELECT ` + msNotificationCols + ` FROM dbo.notifications AS n WHERE ` + msArchiveRange + `
		ORDER BY created_at, notification_key`,
	archiveAttachments: `SELECT LOWER(CONVERT(char(36), c.notification_id)), c.name, c.content_type, c.size, c.sha256, c.blob_name
		FROM dbo.notification_attachments AS c
		WHERE c.tenant_id = @p1 AND EXISTS (SELECT 1 FROM dbo.notifications AS n WHERE n.notification_id = c.notification_id AND ` + msArchiveRange + `)
		ORDER BY c.notification_id, c.name`,
	archiveAttempts: `SELECT LOWER(CONVERT(char(36), c.notification_id)), c.attempt, c.attempted_at, c.status_code, c.latency_ms,
			COALESCE(c.error_class, '')
		FROM dbo.delivery_attempts AS c
		WHERE c.tenant_id = @p1 AND EXISTS (SELECT 1 FROM dbo.notifications AS n WHERE n.notification_id = c.notification_id AND ` + msArchiveRange + `)
		ORDER BY c.notification_id, c.attempt`,
	deleteArchivedAttachments: `DELETE c FROM dbo.notification_attachments AS c
		WHERE c.tenant_id = @p1 AND EXISTS (SELECT 1 FROM dbo.notifications AS n WHERE n.notification_id = c.notification_id AND ` + msArchiveRange + `)`,
	deleteArchivedAttempts: `DELETE c FROM dbo.delivery_attempts AS c
		WHERE c.tenant_id = @p1 AND EXISTS (SELECT 1 FROM dbo.notifications AS n WHERE n.notification_id = c.notification_id AND ` + msArchiveRange + `)`,
	deleteArchivedNotifications: `DELETE n FROM dbo.notifications AS n WHERE ` + msArchiveRange,
}

// msArchiveRange is an archive range's predicate on notifications (alias n), ids compared as
// their canonical text (notification_key), as the keyset orders them.
const msArchiveRange = `n.tenant_id = @p1 AND (n.created_at > @p2 OR (n.created_at = @p2 AND n.notification_key >= @p3))
			AND (n.created_at < @p4 OR (n.created_at = @p4 AND n.notification_key <= @p5)) AND n.status IN ('Delivered', 'Failed')`
