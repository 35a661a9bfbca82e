-- Azure SQL twin of postgres/00002_idempotency_pending.sql: the headers a replay repeats, and the
-- runtime user's right to record a claimed key's response (status_code, response_body, headers).
-- Written and reviewed; not executed on these build machines (no SQL Server here).

-- +goose Up
-- +goose StatementBegin
IF COL_LENGTH(N'dbo.idempotency_keys', N'headers') IS NULL
    ALTER TABLE dbo.idempotency_keys ADD headers nvarchar(2000) NOT NULL
        CONSTRAINT idempotency_keys_headers_default DEFAULT N'';
-- +goose StatementEnd

GRANT UPDATE (status_code, response_body, headers) ON dbo.idempotency_keys TO {{runtime_role}};

-- +goose Down
REVOKE UPDATE (status_code, response_body, headers) ON dbo.idempotency_keys TO {{runtime_role}};
ALTER TABLE dbo.idempotency_keys DROP CONSTRAINT idempotency_keys_headers_default;
ALTER TABLE dbo.idempotency_keys DROP COLUMN headers;
