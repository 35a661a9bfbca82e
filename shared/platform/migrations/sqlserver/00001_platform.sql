-- Azure SQL twin of postgres/00001_platform.sql: what every service database holds before its own
-- migrations run, with its own version table (dbo.spine_migrations_platform). Runs as the service's
-- owner (db_owner); {{runtime_role}} is the service's runtime user (<service>_app), filled in by
-- shared/platform before goose reads this file.
-- Written and reviewed; not executed on these build machines (no SQL Server here): see README.
-- shared/platform's tests check it without a server (goose's own statement split, one batch per
-- statement, no PostgreSQL syntax, the grants).
--
-- Every batch also succeeds on a database that already has these objects (tenants' and audit's
-- 00001 created them before this set existed). There it adds what was missing and moves the outbox's
-- and inbox's predicates from the service's policy (rls.tenant_isolation) to rls.platform_isolation:
-- a table may have only one enabled predicate per operation, and every database then ends with the
-- same policies. goose runs the whole file in one transaction, so no row is ever unguarded.
-- Statements that must begin a batch (CREATE SCHEMA, CREATE FUNCTION, CREATE SECURITY POLICY) run
-- through EXEC, which makes them a batch of their own, so they can sit under an IF.

-- +goose Up

-- Row-level security: a row is visible when the session is in platform scope or belongs to the
-- session's tenant (both SESSION_CONTEXT keys written by sqlstore at the start of every
-- transaction). Service migrations use it in their own policies.
-- +goose StatementBegin
IF SCHEMA_ID(N'rls') IS NULL
    EXEC (N'CREATE SCHEMA rls');
-- +goose StatementEnd

-- +goose StatementBegin
IF OBJECT_ID(N'rls.tenant_visible', N'IF') IS NULL
    EXEC (N'CREATE FUNCTION rls.tenant_visible(@tenant_id uniqueidentifier)
RETURNS TABLE WITH SCHEMABINDING AS
RETURN SELECT 1 AS visible
WHERE CAST(SESSION_CONTEXT(N''platform'') AS nvarchar(8)) = N''on''
   OR @tenant_id = TRY_CAST(CAST(SESSION_CONTEXT(N''tenant_id'') AS nvarchar(36)) AS uniqueidentifier)');
-- +goose StatementEnd

-- The outbox (shared/outbox).
-- +goose StatementBegin
IF OBJECT_ID(N'dbo.outbox', N'U') IS NULL
    CREATE TABLE dbo.outbox (
        tenant_id       uniqueidentifier NOT NULL,
        event_id        uniqueidentifier NOT NULL,
        seq             bigint IDENTITY(1, 1) NOT NULL,
        subject         nvarchar(200)    NOT NULL,
        event_type      varchar(100)     NOT NULL,
        envelope        nvarchar(max)    NOT NULL CONSTRAINT outbox_envelope_json CHECK (ISJSON(envelope) = 1),
        created_at      datetime2(6)     NOT NULL,
        attempts        int              NOT NULL CONSTRAINT outbox_attempts_default DEFAULT 0,
        next_attempt_at datetime2(6)     NOT NULL,
        parked_at       datetime2(6)     NULL,
        last_error      varchar(200)     NULL,
        CONSTRAINT outbox_pkey PRIMARY KEY (tenant_id, event_id)
    );
-- +goose StatementEnd

-- The drainer's statements (shared/outbox/drain_sql.go): the claim (outbox_pending, and
-- outbox_aggregate for its "no earlier row of this aggregate is waiting"), fail and delete by seq
-- (outbox_seq_key), the admin API's parked list, replay and count (outbox_parked).
-- +goose StatementBegin
IF NOT EXISTS (SELECT 1 FROM sys.indexes WHERE object_id = OBJECT_ID(N'dbo.outbox') AND name = N'outbox_pending')
    CREATE INDEX outbox_pending ON dbo.outbox (seq) WHERE parked_at IS NULL;
-- +goose StatementEnd
-- +goose StatementBegin
IF NOT EXISTS (SELECT 1 FROM sys.indexes WHERE object_id = OBJECT_ID(N'dbo.outbox') AND name = N'outbox_aggregate')
    CREATE INDEX outbox_aggregate ON dbo.outbox (tenant_id, subject, seq);
-- +goose StatementEnd
-- +goose StatementBegin
IF NOT EXISTS (SELECT 1 FROM sys.indexes WHERE object_id = OBJECT_ID(N'dbo.outbox') AND name = N'outbox_seq_key')
    CREATE UNIQUE INDEX outbox_seq_key ON dbo.outbox (seq);
-- +goose StatementEnd
-- +goose StatementBegin
IF NOT EXISTS (SELECT 1 FROM sys.indexes WHERE object_id = OBJECT_ID(N'dbo.outbox') AND name = N'outbox_parked')
    CREATE INDEX outbox_parked ON dbo.outbox (seq) WHERE parked_at IS NOT NULL;
-- +goose StatementEnd

GRANT SELECT, INSERT, UPDATE, DELETE ON dbo.outbox TO {{runtime_role}};

-- The consumer inbox (shared/inbox).
-- +goose StatementBegin
IF OBJECT_ID(N'dbo.inbox', N'U') IS NULL
    CREATE TABLE dbo.inbox (
        tenant_id   uniqueidentifier NOT NULL,
        consumer    varchar(64)      COLLATE Latin1_General_100_BIN2 NOT NULL,
        event_id    uniqueidentifier NOT NULL,
        event_type  varchar(128)     NOT NULL,
        received_at datetime2(6)     NOT NULL,
        CONSTRAINT inbox_pkey PRIMARY KEY (tenant_id, consumer, event_id)
    );
-- +goose StatementEnd

GRANT SELECT, INSERT ON dbo.inbox TO {{runtime_role}};

-- Databases migrated before this set: take the outbox's and inbox's predicates out of whichever
-- other policy holds them (rls.tenant_isolation), so that rls.platform_isolation can hold them.
-- +goose StatementBegin
DECLARE @move nvarchar(max);
SELECT @move = STRING_AGG(CAST(N'ALTER SECURITY POLICY ' + QUOTENAME(OBJECT_SCHEMA_NAME(sp.object_id)) + N'.'
        + QUOTENAME(OBJECT_NAME(sp.object_id)) + N' DROP ' + sp.predicate_type_desc + N' PREDICATE ON '
        + QUOTENAME(OBJECT_SCHEMA_NAME(sp.target_object_id)) + N'.' + QUOTENAME(OBJECT_NAME(sp.target_object_id))
        + COALESCE(N' ' + REPLACE(sp.operation_desc, N'_', N' '), N'') + N';' AS nvarchar(max)), NCHAR(10))
    FROM sys.security_predicates AS sp
    WHERE sp.target_object_id IN (OBJECT_ID(N'dbo.outbox'), OBJECT_ID(N'dbo.inbox'))
      AND sp.object_id <> COALESCE(OBJECT_ID(N'rls.platform_isolation', N'SP'), 0);
IF @move IS NOT NULL
    EXEC sys.sp_executesql @move;
-- +goose StatementEnd

-- +goose StatementBegin
IF OBJECT_ID(N'rls.platform_isolation', N'SP') IS NULL
    EXEC (N'CREATE SECURITY POLICY rls.platform_isolation
    ADD FILTER PREDICATE rls.tenant_visible(tenant_id) ON dbo.outbox,
    ADD BLOCK PREDICATE rls.tenant_visible(tenant_id) ON dbo.outbox AFTER INSERT,
    ADD BLOCK PREDICATE rls.tenant_visible(tenant_id) ON dbo.outbox AFTER UPDATE,
    ADD FILTER PREDICATE rls.tenant_visible(tenant_id) ON dbo.inbox,
    ADD BLOCK PREDICATE rls.tenant_visible(tenant_id) ON dbo.inbox AFTER INSERT,
    ADD BLOCK PREDICATE rls.tenant_visible(tenant_id) ON dbo.inbox AFTER UPDATE
    WITH (STATE = ON, SCHEMABINDING = ON)');
-- +goose StatementEnd

-- Platform-level (no tenant, no security policy): a creating POST's outcome, replayed for a
-- repeated Idempotency-Key, keyed by caller, key and scope (see the PostgreSQL twin). caller, key
-- and scope compare case-sensitively, as in PostgreSQL. scope is varchar(64): the clustered primary
-- key's 900-byte limit leaves 100 bytes beside caller and key (400 each).
-- +goose StatementBegin
IF OBJECT_ID(N'dbo.idempotency_keys', N'U') IS NULL
    CREATE TABLE dbo.idempotency_keys (
        caller        nvarchar(200)   COLLATE Latin1_General_100_BIN2 NOT NULL,
        [key]         nvarchar(200)   COLLATE Latin1_General_100_BIN2 NOT NULL,
        request_hash  varbinary(32)   NOT NULL,
        status_code   int             NOT NULL,
        response_body varbinary(max)  NOT NULL,
        location      nvarchar(400)   NULL,
        created_at    datetime2(6)    NOT NULL,
        scope         varchar(64)     COLLATE Latin1_General_100_BIN2 NOT NULL
                      CONSTRAINT idempotency_keys_scope_default DEFAULT '',
        CONSTRAINT idempotency_keys_pkey PRIMARY KEY (caller, [key], scope)
    );
-- +goose StatementEnd

-- +goose StatementBegin
IF COL_LENGTH(N'dbo.idempotency_keys', N'scope') IS NULL
    ALTER TABLE dbo.idempotency_keys ADD scope varchar(64) COLLATE Latin1_General_100_BIN2 NOT NULL
        CONSTRAINT idempotency_keys_scope_default DEFAULT '';
-- +goose StatementEnd

-- +goose StatementBegin
IF NOT EXISTS (SELECT 1 FROM sys.indexes AS i
        JOIN sys.index_columns AS ic ON ic.object_id = i.object_id AND ic.index_id = i.index_id
        WHERE i.object_id = OBJECT_ID(N'dbo.idempotency_keys') AND i.is_primary_key = 1
          AND ic.key_ordinal = 3 AND COL_NAME(ic.object_id, ic.column_id) = N'scope')
BEGIN
    ALTER TABLE dbo.idempotency_keys DROP CONSTRAINT idempotency_keys_pkey;
    ALTER TABLE dbo.idempotency_keys ADD CONSTRAINT idempotency_keys_pkey PRIMARY KEY (caller, [key], scope);
END;
-- +goose StatementEnd

-- +goose StatementBegin
IF NOT EXISTS (SELECT 1 FROM sys.indexes WHERE object_id = OBJECT_ID(N'dbo.idempotency_keys') AND name = N'idempotency_keys_created_at')
    CREATE INDEX idempotency_keys_created_at ON dbo.idempotency_keys (created_at);
-- +goose StatementEnd

GRANT SELECT, INSERT, DELETE ON dbo.idempotency_keys TO {{runtime_role}};

-- +goose Down
-- Run only after every service migration that uses these objects was rolled back.
DROP SECURITY POLICY rls.platform_isolation;
DROP TABLE dbo.idempotency_keys;
DROP TABLE dbo.inbox;
DROP TABLE dbo.outbox;
DROP FUNCTION rls.tenant_visible;
DROP SCHEMA rls;
