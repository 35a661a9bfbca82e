-- The retention engine's InboxPrune (shared/retention, records.go): consumers' inbox ids are kept
-- far longer than Service Bus's duplicate-detection window and then deleted in bounded batches,
-- oldest first, by this index. The runtime user gets no DELETE on dbo.inbox (an id it could delete
-- is an event it could apply twice); it gets EXECUTE on dbo.spine_inbox_prune, which runs as the
-- owner and deletes only ids older than seven days — the database enforces the floor whatever the
-- caller asks. The predicate of rls.platform_isolation still applies (the caller's session context).

-- +goose Up
-- +goose StatementBegin
IF NOT EXISTS (SELECT 1 FROM sys.indexes WHERE object_id = OBJECT_ID(N'dbo.inbox') AND name = N'inbox_received_at')
    CREATE INDEX inbox_received_at ON dbo.inbox (received_at);
-- +goose StatementEnd

-- +goose StatementBegin
CREATE OR ALTER PROCEDURE dbo.spine_inbox_prune @from datetime2(6), @to datetime2(6), @cutoff datetime2(6)
WITH EXECUTE AS OWNER
AS
BEGIN
    SET NOCOUNT ON;
    IF @cutoff > DATEADD(day, -7, SYSUTCDATETIME())
        THROW 50001, N'inbox ids are kept at least seven days', 1;
    DELETE FROM dbo.inbox WHERE received_at >= @from AND received_at <= @to AND received_at < @cutoff;
    SELECT CAST(@@ROWCOUNT AS bigint) AS deleted;
END;
-- +goose StatementEnd
GRANT EXECUTE ON dbo.spine_inbox_prune TO {{runtime_role}};

-- +goose Down
-- +goose StatementBegin
DROP PROCEDURE IF EXISTS dbo.spine_inbox_prune;
-- +goose StatementEnd
-- +goose StatementBegin
IF EXISTS (SELECT 1 FROM sys.indexes WHERE object_id = OBJECT_ID(N'dbo.inbox') AND name = N'inbox_received_at')
    DROP INDEX inbox_received_at ON dbo.inbox;
-- +goose StatementEnd
