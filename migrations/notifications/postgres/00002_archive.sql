-- The notification archive (issue 14, NotificationArchive): rows older than 90 days are written to
-- the notification-archive container (one blob per tenant, month and range) and then deleted, with
-- their attachments' metadata and delivery log, by the runtime role in one transaction (the
-- retention engine's Apply, tenant scope: row-level security stays on). Deleting is all the sweep
-- adds; the log stays append-only for the API (no UPDATE is granted).

-- +goose Up
GRANT DELETE ON notifications TO notifications_app;
GRANT DELETE ON notification_attachments TO notifications_app;
GRANT DELETE ON delivery_attempts TO notifications_app;

-- +goose Down
REVOKE DELETE ON delivery_attempts FROM notifications_app;
REVOKE DELETE ON notification_attachments FROM notifications_app;
REVOKE DELETE ON notifications FROM notifications_app;
