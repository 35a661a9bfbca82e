-- Azure SQL twin of postgres/00001_billing.sql. Runs as the billing owner (db_owner) after the
-- platform schema (dbo.outbox, dbo.inbox, dbo.idempotency_keys, rls.tenant_visible), which this
-- file uses and never creates. The runtime user billing_app gets DML only: no DELETE on invoices,
-- their lines or usage; a trigger refuses to change an issued invoice's money columns or lines.
-- Written and reviewed; not executed on these build machines (no SQL Server here): see README.
--
-- *_key columns are the ids' canonical text (binary collation), on which lists page: SQL Server
-- orders uniqueidentifier differently from PostgreSQL and the API.

-- +goose Up

-- The edition catalog: platform-level; billing_app may read it, add to it and update it
-- (platform-admin writes, PUT /api/editions/{code}, checked by the service: a security policy
-- cannot police a table without a tenant). The seeded limits are per second (periodSeconds 1).
-- is_public: offered to every tenant (the seeded three); a private edition is assigned by
-- platform admins only.
CREATE TABLE dbo.editions (
    code          varchar(32)    COLLATE Latin1_General_100_BIN2 NOT NULL,
    name          nvarchar(400)  NOT NULL,
    price_minor   bigint         NOT NULL CONSTRAINT editions_price_check CHECK (price_minor BETWEEN 0 AND 9007199254740991),
    currency      char(3)        COLLATE Latin1_General_100_BIN2 NOT NULL CONSTRAINT editions_currency_check CHECK (currency LIKE '[A-Z][A-Z][A-Z]'),
    period_months int            NOT NULL CONSTRAINT editions_period_check CHECK (period_months BETWEEN 1 AND 12),
    trial_days    int            NOT NULL CONSTRAINT editions_trial_check CHECK (trial_days BETWEEN 0 AND 365),
    rank          int            NOT NULL CONSTRAINT editions_rank_check CHECK (rank BETWEEN -1000000000 AND 1000000000),
    entitlements  nvarchar(max)  NOT NULL CONSTRAINT editions_entitlements_check CHECK (ISJSON(entitlements) = 1),
    version       bigint         NOT NULL,
    updated_at    datetime2(6)   NOT NULL,
    is_public     bit            NOT NULL CONSTRAINT editions_is_public_default DEFAULT 0,
    CONSTRAINT editions_pkey PRIMARY KEY (code),
    CONSTRAINT editions_code_check CHECK (LEN(code) BETWEEN 2 AND 32 AND code LIKE '[a-z]%' AND code NOT LIKE '%[^a-z0-9-]%')
);
INSERT INTO dbo.editions (code, name, price_minor, currency, period_months, trial_days, rank, entitlements, version, updated_at, is_public) VALUES
    ('free', N'Free', 0, 'EUR', 1, 0, 0,
     N'{"maxUsers":5,"limits":[{"route":"","rate":20,"burst":40,"periodSeconds":1,"shadow":false},{"route":"/api/audit-entries","rate":5,"burst":10,"periodSeconds":1,"shadow":false}],"featureDefaults":{},"retentionDays":{},"usagePrices":{}}',
     1, '2026-11-30T00:00:00', 1),
    ('standard', N'Standard', 4900, 'EUR', 1, 14, 10,
     N'{"maxUsers":50,"limits":[{"route":"","rate":200,"burst":400,"periodSeconds":1,"shadow":false},{"route":"/api/audit-entries","rate":50,"burst":100,"periodSeconds":1,"shadow":false}],"featureDefaults":{},"retentionDays":{},"usagePrices":{}}',
     1, '2026-11-30T00:00:00', 1),
    ('enterprise', N'Enterprise', 49900, 'EUR', 1, 30, 20,
     N'{"maxUsers":0,"limits":[{"route":"","rate":2000,"burst":4000,"periodSeconds":1,"shadow":false},{"route":"/api/audit-entries","rate":500,"burst":1000,"periodSeconds":1,"shadow":false}],"featureDefaults":{},"retentionDays":{"audit":3650},"usagePrices":{}}',
     1, '2026-11-30T00:00:00', 1);

CREATE TABLE dbo.subscriptions (
    tenant_id        uniqueidentifier NOT NULL,
    subscription_id  uniqueidentifier NOT NULL,
    subscription_key AS (LOWER(CONVERT(char(36), subscription_id)) COLLATE Latin1_General_100_BIN2) PERSISTED NOT NULL,
    edition_code     varchar(32)      COLLATE Latin1_General_100_BIN2 NOT NULL CONSTRAINT subscriptions_edition_fk REFERENCES dbo.editions (code),
    status           varchar(16)      NOT NULL CONSTRAINT subscriptions_status_check CHECK (status IN ('Trial', 'Active', 'PastDue', 'Cancelled')),
    trial_ends_at    datetime2(6)     NULL,
    period_start     datetime2(6)     NOT NULL,
    period_end       datetime2(6)     NOT NULL,
    pending_edition  varchar(32)      COLLATE Latin1_General_100_BIN2 NULL CONSTRAINT subscriptions_pending_fk REFERENCES dbo.editions (code),
    cancelled_at     datetime2(6)     NULL,
    cancel_reason    nvarchar(500)    NULL,
    past_due_since   datetime2(6)     NULL,
    renewal_attempts  int             NOT NULL CONSTRAINT subscriptions_renewal_attempts_default DEFAULT 0
                                      CONSTRAINT subscriptions_renewal_attempts_check CHECK (renewal_attempts >= 0),
    renewal_failed_at datetime2(6)    NULL,
    renewal_retry_at  datetime2(6)    NULL,
    version          bigint           NOT NULL,
    created_at       datetime2(6)     NOT NULL,
    updated_at       datetime2(6)     NOT NULL,
    CONSTRAINT subscriptions_pkey PRIMARY KEY (tenant_id, subscription_id),
    CONSTRAINT subscriptions_period_check CHECK (period_end > period_start)
);
CREATE UNIQUE INDEX subscriptions_subscription_key ON dbo.subscriptions (tenant_id, subscription_key);
CREATE UNIQUE INDEX subscriptions_live ON dbo.subscriptions (tenant_id) WHERE status <> 'Cancelled';
CREATE INDEX subscriptions_due ON dbo.subscriptions (period_end) WHERE status <> 'Cancelled';

CREATE TABLE dbo.usage_records (
    tenant_id    uniqueidentifier NOT NULL,
    usage_id     uniqueidentifier NOT NULL,
    usage_key    AS (LOWER(CONVERT(char(36), usage_id)) COLLATE Latin1_General_100_BIN2) PERSISTED NOT NULL,
    metric       varchar(64)      COLLATE Latin1_General_100_BIN2 NOT NULL,
    quantity     bigint           NOT NULL CONSTRAINT usage_records_quantity_check CHECK (quantity BETWEEN 0 AND 9007199254740991),
    period_start datetime2(6)     NOT NULL,
    recorded_at  datetime2(6)     NOT NULL,
    CONSTRAINT usage_records_pkey PRIMARY KEY (tenant_id, usage_id)
);
CREATE INDEX usage_records_period ON dbo.usage_records (tenant_id, period_start, metric);
CREATE UNIQUE INDEX usage_records_usage_key ON dbo.usage_records (tenant_id, usage_key);

CREATE TABLE dbo.invoices (
    tenant_id    uniqueidentifier NOT NULL,
    invoice_id   uniqueidentifier NOT NULL,
    invoice_key  AS (LOWER(CONVERT(char(36), invoice_id)) COLLATE Latin1_General_100_BIN2) PERSISTED NOT NULL,
    number       nvarchar(64)     NOT NULL,
    status       varchar(16)      NOT NULL CONSTRAINT invoices_status_check CHECK (status IN ('Draft', 'Issued', 'Paid', 'Void')),
    currency     char(3)          COLLATE Latin1_General_100_BIN2 NOT NULL,
    total_minor  bigint           NOT NULL CONSTRAINT invoices_total_check CHECK (total_minor BETWEEN 0 AND 9007199254740991),
    period_start datetime2(6)     NOT NULL,
    period_end   datetime2(6)     NOT NULL,
    created_at   datetime2(6)     NOT NULL,
    issued_at    datetime2(6)     NULL,
    paid_at      datetime2(6)     NULL,
    voided_at    datetime2(6)     NULL,
    CONSTRAINT invoices_pkey PRIMARY KEY (tenant_id, invoice_id),
    CONSTRAINT invoices_number_key UNIQUE (tenant_id, number)
);
CREATE UNIQUE INDEX invoices_invoice_key ON dbo.invoices (tenant_id, invoice_key);

CREATE TABLE dbo.invoice_lines (
    tenant_id    uniqueidentifier NOT NULL,
    invoice_id   uniqueidentifier NOT NULL,
    line_no      int              NOT NULL CONSTRAINT invoice_lines_no_check CHECK (line_no >= 1),
    description  nvarchar(500)    NOT NULL,
    quantity     bigint           NOT NULL CONSTRAINT invoice_lines_quantity_check CHECK (quantity BETWEEN 0 AND 9007199254740991),
    unit_minor   bigint           NOT NULL CONSTRAINT invoice_lines_unit_check CHECK (unit_minor BETWEEN 0 AND 9007199254740991),
    amount_minor bigint           NOT NULL,
    CONSTRAINT invoice_lines_pkey PRIMARY KEY (tenant_id, invoice_id, line_no),
    CONSTRAINT invoice_lines_amount_check CHECK (amount_minor BETWEEN 0 AND 9007199254740991 AND CAST(amount_minor AS decimal(38, 0)) = CAST(quantity AS decimal(38, 0)) * CAST(unit_minor AS decimal(38, 0))),
    CONSTRAINT invoice_lines_invoice_fk FOREIGN KEY (tenant_id, invoice_id) REFERENCES dbo.invoices (tenant_id, invoice_id)
);

-- An invoice is created as a Draft (its lines are added to it), then issued.
-- +goose StatementBegin
CREATE TRIGGER dbo.invoices_insert_guard ON dbo.invoices AFTER INSERT AS
BEGIN
    SET NOCOUNT ON;
    IF EXISTS (SELECT 1 FROM inserted WHERE status <> 'Draft')
        THROW 50005, 'billing: an invoice is created as a Draft, then issued', 1;
END
-- +goose StatementEnd

-- Draft → Issued → Paid | Void (Draft → Void too); leaving Draft the total must be the sum of the
-- lines (summed as decimal: no overflow); from then on the money columns are frozen.
-- +goose StatementBegin
CREATE TRIGGER dbo.invoices_guard ON dbo.invoices AFTER UPDATE AS
BEGIN
    SET NOCOUNT ON;
    IF EXISTS (SELECT 1 FROM inserted n JOIN deleted o ON o.tenant_id = n.tenant_id AND o.invoice_id = n.invoice_id
               WHERE o.status <> 'Draft' AND (n.total_minor <> o.total_minor OR n.currency <> o.currency
                     OR n.number <> o.number OR n.period_start <> o.period_start OR n.period_end <> o.period_end
                     OR ISNULL(n.issued_at, '0001-01-01') <> ISNULL(o.issued_at, '0001-01-01')
                     -- paid_at and voided_at are set by the move to Paid or Void, and frozen then
                     OR (n.status = o.status AND (ISNULL(n.paid_at, '0001-01-01') <> ISNULL(o.paid_at, '0001-01-01')
                         OR ISNULL(n.voided_at, '0001-01-01') <> ISNULL(o.voided_at, '0001-01-01')))))
        THROW 50001, 'billing: an issued invoice''s money columns are immutable', 1;
    IF EXISTS (SELECT 1 FROM inserted n JOIN deleted o ON o.tenant_id = n.tenant_id AND o.invoice_id = n.invoice_id
               WHERE NOT (o.status = n.status
                          OR (o.status = 'Draft' AND n.status IN ('Issued', 'Void'))
                          OR (o.status = 'Issued' AND n.status IN ('Paid', 'Void'))))
        THROW 50002, 'billing: illegal invoice status change', 1;
    IF EXISTS (SELECT 1 FROM inserted n JOIN deleted o ON o.tenant_id = n.tenant_id AND o.invoice_id = n.invoice_id
               WHERE o.status = 'Draft' AND n.status <> 'Draft'
                 AND CAST(n.total_minor AS decimal(38, 0)) <> (SELECT COALESCE(SUM(CAST(l.amount_minor AS decimal(38, 0))), 0)
                     FROM dbo.invoice_lines l WHERE l.tenant_id = n.tenant_id AND l.invoice_id = n.invoice_id))
        THROW 50006, 'billing: an invoice''s total must be the sum of its lines when it leaves Draft', 1;
    -- the key columns cannot change: a row whose key changed has no partner in deleted
    IF EXISTS (SELECT 1 FROM inserted n WHERE NOT EXISTS (SELECT 1 FROM deleted o WHERE o.tenant_id = n.tenant_id AND o.invoice_id = n.invoice_id))
        THROW 50003, 'billing: an invoice''s key is immutable', 1;
END
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER dbo.invoice_lines_guard ON dbo.invoice_lines AFTER INSERT, UPDATE AS
BEGIN
    SET NOCOUNT ON;
    IF EXISTS (SELECT 1 FROM inserted n JOIN dbo.invoices i ON i.tenant_id = n.tenant_id AND i.invoice_id = n.invoice_id
               WHERE i.status <> 'Draft')
        THROW 50004, 'billing: lines of an issued invoice are immutable', 1;
END
-- +goose StatementEnd

-- +goose StatementBegin
CREATE SECURITY POLICY rls.billing_isolation
    ADD FILTER PREDICATE rls.tenant_visible(tenant_id) ON dbo.subscriptions,
    ADD BLOCK PREDICATE rls.tenant_visible(tenant_id) ON dbo.subscriptions AFTER INSERT,
    ADD BLOCK PREDICATE rls.tenant_visible(tenant_id) ON dbo.subscriptions AFTER UPDATE,
    ADD FILTER PREDICATE rls.tenant_visible(tenant_id) ON dbo.usage_records,
    ADD BLOCK PREDICATE rls.tenant_visible(tenant_id) ON dbo.usage_records AFTER INSERT,
    ADD FILTER PREDICATE rls.tenant_visible(tenant_id) ON dbo.invoices,
    ADD BLOCK PREDICATE rls.tenant_visible(tenant_id) ON dbo.invoices AFTER INSERT,
    ADD BLOCK PREDICATE rls.tenant_visible(tenant_id) ON dbo.invoices AFTER UPDATE,
    ADD FILTER PREDICATE rls.tenant_visible(tenant_id) ON dbo.invoice_lines,
    ADD BLOCK PREDICATE rls.tenant_visible(tenant_id) ON dbo.invoice_lines AFTER INSERT
    WITH (STATE = ON, SCHEMABINDING = ON);
-- +goose StatementEnd

GRANT SELECT, INSERT, UPDATE ON dbo.editions TO billing_app;
GRANT SELECT, INSERT, UPDATE ON dbo.subscriptions TO billing_app;
GRANT SELECT, INSERT ON dbo.usage_records TO billing_app;
GRANT SELECT, INSERT, UPDATE ON dbo.invoices TO billing_app;
GRANT SELECT, INSERT ON dbo.invoice_lines TO billing_app;

-- +goose Down
DROP SECURITY POLICY rls.billing_isolation;
DROP TRIGGER dbo.invoice_lines_guard;
DROP TRIGGER dbo.invoices_guard;
DROP TRIGGER dbo.invoices_insert_guard;
DROP TABLE dbo.invoice_lines;
DROP TABLE dbo.invoices;
DROP TABLE dbo.usage_records;
DROP TABLE dbo.subscriptions;
DROP TABLE dbo.editions;
