-- Audit trail: append-only entries with a per-tenant hash chain. Runs as audit_owner after the
-- platform schema (shared/platform: the RLS helper spine_tenant_visible, the outbox for
-- AuditEntryRecorded, the consumer inbox through which every integration event becomes one entry,
-- once, and their grants); the runtime role audit_app gets INSERT and SELECT only on audit_entries
-- and is bound by row-level security (FORCE applies the policies to the table owner too).
-- Databases migrated before the platform schema existed ran an earlier version of this file, which
-- also created the RLS helper, inbox and outbox; the platform set adopts those
-- (migrations/testdata/pre-platform keeps that version for the upgrade test).
--
-- Append-only is enforced three times over: audit_app has no UPDATE, DELETE or TRUNCATE privilege;
-- a statement-level trigger refuses UPDATE, DELETE and TRUNCATE for every role that is subject to
-- triggers, the owner included; and the hash chain (computed by the service, see
-- handlers/audit/chain.go) makes any change that gets past both visible to GET /audit-entries/verify.

-- +goose Up
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

ALTER TABLE audit_entries ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_entries FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audit_entries
    USING (spine_tenant_visible(tenant_id)) WITH CHECK (spine_tenant_visible(tenant_id));

REVOKE ALL ON FUNCTION audit_entries_refuse_change() FROM PUBLIC;
GRANT SELECT, INSERT ON audit_entries TO audit_app;

-- +goose Down
-- Dropping the table is what a down migration means; the trigger refuses row changes, not DDL.
DROP TABLE audit_entries;
DROP FUNCTION audit_entries_refuse_change();
