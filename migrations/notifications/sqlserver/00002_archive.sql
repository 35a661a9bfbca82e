-- Azure SQL twin of postgres/00002_archive.sql: the archive sweep (NotificationArchive) deletes
-- archived rows, their attachments' metadata and their delivery log as the runtime user, in the
-- tenant's session context (the security policy stays on). Written and reviewed; not executed on
-- these build machines (no SQL Server here): tsqlcheck checks it.

-- +goose Up
GRANT DELETE ON dbo.notifications TO notifications_app;
GRANT DELETE ON dbo.notification_attachments TO notifications_app;
GRANT DELETE ON dbo.delivery_attempts TO notifications_app;

-- +goose Down
-- (REVOKE … TO: T-SQL takes TO or FROM; tsqlcheck reads a FROM's name as a table.)
REVOKE DELETE ON dbo.delivery_attempts TO notifications_app;
REVOKE DELETE ON dbo.notification_attachments TO notifications_app;
REVOKE DELETE ON dbo.notifications TO notifications_app;
