-- Tenant registry, provisioning steps, idempotency records and the transactional outbox.
-- Runs as tenants_owner; the runtime role tenants_app gets DML only and is bound by row-level
-- security: FORCE ROW LEVEL SECURITY applies the policies to the table owner too.

-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION spine_tenant_visible(row_tenant uuid) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT current_setting('spine.platform', true) = 'on'
      OR row_tenant = NULLIF(current_setting('spine.tenant_id', true), '')::uuid
$$;
-- +goose StatementEnd

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

-- Platform-level: a creating POST's outcome, replayed for a repeated Idempotency-Key. Keyed by the
-- caller (token subject) so two callers never share keys.
CREATE TABLE idempotency_keys (
    caller        text        NOT NULL,
    key           text        NOT NULL,
    request_hash  bytea       NOT NULL,
    status_code   integer     NOT NULL,
    response_body bytea       NOT NULL,
    location      text,
    created_at    timestamptz NOT NULL,
    CONSTRAINT idempotency_keys_pkey PRIMARY KEY (caller, key)
);
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);

-- The outbox: one row per CloudEvent, written in the transaction of the change it announces.
CREATE TABLE outbox (
    tenant_id       uuid        NOT NULL,
    event_id        uuid        NOT NULL,
    seq             bigint      GENERATED ALWAYS AS IDENTITY,
    subject         text        NOT NULL,
    event_type      text        NOT NULL,
    envelope        jsonb       NOT NULL,
    created_at      timestamptz NOT NULL,
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    parked_at       timestamptz,
    last_error      text,
    CONSTRAINT outbox_pkey PRIMARY KEY (tenant_id, event_id)
);
CREATE INDEX outbox_pending ON outbox (seq) WHERE parked_at IS NULL;

ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenants
    USING (spine_tenant_visible(tenant_id)) WITH CHECK (spine_tenant_visible(tenant_id));

ALTER TABLE tenant_provisioning_steps ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_provisioning_steps FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenant_provisioning_steps
    USING (spine_tenant_visible(tenant_id)) WITH CHECK (spine_tenant_visible(tenant_id));

ALTER TABLE outbox ENABLE ROW LEVEL SECURITY;
ALTER TABLE outbox FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON outbox
    USING (spine_tenant_visible(tenant_id)) WITH CHECK (spine_tenant_visible(tenant_id));

REVOKE ALL ON FUNCTION spine_tenant_visible(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION spine_tenant_visible(uuid) TO tenants_app;
GRANT SELECT, INSERT, UPDATE ON tenants, tenant_provisioning_steps TO tenants_app;
GRANT SELECT, INSERT, DELETE ON idempotency_keys TO tenants_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON outbox TO tenants_app;

-- +goose Down
DROP TABLE outbox;
DROP TABLE idempotency_keys;
DROP TABLE tenant_provisioning_steps;
DROP TABLE tenants;
DROP FUNCTION spine_tenant_visible(uuid);
