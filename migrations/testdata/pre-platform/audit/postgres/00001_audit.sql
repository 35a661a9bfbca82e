-- Audit trail: append-only entries with a per-tenant hash chain, the consumer inbox (every
-- integration event becomes one entry, once) and the outbox (AuditEntryRecorded).
-- Runs as audit_owner; the runtime role audit_app gets INSERT and SELECT only on audit_entries and
-- is bound by row-level security (FORCE applies the policies to the table owner too).
--
-- Append-only is enforced three times over: audit_app has no UPDATE, DELETE or TRUNCATE privilege;
-- a statement-level trigger refuses UPDATE, DELETE and TRUNCATE for every role that is subject to
-- triggers, the owner included; and the hash chain (computed by the service, see
-- handlers/audit/chain.go) makes any change that gets past both visible to GET /audit-entries/verify.

-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION spine_tenant_visible(row_tenant uuid) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT current_setting('spine.platform', true) = 'on'
      OR row_tenant = NULLIF(current_setting('spine.tenant_id', true), '')::uuid
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION audit_entries_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_entries is append-only: % refused', TG_OP
    USING ERRCODE = 'insufficient_privilege',
          HINT = 'Audit entries are never changed or removed; record a new entry instead.';
END
$$;
-- +goose StatementEnd

-- seq numbers a tenant's entries 1, 2, 3, ... without gaps; the service assigns it under a
-- per-tenant transaction lock. payload is json, not jsonb: json keeps the exact text, which the
-- hash covers. Text members are '' when absent (the hash encodes them that way); source_event_id
-- is NULL for entries recorded through the API. The length limits equal the SQL Server twin's.
CREATE TABLE audit_entries (
    tenant_id       uuid        NOT NULL,
    seq             bigint      NOT NULL CHECK (seq >= 1),
    entry_id        uuid        NOT NULL,
    occurred_at     timestamptz NOT NULL,
    recorded_at     timestamptz NOT NULL,
    actor_type      text        NOT NULL CHECK (char_length(actor_type) BETWEEN 1 AND 64),
    actor_id        text        NOT NULL CHECK (char_length(actor_id) BETWEEN 1 AND 200),
    action          text        NOT NULL CHECK (char_length(action) BETWEEN 1 AND 128),
    resource_type   text        NOT NULL CHECK (char_length(resource_type) BETWEEN 1 AND 64),
    resource_id     text        NOT NULL CHECK (char_length(resource_id) <= 200),
    trace_id        text        NOT NULL CHECK (trace_id ~ '^([0-9a-f]{32})?$'),
    correlation_id  text        NOT NULL CHECK (char_length(correlation_id) <= 128),
    source_event_id uuid,
    payload         json        NOT NULL,
    prev_hash       bytea       NOT NULL CHECK (octet_length(prev_hash) = 32),
    hash            bytea       NOT NULL CHECK (octet_length(hash) = 32),
    CONSTRAINT audit_entries_pkey PRIMARY KEY (tenant_id, seq),
    CONSTRAINT audit_entries_entry_id_key UNIQUE (entry_id),
    CONSTRAINT audit_entries_source_event_key UNIQUE (tenant_id, source_event_id)
);
-- The filters' indexes end in seq where they can, so "filter, ORDER BY seq, LIMIT n" reads the
-- index in order and stops after n rows instead of sorting every match.
CREATE INDEX audit_entries_occurred_at ON audit_entries (tenant_id, occurred_at);
CREATE INDEX audit_entries_actor ON audit_entries (tenant_id, actor_id, seq);
CREATE INDEX audit_entries_action ON audit_entries (tenant_id, action, seq);
CREATE INDEX audit_entries_resource ON audit_entries (tenant_id, resource_type, resource_id, seq);
CREATE INDEX audit_entries_trace ON audit_entries (tenant_id, trace_id, seq);

-- Statement-level, so an UPDATE or DELETE is refused even when row-level security hides every row
-- it would touch.
CREATE TRIGGER audit_entries_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_entries
    FOR EACH STATEMENT EXECUTE FUNCTION audit_entries_refuse_change();

-- The consumer inbox (shape: shared/inbox): one row per processed event, in the entry's transaction.
CREATE TABLE inbox (
    tenant_id   uuid        NOT NULL,
    consumer    text        NOT NULL CHECK (char_length(consumer) BETWEEN 1 AND 64),
    event_id    uuid        NOT NULL,
    event_type  text        NOT NULL CHECK (char_length(event_type) BETWEEN 1 AND 128),
    received_at timestamptz NOT NULL,
    CONSTRAINT inbox_pkey PRIMARY KEY (tenant_id, consumer, event_id)
);

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

ALTER TABLE audit_entries ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_entries FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audit_entries
    USING (spine_tenant_visible(tenant_id)) WITH CHECK (spine_tenant_visible(tenant_id));

ALTER TABLE inbox ENABLE ROW LEVEL SECURITY;
ALTER TABLE inbox FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON inbox
    USING (spine_tenant_visible(tenant_id)) WITH CHECK (spine_tenant_visible(tenant_id));

ALTER TABLE outbox ENABLE ROW LEVEL SECURITY;
ALTER TABLE outbox FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON outbox
    USING (spine_tenant_visible(tenant_id)) WITH CHECK (spine_tenant_visible(tenant_id));

REVOKE ALL ON FUNCTION spine_tenant_visible(uuid) FROM PUBLIC;
REVOKE ALL ON FUNCTION audit_entries_refuse_change() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION spine_tenant_visible(uuid) TO audit_app;
GRANT SELECT, INSERT ON audit_entries TO audit_app;
GRANT SELECT, INSERT ON inbox TO audit_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON outbox TO audit_app;

-- +goose Down
-- Dropping the table is what a down migration means; the trigger refuses row changes, not DDL.
DROP TABLE outbox;
DROP TABLE inbox;
DROP TABLE audit_entries;
DROP FUNCTION audit_entries_refuse_change();
DROP FUNCTION spine_tenant_visible(uuid);
