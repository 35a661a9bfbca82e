-- Azure SQL twin of postgres/00002_run_expiry.sql: runs may be Expired (the ReportArtifactLifecycle
-- sweep deleted their artifact; expired_at says when). The sweep pages on (expires_at, run_key).
-- Written and reviewed; not executed on these build machines (no SQL Server here).

-- +goose Up
ALTER TABLE dbo.report_runs DROP CONSTRAINT report_runs_status_check;
ALTER TABLE dbo.report_runs ADD expired_at datetimeoffset NULL;
-- +goose StatementBegin
ALTER TABLE dbo.report_runs ADD
    CONSTRAINT report_runs_status_check CHECK (status IN ('Queued', 'Running', 'Succeeded', 'Failed', 'Expired')),
    CONSTRAINT report_runs_expired CHECK (status <> 'Expired' OR (expired_at IS NOT NULL AND blob_name IS NOT NULL
        AND expires_at IS NOT NULL));
-- +goose StatementEnd
CREATE INDEX report_runs_expiry ON dbo.report_runs (tenant_id, status, expires_at, run_key);
CREATE INDEX report_runs_due ON dbo.report_runs (status, expires_at) INCLUDE (tenant_id);

-- +goose Down
DROP INDEX report_runs_due ON dbo.report_runs;
DROP INDEX report_runs_expiry ON dbo.report_runs;
UPDATE dbo.report_runs SET status = 'Succeeded' WHERE status = 'Expired';
ALTER TABLE dbo.report_runs DROP CONSTRAINT report_runs_expired;
ALTER TABLE dbo.report_runs DROP CONSTRAINT report_runs_status_check;
ALTER TABLE dbo.report_runs DROP COLUMN expired_at;
ALTER TABLE dbo.report_runs ADD CONSTRAINT report_runs_status_check CHECK (status IN ('Queued', 'Running', 'Succeeded', 'Failed'));
