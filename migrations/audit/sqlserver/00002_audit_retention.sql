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
--
-- dbo.audit_retention_floor: one row, the shortest audit retention this database accepts (default
-- 2557 days = 7 years); the owner alone may change it; audit_app has no permission on it (the
-- procedures, WITH EXECUTE AS OWNER, read it through ownership chaining). dbo.audit_purge refuses
-- (error 51010) a cutoff later than SYSUTCDATETIME() minus the floor. audit_app has no INSERT on
-- dbo.audit_exports; dbo.audit_record_export checks a row against the chain before inserting it
-- (the postgres twin's rules) and answers one row: inserted (bit), 0 for a rerun from the same
-- from_seq; it refuses (error 51011) a row that does not fit the chain. Neither procedure can see
-- Blob: see the postgres twin. SESSION_CONTEXT (the tenant scope sqlstore sets) is per session,
-- so the security policy's predicates still confine both to the caller's tenant.

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

GRANT SELECT ON dbo.audit_exports TO audit_app;

CREATE TABLE dbo.audit_retention_floor (
    singleton  bit NOT NULL CONSTRAINT audit_retention_floor_singleton DEFAULT 1
               CONSTRAINT audit_retention_floor_pkey PRIMARY KEY
               CONSTRAINT audit_retention_floor_one_row CHECK (singleton = 1),
    floor_days int NOT NULL CONSTRAINT audit_retention_floor_days DEFAULT 2557
               CONSTRAINT audit_retention_floor_days_check CHECK (floor_days >= 0)
);

INSERT INTO dbo.audit_retention_floor DEFAULT VALUES;

-- dbo.audit_purge: postgres audit_purge's contract. Deletes @tenant's oldest entries, whole
-- exports at a time: from the first retained entry through the end of the last of the exports
-- covering the chain contiguously from it that end at or before @to_seq, before the chain's head and
-- before the first entry recorded at or after @cutoff; answers one row: the number deleted.
-- A cutoff later than SYSUTCDATETIME() minus the floor is refused before anything is read or deleted.
-- +goose StatementBegin
CREATE PROCEDURE dbo.audit_purge (@tenant uniqueidentifier, @to_seq bigint, @cutoff datetime2(6))
WITH EXECUTE AS OWNER
AS
BEGIN
    SET NOCOUNT ON;
    DECLARE @floor int, @first bigint, @head bigint, @stop bigint, @lim bigint, @next_to bigint, @n int = 0;
    SELECT @floor = floor_days FROM dbo.audit_retention_floor;
    IF @floor IS NULL SET @floor = 2557;
    IF @cutoff > DATEADD(day, -@floor, SYSUTCDATETIME())
        THROW 51010, N'audit entries are kept at least dbo.audit_retention_floor''s days: the cutoff is too recent', 1;
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

-- dbo.audit_record_export: postgres audit_record_export's contract. UPDLOCK, HOLDLOCK on the
-- reads of dbo.audit_exports: two calls for one tenant's next range queue, and the second sees the
-- first's row (a rerun: inserted 0).
-- +goose StatementBegin
CREATE PROCEDURE dbo.audit_record_export (@tenant uniqueidentifier, @from_seq bigint, @to_seq bigint, @count int,
    @blob nvarchar(1024), @sha256 char(64), @first_prev_hash binary(32), @last_hash binary(32),
    @evidence_id uniqueidentifier, @exported_at datetime2(6))
WITH EXECUTE AS OWNER
AS
BEGIN
    SET NOCOUNT ON;
    DECLARE @prev_to bigint, @prev_last binary(32), @head bigint, @first_ph binary(32), @last_h binary(32),
            @prefix nvarchar(64), @suffix nvarchar(64), @problem nvarchar(2048);
    IF EXISTS (SELECT 1 FROM dbo.audit_exports WITH (UPDLOCK, HOLDLOCK) WHERE tenant_id = @tenant AND from_seq = @from_seq)
    BEGIN
        SELECT CAST(0 AS bit) AS inserted;
        RETURN;
    END;
    SELECT TOP (1) @prev_to = e.to_seq, @prev_last = e.last_hash FROM dbo.audit_exports AS e WITH (UPDLOCK, HOLDLOCK)
     WHERE e.tenant_id = @tenant ORDER BY e.to_seq DESC;
    SELECT @head = MAX(seq) FROM dbo.audit_entries WHERE tenant_id = @tenant;
    SELECT @first_ph = prev_hash FROM dbo.audit_entries WHERE tenant_id = @tenant AND seq = @from_seq;
    IF @first_ph IS NULL AND @prev_to = @from_seq - 1 SET @first_ph = @prev_last;
    SELECT @last_h = hash FROM dbo.audit_entries WHERE tenant_id = @tenant AND seq = @to_seq;
    SET @prefix = LOWER(CONVERT(nvarchar(36), @tenant)) + N'/audit/';
    SET @suffix = N'/' + CONVERT(nvarchar(20), @from_seq) + N'-' + CONVERT(nvarchar(20), @to_seq) + N'.jsonl.gz';
    SET @problem = CASE
        WHEN @from_seq IS NULL OR @from_seq <> COALESCE(@prev_to, 0) + 1
            THEN N'from_seq does not follow the last export'
        WHEN @to_seq IS NULL OR @head IS NULL OR @to_seq > @head
            THEN N'to_seq is past the chain''s head'
        WHEN @count IS NULL OR @count <> @to_seq - @from_seq + 1
            THEN N'count is not to_seq - from_seq + 1'
        WHEN @first_ph IS NULL OR @first_prev_hash IS NULL OR @first_prev_hash <> @first_ph
            THEN N'first_prev_hash is not the prev hash of entry from_seq'
        WHEN @last_h IS NULL OR @last_hash IS NULL OR @last_hash <> @last_h
            THEN N'last_hash is not the hash of entry to_seq'
        WHEN @blob IS NULL
             OR LEFT(@blob, LEN(@prefix)) COLLATE Latin1_General_100_BIN2 <> @prefix
             OR RIGHT(@blob, LEN(@suffix)) COLLATE Latin1_General_100_BIN2 <> @suffix
            THEN N'blob is not <tenant>/audit/.../<from_seq>-<to_seq>.jsonl.gz'
    END;
    IF @problem IS NOT NULL
    BEGIN
        SET @problem = N'audit export refused: ' + @problem;
        THROW 51011, @problem, 1;
    END;
    INSERT INTO dbo.audit_exports (tenant_id, from_seq, to_seq, [count], blob, sha256, first_prev_hash, last_hash,
                                   evidence_id, exported_at)
    VALUES (@tenant, @from_seq, @to_seq, @count, @blob, @sha256, @first_prev_hash, @last_hash, @evidence_id, @exported_at);
    SELECT CAST(1 AS bit) AS inserted;
END;
-- +goose StatementEnd

GRANT EXECUTE ON dbo.audit_record_export TO audit_app;

-- +goose Down
DROP PROCEDURE dbo.audit_record_export;
DROP PROCEDURE dbo.audit_purge;
DROP TABLE dbo.audit_retention_floor;
ALTER SECURITY POLICY rls.tenant_isolation
    DROP FILTER PREDICATE ON dbo.audit_exports,
    DROP BLOCK PREDICATE ON dbo.audit_exports AFTER INSERT;
DROP TABLE dbo.audit_exports;
