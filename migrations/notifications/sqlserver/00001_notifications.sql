-- Azure SQL twin of postgres/00001_notifications.sql. Runs as the notifications owner (db_owner)
-- after the platform schema (shared/platform: dbo.outbox, dbo.inbox, dbo.idempotency_keys and the
-- predicate function rls.tenant_visible), which this file uses and never creates. The runtime user
-- notifications_app gets DML only. Row-level security: the security policy
-- rls.notifications_isolation on every table. *_key columns are the ids' canonical text (binary
-- collation), on which lists page. Written and reviewed; not executed on these build machines (no
-- SQL Server here): tsqlcheck checks it.

-- +goose Up

CREATE TABLE dbo.webhook_endpoints (
    tenant_id       uniqueidentifier NOT NULL,
    endpoint_id     uniqueidentifier NOT NULL,
    endpoint_key    AS (LOWER(CONVERT(char(36), endpoint_id)) COLLATE Latin1_General_100_BIN2) PERSISTED NOT NULL,
    url             nvarchar(2048)   NOT NULL,
    description     nvarchar(500)    NOT NULL CONSTRAINT webhook_endpoints_description_default DEFAULT N'',
    event_types     nvarchar(max)    NULL,
    secret_vault    nvarchar(300)    NOT NULL,
    secret_name     varchar(127)     NOT NULL,
    secret_version  varchar(64)      NOT NULL,
    enabled         bit              NOT NULL,
    failing_since   datetimeoffset   NULL,
    disabled_reason varchar(16)      NULL,
    disabled_at     datetimeoffset   NULL,
    version         bigint           NOT NULL,
    created_at      datetimeoffset   NOT NULL,
    updated_at      datetimeoffset   NOT NULL,
    CONSTRAINT webhook_endpoints_pkey PRIMARY KEY (tenant_id, endpoint_id),
    CONSTRAINT webhook_endpoints_event_types_check CHECK (event_types IS NULL OR ISJSON(event_types) = 1),
    CONSTRAINT webhook_endpoints_secret_name_check CHECK (secret_name NOT LIKE '%[^0-9A-Za-z-]%' AND len(secret_name) >= 1),
    CONSTRAINT webhook_endpoints_reason_check CHECK (disabled_reason IN ('gone', 'failing', 'manual'))
);
CREATE UNIQUE INDEX webhook_endpoints_endpoint_key ON dbo.webhook_endpoints (tenant_id, endpoint_key);

CREATE TABLE dbo.notifications (
    tenant_id        uniqueidentifier NOT NULL,
    notification_id  uniqueidentifier NOT NULL,
    notification_key AS (LOWER(CONVERT(char(36), notification_id)) COLLATE Latin1_General_100_BIN2) PERSISTED NOT NULL,
    channel          varchar(16)      NOT NULL,
    recipient        nvarchar(320)    NOT NULL,
    event_type       nvarchar(100)    NOT NULL CONSTRAINT notifications_event_type_default DEFAULT N'',
    subject          nvarchar(998)    NOT NULL,
    body             nvarchar(max)    NULL,
    body_blob        nvarchar(400)    NULL,
    body_size        bigint           NOT NULL,
    body_sha256      char(64)         NOT NULL,
    status           varchar(16)      NOT NULL,
    attempts         int              NOT NULL CONSTRAINT notifications_attempts_default DEFAULT 0,
    next_attempt_at  datetimeoffset   NULL,
    last_error_class varchar(32)      NULL,
    created_at       datetimeoffset   NOT NULL,
    updated_at       datetimeoffset   NOT NULL,
    delivered_at     datetimeoffset   NULL,
    failed_at        datetimeoffset   NULL,
    CONSTRAINT notifications_pkey PRIMARY KEY (tenant_id, notification_id),
    CONSTRAINT notifications_channel_check CHECK (channel IN ('webhook', 'email', 'inApp')),
    CONSTRAINT notifications_status_check CHECK (status IN ('Pending', 'Sending', 'Delivered', 'Failed')),
    CONSTRAINT notifications_attempts_check CHECK (attempts >= 0),
    CONSTRAINT notifications_body_place CHECK ((body IS NULL AND body_blob IS NOT NULL) OR (body IS NOT NULL AND body_blob IS NULL)),
    CONSTRAINT notifications_blob_tenant CHECK (body_blob IS NULL OR body_blob LIKE LOWER(CONVERT(char(36), tenant_id)) + N'/%')
);
CREATE UNIQUE INDEX notifications_notification_key ON dbo.notifications (tenant_id, notification_key);
CREATE INDEX notifications_created ON dbo.notifications (tenant_id, created_at, notification_key);
CREATE INDEX notifications_recipient ON dbo.notifications (tenant_id, recipient, notification_key);
CREATE INDEX notifications_due ON dbo.notifications (next_attempt_at) WHERE status IN ('Pending', 'Sending');

CREATE TABLE dbo.notification_attachments (
    tenant_id       uniqueidentifier NOT NULL,
    notification_id uniqueidentifier NOT NULL,
    name            varchar(100)     COLLATE Latin1_General_100_BIN2 NOT NULL,
    content_type    varchar(200)     NOT NULL,
    size            bigint           NOT NULL,
    sha256          char(64)         NOT NULL,
    blob_name       nvarchar(400)    NOT NULL,
    CONSTRAINT notification_attachments_pkey PRIMARY KEY (tenant_id, notification_id, name),
    CONSTRAINT notification_attachments_fk FOREIGN KEY (tenant_id, notification_id) REFERENCES dbo.notifications (tenant_id, notification_id),
    CONSTRAINT notification_attachments_name_check CHECK (name NOT LIKE '%[^A-Za-z0-9._-]%' AND name NOT LIKE '.%' AND len(name) >= 1),
    CONSTRAINT notification_attachments_blob_tenant CHECK (blob_name LIKE LOWER(CONVERT(char(36), tenant_id)) + N'/%')
);

CREATE TABLE dbo.delivery_attempts (
    tenant_id       uniqueidentifier NOT NULL,
    notification_id uniqueidentifier NOT NULL,
    attempt         int              NOT NULL,
    attempted_at    datetimeoffset   NOT NULL,
    status_code     int              NULL,
    latency_ms      int              NOT NULL,
    error_class     varchar(32)      NULL,
    CONSTRAINT delivery_attempts_pkey PRIMARY KEY (tenant_id, notification_id, attempt),
    CONSTRAINT delivery_attempts_fk FOREIGN KEY (tenant_id, notification_id) REFERENCES dbo.notifications (tenant_id, notification_id)
);

-- +goose StatementBegin
CREATE SECURITY POLICY rls.notifications_isolation
    ADD FILTER PREDICATE rls.tenant_visible(tenant_id) ON dbo.webhook_endpoints,
    ADD BLOCK PREDICATE rls.tenant_visible(tenant_id) ON dbo.webhook_endpoints AFTER INSERT,
    ADD BLOCK PREDICATE rls.tenant_visible(tenant_id) ON dbo.webhook_endpoints AFTER UPDATE,
    ADD FILTER PREDICATE rls.tenant_visible(tenant_id) ON dbo.notifications,
    ADD BLOCK PREDICATE rls.tenant_visible(tenant_id) ON dbo.notifications AFTER INSERT,
    ADD BLOCK PREDICATE rls.tenant_visible(tenant_id) ON dbo.notifications AFTER UPDATE,
    ADD FILTER PREDICATE rls.tenant_visible(tenant_id) ON dbo.notification_attachments,
    ADD BLOCK PREDICATE rls.tenant_visible(tenant_id) ON dbo.notification_attachments AFTER INSERT,
    ADD FILTER PREDICATE rls.tenant_visible(tenant_id) ON dbo.delivery_attempts,
    ADD BLOCK PREDICATE rls.tenant_visible(tenant_id) ON dbo.delivery_attempts AFTER INSERT
    WITH (STATE = ON, SCHEMABINDING = ON);
-- +goose StatementEnd

GRANT SELECT, INSERT, UPDATE, DELETE ON dbo.webhook_endpoints TO notifications_app;
GRANT SELECT, INSERT, UPDATE ON dbo.notifications TO notifications_app;
GRANT SELECT, INSERT ON dbo.notification_attachments TO notifications_app;
GRANT SELECT, INSERT ON dbo.delivery_attempts TO notifications_app;

-- +goose Down
DROP SECURITY POLICY rls.notifications_isolation;
DROP TABLE dbo.delivery_attempts;
DROP TABLE dbo.notification_attachments;
DROP TABLE dbo.notifications;
DROP TABLE dbo.webhook_endpoints;
