-- Azure SQL twin of postgres/00002_audit_retention.sql: the exports of the chain (audit_exports)
-- and the purge procedure. Written and reviewed; not executed on these build machines (no SQL
-- Server here): tsqlcheck checks the batches as goose sends them.
--
-- LIMIT: dbo.audit_entries is an append-only LEDGER table (00001), which refuses DELETE for every
-- principal, its owner and this procedure included (error 37359), and cannot be turned into an
-- ordinary table. So on Azure SQL the purge procedure below fails until the entries move to a
-- table that allows it (a new migration: a non-ledger table with an INSTEAD OF trigger, or an
-- updatable ledger table whose history keeps what it deletes); AuditPurge then fails its run
-- (errorClass "target"), deleting nothing. The export (AuditExport) works as on PostgreSQL.
--
-- The procedure runs WITH EXECUTE AS OWNER; the runtime user may EXECUTE it and has no DELETE on
-- the entries. SESSION_CONTEXT (the tenant scope sqlstore sets) is per session, so the security
-- policy's predicates still confine it to the caller's tenant.

-- +goose Up
CREATE TABLE dbo.audit_exports (
    tenant_id       uniqueidentifier NOT NULL,
    from_seq        bigint           NOT NULL CONSTRAINT audit_exports_from_check CHECK (from_seq >= 1),
    to_seq          bigint           NOT NULL,
    [count]         int              NOT NULL CONSTRAINT audit_exports_count_check CHECK ([count] >= 1),
    blob            nvarchar(1024)   COLLATE Latin1_General_100_BIN2 NOT NULL,
    sha256          char(64)         COLLATE Latin1_General_100_BIN2 NOT NULL,
    first_prev_hash binary(32)       NOT NULL,
    last_hash       binary(32)       NOT NULL,
    evidence_id     uniqueidentifier NOT NULL,
    exported_at     datetime2(6)     NOT NULL,
    CONSTRAINT audit_exports_pkey PRIMARY KEY (tenant_id, from_seq),
    CONSTRAINT audit_exports_range_check CHECK (to_seq >= from_seq AND [count] = to_seq - from_seq + 1)
);

CREATE UNIQUE INDEX audit_exports_to_seq ON dbo.audit_exports (tenant_id, to_seq);

ALTER SECURITY POLICY rls.tenant_isolation
    ADD FILTER PREDICATE rls.tenant_visible(tenant_id) ON dbo.audit_exports,
    ADD BLOCK PREDICATE rls.tenant_visible(tenant_id) ON dbo.audit_exports AFTER INSERT;

GRANT SELECT, INSERT ON dbo.audit_exports TO audit_app;

-- dbo.audit_purge: postgres audit_purge's contract. Deletes @tenant's oldest entries, whole
-- exports at a time: from the first retained entry through the end of the last of the exports
-- covering the chain contiguously from it that end at or before @to_seq, before the chain's head and
-- before the first entry recorded at or after @cutoff; answers one row: the number deleted.
-- +goose StatementBegin
CREATE PROCEDURE dbo.audit_purge (@tenant uniqueidentifier, @to_seq bigint, @cutoff datetime2(6))
WITH EXECUTE AS OWNER
AS
BEGIN
    SET NOCOUNT ON;
    DECLARE @first bigint, @head bigint, @stop bigint, @lim bigint, @next_to bigint, @n int = 0;
    SELECT @first = MIN(seq), @head = MAX(seq) FROM dbo.audit_entries WHERE tenant_id = @tenant;
    IF @first IS NOT NULL AND @to_seq IS NOT NULL AND @cutoff IS NOT NULL
    BEGIN
        SELECT @stop = MIN(seq) FROM dbo.audit_entries
         WHERE tenant_id = @tenant AND seq >= @first AND seq <= @to_seq AND recorded_at >= @cutoff;
        IF @stop IS NULL OR @stop > @head SET @stop = @head;
        SET @lim = @first - 1;
        WHILE 1 = 1
        BEGIN
            SET @next_to = NULL;
            SELECT TOP (1) @next_to = e.to_seq FROM dbo.audit_exports AS e
             WHERE e.tenant_id = @tenant AND e.from_seq = @lim + 1;
            IF @next_to IS NULL OR @next_to > @to_seq OR @next_to >= @stop BREAK;
            SET @lim = @next_to;
        END;
        IF @lim >= @first
        BEGIN
            DELETE FROM dbo.audit_entries WHERE tenant_id = @tenant AND seq BETWEEN @first AND @lim;
            SET @n = @@ROWCOUNT;
        END;
    END;
    SELECT @n AS deleted;
END;
-- +goose StatementEnd

GRANT EXECUTE ON dbo.audit_purge TO audit_app;

-- +goose Down
DROP PROCEDURE dbo.audit_purge;
ALTER SECURITY POLICY rls.tenant_isolation
    DROP FILTER PREDICATE ON dbo.audit_exports,
    DROP BLOCK PREDICATE ON dbo.audit_exports AFTER INSERT;
DROP TABLE dbo.audit_exports;
