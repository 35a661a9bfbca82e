-- Azure SQL twin of postgres/00001_authz.sql. Runs as the authz owner (db_owner) after the platform
-- schema (shared/platform: dbo.outbox, dbo.inbox, dbo.idempotency_keys and the predicate function
-- rls.tenant_visible), which this file uses and never creates. The runtime user authz_app gets DML
-- only. Row-level security: the security policy rls.authz_isolation, whose predicate reads
-- SESSION_CONTEXT, written by sqlstore at the start of every transaction.
-- Written and reviewed; not executed on these build machines (no SQL Server here): see README.
--
-- client_key is the client id's canonical text: SQL Server orders uniqueidentifier by its last six
-- bytes first, not in PostgreSQL's (and the API's) byte order, so the client list pages on it
-- (binary collation: the string order of the lowercase ids). Every read selects ids as text. JSON
-- lists are nvarchar(max) checked by ISJSON; hashes are binary SHA-256 (32 bytes).

-- +goose Up

CREATE TABLE dbo.clients (
    tenant_id                 uniqueidentifier NOT NULL,
    client_id                 uniqueidentifier NOT NULL,
    client_key                AS (LOWER(CONVERT(char(36), client_id)) COLLATE Latin1_General_100_BIN2) PERSISTED NOT NULL,
    name                      nvarchar(400)    NOT NULL,
    client_type               varchar(16)      NOT NULL CONSTRAINT clients_type_check CHECK (client_type IN ('confidential', 'public')),
    redirect_uris             nvarchar(max)    NOT NULL CONSTRAINT clients_redirect_uris_json CHECK (ISJSON(redirect_uris, ARRAY) = 1),
    post_logout_redirect_uris nvarchar(max)    NOT NULL CONSTRAINT clients_post_logout_json CHECK (ISJSON(post_logout_redirect_uris, ARRAY) = 1),
    grant_types               nvarchar(max)    NOT NULL CONSTRAINT clients_grant_types_json CHECK (ISJSON(grant_types, ARRAY) = 1),
    scopes                    nvarchar(max)    NOT NULL CONSTRAINT clients_scopes_json CHECK (ISJSON(scopes, ARRAY) = 1),
    first_party               bit              NOT NULL,
    platform_admin            bit              NOT NULL,
    secret_hash               varbinary(32)    NULL CONSTRAINT clients_secret_hash_check CHECK (DATALENGTH(secret_hash) = 32),
    secret_rotated_at         datetime2(6)     NULL,
    version                   bigint           NOT NULL,
    created_at                datetime2(6)     NOT NULL,
    updated_at                datetime2(6)     NOT NULL,
    deleted_at                datetime2(6)     NULL,
    CONSTRAINT clients_pkey PRIMARY KEY (tenant_id, client_id),
    CONSTRAINT clients_public_secret_check CHECK (client_type = 'confidential' OR secret_hash IS NULL),
    CONSTRAINT clients_platform_admin_check CHECK (platform_admin = 0 OR tenant_id = '00000000-0000-0000-0000-000000000000')
);
CREATE UNIQUE INDEX clients_client_key ON dbo.clients (tenant_id, client_key);

-- Platform-level (no security policy, no secret): the tenant of every client id.
CREATE TABLE dbo.client_directory (
    client_id uniqueidentifier NOT NULL,
    tenant_id uniqueidentifier NOT NULL,
    CONSTRAINT client_directory_pkey PRIMARY KEY (client_id)
);

CREATE TABLE dbo.auth_codes (
    tenant_id       uniqueidentifier NOT NULL,
    code_hash       varbinary(32)    NOT NULL CONSTRAINT auth_codes_hash_check CHECK (DATALENGTH(code_hash) = 32),
    auth_request_id nvarchar(200)    COLLATE Latin1_General_100_BIN2 NOT NULL,
    client_id       uniqueidentifier NOT NULL,
    subject         nvarchar(400)    COLLATE Latin1_General_100_BIN2 NOT NULL,
    request         nvarchar(max)    NOT NULL CONSTRAINT auth_codes_request_json CHECK (ISJSON(request, OBJECT) = 1),
    family_id       uniqueidentifier NOT NULL,
    created_at      datetime2(6)     NOT NULL,
    expires_at      datetime2(6)     NOT NULL,
    redeemed_at     datetime2(6)     NULL,
    reused_at       datetime2(6)     NULL,
    CONSTRAINT auth_codes_pkey PRIMARY KEY (tenant_id, code_hash)
);
CREATE INDEX auth_codes_family ON dbo.auth_codes (tenant_id, family_id);

CREATE TABLE dbo.refresh_tokens (
    tenant_id   uniqueidentifier NOT NULL,
    token_id    uniqueidentifier NOT NULL,
    token_hash  varbinary(32)    NOT NULL CONSTRAINT refresh_tokens_hash_check CHECK (DATALENGTH(token_hash) = 32),
    family_id   uniqueidentifier NOT NULL,
    client_id   uniqueidentifier NOT NULL,
    subject     nvarchar(400)    COLLATE Latin1_General_100_BIN2 NOT NULL,
    scopes      nvarchar(max)    NOT NULL CONSTRAINT refresh_tokens_scopes_json CHECK (ISJSON(scopes, ARRAY) = 1),
    audience    nvarchar(max)    NOT NULL CONSTRAINT refresh_tokens_audience_json CHECK (ISJSON(audience, ARRAY) = 1),
    auth_time   datetime2(6)     NOT NULL,
    amr         nvarchar(max)    NOT NULL CONSTRAINT refresh_tokens_amr_json CHECK (ISJSON(amr, ARRAY) = 1),
    created_at  datetime2(6)     NOT NULL,
    expires_at  datetime2(6)     NOT NULL,
    consumed_at datetime2(6)     NULL,
    replaced_by uniqueidentifier NULL,
    revoked_at  datetime2(6)     NULL,
    CONSTRAINT refresh_tokens_pkey PRIMARY KEY (tenant_id, token_id),
    CONSTRAINT refresh_tokens_hash_key UNIQUE (tenant_id, token_hash)
);
CREATE INDEX refresh_tokens_family ON dbo.refresh_tokens (tenant_id, family_id);
CREATE INDEX refresh_tokens_client ON dbo.refresh_tokens (tenant_id, client_id);
CREATE INDEX refresh_tokens_subject ON dbo.refresh_tokens (tenant_id, subject);

CREATE TABLE dbo.revoked_tokens (
    tenant_id  uniqueidentifier NOT NULL,
    jti        uniqueidentifier NOT NULL,
    client_id  uniqueidentifier NOT NULL,
    expires_at datetime2(6)     NOT NULL,
    CONSTRAINT revoked_tokens_pkey PRIMARY KEY (tenant_id, jti)
);

CREATE TABLE dbo.consents (
    tenant_id  uniqueidentifier NOT NULL,
    subject    nvarchar(400)    COLLATE Latin1_General_100_BIN2 NOT NULL,
    client_id  uniqueidentifier NOT NULL,
    scopes     nvarchar(max)    NOT NULL CONSTRAINT consents_scopes_json CHECK (ISJSON(scopes, ARRAY) = 1),
    granted_at datetime2(6)     NOT NULL,
    CONSTRAINT consents_pkey PRIMARY KEY (tenant_id, subject, client_id)
);

-- Pruning: every batch is a range of one of these indexes, in their order.
CREATE INDEX auth_codes_expires ON dbo.auth_codes (expires_at, tenant_id, code_hash);
CREATE INDEX refresh_tokens_expires ON dbo.refresh_tokens (expires_at, tenant_id, token_id);
CREATE INDEX revoked_tokens_expires ON dbo.revoked_tokens (expires_at, tenant_id, jti);

-- +goose StatementBegin
CREATE SECURITY POLICY rls.authz_isolation
    ADD FILTER PREDICATE rls.tenant_visible(tenant_id) ON dbo.clients,
    ADD BLOCK PREDICATE rls.tenant_visible(tenant_id) ON dbo.clients AFTER INSERT,
    ADD BLOCK PREDICATE rls.tenant_visible(tenant_id) ON dbo.clients AFTER UPDATE,
    ADD FILTER PREDICATE rls.tenant_visible(tenant_id) ON dbo.auth_codes,
    ADD BLOCK PREDICATE rls.tenant_visible(tenant_id) ON dbo.auth_codes AFTER INSERT,
    ADD BLOCK PREDICATE rls.tenant_visible(tenant_id) ON dbo.auth_codes AFTER UPDATE,
    ADD FILTER PREDICATE rls.tenant_visible(tenant_id) ON dbo.refresh_tokens,
    ADD BLOCK PREDICATE rls.tenant_visible(tenant_id) ON dbo.refresh_tokens AFTER INSERT,
    ADD BLOCK PREDICATE rls.tenant_visible(tenant_id) ON dbo.refresh_tokens AFTER UPDATE,
    ADD FILTER PREDICATE rls.tenant_visible(tenant_id) ON dbo.revoked_tokens,
    ADD BLOCK PREDICATE rls.tenant_visible(tenant_id) ON dbo.revoked_tokens AFTER INSERT,
    ADD FILTER PREDICATE rls.tenant_visible(tenant_id) ON dbo.consents,
    ADD BLOCK PREDICATE rls.tenant_visible(tenant_id) ON dbo.consents AFTER INSERT,
    ADD BLOCK PREDICATE rls.tenant_visible(tenant_id) ON dbo.consents AFTER UPDATE
    WITH (STATE = ON, SCHEMABINDING = ON);
-- +goose StatementEnd

GRANT SELECT, INSERT, UPDATE ON dbo.clients TO authz_app;
GRANT SELECT, INSERT ON dbo.client_directory TO authz_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON dbo.auth_codes TO authz_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON dbo.refresh_tokens TO authz_app;
GRANT SELECT, INSERT, DELETE ON dbo.revoked_tokens TO authz_app;
GRANT SELECT, INSERT, UPDATE ON dbo.consents TO authz_app;

-- +goose Down
DROP SECURITY POLICY rls.authz_isolation;
DROP TABLE dbo.consents;
DROP TABLE dbo.revoked_tokens;
DROP TABLE dbo.refresh_tokens;
DROP TABLE dbo.auth_codes;
DROP TABLE dbo.client_directory;
DROP TABLE dbo.clients;
