-- The drainer reads each aggregate's rows in order: the claim's NOT EXISTS and the head check
-- both look rows up by (tenant_id, subject, seq).

-- +goose Up
CREATE INDEX outbox_aggregate ON outbox (tenant_id, subject, seq);

-- +goose Down
DROP INDEX outbox_aggregate;
