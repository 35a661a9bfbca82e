-- Azure SQL twin of postgres/00001_tenants.sql. Runs as the tenants owner (db_owner); the runtime
-- user tenants_app gets DML only. Row-level security: a security policy whose predicate reads
-- SESSION_CONTEXT, written by sqlstore at the start of every transaction.
-- Written and reviewed; not executed on these build machines (no SQL Server here): see README.

-- +goose Up
-- +goose StatementBegin
CREATE SCHEMA rls;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION rls.tenant_visible(@tenant_id uniqueidentifier)
RETURNS TABLE WITH SCHEMABINDING AS
RETURN SELECT 1 AS visible
WHERE CAST(SESSION_CONTEXT(N'platform') AS nvarchar(8)) = N'on'
   OR @tenant_id = TRY_CAST(CAST(SESSION_CONTEXT(N'tenant_id') AS nvarchar(36)) AS uniqueidentifier);
-- +goose StatementEnd

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

-- caller and key compare case-sensitively, as in PostgreSQL: under the database's default
-- (case-insensitive) collation, keys "A" and "a" would collide.
CREATE TABLE dbo.idempotency_keys (
    caller        nvarchar(200)   COLLATE Latin1_General_100_BIN2 NOT NULL,
    [key]         nvarchar(200)   COLLATE Latin1_General_100_BIN2 NOT NULL,
    request_hash  varbinary(32)   NOT NULL,
    status_code   int             NOT NULL,
    response_body varbinary(max)  NOT NULL,
    location      nvarchar(400)   NULL,
    created_at    datetime2(6)    NOT NULL,
    CONSTRAINT idempotency_keys_pkey PRIMARY KEY (caller, [key])
);
CREATE INDEX idempotency_keys_created_at ON dbo.idempotency_keys (created_at);

CREATE TABLE dbo.outbox (
    tenant_id       uniqueidentifier NOT NULL,
    event_id        uniqueidentifier NOT NULL,
    seq             bigint IDENTITY(1, 1) NOT NULL,
    subject         nvarchar(200)    NOT NULL,
    event_type      varchar(100)     NOT NULL,
    envelope        nvarchar(max)    NOT NULL CONSTRAINT outbox_envelope_json CHECK (ISJSON(envelope) = 1),
    created_at      datetime2(6)     NOT NULL,
    attempts        int              NOT NULL CONSTRAINT outbox_attempts_default DEFAULT 0,
    next_attempt_at datetime2(6)     NOT NULL,
    parked_at       datetime2(6)     NULL,
    last_error      varchar(200)     NULL,
    CONSTRAINT outbox_pkey PRIMARY KEY (tenant_id, event_id)
);
CREATE INDEX outbox_pending ON dbo.outbox (seq) WHERE parked_at IS NULL;

CREATE SECURITY POLICY rls.tenant_isolation
    ADD FILTER PREDICATE rls.tenant_visible(tenant_id) ON dbo.tenants,
    ADD BLOCK PREDICATE rls.tenant_visible(tenant_id) ON dbo.tenants AFTER INSERT,
    ADD BLOCK PREDICATE rls.tenant_visible(tenant_id) ON dbo.tenants AFTER UPDATE,
    ADD FILTER PREDICATE rls.tenant_visible(tenant_id) ON dbo.tenant_provisioning_steps,
    ADD BLOCK PREDICATE rls.tenant_visible(tenant_id) ON dbo.tenant_provisioning_steps AFTER INSERT,
    ADD BLOCK PREDICATE rls.tenant_visible(tenant_id) ON dbo.tenant_provisioning_steps AFTER UPDATE,
    ADD FILTER PREDICATE rls.tenant_visible(tenant_id) ON dbo.outbox,
    ADD BLOCK PREDICATE rls.tenant_visible(tenant_id) ON dbo.outbox AFTER INSERT,
    ADD BLOCK PREDICATE rls.tenant_visible(tenant_id) ON dbo.outbox AFTER UPDATE
    WITH (STATE = ON, SCHEMABINDING = ON);

GRANT SELECT, INSERT, UPDATE ON dbo.tenants TO tenants_app;
GRANT SELECT, INSERT, UPDATE ON dbo.tenant_provisioning_steps TO tenants_app;
GRANT SELECT, INSERT, DELETE ON dbo.idempotency_keys TO tenants_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON dbo.outbox TO tenants_app;

-- +goose Down
DROP SECURITY POLICY rls.tenant_isolation;
DROP TABLE dbo.outbox;
DROP TABLE dbo.idempotency_keys;
DROP TABLE dbo.tenant_provisioning_steps;
DROP TABLE dbo.tenants;
DROP FUNCTION rls.tenant_visible;
DROP SCHEMA rls;
