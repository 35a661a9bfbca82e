-- The platform schema: what every service database holds before its own migrations run, with its
-- own version table (spine_migrations_platform). Runs as the service's owner role; {{runtime_role}}
-- is the service's runtime role (<service>_app), filled in by shared/platform before goose reads
-- this file.
--
-- Every statement also succeeds on a database that already has these objects: databases migrated
-- before this set existed got them from the services' own 00001 (tenants: outbox, idempotency_keys;
-- audit: outbox, inbox). There the set adds what was missing (audit's outbox_aggregate, the drainer's
-- outbox_seq_key and outbox_parked, idempotency_keys.scope) and leaves the rest as it was.

-- +goose Up

-- Row-level security: a row is visible when the transaction is in platform scope or belongs to the
-- transaction's tenant (both settings written by sqlstore at the start of every transaction).
-- Service migrations use it in their own policies.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION spine_tenant_visible(row_tenant uuid) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT current_setting('spine.platform', true) = 'on'
      OR row_tenant = NULLIF(current_setting('spine.tenant_id', true), '')::uuid
$$;
-- +goose StatementEnd
REVOKE ALL ON FUNCTION spine_tenant_visible(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION spine_tenant_visible(uuid) TO {{runtime_role}};

-- The outbox (shared/outbox): one row per CloudEvent, written in the transaction of the change it
-- announces, deleted by the drainer once the broker accepted it.
CREATE TABLE IF NOT EXISTS outbox (
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
-- The drainer's statements (shared/outbox/drain_sql.go), index by index:
--   outbox_pending    the claim: due rows in seq order, parked rows left out;
--   outbox_aggregate  the claim's "no earlier row of this aggregate is waiting" and the head check:
--                     an aggregate's rows by (tenant_id, subject) in seq order;
--   outbox_seq_key    fail, delete and the head check address rows by seq alone (without it each
--                     is a sequential scan of the whole outbox);
--   outbox_parked     the admin API's parked list and replay, and the parked count.
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (seq) WHERE parked_at IS NULL;
CREATE INDEX IF NOT EXISTS outbox_aggregate ON outbox (tenant_id, subject, seq);
CREATE UNIQUE INDEX IF NOT EXISTS outbox_seq_key ON outbox (seq);
CREATE INDEX IF NOT EXISTS outbox_parked ON outbox (seq) WHERE parked_at IS NOT NULL;

ALTER TABLE outbox ENABLE ROW LEVEL SECURITY;
ALTER TABLE outbox FORCE ROW LEVEL SECURITY;
-- Dropped and created rather than created if missing, so every database ends with this definition.
DROP POLICY IF EXISTS tenant_isolation ON outbox;
CREATE POLICY tenant_isolation ON outbox
    USING (spine_tenant_visible(tenant_id)) WITH CHECK (spine_tenant_visible(tenant_id));
GRANT SELECT, INSERT, UPDATE, DELETE ON outbox TO {{runtime_role}};

-- The consumer inbox (shared/inbox): one row per processed event, in the transaction of its effect.
CREATE TABLE IF NOT EXISTS inbox (
    tenant_id   uuid        NOT NULL,
    consumer    text        NOT NULL CHECK (char_length(consumer) BETWEEN 1 AND 64),
    event_id    uuid        NOT NULL,
    event_type  text        NOT NULL CHECK (char_length(event_type) BETWEEN 1 AND 128),
    received_at timestamptz NOT NULL,
    CONSTRAINT inbox_pkey PRIMARY KEY (tenant_id, consumer, event_id)
);
ALTER TABLE inbox ENABLE ROW LEVEL SECURITY;
ALTER TABLE inbox FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS tenant_isolation ON inbox;
CREATE POLICY tenant_isolation ON inbox
    USING (spine_tenant_visible(tenant_id)) WITH CHECK (spine_tenant_visible(tenant_id));
GRANT SELECT, INSERT ON inbox TO {{runtime_role}};

-- Platform-level (no tenant, no row-level security): a creating POST's outcome, replayed for a
-- repeated Idempotency-Key. Keyed by the caller (token subject), so two callers never share keys,
-- and by scope, the operation the key was used for ('' when the service does not scope its keys,
-- as tenants does not), so one key may be reused on another operation. scope is the last column
-- and the key's last part: lookups by (caller, key) use the primary key, and databases created
-- before scope existed get the same table by ALTER as fresh ones by CREATE.
CREATE TABLE IF NOT EXISTS idempotency_keys (
    caller        text        NOT NULL,
    key           text        NOT NULL,
    request_hash  bytea       NOT NULL,
    status_code   integer     NOT NULL,
    response_body bytea       NOT NULL,
    location      text,
    created_at    timestamptz NOT NULL,
    scope         text        NOT NULL DEFAULT ''
                  CONSTRAINT idempotency_keys_scope_check CHECK (char_length(scope) <= 64),
    CONSTRAINT idempotency_keys_pkey PRIMARY KEY (caller, key, scope)
);
ALTER TABLE idempotency_keys ADD COLUMN IF NOT EXISTS scope text NOT NULL DEFAULT ''
    CONSTRAINT idempotency_keys_scope_check CHECK (char_length(scope) <= 64);
-- +goose StatementBegin
DO $$
BEGIN
  IF (SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c
      WHERE c.conrelid = 'idempotency_keys'::regclass AND c.conname = 'idempotency_keys_pkey')
     IS DISTINCT FROM 'PRIMARY KEY (caller, key, scope)' THEN
    ALTER TABLE idempotency_keys DROP CONSTRAINT IF EXISTS idempotency_keys_pkey;
    ALTER TABLE idempotency_keys ADD CONSTRAINT idempotency_keys_pkey PRIMARY KEY (caller, key, scope);
  END IF;
END
$$;
-- +goose StatementEnd
-- For the retention sweep (records older than the retention period).
CREATE INDEX IF NOT EXISTS idempotency_keys_created_at ON idempotency_keys (created_at);
GRANT SELECT, INSERT, DELETE ON idempotency_keys TO {{runtime_role}};

-- +goose Down
-- Run only after every service migration that uses these objects was rolled back.
DROP TABLE idempotency_keys;
DROP TABLE inbox;
DROP TABLE outbox;
DROP FUNCTION spine_tenant_visible(uuid);
