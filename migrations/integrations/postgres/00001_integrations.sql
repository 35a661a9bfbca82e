-- Integrations: a tenant's connections to outside systems. Runs as integrations_owner after the
-- platform schema (shared/platform: outbox, inbox, idempotency_keys and the row-level-security
-- helper spine_tenant_visible), which this file uses and never creates. The runtime role
-- integrations_app gets SELECT, INSERT and UPDATE only (a deletion is soft: deleted_at) and is
-- bound by row-level security (FORCE applies it to the owner too).
--
-- No column holds a secret value: a connection's secret lives in Key Vault only, and the row keeps
-- its reference (secret_vault, secret_name, secret_version). settings is the connector's
-- non-secret settings, which the service refuses when they look like a secret.

-- +goose Up

CREATE TABLE connections (
    tenant_id        uuid        NOT NULL,
    connection_id    uuid        NOT NULL,
    connector_type   text        NOT NULL CHECK (connector_type ~ '^[a-z][a-z0-9-]{0,31}$'),
    name             text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    settings         jsonb       NOT NULL CHECK (jsonb_typeof(settings) = 'object'),
    -- The Key Vault reference: the vault's URL, the secret's name (integration-<tenant>-<id>) and
    -- the version in use. Never the value.
    secret_vault     text        NOT NULL CHECK (char_length(secret_vault) BETWEEN 1 AND 400),
    secret_name      text        NOT NULL CHECK (secret_name ~ '^[0-9A-Za-z-]{1,127}$'),
    secret_version   text        NOT NULL CHECK (secret_version ~ '^[0-9A-Za-z]{1,64}$'),
    status           text        NOT NULL CHECK (status IN ('Untested', 'Healthy', 'Failing', 'Disabled')),
    last_tested_at   timestamptz,
    last_sync_at     timestamptz,
    -- The class of the last check's or sync's failure (timeout, connect, tls, http-4xx, …), never
    -- a response body.
    last_error_class text        CHECK (last_error_class ~ '^[a-z0-9-]{1,40}$'),
    version          bigint      NOT NULL,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    deleted_at       timestamptz,
    CONSTRAINT connections_pkey PRIMARY KEY (tenant_id, connection_id)
);

ALTER TABLE connections ENABLE ROW LEVEL SECURITY;
ALTER TABLE connections FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON connections
    USING (spine_tenant_visible(tenant_id)) WITH CHECK (spine_tenant_visible(tenant_id));

GRANT SELECT, INSERT, UPDATE ON connections TO integrations_app;

-- +goose Down

DROP POLICY tenant_isolation ON connections;
DROP TABLE connections;
