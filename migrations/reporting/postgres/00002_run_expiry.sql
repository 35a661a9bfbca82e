-- Report artifact lifecycle (the ReportArtifactLifecycle sweep, handlers/reporting/lifecycle.go):
-- a Succeeded run whose expires_at has passed has its artifact blob deleted and is marked Expired
-- (expired_at: when). The row keeps its blob name, size and SHA-256 (evidence of what was there).
-- Runs as reporting_owner.

-- +goose Up
ALTER TABLE report_runs
    DROP CONSTRAINT report_runs_status_check,
    ADD CONSTRAINT report_runs_status_check CHECK (status IN ('Queued', 'Running', 'Succeeded', 'Failed', 'Expired')),
    ADD COLUMN expired_at timestamptz,
    ADD CONSTRAINT report_runs_expired CHECK (status <> 'Expired' OR (expired_at IS NOT NULL AND blob_name IS NOT NULL
        AND expires_at IS NOT NULL));
-- The sweep's order: a tenant's Succeeded runs by (expires_at, run_id) (its keyset), and the
-- tenants with a due run (expires_at < now) without reading the others.
CREATE INDEX report_runs_expiry ON report_runs (tenant_id, expires_at, run_id) WHERE status = 'Succeeded';
CREATE INDEX report_runs_due ON report_runs (expires_at, tenant_id) WHERE status = 'Succeeded';

-- +goose Down
DROP INDEX report_runs_due;
DROP INDEX report_runs_expiry;
UPDATE report_runs SET status = 'Succeeded' WHERE status = 'Expired';
ALTER TABLE report_runs
    DROP CONSTRAINT report_runs_expired,
    DROP COLUMN expired_at,
    DROP CONSTRAINT report_runs_status_check,
    ADD CONSTRAINT report_runs_status_check CHECK (status IN ('Queued', 'Running', 'Succeeded', 'Failed'));
