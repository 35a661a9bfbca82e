-- Twin of postgres/00002: the drainer's per-aggregate lookups. Not run here (no SQL Server).

-- +goose Up
CREATE INDEX outbox_aggregate ON dbo.outbox (tenant_id, subject, seq);

-- +goose Down
DROP INDEX outbox_aggregate ON dbo.outbox;
