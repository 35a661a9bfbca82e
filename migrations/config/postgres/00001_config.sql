-- Configuration: platform-level flag definitions and setting definitions (with their platform
-- defaults), and per tenant its flag overrides and setting values. Runs as config_owner after the
-- platform schema (shared/platform: outbox, inbox, idempotency_keys and the row-level-security
-- helper spine_tenant_visible), which this file uses and never creates. The runtime role
-- config_app gets DML only and is bound by row-level security (FORCE applies it to the owner too).

-- +goose Up

-- Flag definitions: platform-level (no tenant), read by every tenant's evaluation, written by
-- platform admins only. definition is the shared/flags Definition as JSON (variants, default
-- variant, rules, kill switch); the service validates it before writing. Row-level security:
-- every scope reads; only the platform scope (spine_tenant_visible(NULL) holds in it alone)
-- inserts, updates or deletes. tenant_overridable: whether a tenant may write (or delete) its own
-- override of the flag; platform admins always may.
CREATE TABLE flag_definitions (
    flag_key           text        NOT NULL CHECK (flag_key ~ '^[A-Za-z0-9._-]{1,128}$'),
    flag_type          text        NOT NULL CHECK (flag_type IN ('boolean', 'string', 'number', 'object')),
    definition         jsonb       NOT NULL,
    tenant_overridable boolean     NOT NULL,
    version            bigint      NOT NULL,
    updated_at         timestamptz NOT NULL,
    updated_by         text        NOT NULL CHECK (char_length(updated_by) BETWEEN 1 AND 200),
    CONSTRAINT flag_definitions_pkey PRIMARY KEY (flag_key)
);

-- The generation of the platform flag definitions: one row, bumped in the transaction of every
-- definition change. A tenant's compiled flag set is cached under this generation
-- ({t:<tenant>}:config:flags:v<generation>), so a platform change retires every tenant's copy at once.
CREATE TABLE flag_generation (
    id         smallint NOT NULL CHECK (id = 1),
    generation bigint   NOT NULL,
    CONSTRAINT flag_generation_pkey PRIMARY KEY (id)
);
INSERT INTO flag_generation (id, generation) VALUES (1, 1);

-- A tenant's override of a flag: pin a variant, or the tenant's kill switch. set_by_platform: a
-- platform admin wrote it (evaluation applies such an override whatever the definition says; one a
-- tenant wrote only while its definition is tenant_overridable). The foreign key removes a
-- definition's overrides in every tenant with it, and refuses an override whose definition was
-- deleted while the override was being written (PutOverride reads the definition unlocked): no
-- orphan survives to come back when the key is defined again. The cascade and the check run as
-- referential-integrity triggers, as the table owner with row-level security not applied, so a
-- platform-scope delete reaches every tenant's rows (TestPostgresStore_Conformance).
CREATE TABLE flag_overrides (
    tenant_id       uuid        NOT NULL,
    flag_key        text        NOT NULL CHECK (flag_key ~ '^[A-Za-z0-9._-]{1,128}$'),
    variant         text        CHECK (char_length(variant) BETWEEN 1 AND 128),
    disabled        boolean     NOT NULL,
    set_by_platform boolean     NOT NULL,
    version         bigint      NOT NULL,
    updated_at      timestamptz NOT NULL,
    updated_by      text        NOT NULL CHECK (char_length(updated_by) BETWEEN 1 AND 200),
    CONSTRAINT flag_overrides_pkey PRIMARY KEY (tenant_id, flag_key),
    CONSTRAINT flag_overrides_definition_fkey FOREIGN KEY (flag_key)
        REFERENCES flag_definitions (flag_key) ON DELETE CASCADE
);
-- The cascade's lookup when a definition is deleted.
CREATE INDEX flag_overrides_key ON flag_overrides (flag_key);

-- Setting definitions: platform-level, the key's type and its platform default value (JSON of
-- the type). Read by every scope, written by the platform scope only. The (key, type) pair is what
-- tenants' values refer to: a type change while any tenant holds a value fails its foreign key
-- (the service answers 409 setting-type-in-use), even racing the tenant's write. tenant_writable:
-- whether a tenant may write its own value; platform admins always may.
CREATE TABLE setting_definitions (
    setting_key     text        NOT NULL CHECK (setting_key ~ '^[A-Za-z0-9._-]{1,128}$'),
    setting_type    text        NOT NULL CHECK (setting_type IN ('boolean', 'string', 'number', 'object')),
    default_value   jsonb       NOT NULL,
    tenant_writable boolean     NOT NULL,
    version         bigint      NOT NULL,
    updated_at      timestamptz NOT NULL,
    updated_by      text        NOT NULL CHECK (char_length(updated_by) BETWEEN 1 AND 200),
    CONSTRAINT setting_definitions_pkey PRIMARY KEY (setting_key),
    CONSTRAINT setting_definitions_key_type UNIQUE (setting_key, setting_type)
);

-- A tenant's value of a setting, of the definition's type (the service checks the value; the
-- foreign key pins the definition's type while the value exists). set_by_platform: a platform
-- admin wrote it (it applies whatever the definition says; one a tenant wrote only while the
-- definition is tenant_writable).
CREATE TABLE settings (
    tenant_id       uuid        NOT NULL,
    setting_key     text        NOT NULL CHECK (setting_key ~ '^[A-Za-z0-9._-]{1,128}$'),
    setting_type    text        NOT NULL,
    value           jsonb       NOT NULL,
    set_by_platform boolean     NOT NULL,
    version         bigint      NOT NULL,
    updated_at      timestamptz NOT NULL,
    updated_by      text        NOT NULL CHECK (char_length(updated_by) BETWEEN 1 AND 200),
    CONSTRAINT settings_pkey PRIMARY KEY (tenant_id, setting_key),
    CONSTRAINT settings_definition_fkey FOREIGN KEY (setting_key, setting_type)
        REFERENCES setting_definitions (setting_key, setting_type)
);
-- The foreign key's check when a definition's type changes.
CREATE INDEX settings_definition ON settings (setting_key, setting_type);

ALTER TABLE flag_definitions ENABLE ROW LEVEL SECURITY;
ALTER TABLE flag_definitions FORCE ROW LEVEL SECURITY;
CREATE POLICY everyone_reads ON flag_definitions FOR SELECT USING (true);
CREATE POLICY platform_inserts ON flag_definitions FOR INSERT WITH CHECK (spine_tenant_visible(NULL));
CREATE POLICY platform_updates ON flag_definitions FOR UPDATE
    USING (spine_tenant_visible(NULL)) WITH CHECK (spine_tenant_visible(NULL));
CREATE POLICY platform_deletes ON flag_definitions FOR DELETE USING (spine_tenant_visible(NULL));
ALTER TABLE flag_generation ENABLE ROW LEVEL SECURITY;
ALTER TABLE flag_generation FORCE ROW LEVEL SECURITY;
CREATE POLICY everyone_reads ON flag_generation FOR SELECT USING (true);
CREATE POLICY platform_updates ON flag_generation FOR UPDATE
    USING (spine_tenant_visible(NULL)) WITH CHECK (spine_tenant_visible(NULL));
ALTER TABLE setting_definitions ENABLE ROW LEVEL SECURITY;
ALTER TABLE setting_definitions FORCE ROW LEVEL SECURITY;
CREATE POLICY everyone_reads ON setting_definitions FOR SELECT USING (true);
CREATE POLICY platform_inserts ON setting_definitions FOR INSERT WITH CHECK (spine_tenant_visible(NULL));
CREATE POLICY platform_updates ON setting_definitions FOR UPDATE
    USING (spine_tenant_visible(NULL)) WITH CHECK (spine_tenant_visible(NULL));
ALTER TABLE flag_overrides ENABLE ROW LEVEL SECURITY;
ALTER TABLE flag_overrides FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON flag_overrides
    USING (spine_tenant_visible(tenant_id)) WITH CHECK (spine_tenant_visible(tenant_id));
ALTER TABLE settings ENABLE ROW LEVEL SECURITY;
ALTER TABLE settings FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON settings
    USING (spine_tenant_visible(tenant_id)) WITH CHECK (spine_tenant_visible(tenant_id));

GRANT SELECT, INSERT, UPDATE, DELETE ON flag_definitions, flag_overrides, settings TO config_app;
GRANT SELECT, UPDATE ON flag_generation TO config_app;
GRANT SELECT, INSERT, UPDATE ON setting_definitions TO config_app;

-- +goose Down
DROP TABLE settings;
DROP TABLE setting_definitions;
DROP TABLE flag_overrides;
DROP TABLE flag_generation;
DROP TABLE flag_definitions;
