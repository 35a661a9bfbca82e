-- The IntegrationPurge sweep (handlers/integrations/purge.go) deletes a soft-deleted connection's
-- row 30 days after deleted_at: integrations_app gets DELETE on connections for it alone, bounded
-- by a restrictive policy to soft-deleted rows (a live connection cannot be deleted: the API still
-- deletes softly). The sweep's order gets its indexes: a tenant's deleted connections by
-- (deleted_at, connection_id), and the tenants with a due one. Runs as integrations_owner.

-- +goose Up
CREATE INDEX connections_deleted ON connections (tenant_id, deleted_at, connection_id) WHERE deleted_at IS NOT NULL;
CREATE INDEX connections_purge_due ON connections (deleted_at, tenant_id) WHERE deleted_at IS NOT NULL;
CREATE POLICY purge_soft_deleted_only ON connections AS RESTRICTIVE FOR DELETE USING (deleted_at IS NOT NULL);
GRANT DELETE ON connections TO integrations_app;

-- +goose Down
REVOKE DELETE ON connections FROM integrations_app;
DROP POLICY purge_soft_deleted_only ON connections;
DROP INDEX connections_purge_due;
DROP INDEX connections_deleted;
