-- Azure SQL twin of postgres/00001_identity.sql. Runs as the identity owner (db_owner) after the
-- platform schema (shared/platform: dbo.outbox, dbo.inbox, dbo.idempotency_keys and the predicate
-- function rls.tenant_visible), which this file uses and never creates. The runtime user
-- identity_app gets DML only. Row-level security: the security policy rls.identity_isolation, whose
-- predicate reads SESSION_CONTEXT, written by sqlstore at the start of every transaction.
-- Written and reviewed; not executed on these build machines (no SQL Server here): see README.
--
-- user_key and role_key are the ids' canonical text: SQL Server orders uniqueidentifier by its
-- last six bytes first, not in PostgreSQL's (and the API's) byte order, so lists page on these
-- columns (binary collation: exactly the string order of the lowercase ids, UUIDv7, creation
-- order), and every read selects them instead of the raw uniqueidentifier. email_key decides
-- uniqueness with a binary collation: the service lowercases it, the database's case-insensitive
-- default collation must not fold it again differently.

-- +goose Up

-- The permission catalog: platform-level, seeded here and by later migrations only. identity_app
-- holds SELECT alone (a security policy cannot tell reads from writes on a table without a tenant,
-- so on Azure SQL the grants are the whole guard).
CREATE TABLE dbo.permissions (
    code     varchar(64)   COLLATE Latin1_General_100_BIN2 NOT NULL,
    name     nvarchar(400) NOT NULL,
    category varchar(64)   NOT NULL,
    CONSTRAINT permissions_pkey PRIMARY KEY (code),
    CONSTRAINT permissions_code_check CHECK (code LIKE '[a-z]%.[a-z]%' AND code NOT LIKE '%[^a-z0-9.-]%')
);
INSERT INTO dbo.permissions (code, name, category) VALUES
    ('audit.read',    N'Read the audit trail',             'audit'),
    ('audit.write',   N'Record audit entries',             'audit'),
    ('role.assign',   N'Assign and revoke roles',          'identity'),
    ('role.manage',   N'Create, change and delete roles',  'identity'),
    ('role.read',     N'Read roles and the catalog',       'identity'),
    ('tenant.manage', N'Change the tenant',                'tenants'),
    ('tenant.read',   N'Read the tenant',                  'tenants'),
    ('user.invite',   N'Invite users',                     'identity'),
    ('user.manage',   N'Change, disable and enable users', 'identity'),
    ('user.read',     N'Read users and their permissions', 'identity');

CREATE TABLE dbo.users (
    tenant_id     uniqueidentifier NOT NULL,
    user_id       uniqueidentifier NOT NULL,
    user_key      AS (LOWER(CONVERT(char(36), user_id)) COLLATE Latin1_General_100_BIN2) PERSISTED NOT NULL,
    email         nvarchar(254)    NOT NULL,
    email_key     nvarchar(254)    COLLATE Latin1_General_100_BIN2 NOT NULL,
    display_name  nvarchar(400)    NOT NULL,
    status        varchar(16)      NOT NULL CONSTRAINT users_status_check CHECK (status IN ('Invited', 'Active', 'Disabled')),
    version       bigint           NOT NULL,
    created_at    datetime2(6)     NOT NULL,
    updated_at    datetime2(6)     NOT NULL,
    activated_at  datetime2(6)     NULL,
    last_login_at datetime2(6)     NULL,
    CONSTRAINT users_pkey PRIMARY KEY (tenant_id, user_id),
    CONSTRAINT users_email_key UNIQUE (tenant_id, email_key)
);
CREATE UNIQUE INDEX users_user_key ON dbo.users (tenant_id, user_key);

CREATE TABLE dbo.user_credentials (
    tenant_id     uniqueidentifier NOT NULL,
    user_id       uniqueidentifier NOT NULL,
    password_hash varchar(200)     NOT NULL CONSTRAINT user_credentials_hash_check CHECK (password_hash LIKE '$argon2id$%'),
    updated_at    datetime2(6)     NOT NULL,
    CONSTRAINT user_credentials_pkey PRIMARY KEY (tenant_id, user_id),
    CONSTRAINT user_credentials_user_fk FOREIGN KEY (tenant_id, user_id) REFERENCES dbo.users (tenant_id, user_id)
);

CREATE TABLE dbo.invitations (
    tenant_id      uniqueidentifier NOT NULL,
    invitation_id  uniqueidentifier NOT NULL,
    invitation_key AS (LOWER(CONVERT(char(36), invitation_id)) COLLATE Latin1_General_100_BIN2) PERSISTED NOT NULL,
    user_id        uniqueidentifier NOT NULL,
    token_hash     varbinary(32)    NOT NULL CONSTRAINT invitations_token_hash_check CHECK (DATALENGTH(token_hash) = 32),
    invited_by     nvarchar(200)    NOT NULL,
    created_at     datetime2(6)     NOT NULL,
    expires_at     datetime2(6)     NOT NULL,
    accepted_at    datetime2(6)     NULL,
    revoked_at     datetime2(6)     NULL,
    CONSTRAINT invitations_pkey PRIMARY KEY (tenant_id, invitation_id),
    CONSTRAINT invitations_user_fk FOREIGN KEY (tenant_id, user_id) REFERENCES dbo.users (tenant_id, user_id)
);
CREATE INDEX invitations_user ON dbo.invitations (tenant_id, user_id);

CREATE TABLE dbo.roles (
    tenant_id  uniqueidentifier NOT NULL,
    role_id    uniqueidentifier NOT NULL,
    role_key   AS (LOWER(CONVERT(char(36), role_id)) COLLATE Latin1_General_100_BIN2) PERSISTED NOT NULL,
    code       varchar(63)      COLLATE Latin1_General_100_BIN2 NOT NULL,
    name       nvarchar(400)    NOT NULL,
    is_system  bit              NOT NULL,
    version    bigint           NOT NULL,
    created_at datetime2(6)     NOT NULL,
    updated_at datetime2(6)     NOT NULL,
    CONSTRAINT roles_pkey PRIMARY KEY (tenant_id, role_id),
    CONSTRAINT roles_code_key UNIQUE (tenant_id, code),
    CONSTRAINT roles_code_check CHECK (LEN(code) BETWEEN 2 AND 63 AND code LIKE '[a-z]%' AND code NOT LIKE '%[^a-z0-9-]%')
);
CREATE UNIQUE INDEX roles_role_key ON dbo.roles (tenant_id, role_key);

CREATE TABLE dbo.role_permissions (
    tenant_id       uniqueidentifier NOT NULL,
    role_id         uniqueidentifier NOT NULL,
    permission_code varchar(64)      COLLATE Latin1_General_100_BIN2 NOT NULL,
    CONSTRAINT role_permissions_pkey PRIMARY KEY (tenant_id, role_id, permission_code),
    CONSTRAINT role_permissions_role_fk FOREIGN KEY (tenant_id, role_id) REFERENCES dbo.roles (tenant_id, role_id),
    CONSTRAINT role_permissions_permission_fk FOREIGN KEY (permission_code) REFERENCES dbo.permissions (code)
);

CREATE TABLE dbo.role_assignments (
    tenant_id   uniqueidentifier NOT NULL,
    role_id     uniqueidentifier NOT NULL,
    user_id     uniqueidentifier NOT NULL,
    assigned_by nvarchar(200)    NOT NULL,
    assigned_at datetime2(6)     NOT NULL,
    CONSTRAINT role_assignments_pkey PRIMARY KEY (tenant_id, role_id, user_id),
    CONSTRAINT role_assignments_role_fk FOREIGN KEY (tenant_id, role_id) REFERENCES dbo.roles (tenant_id, role_id),
    CONSTRAINT role_assignments_user_fk FOREIGN KEY (tenant_id, user_id) REFERENCES dbo.users (tenant_id, user_id)
);
CREATE INDEX role_assignments_user ON dbo.role_assignments (tenant_id, user_id, role_id);

CREATE SECURITY POLICY rls.identity_isolation
    ADD FILTER PREDICATE rls.tenant_visible(tenant_id) ON dbo.users,
    ADD BLOCK PREDICATE rls.tenant_visible(tenant_id) ON dbo.users AFTER INSERT,
    ADD BLOCK PREDICATE rls.tenant_visible(tenant_id) ON dbo.users AFTER UPDATE,
    ADD FILTER PREDICATE rls.tenant_visible(tenant_id) ON dbo.user_credentials,
    ADD BLOCK PREDICATE rls.tenant_visible(tenant_id) ON dbo.user_credentials AFTER INSERT,
    ADD BLOCK PREDICATE rls.tenant_visible(tenant_id) ON dbo.user_credentials AFTER UPDATE,
    ADD FILTER PREDICATE rls.tenant_visible(tenant_id) ON dbo.invitations,
    ADD BLOCK PREDICATE rls.tenant_visible(tenant_id) ON dbo.invitations AFTER INSERT,
    ADD BLOCK PREDICATE rls.tenant_visible(tenant_id) ON dbo.invitations AFTER UPDATE,
    ADD FILTER PREDICATE rls.tenant_visible(tenant_id) ON dbo.roles,
    ADD BLOCK PREDICATE rls.tenant_visible(tenant_id) ON dbo.roles AFTER INSERT,
    ADD BLOCK PREDICATE rls.tenant_visible(tenant_id) ON dbo.roles AFTER UPDATE,
    ADD FILTER PREDICATE rls.tenant_visible(tenant_id) ON dbo.role_permissions,
    ADD BLOCK PREDICATE rls.tenant_visible(tenant_id) ON dbo.role_permissions AFTER INSERT,
    ADD FILTER PREDICATE rls.tenant_visible(tenant_id) ON dbo.role_assignments,
    ADD BLOCK PREDICATE rls.tenant_visible(tenant_id) ON dbo.role_assignments AFTER INSERT
    WITH (STATE = ON, SCHEMABINDING = ON);

GRANT SELECT ON dbo.permissions TO identity_app;
GRANT SELECT, INSERT, UPDATE ON dbo.users TO identity_app;
GRANT SELECT, INSERT, UPDATE ON dbo.user_credentials TO identity_app;
GRANT SELECT, INSERT, UPDATE ON dbo.invitations TO identity_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON dbo.roles TO identity_app;
GRANT SELECT, INSERT, DELETE ON dbo.role_permissions TO identity_app;
GRANT SELECT, INSERT, DELETE ON dbo.role_assignments TO identity_app;

-- +goose Down
DROP SECURITY POLICY rls.identity_isolation;
DROP TABLE dbo.role_assignments;
DROP TABLE dbo.role_permissions;
DROP TABLE dbo.roles;
DROP TABLE dbo.invitations;
DROP TABLE dbo.user_credentials;
DROP TABLE dbo.users;
DROP TABLE dbo.permissions;
