-- shared/idempotency records a key in the transaction of the change (status_code 0: claimed, no
-- response yet) and the response right after the change commits: the runtime user updates the
-- record, and the replayed headers (Location, ETag, Content-Type) are kept as a JSON object.

-- +goose Up
-- +goose StatementBegin
IF COL_LENGTH(N'dbo.idempotency_keys', N'headers') IS NULL
    ALTER TABLE dbo.idempotency_keys ADD headers nvarchar(2000) NOT NULL
        CONSTRAINT idempotency_keys_headers_default DEFAULT N'';
-- +goose StatementEnd

GRANT UPDATE ON dbo.idempotency_keys (status_code, response_body, headers) TO {{runtime_role}};

-- +goose Down
REVOKE UPDATE ON dbo.idempotency_keys (status_code, response_body, headers) TO {{runtime_role}};

-- +goose StatementBegin
IF COL_LENGTH(N'dbo.idempotency_keys', N'headers') IS NOT NULL
BEGIN
    ALTER TABLE dbo.idempotency_keys DROP CONSTRAINT idempotency_keys_headers_default;
    ALTER TABLE dbo.idempotency_keys DROP COLUMN headers;
END;
-- +goose StatementEnd
