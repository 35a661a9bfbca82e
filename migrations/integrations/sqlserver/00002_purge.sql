-- Azure SQL twin of postgres/00002_purge.sql: DELETE on dbo.connections for the IntegrationPurge
-- sweep, blocked (BEFORE DELETE) for a live connection; the sweep pages on (deleted_at,
-- connection_key). Written and reviewed; not executed on these build machines (no SQL Server here).

-- +goose Up
CREATE INDEX connections_deleted ON dbo.connections (tenant_id, deleted_at, connection_key);
CREATE INDEX connections_purge_due ON dbo.connections (deleted_at) INCLUDE (tenant_id);
-- +goose StatementBegin
EXEC (N'CREATE FUNCTION rls.integrations_soft_deleted(@deleted_at datetime2(6))
RETURNS TABLE WITH SCHEMABINDING AS
RETURN SELECT 1 AS purgeable WHERE @deleted_at IS NOT NULL');
-- +goose StatementEnd
-- +goose StatementBegin
ALTER SECURITY POLICY rls.integrations_isolation
    ADD BLOCK PREDICATE rls.integrations_soft_deleted(deleted_at) ON dbo.connections BEFORE DELETE;
-- +goose StatementEnd
GRANT DELETE ON dbo.connections TO integrations_app;

-- +goose Down
REVOKE DELETE ON dbo.connections TO integrations_app; -- REVOKE takes TO as FROM
-- +goose StatementBegin
ALTER SECURITY POLICY rls.integrations_isolation
    DROP BLOCK PREDICATE ON dbo.connections BEFORE DELETE;
-- +goose StatementEnd
DROP FUNCTION rls.integrations_soft_deleted;
DROP INDEX connections_purge_due ON dbo.connections;
DROP INDEX connections_deleted ON dbo.connections;
