-- Tenant registry and provisioning steps. Runs as tenants_owner after the platform schema
-- (shared/platform: the RLS helper spine_tenant_visible, outbox, inbox, idempotency_keys, their
-- grants); the runtime role tenants_app gets DML only and is bound by row-level security: FORCE ROW
-- LEVEL SECURITY applies the policies to the table owner too.
--
-- Databases migrated before the platform schema existed ran an earlier version of this file, which
-- also created the RLS helper, outbox and idempotency_keys; the platform set adopts those
-- (migrations/testdata/pre-platform keeps that version for the upgrade test).

-- +goose Up
CREATE TABLE tenants (
    tenant_id      uuid        NOT NULL,
    name           text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    slug           text        NOT NULL CHECK (slug ~ '^[a-z0-9](?:[a-z0-9-]{1,61})[a-z0-9]$'),
    status         text        NOT NULL CHECK (status IN ('Provisioning', 'Active', 'Suspended', 'Decommissioned')),
    edition_code   text        NOT NULL CHECK (char_length(edition_code) BETWEEN 1 AND 64),
    owner_email    text        NOT NULL CHECK (char_length(owner_email) BETWEEN 3 AND 254),
    version        bigint      NOT NULL DEFAULT 1,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    provisioned_at timestamptz,
    CONSTRAINT tenants_pkey PRIMARY KEY (tenant_id),
    CONSTRAINT tenants_slug_key UNIQUE (slug)
);

CREATE TABLE tenant_provisioning_steps (
    tenant_id  uuid        NOT NULL REFERENCES tenants (tenant_id),
    seq        integer     NOT NULL,
    name       text        NOT NULL,
    status     text        NOT NULL CHECK (status IN ('Pending', 'Succeeded', 'Failed')),
    attempts   integer     NOT NULL DEFAULT 0,
    last_error text,
    updated_at timestamptz NOT NULL,
    CONSTRAINT tenant_provisioning_steps_pkey PRIMARY KEY (tenant_id, seq)
);

ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenants
    USING (spine_tenant_visible(tenant_id)) WITH CHECK (spine_tenant_visible(tenant_id));

ALTER TABLE tenant_provisioning_steps ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_provisioning_steps FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenant_provisioning_steps
    USING (spine_tenant_visible(tenant_id)) WITH CHECK (spine_tenant_visible(tenant_id));

GRANT SELECT, INSERT, UPDATE ON tenants, tenant_provisioning_steps TO tenants_app;

-- +goose Down
DROP TABLE tenant_provisioning_steps;
DROP TABLE tenants;
