-- Azure SQL twin of postgres/00001_integrations.sql. Runs as the integrations owner (db_owner)
-- after the platform schema (dbo.outbox, dbo.inbox, dbo.idempotency_keys, rls.tenant_visible),
-- which this file uses and never creates. The runtime user integrations_app gets SELECT, INSERT and
-- UPDATE only (a deletion is soft). Written and reviewed; not executed on these build machines (no
-- SQL Server here): see README.
--
-- connection_key is the id's canonical text (binary collation), on which lists page: SQL Server
-- orders uniqueidentifier differently from PostgreSQL and the API. No column holds a secret value.

-- +goose Up

CREATE TABLE dbo.connections (
    tenant_id        uniqueidentifier NOT NULL,
    connection_id    uniqueidentifier NOT NULL,
    connection_key   AS (LOWER(CONVERT(char(36), connection_id)) COLLATE Latin1_General_100_BIN2) PERSISTED NOT NULL,
    connector_type   varchar(32)      COLLATE Latin1_General_100_BIN2 NOT NULL
                     CONSTRAINT connections_type_check CHECK (connector_type LIKE '[a-z]%' AND connector_type NOT LIKE '%[^a-z0-9-]%'),
    name             nvarchar(200)    NOT NULL CONSTRAINT connections_name_check CHECK (LEN(name) >= 1),
    settings         nvarchar(max)    NOT NULL CONSTRAINT connections_settings_check CHECK (ISJSON(settings) = 1),
    secret_vault     nvarchar(400)    NOT NULL CONSTRAINT connections_vault_check CHECK (LEN(secret_vault) >= 1),
    secret_name      varchar(127)     COLLATE Latin1_General_100_BIN2 NOT NULL
                     CONSTRAINT connections_secret_name_check CHECK (LEN(secret_name) >= 1 AND secret_name NOT LIKE '%[^0-9A-Za-z-]%'),
    secret_version   varchar(64)      COLLATE Latin1_General_100_BIN2 NOT NULL
                     CONSTRAINT connections_secret_version_check CHECK (LEN(secret_version) >= 1 AND secret_version NOT LIKE '%[^0-9A-Za-z]%'),
    status           varchar(16)      NOT NULL CONSTRAINT connections_status_check CHECK (status IN ('Untested', 'Healthy', 'Failing', 'Disabled')),
    last_tested_at   datetime2(6)     NULL,
    last_sync_at     datetime2(6)     NULL,
    last_error_class varchar(40)      NULL CONSTRAINT connections_error_class_check CHECK (last_error_class NOT LIKE '%[^a-z0-9-]%'),
    version          bigint           NOT NULL,
    created_at       datetime2(6)     NOT NULL,
    updated_at       datetime2(6)     NOT NULL,
    deleted_at       datetime2(6)     NULL,
    CONSTRAINT connections_pkey PRIMARY KEY (tenant_id, connection_id)
);
CREATE UNIQUE INDEX connections_connection_key ON dbo.connections (tenant_id, connection_key);

-- +goose StatementBegin
CREATE SECURITY POLICY rls.integrations_isolation
    ADD FILTER PREDICATE rls.tenant_visible(tenant_id) ON dbo.connections,
    ADD BLOCK PREDICATE rls.tenant_visible(tenant_id) ON dbo.connections AFTER INSERT,
    ADD BLOCK PREDICATE rls.tenant_visible(tenant_id) ON dbo.connections AFTER UPDATE
    WITH (STATE = ON, SCHEMABINDING = ON);
-- +goose StatementEnd

GRANT SELECT, INSERT, UPDATE ON dbo.connections TO integrations_app;

-- +goose Down

DROP SECURITY POLICY rls.integrations_isolation;
DROP TABLE dbo.connections;
