-- Notifications: per tenant its webhook endpoints, its notifications (webhook, email, inApp) with
-- their attachments' metadata, and the delivery log of every attempt. Runs as notifications_owner
-- after the platform schema (shared/platform: outbox, inbox, idempotency_keys and
-- spine_tenant_visible), which this file uses and never creates.
--
-- What is NOT here, by design: a webhook secret (Key Vault holds it; the endpoint row holds the
-- reference {vault, name, version} only), a body above SPINE_NOTIFICATIONS_INLINE_BODY_MAX (Blob
-- container notification-bodies; the row holds the blob name, size and SHA-256), attachment
-- content (Blob container notification-attachments), and response bodies of deliveries (the log
-- keeps status, latency and an error class).
--
-- Archiving (90 days hot; the retention issue's sweep) takes one tenant's month at a time:
-- notifications_created (tenant_id, created_at, notification_id) bounds that batch, and every
-- child table's key starts with (tenant_id, notification_id).

-- +goose Up

CREATE TABLE webhook_endpoints (
    tenant_id       uuid        NOT NULL,
    endpoint_id     uuid        NOT NULL,
    url             text        NOT NULL CHECK (char_length(url) BETWEEN 8 AND 2048),
    description     text        NOT NULL DEFAULT '' CHECK (char_length(description) <= 500),
    -- The event types the endpoint accepts (a JSON array of strings); NULL accepts every type.
    event_types     jsonb       CHECK (event_types IS NULL OR jsonb_typeof(event_types) = 'array'),
    -- The signing secret's Key Vault reference: never the value.
    secret_vault    text        NOT NULL CHECK (char_length(secret_vault) BETWEEN 1 AND 300),
    secret_name     text        NOT NULL CHECK (secret_name ~ '^[0-9A-Za-z-]{1,127}$'),
    secret_version  text        NOT NULL CHECK (char_length(secret_version) BETWEEN 1 AND 64),
    enabled         boolean     NOT NULL,
    -- failing_since: the first failed delivery of the current run of failures (cleared by a
    -- success); the endpoint is disabled once it reaches SPINE_NOTIFICATIONS_ENDPOINT_DISABLE_AFTER.
    failing_since   timestamptz,
    disabled_reason text        CHECK (disabled_reason IN ('gone', 'failing', 'manual')),
    disabled_at     timestamptz,
    version         bigint      NOT NULL,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    CONSTRAINT webhook_endpoints_pkey PRIMARY KEY (tenant_id, endpoint_id)
);

CREATE TABLE notifications (
    tenant_id        uuid        NOT NULL,
    notification_id  uuid        NOT NULL,
    channel          text        NOT NULL CHECK (channel IN ('webhook', 'email', 'inApp')),
    -- A webhook endpoint id (webhook), an e-mail address (email) or a user id (inApp).
    recipient        text        NOT NULL CHECK (char_length(recipient) BETWEEN 1 AND 320),
    event_type       text        NOT NULL DEFAULT '' CHECK (char_length(event_type) <= 100),
    subject          text        NOT NULL CHECK (char_length(subject) <= 998),
    -- The body inline (body_blob NULL) or in Blob (body NULL); its size in bytes and SHA-256 (hex)
    -- either way.
    body             text,
    body_blob        text,
    body_size        bigint      NOT NULL CHECK (body_size >= 0),
    body_sha256      char(64)    NOT NULL,
    status           text        NOT NULL CHECK (status IN ('Pending', 'Sending', 'Delivered', 'Failed')),
    -- attempts started; next_attempt_at: when the retry timer may start the next one (NULL once
    -- Delivered or Failed). A Sending row past it was abandoned mid-attempt and is retried.
    attempts         integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at  timestamptz,
    last_error_class text,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    delivered_at     timestamptz,
    failed_at        timestamptz,
    CONSTRAINT notifications_pkey PRIMARY KEY (tenant_id, notification_id),
    CONSTRAINT notifications_body_place CHECK ((body IS NULL) <> (body_blob IS NULL)),
    CONSTRAINT notifications_blob_tenant CHECK (body_blob IS NULL OR body_blob LIKE tenant_id::text || '/%')
);
-- The archive sweep's batch (one tenant's month) and the list's order.
CREATE INDEX notifications_created ON notifications (tenant_id, created_at, notification_id);
-- A recipient's notifications (a user's in-app list), newest first.
CREATE INDEX notifications_recipient ON notifications (tenant_id, recipient, notification_id);
-- The retry timer (NotificationRetries): due attempts of every tenant.
CREATE INDEX notifications_due ON notifications (next_attempt_at) WHERE status IN ('Pending', 'Sending');

CREATE TABLE notification_attachments (
    tenant_id       uuid     NOT NULL,
    notification_id uuid     NOT NULL,
    name            text     NOT NULL CHECK (name ~ '^[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}$'),
    content_type    text     NOT NULL CHECK (char_length(content_type) BETWEEN 1 AND 200),
    size            bigint   NOT NULL CHECK (size >= 0),
    sha256          char(64) NOT NULL,
    blob_name       text     NOT NULL,
    CONSTRAINT notification_attachments_pkey PRIMARY KEY (tenant_id, notification_id, name),
    CONSTRAINT notification_attachments_fk FOREIGN KEY (tenant_id, notification_id) REFERENCES notifications (tenant_id, notification_id),
    CONSTRAINT notification_attachments_blob_tenant CHECK (blob_name LIKE tenant_id::text || '/%')
);

-- The delivery log: one row per attempt, append-only. Never a response body.
CREATE TABLE delivery_attempts (
    tenant_id       uuid        NOT NULL,
    notification_id uuid        NOT NULL,
    attempt         integer     NOT NULL CHECK (attempt >= 1),
    attempted_at    timestamptz NOT NULL,
    status_code     integer,
    latency_ms      integer     NOT NULL CHECK (latency_ms >= 0),
    error_class     text        CHECK (char_length(error_class) <= 32),
    CONSTRAINT delivery_attempts_pkey PRIMARY KEY (tenant_id, notification_id, attempt),
    CONSTRAINT delivery_attempts_fk FOREIGN KEY (tenant_id, notification_id) REFERENCES notifications (tenant_id, notification_id)
);

ALTER TABLE webhook_endpoints ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_endpoints FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON webhook_endpoints
    USING (spine_tenant_visible(tenant_id)) WITH CHECK (spine_tenant_visible(tenant_id));
ALTER TABLE notifications ENABLE ROW LEVEL SECURITY;
ALTER TABLE notifications FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON notifications
    USING (spine_tenant_visible(tenant_id)) WITH CHECK (spine_tenant_visible(tenant_id));
ALTER TABLE notification_attachments ENABLE ROW LEVEL SECURITY;
ALTER TABLE notification_attachments FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON notification_attachments
    USING (spine_tenant_visible(tenant_id)) WITH CHECK (spine_tenant_visible(tenant_id));
ALTER TABLE delivery_attempts ENABLE ROW LEVEL SECURITY;
ALTER TABLE delivery_attempts FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON delivery_attempts
    USING (spine_tenant_visible(tenant_id)) WITH CHECK (spine_tenant_visible(tenant_id));

GRANT SELECT, INSERT, UPDATE, DELETE ON webhook_endpoints TO notifications_app;
GRANT SELECT, INSERT, UPDATE ON notifications TO notifications_app;
GRANT SELECT, INSERT ON notification_attachments TO notifications_app;
GRANT SELECT, INSERT ON delivery_attempts TO notifications_app;

-- +goose Down
DROP TABLE delivery_attempts;
DROP TABLE notification_attachments;
DROP TABLE notifications;
DROP TABLE webhook_endpoints;
