-- Azure SQL twin of postgres/00001_tenants.sql. Runs as the tenants owner (db_owner) after the
-- platform schema (shared/platform: schema rls with the predicate rls.tenant_visible, outbox,
-- inbox, idempotency_keys and their policy and grants); the runtime user tenants_app gets DML only.
-- Row-level security: a security policy whose predicate reads SESSION_CONTEXT, written by sqlstore
-- at the start of every transaction.
-- Written and reviewed; not executed on these build machines (no SQL Server here): see README.
-- Databases migrated before the platform schema existed ran an earlier version of this file, which
-- also created rls, the predicate, idempotency_keys and outbox; the platform set adopts those.

-- +goose Up

-- tenant_key is the id's canonical text. SQL Server orders uniqueidentifier by its last six bytes
-- first, not in PostgreSQL's (and the API's) byte order, so List pages and compares on this column;
-- the binary collation makes its order exactly the string order of the lowercase ids (UUIDv7, so
-- creation order). name is nvarchar(400): the service allows 200 characters, and a character
-- outside the BMP takes two UTF-16 code units.
CREATE TABLE dbo.tenants (
    tenant_id      uniqueidentifier NOT NULL,
    tenant_key     AS (LOWER(CONVERT(char(36), tenant_id)) COLLATE Latin1_General_100_BIN2) PERSISTED NOT NULL,
    name           nvarchar(400)    NOT NULL,
    slug           varchar(63)      NOT NULL,
    status         varchar(16)      NOT NULL CONSTRAINT tenants_status_check CHECK (status IN ('Provisioning', 'Active', 'Suspended', 'Decommissioned')),
    edition_code   varchar(64)      NOT NULL,
    owner_email    nvarchar(254)    NOT NULL,
    version        bigint           NOT NULL CONSTRAINT tenants_version_default DEFAULT 1,
    created_at     datetime2(6)     NOT NULL,
    updated_at     datetime2(6)     NOT NULL,
    provisioned_at datetime2(6)     NULL,
    CONSTRAINT tenants_pkey PRIMARY KEY (tenant_id),
    CONSTRAINT tenants_slug_key UNIQUE (slug),
    CONSTRAINT tenants_slug_check CHECK (LEN(slug) BETWEEN 3 AND 63 AND slug NOT LIKE '%[^a-z0-9-]%' COLLATE Latin1_General_BIN2 AND slug NOT LIKE '-%' AND slug NOT LIKE '%-')
);
CREATE UNIQUE INDEX tenants_tenant_key ON dbo.tenants (tenant_key) INCLUDE (status);

CREATE TABLE dbo.tenant_provisioning_steps (
    tenant_id  uniqueidentifier NOT NULL CONSTRAINT tenant_provisioning_steps_tenant_fk REFERENCES dbo.tenants (tenant_id),
    seq        int              NOT NULL,
    name       varchar(64)      NOT NULL,
    status     varchar(16)      NOT NULL CONSTRAINT tenant_provisioning_steps_status_check CHECK (status IN ('Pending', 'Succeeded', 'Failed')),
    attempts   int              NOT NULL CONSTRAINT tenant_provisioning_steps_attempts_default DEFAULT 0,
    last_error varchar(200)     NULL,
    updated_at datetime2(6)     NOT NULL,
    CONSTRAINT tenant_provisioning_steps_pkey PRIMARY KEY (tenant_id, seq)
);

-- +goose StatementBegin
CREATE SECURITY POLICY rls.tenant_isolation
    ADD FILTER PREDICATE rls.tenant_visible(tenant_id) ON dbo.tenants,
    ADD BLOCK PREDICATE rls.tenant_visible(tenant_id) ON dbo.tenants AFTER INSERT,
    ADD BLOCK PREDICATE rls.tenant_visible(tenant_id) ON dbo.tenants AFTER UPDATE,
    ADD FILTER PREDICATE rls.tenant_visible(tenant_id) ON dbo.tenant_provisioning_steps,
    ADD BLOCK PREDICATE rls.tenant_visible(tenant_id) ON dbo.tenant_provisioning_steps AFTER INSERT,
    ADD BLOCK PREDICATE rls.tenant_visible(tenant_id) ON dbo.tenant_provisioning_steps AFTER UPDATE
    WITH (STATE = ON, SCHEMABINDING = ON);
-- +goose StatementEnd

GRANT SELECT, INSERT, UPDATE ON dbo.tenants TO tenants_app;
GRANT SELECT, INSERT, UPDATE ON dbo.tenant_provisioning_steps TO tenants_app;

-- +goose Down
DROP SECURITY POLICY rls.tenant_isolation;
DROP TABLE dbo.tenant_provisioning_steps;
DROP TABLE dbo.tenants;
