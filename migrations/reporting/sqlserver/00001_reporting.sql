-- Azure SQL twin of postgres/00001_reporting.sql. Runs as the reporting owner (db_owner) after the
-- platform schema (dbo.outbox, dbo.inbox, dbo.idempotency_keys and rls.tenant_visible), which this
-- file uses and never creates. The runtime user reporting_app gets DML only. Row-level security:
-- the security policy rls.reporting_isolation on every table. *_key columns are the ids' canonical
-- text (binary collation), on which lists page: SQL Server orders uniqueidentifier otherwise.
-- Written and reviewed; not executed on these build machines (no SQL Server here).

-- +goose Up

CREATE TABLE dbo.report_definitions (
    tenant_id  uniqueidentifier NOT NULL,
    report_id  uniqueidentifier NOT NULL,
    report_key AS (LOWER(CONVERT(char(36), report_id)) COLLATE Latin1_General_100_BIN2) PERSISTED NOT NULL,
    name       nvarchar(200)    NOT NULL,
    source     varchar(64)      NOT NULL,
    parameters nvarchar(max)    NOT NULL,
    format     varchar(8)       NOT NULL,
    created_by nvarchar(200)    NOT NULL,
    version    bigint           NOT NULL,
    created_at datetimeoffset   NOT NULL,
    updated_at datetimeoffset   NOT NULL,
    deleted_at datetimeoffset   NULL,
    CONSTRAINT report_definitions_pkey PRIMARY KEY (tenant_id, report_id),
    CONSTRAINT report_definitions_name_check CHECK (len(name) >= 1),
    CONSTRAINT report_definitions_source_check CHECK (source NOT LIKE '%[^a-z0-9-]%' AND len(source) >= 2),
    CONSTRAINT report_definitions_parameters_check CHECK (ISJSON(parameters) = 1),
    CONSTRAINT report_definitions_format_check CHECK (format IN ('csv', 'json', 'xlsx'))
);
CREATE UNIQUE INDEX report_definitions_report_key ON dbo.report_definitions (tenant_id, report_key);

CREATE TABLE dbo.report_runs (
    tenant_id    uniqueidentifier NOT NULL,
    run_id       uniqueidentifier NOT NULL,
    run_key      AS (LOWER(CONVERT(char(36), run_id)) COLLATE Latin1_General_100_BIN2) PERSISTED NOT NULL,
    report_id    uniqueidentifier NOT NULL,
    status       varchar(16)      NOT NULL,
    source       varchar(64)      NOT NULL,
    format       varchar(8)       NOT NULL,
    parameters   nvarchar(max)    NOT NULL,
    requested_by nvarchar(200)    NOT NULL,
    attempts     int              NOT NULL CONSTRAINT report_runs_attempts_default DEFAULT 0,
    lease_until  datetimeoffset   NULL,
    row_count    bigint           NULL,
    blob_name    varchar(200)     NULL,
    sha256       char(64)         NULL,
    size_bytes   bigint           NULL,
    error_class  varchar(64)      NULL,
    created_at   datetimeoffset   NOT NULL,
    started_at   datetimeoffset   NULL,
    finished_at  datetimeoffset   NULL,
    expires_at   datetimeoffset   NULL,
    CONSTRAINT report_runs_pkey PRIMARY KEY (tenant_id, run_id),
    CONSTRAINT report_runs_report_fkey FOREIGN KEY (tenant_id, report_id) REFERENCES dbo.report_definitions (tenant_id, report_id),
    CONSTRAINT report_runs_status_check CHECK (status IN ('Queued', 'Running', 'Succeeded', 'Failed')),
    CONSTRAINT report_runs_format_check CHECK (format IN ('csv', 'json', 'xlsx')),
    CONSTRAINT report_runs_parameters_check CHECK (ISJSON(parameters) = 1),
    CONSTRAINT report_runs_attempts_check CHECK (attempts BETWEEN 0 AND 3),
    CONSTRAINT report_runs_counts_check CHECK (row_count >= 0 AND size_bytes >= 0),
    CONSTRAINT report_runs_blob_check CHECK (LEFT(blob_name, 37) = LOWER(CONVERT(char(36), tenant_id)) + '/'),
    CONSTRAINT report_runs_sha256_check CHECK (sha256 NOT LIKE '%[^0-9a-f]%' COLLATE Latin1_General_100_BIN2),
    CONSTRAINT report_runs_succeeded CHECK (status <> 'Succeeded' OR (blob_name IS NOT NULL AND sha256 IS NOT NULL
        AND size_bytes IS NOT NULL AND row_count IS NOT NULL AND expires_at IS NOT NULL))
);
CREATE UNIQUE INDEX report_runs_run_key ON dbo.report_runs (tenant_id, run_key);
CREATE INDEX report_runs_report ON dbo.report_runs (tenant_id, report_id, run_key);

CREATE TABLE dbo.rm_users (
    tenant_id    uniqueidentifier NOT NULL,
    user_id      uniqueidentifier NOT NULL,
    user_key     AS (LOWER(CONVERT(char(36), user_id)) COLLATE Latin1_General_100_BIN2) PERSISTED NOT NULL,
    email        nvarchar(320)    COLLATE Latin1_General_100_BIN2 NULL,
    status       varchar(16)      NOT NULL,
    invited_at   datetimeoffset   NULL,
    activated_at datetimeoffset   NULL,
    updated_at   datetimeoffset   NOT NULL,
    CONSTRAINT rm_users_pkey PRIMARY KEY (tenant_id, user_id),
    CONSTRAINT rm_users_status_check CHECK (status IN ('Invited', 'Active', 'Disabled'))
);
CREATE INDEX rm_users_email ON dbo.rm_users (tenant_id, email, user_key);

CREATE TABLE dbo.rm_user_roles (
    tenant_id   uniqueidentifier NOT NULL,
    user_id     uniqueidentifier NOT NULL,
    role_id     uniqueidentifier NOT NULL,
    role_code   nvarchar(128)    COLLATE Latin1_General_100_BIN2 NOT NULL,
    assigned_at datetimeoffset   NOT NULL,
    CONSTRAINT rm_user_roles_pkey PRIMARY KEY (tenant_id, user_id, role_id)
);

CREATE TABLE dbo.rm_activity_daily (
    tenant_id   uniqueidentifier NOT NULL,
    day         date             NOT NULL,
    event_type  varchar(128)     COLLATE Latin1_General_100_BIN2 NOT NULL,
    event_count bigint           NOT NULL,
    CONSTRAINT rm_activity_daily_pkey PRIMARY KEY (tenant_id, day, event_type),
    CONSTRAINT rm_activity_daily_count_check CHECK (event_count >= 0)
);

-- +goose StatementBegin
CREATE SECURITY POLICY rls.reporting_isolation
    ADD FILTER PREDICATE rls.tenant_visible(tenant_id) ON dbo.report_definitions,
    ADD BLOCK PREDICATE rls.tenant_visible(tenant_id) ON dbo.report_definitions AFTER INSERT,
    ADD BLOCK PREDICATE rls.tenant_visible(tenant_id) ON dbo.report_definitions AFTER UPDATE,
    ADD FILTER PREDICATE rls.tenant_visible(tenant_id) ON dbo.report_runs,
    ADD BLOCK PREDICATE rls.tenant_visible(tenant_id) ON dbo.report_runs AFTER INSERT,
    ADD BLOCK PREDICATE rls.tenant_visible(tenant_id) ON dbo.report_runs AFTER UPDATE,
    ADD FILTER PREDICATE rls.tenant_visible(tenant_id) ON dbo.rm_users,
    ADD BLOCK PREDICATE rls.tenant_visible(tenant_id) ON dbo.rm_users AFTER INSERT,
    ADD BLOCK PREDICATE rls.tenant_visible(tenant_id) ON dbo.rm_users AFTER UPDATE,
    ADD FILTER PREDICATE rls.tenant_visible(tenant_id) ON dbo.rm_user_roles,
    ADD BLOCK PREDICATE rls.tenant_visible(tenant_id) ON dbo.rm_user_roles AFTER INSERT,
    ADD BLOCK PREDICATE rls.tenant_visible(tenant_id) ON dbo.rm_user_roles AFTER UPDATE,
    ADD FILTER PREDICATE rls.tenant_visible(tenant_id) ON dbo.rm_activity_daily,
    ADD BLOCK PREDICATE rls.tenant_visible(tenant_id) ON dbo.rm_activity_daily AFTER INSERT,
    ADD BLOCK PREDICATE rls.tenant_visible(tenant_id) ON dbo.rm_activity_daily AFTER UPDATE
    WITH (STATE = ON, SCHEMABINDING = ON);
-- +goose StatementEnd

GRANT SELECT, INSERT, UPDATE ON dbo.report_definitions TO reporting_app;
GRANT SELECT, INSERT, UPDATE ON dbo.report_runs TO reporting_app;
GRANT SELECT, INSERT, UPDATE ON dbo.rm_users TO reporting_app;
GRANT SELECT, INSERT, DELETE ON dbo.rm_user_roles TO reporting_app;
GRANT SELECT, INSERT, UPDATE ON dbo.rm_activity_daily TO reporting_app;

-- +goose Down
DROP SECURITY POLICY rls.reporting_isolation;
DROP TABLE dbo.rm_activity_daily;
DROP TABLE dbo.rm_user_roles;
DROP TABLE dbo.rm_users;
DROP TABLE dbo.report_runs;
DROP TABLE dbo.report_definitions;
