-- The retention engine's platform sweeps (shared/retention, records.go): the inbox keeps event ids
-- longer than Service Bus's duplicate-detection window (default 7 days), then InboxPrune deletes
-- them in bounded batches, oldest first, by this index; the runtime role gets DELETE for it
-- (idempotency_keys already has both for IdempotencyPrune).

-- +goose Up
CREATE INDEX IF NOT EXISTS inbox_received_at ON inbox (received_at);
GRANT DELETE ON inbox TO {{runtime_role}};

-- +goose Down
REVOKE DELETE ON inbox FROM {{runtime_role}};
DROP INDEX IF EXISTS inbox_received_at;
