-- Reporting: per tenant its report definitions, their runs (each run's artifact lives in Blob, in
-- the `reports` container under <tenantId>/reports/<yyyy>/<mm>/<dd>/<runId>.<ext>; the row holds
-- the reference, size and SHA-256), and the read models the built-in report sources query. The
-- read models are fed by events (ReportingOn<Topic>Event consumers), never by reading another
-- service's tables. Runs as reporting_owner after the platform schema (shared/platform: outbox,
-- inbox, idempotency_keys and spine_tenant_visible), which this file uses and never creates.

-- +goose Up

-- A report definition: a named, parameterised query (source: a built-in source's key, see
-- handlers/reporting/sources.go) and its output format. Deleting one is soft (deleted_at): its
-- runs and their artifacts stay readable until they expire.
CREATE TABLE report_definitions (
    tenant_id  uuid        NOT NULL,
    report_id  uuid        NOT NULL,
    name       text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    source     text        NOT NULL CHECK (source ~ '^[a-z][a-z0-9-]{1,63}$'),
    parameters jsonb       NOT NULL CHECK (jsonb_typeof(parameters) = 'object'),
    format     text        NOT NULL CHECK (format IN ('csv', 'json', 'xlsx')),
    created_by text        NOT NULL CHECK (char_length(created_by) BETWEEN 1 AND 200),
    version    bigint      NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    deleted_at timestamptz,
    CONSTRAINT report_definitions_pkey PRIMARY KEY (tenant_id, report_id)
);

-- A run: Queued → Running → Succeeded | Failed. source, format and parameters are the run's own
-- (the definition's at request time, parameters merged with the request's). attempts counts the
-- worker's claims (at most 3); lease_until is how long the claiming worker holds a Running run
-- (it renews it while it streams; a lapsed lease may be claimed again). blob_name, sha256 (hex),
-- size_bytes and row_count are set on success; error_class on failure (a stable class, never an
-- error's text).
CREATE TABLE report_runs (
    tenant_id    uuid        NOT NULL,
    run_id       uuid        NOT NULL,
    report_id    uuid        NOT NULL,
    status       text        NOT NULL CHECK (status IN ('Queued', 'Running', 'Succeeded', 'Failed')),
    source       text        NOT NULL,
    format       text        NOT NULL CHECK (format IN ('csv', 'json', 'xlsx')),
    parameters   jsonb       NOT NULL CHECK (jsonb_typeof(parameters) = 'object'),
    requested_by text        NOT NULL CHECK (char_length(requested_by) BETWEEN 1 AND 200),
    attempts     integer     NOT NULL DEFAULT 0 CHECK (attempts BETWEEN 0 AND 3),
    lease_until  timestamptz,
    row_count    bigint      CHECK (row_count >= 0),
    blob_name    text        CHECK (left(blob_name, 37) = tenant_id::text || '/' AND char_length(blob_name) <= 200),
    sha256       char(64)    CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    size_bytes   bigint      CHECK (size_bytes >= 0),
    error_class  text        CHECK (char_length(error_class) BETWEEN 1 AND 64),
    created_at   timestamptz NOT NULL,
    started_at   timestamptz,
    finished_at  timestamptz,
    expires_at   timestamptz,
    CONSTRAINT report_runs_pkey PRIMARY KEY (tenant_id, run_id),
    CONSTRAINT report_runs_report_fkey FOREIGN KEY (tenant_id, report_id) REFERENCES report_definitions (tenant_id, report_id),
    CONSTRAINT report_runs_succeeded CHECK (status <> 'Succeeded' OR (blob_name IS NOT NULL AND sha256 IS NOT NULL
        AND size_bytes IS NOT NULL AND row_count IS NOT NULL AND expires_at IS NOT NULL))
);
-- A report's runs, newest first (GET /api/reports/{id}/runs pages on run_id).
CREATE INDEX report_runs_report ON report_runs (tenant_id, report_id, run_id);

-- Read model: the tenant's users, from identity's UserInvited / UserActivated / UserDisabled /
-- UserEnabled. email is what UserInvited carries (the report lists it to the tenant's own admins).
CREATE TABLE rm_users (
    tenant_id    uuid        NOT NULL,
    user_id      uuid        NOT NULL,
    email        text        COLLATE "C" CHECK (char_length(email) <= 320),
    status       text        NOT NULL CHECK (status IN ('Invited', 'Active', 'Disabled')),
    invited_at   timestamptz,
    activated_at timestamptz,
    updated_at   timestamptz NOT NULL,
    CONSTRAINT rm_users_pkey PRIMARY KEY (tenant_id, user_id)
);
-- users-and-roles streams in this order.
CREATE INDEX rm_users_email ON rm_users (tenant_id, email, user_id);

-- Read model: who holds which role, from RoleAssigned / RoleRevoked.
CREATE TABLE rm_user_roles (
    tenant_id   uuid        NOT NULL,
    user_id     uuid        NOT NULL,
    role_id     uuid        NOT NULL,
    role_code   text        COLLATE "C" NOT NULL CHECK (char_length(role_code) BETWEEN 1 AND 128),
    assigned_at timestamptz NOT NULL,
    CONSTRAINT rm_user_roles_pkey PRIMARY KEY (tenant_id, user_id, role_id)
);

-- Read model: how many events of each type the tenant's services published per UTC day (the
-- event's time), counted by the group consumers over every other topic.
CREATE TABLE rm_activity_daily (
    tenant_id   uuid   NOT NULL,
    day         date   NOT NULL,
    event_type  text   COLLATE "C" NOT NULL CHECK (char_length(event_type) BETWEEN 1 AND 128),
    event_count bigint NOT NULL CHECK (event_count >= 0),
    CONSTRAINT rm_activity_daily_pkey PRIMARY KEY (tenant_id, day, event_type)
);

ALTER TABLE report_definitions ENABLE ROW LEVEL SECURITY;
ALTER TABLE report_definitions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON report_definitions
    USING (spine_tenant_visible(tenant_id)) WITH CHECK (spine_tenant_visible(tenant_id));
ALTER TABLE report_runs ENABLE ROW LEVEL SECURITY;
ALTER TABLE report_runs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON report_runs
    USING (spine_tenant_visible(tenant_id)) WITH CHECK (spine_tenant_visible(tenant_id));
ALTER TABLE rm_users ENABLE ROW LEVEL SECURITY;
ALTER TABLE rm_users FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON rm_users
    USING (spine_tenant_visible(tenant_id)) WITH CHECK (spine_tenant_visible(tenant_id));
ALTER TABLE rm_user_roles ENABLE ROW LEVEL SECURITY;
ALTER TABLE rm_user_roles FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON rm_user_roles
    USING (spine_tenant_visible(tenant_id)) WITH CHECK (spine_tenant_visible(tenant_id));
ALTER TABLE rm_activity_daily ENABLE ROW LEVEL SECURITY;
ALTER TABLE rm_activity_daily FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON rm_activity_daily
    USING (spine_tenant_visible(tenant_id)) WITH CHECK (spine_tenant_visible(tenant_id));

-- Definitions are deleted softly, runs never: no DELETE on either. Role assignments are deleted
-- on RoleRevoked.
GRANT SELECT, INSERT, UPDATE ON report_definitions, report_runs, rm_users, rm_activity_daily TO reporting_app;
GRANT SELECT, INSERT, DELETE ON rm_user_roles TO reporting_app;

-- +goose Down
DROP TABLE rm_activity_daily;
DROP TABLE rm_user_roles;
DROP TABLE rm_users;
DROP TABLE report_runs;
DROP TABLE report_definitions;
