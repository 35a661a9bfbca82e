-- Empty on purpose, like postgres/00002. This migration added outbox_aggregate to tenants'
-- outbox; the outbox and all its indexes now belong to the platform schema (shared/platform),
-- which runs first. The version stays so databases that applied it keep a consistent history.

-- +goose Up

-- +goose Down
