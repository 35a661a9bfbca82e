-- The retention engine's platform sweeps (shared/retention, records.go): the inbox keeps event ids
-- longer than Service Bus's duplicate-detection window (default 7 days), then InboxPrune deletes
-- them in bounded batches, oldest first, by this index; the runtime role gets DELETE for it
-- (dbo.idempotency_keys already has both for IdempotencyPrune).

-- +goose Up
-- +goose StatementBegin
IF NOT EXISTS (SELECT 1 FROM sys.indexes WHERE object_id = OBJECT_ID(N'dbo.inbox') AND name = N'inbox_received_at')
    CREATE INDEX inbox_received_at ON dbo.inbox (received_at);
-- +goose StatementEnd
GRANT DELETE ON dbo.inbox TO {{runtime_role}};

-- +goose Down
REVOKE DELETE ON dbo.inbox FROM {{runtime_role}};
-- +goose StatementBegin
IF EXISTS (SELECT 1 FROM sys.indexes WHERE object_id = OBJECT_ID(N'dbo.inbox') AND name = N'inbox_received_at')
    DROP INDEX inbox_received_at ON dbo.inbox;
-- +goose StatementEnd
