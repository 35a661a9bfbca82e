-- Empty on purpose. This migration added outbox_aggregate (tenant_id, subject, seq), the drainer's
-- per-aggregate index, to tenants' outbox. The outbox and all its indexes now belong to the platform
-- schema (shared/platform), which runs first; the version stays so databases that applied it keep
-- a consistent history, and applying it changes nothing.

-- +goose Up

-- +goose Down
