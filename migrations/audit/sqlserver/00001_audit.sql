-- Azure SQL twin of postgres/00001_audit.sql. Runs as the audit owner (db_owner); the runtime user
-- audit_app gets SELECT and INSERT only on the entries. Row-level security: a security policy whose
-- predicate reads SESSION_CONTEXT, written by sqlstore at the start of every transaction.
-- Append-only: dbo.audit_entries is an append-only ledger table, so UPDATE, DELETE and TRUNCATE are
-- refused for every principal, db_owner included, and the table cannot be turned back into an
-- ordinary one; the database's ledger digests make tampering below the SQL layer detectable too.
-- Runs after the platform schema (shared/platform: schema rls with the predicate rls.tenant_visible,
-- outbox, inbox, idempotency_keys and their policy and grants).
-- Written and reviewed; not executed on these build machines (no SQL Server here): see README.
-- Databases migrated before the platform schema existed ran an earlier version of this file, which
-- also created rls, the predicate, inbox and outbox; the platform set adopts those.

-- +goose Up
-- Text columns compare with a binary collation, so the API's filters are case-sensitive as on
-- PostgreSQL. Their sizes are twice PostgreSQL's character limits: nvarchar counts UTF-16 code
-- units, and a character outside the BMP takes two. payload keeps the exact JSON text the hash
-- covers (nvarchar round-trips UTF-8 text exactly). source_event_id is NULL for API entries; its
-- uniqueness per tenant is a filtered index because a UNIQUE constraint would allow only one NULL.
CREATE TABLE dbo.audit_entries (
    tenant_id       uniqueidentifier NOT NULL,
    seq             bigint           NOT NULL CONSTRAINT audit_entries_seq_check CHECK (seq >= 1),
    entry_id        uniqueidentifier NOT NULL,
    occurred_at     datetime2(6)     NOT NULL,
    recorded_at     datetime2(6)     NOT NULL,
    actor_type      nvarchar(128)    COLLATE Latin1_General_100_BIN2 NOT NULL,
    actor_id        nvarchar(400)    COLLATE Latin1_General_100_BIN2 NOT NULL,
    action          nvarchar(256)    COLLATE Latin1_General_100_BIN2 NOT NULL,
    resource_type   nvarchar(128)    COLLATE Latin1_General_100_BIN2 NOT NULL,
    resource_id     nvarchar(400)    COLLATE Latin1_General_100_BIN2 NOT NULL,
    trace_id        varchar(32)      COLLATE Latin1_General_100_BIN2 NOT NULL,
    correlation_id  nvarchar(256)    COLLATE Latin1_General_100_BIN2 NOT NULL,
    source_event_id uniqueidentifier NULL,
    payload         nvarchar(max)    NOT NULL CONSTRAINT audit_entries_payload_json CHECK (ISJSON(payload, VALUE) = 1),
    prev_hash       binary(32)       NOT NULL,
    hash            binary(32)       NOT NULL,
    CONSTRAINT audit_entries_pkey PRIMARY KEY (tenant_id, seq),
    CONSTRAINT audit_entries_entry_id_key UNIQUE (entry_id),
    CONSTRAINT audit_entries_trace_check CHECK (trace_id = '' OR (LEN(trace_id) = 32 AND trace_id NOT LIKE '%[^0-9a-f]%'))
)
WITH (LEDGER = ON (APPEND_ONLY = ON));

CREATE UNIQUE INDEX audit_entries_source_event_key ON dbo.audit_entries (tenant_id, source_event_id)
    WHERE source_event_id IS NOT NULL;
CREATE INDEX audit_entries_occurred_at ON dbo.audit_entries (tenant_id, occurred_at);
CREATE INDEX audit_entries_actor ON dbo.audit_entries (tenant_id, actor_id, seq);
CREATE INDEX audit_entries_action ON dbo.audit_entries (tenant_id, action, seq);
CREATE INDEX audit_entries_resource ON dbo.audit_entries (tenant_id, resource_type, resource_id, seq);
CREATE INDEX audit_entries_trace ON dbo.audit_entries (tenant_id, trace_id, seq);

-- No AFTER UPDATE block predicate on the entries: the ledger table refuses every UPDATE.
-- +goose StatementBegin
CREATE SECURITY POLICY rls.tenant_isolation
    ADD FILTER PREDICATE rls.tenant_visible(tenant_id) ON dbo.audit_entries,
    ADD BLOCK PREDICATE rls.tenant_visible(tenant_id) ON dbo.audit_entries AFTER INSERT
    WITH (STATE = ON, SCHEMABINDING = ON);
-- +goose StatementEnd

GRANT SELECT, INSERT ON dbo.audit_entries TO audit_app;

-- +goose Down
-- A ledger table is dropped, not emptied: SQL Server keeps it as a dropped ledger table
-- (sys.tables is_dropped_ledger_table) so the ledger's history stays verifiable.
DROP SECURITY POLICY rls.tenant_isolation;
DROP TABLE dbo.audit_entries;
