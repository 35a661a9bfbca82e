-- Azure SQL twin of postgres/00001_config.sql. Runs as the config owner (db_owner) after the
-- platform schema (shared/platform: dbo.outbox, dbo.inbox, dbo.idempotency_keys and the predicate
-- function rls.tenant_visible), which this file uses and never creates. The runtime user
-- config_app gets DML only. Row-level security: the security policy rls.config_isolation on the
-- tenant-owned tables. The platform-level tables (definitions, generation) carry no tenant: a
-- security policy cannot tell the platform scope's writes from a tenant's on them, so on Azure
-- SQL the service's platform-admin check and the grants are their guard (PostgreSQL also polices
-- their writes). Written and reviewed; not executed on these build machines (no SQL Server here).
-- Keys use a binary collation: exactly the byte order the API pages and compares in.

-- +goose Up

CREATE TABLE dbo.flag_definitions (
    flag_key   varchar(128)   COLLATE Latin1_General_100_BIN2 NOT NULL,
    flag_type  varchar(16)    NOT NULL,
    definition nvarchar(max)  NOT NULL,
    tenant_overridable bit    NOT NULL,
    version    bigint         NOT NULL,
    updated_at datetimeoffset NOT NULL,
    updated_by nvarchar(200)  NOT NULL,
    CONSTRAINT flag_definitions_pkey PRIMARY KEY (flag_key),
    CONSTRAINT flag_definitions_key_check CHECK (flag_key NOT LIKE '%[^A-Za-z0-9._-]%' AND len(flag_key) >= 1),
    CONSTRAINT flag_definitions_type_check CHECK (flag_type IN ('boolean', 'string', 'number', 'object')),
    CONSTRAINT flag_definitions_json_check CHECK (ISJSON(definition) = 1)
);

CREATE TABLE dbo.flag_generation (
    id         smallint NOT NULL,
    generation bigint   NOT NULL,
    CONSTRAINT flag_generation_pkey PRIMARY KEY (id),
    CONSTRAINT flag_generation_one_row CHECK (id = 1)
);
INSERT INTO dbo.flag_generation (id, generation) VALUES (1, 1);

-- set_by_platform and the cascading foreign key: see the PostgreSQL twin. The security policy
-- has no BEFORE DELETE block predicate, and its filter predicate does not limit the rows a
-- cascading referential action removes (the action is the engine's, not a user's statement), so
-- deleting a definition removes every tenant's overrides of it.
CREATE TABLE dbo.flag_overrides (
    tenant_id       uniqueidentifier NOT NULL,
    flag_key        varchar(128)     COLLATE Latin1_General_100_BIN2 NOT NULL,
    variant         nvarchar(128)    NULL,
    disabled        bit              NOT NULL,
    set_by_platform bit              NOT NULL,
    version         bigint           NOT NULL,
    updated_at      datetimeoffset   NOT NULL,
    updated_by      nvarchar(200)    NOT NULL,
    CONSTRAINT flag_overrides_pkey PRIMARY KEY (tenant_id, flag_key),
    CONSTRAINT flag_overrides_definition_fkey FOREIGN KEY (flag_key)
        REFERENCES dbo.flag_definitions (flag_key) ON DELETE CASCADE
);
CREATE INDEX flag_overrides_key ON dbo.flag_overrides (flag_key);

CREATE TABLE dbo.setting_definitions (
    setting_key   varchar(128)   COLLATE Latin1_General_100_BIN2 NOT NULL,
    setting_type  varchar(16)    NOT NULL,
    default_value nvarchar(max)  NOT NULL,
    tenant_writable bit          NOT NULL,
    version       bigint         NOT NULL,
    updated_at    datetimeoffset NOT NULL,
    updated_by    nvarchar(200)  NOT NULL,
    CONSTRAINT setting_definitions_pkey PRIMARY KEY (setting_key),
    CONSTRAINT setting_definitions_key_type UNIQUE (setting_key, setting_type),
    CONSTRAINT setting_definitions_key_check CHECK (setting_key NOT LIKE '%[^A-Za-z0-9._-]%' AND len(setting_key) >= 1),
    CONSTRAINT setting_definitions_type_check CHECK (setting_type IN ('boolean', 'string', 'number', 'object')),
    CONSTRAINT setting_definitions_json_check CHECK (ISJSON(default_value) = 1)
);

-- A tenant's value pins its definition's type (see the PostgreSQL twin): the foreign key refuses
-- a type change while any tenant holds a value.
CREATE TABLE dbo.settings (
    tenant_id    uniqueidentifier NOT NULL,
    setting_key  varchar(128)     COLLATE Latin1_General_100_BIN2 NOT NULL,
    setting_type varchar(16)      NOT NULL,
    value        nvarchar(max)    NOT NULL,
    set_by_platform bit           NOT NULL,
    version      bigint           NOT NULL,
    updated_at   datetimeoffset   NOT NULL,
    updated_by   nvarchar(200)    NOT NULL,
    CONSTRAINT settings_pkey PRIMARY KEY (tenant_id, setting_key),
    CONSTRAINT settings_json_check CHECK (ISJSON(value) = 1),
    CONSTRAINT settings_definition_fkey FOREIGN KEY (setting_key, setting_type)
        REFERENCES dbo.setting_definitions (setting_key, setting_type)
);
CREATE INDEX settings_definition ON dbo.settings (setting_key, setting_type);

-- +goose StatementBegin
CREATE SECURITY POLICY rls.config_isolation
    ADD FILTER PREDICATE rls.tenant_visible(tenant_id) ON dbo.flag_overrides,
    ADD BLOCK PREDICATE rls.tenant_visible(tenant_id) ON dbo.flag_overrides AFTER INSERT,
    ADD BLOCK PREDICATE rls.tenant_visible(tenant_id) ON dbo.flag_overrides AFTER UPDATE,
    ADD FILTER PREDICATE rls.tenant_visible(tenant_id) ON dbo.settings,
    ADD BLOCK PREDICATE rls.tenant_visible(tenant_id) ON dbo.settings AFTER INSERT,
    ADD BLOCK PREDICATE rls.tenant_visible(tenant_id) ON dbo.settings AFTER UPDATE
    WITH (STATE = ON, SCHEMABINDING = ON);
-- +goose StatementEnd

GRANT SELECT, INSERT, UPDATE, DELETE ON dbo.flag_definitions TO config_app;
GRANT SELECT, UPDATE ON dbo.flag_generation TO config_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON dbo.flag_overrides TO config_app;
GRANT SELECT, INSERT, UPDATE ON dbo.setting_definitions TO config_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON dbo.settings TO config_app;

-- +goose Down
DROP SECURITY POLICY rls.config_isolation;
DROP TABLE dbo.settings;
DROP TABLE dbo.setting_definitions;
DROP TABLE dbo.flag_overrides;
DROP TABLE dbo.flag_generation;
DROP TABLE dbo.flag_definitions;
