-- Billing: the platform-level edition catalog, and per tenant its subscriptions, metered usage
-- and invoices with their lines. Runs as billing_owner after the platform schema (shared/platform:
-- outbox, inbox, idempotency_keys and spine_tenant_visible), which this file uses and never
-- creates. Money is bigint minor units of an ISO 4217 currency, never a float, and within
-- ±(2^53 − 1) = ±9007199254740991 so JSON clients read every amount exactly (the service refuses
-- more first; these CHECKs are the backstop).
--
-- Financial retention: invoices, their lines and usage records are kept for the financial
-- retention period (default 10 years, README) even after the tenant is decommissioned. The runtime
-- role billing_app holds no DELETE on any of them, and a trigger refuses to change an issued
-- invoice's money columns or its lines: nothing the service runs can delete or rewrite an issued
-- invoice (handlers/billing's grant test proves it against this database).

-- +goose Up

-- The edition catalog: platform-level (no tenant). entitlements is the JSON object
-- {"maxUsers":n, "limits":[{"route":"", "rate":n, "burst":n, "periodSeconds":n, "shadow":bool}],
--  "featureDefaults":{key: value}, "retentionDays":{kind: days}, "usagePrices":{metric: unitMinor}}
-- (handlers/billing/model.go). The seeded limits are per second: rate requests per periodSeconds 1.
-- Row-level security is enabled (not forced, so the owner's migrations seed it) with a read policy
-- for everyone and a write policy for platform scope only.
CREATE TABLE editions (
    code         text        NOT NULL CHECK (code ~ '^[a-z][a-z0-9-]{1,31}$'),
    name         text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    price_minor  bigint      NOT NULL CHECK (price_minor BETWEEN 0 AND 9007199254740991),
    currency     char(3)     NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    period_months integer    NOT NULL CHECK (period_months BETWEEN 1 AND 12),
    trial_days   integer     NOT NULL CHECK (trial_days BETWEEN 0 AND 365),
    rank         integer     NOT NULL CHECK (rank BETWEEN -1000000000 AND 1000000000),
    entitlements jsonb       NOT NULL CHECK (jsonb_typeof(entitlements) = 'object'),
    version      bigint      NOT NULL,
    updated_at   timestamptz NOT NULL,
    -- A public edition is offered to every tenant (self-service subscribe and change-edition); a
    -- private one (made for one customer) is assigned by platform admins only.
    is_public    boolean     NOT NULL DEFAULT false,
    CONSTRAINT editions_pkey PRIMARY KEY (code)
);
INSERT INTO editions (code, name, price_minor, currency, period_months, trial_days, rank, entitlements, version, updated_at, is_public) VALUES
    ('free', 'Free', 0, 'EUR', 1, 0, 0,
     '{"maxUsers":5,"limits":[{"route":"","rate":20,"burst":40,"periodSeconds":1,"shadow":false},{"route":"/api/audit-entries","rate":5,"burst":10,"periodSeconds":1,"shadow":false}],"featureDefaults":{},"retentionDays":{},"usagePrices":{}}',
     1, '2026-11-30T00:00:00Z', true),
    ('standard', 'Standard', 4900, 'EUR', 1, 14, 10,
     '{"maxUsers":50,"limits":[{"route":"","rate":200,"burst":400,"periodSeconds":1,"shadow":false},{"route":"/api/audit-entries","rate":50,"burst":100,"periodSeconds":1,"shadow":false}],"featureDefaults":{},"retentionDays":{},"usagePrices":{}}',
     1, '2026-11-30T00:00:00Z', true),
    ('enterprise', 'Enterprise', 49900, 'EUR', 1, 30, 20,
     '{"maxUsers":0,"limits":[{"route":"","rate":2000,"burst":4000,"periodSeconds":1,"shadow":false},{"route":"/api/audit-entries","rate":500,"burst":1000,"periodSeconds":1,"shadow":false}],"featureDefaults":{},"retentionDays":{"audit":3650},"usagePrices":{}}',
     1, '2026-11-30T00:00:00Z', true);
ALTER TABLE editions ENABLE ROW LEVEL SECURITY;
CREATE POLICY catalog_read ON editions FOR SELECT USING (true);
CREATE POLICY catalog_write ON editions FOR UPDATE
    USING (spine_tenant_visible(NULL)) WITH CHECK (spine_tenant_visible(NULL));
-- Platform admins add editions (PUT /api/editions/{code}) in platform scope only; a tenant-scoped
-- transaction's INSERT fails the policy.
CREATE POLICY catalog_insert ON editions FOR INSERT WITH CHECK (spine_tenant_visible(NULL));

-- A tenant's subscriptions: at most one that is not Cancelled (subscriptions_live). pending_edition
-- is a downgrade that takes effect at period_end; past_due_since is when it became PastDue (the
-- renewal timer cancels it after the grace period).
CREATE TABLE subscriptions (
    tenant_id       uuid        NOT NULL,
    subscription_id uuid        NOT NULL,
    edition_code    text        NOT NULL REFERENCES editions (code),
    status          text        NOT NULL CHECK (status IN ('Trial', 'Active', 'PastDue', 'Cancelled')),
    trial_ends_at   timestamptz,
    period_start    timestamptz NOT NULL,
    period_end      timestamptz NOT NULL CHECK (period_end > period_start),
    pending_edition text        REFERENCES editions (code),
    cancelled_at    timestamptz,
    cancel_reason   text        CHECK (char_length(cancel_reason) <= 500),
    past_due_since  timestamptz,
    -- A renewal that failed (an invoice that cannot be issued): how many times in a row, the last
    -- time, and when the renewal timer tries again (it skips the row until then, so one failing
    -- subscription never holds up the others). Any successful write of the row clears them.
    renewal_attempts  integer   NOT NULL DEFAULT 0 CHECK (renewal_attempts >= 0),
    renewal_failed_at timestamptz,
    renewal_retry_at  timestamptz,
    version         bigint      NOT NULL,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    CONSTRAINT subscriptions_pkey PRIMARY KEY (tenant_id, subscription_id)
);
CREATE UNIQUE INDEX subscriptions_live ON subscriptions (tenant_id) WHERE status <> 'Cancelled';
-- The renewal timer (BillingRenewals) finds live subscriptions whose period or trial ended (and
-- whose renewal is not backing off after a failure).
CREATE INDEX subscriptions_due ON subscriptions (period_end) WHERE status <> 'Cancelled';

-- Metered usage: append-only, idempotent on the usage id the reporter chose.
CREATE TABLE usage_records (
    tenant_id    uuid        NOT NULL,
    usage_id     uuid        NOT NULL,
    metric       text        NOT NULL CHECK (metric ~ '^[a-z][a-z0-9._-]{0,63}$'),
    quantity     bigint      NOT NULL CHECK (quantity BETWEEN 0 AND 9007199254740991),
    period_start timestamptz NOT NULL,
    recorded_at  timestamptz NOT NULL,
    CONSTRAINT usage_records_pkey PRIMARY KEY (tenant_id, usage_id)
);
CREATE INDEX usage_records_period ON usage_records (tenant_id, period_start, metric);

CREATE TABLE invoices (
    tenant_id    uuid        NOT NULL,
    invoice_id   uuid        NOT NULL,
    number       text        NOT NULL CHECK (char_length(number) BETWEEN 1 AND 64),
    status       text        NOT NULL CHECK (status IN ('Draft', 'Issued', 'Paid', 'Void')),
    currency     char(3)     NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    total_minor  bigint      NOT NULL CHECK (total_minor BETWEEN 0 AND 9007199254740991),
    period_start timestamptz NOT NULL,
    period_end   timestamptz NOT NULL,
    created_at   timestamptz NOT NULL,
    issued_at    timestamptz,
    paid_at      timestamptz,
    voided_at    timestamptz,
    CONSTRAINT invoices_pkey PRIMARY KEY (tenant_id, invoice_id),
    CONSTRAINT invoices_number_key UNIQUE (tenant_id, number)
);

CREATE TABLE invoice_lines (
    tenant_id    uuid   NOT NULL,
    invoice_id   uuid   NOT NULL,
    line_no      integer NOT NULL CHECK (line_no >= 1),
    description  text   NOT NULL CHECK (char_length(description) BETWEEN 1 AND 500),
    quantity     bigint NOT NULL CHECK (quantity BETWEEN 0 AND 9007199254740991),
    unit_minor   bigint NOT NULL CHECK (unit_minor BETWEEN 0 AND 9007199254740991),
    amount_minor bigint NOT NULL CHECK (amount_minor BETWEEN 0 AND 9007199254740991 AND amount_minor::numeric = quantity::numeric * unit_minor),
    CONSTRAINT invoice_lines_pkey PRIMARY KEY (tenant_id, invoice_id, line_no),
    CONSTRAINT invoice_lines_invoice_fk FOREIGN KEY (tenant_id, invoice_id) REFERENCES invoices (tenant_id, invoice_id)
);

-- An invoice is created as a Draft (its lines are added to it) and moves Draft → Issued → Paid |
-- Void (Draft → Void too); when it leaves Draft its total must be the sum of its lines (nothing
-- credits: totals and lines are ≥ 0), and from then on its money columns, number, currency, period
-- and tenant are frozen. Whoever runs the INSERT or UPDATE.
-- +goose StatementBegin
CREATE FUNCTION billing_invoice_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.status <> 'Draft' THEN
            RAISE EXCEPTION 'billing: an invoice is created as a Draft, then issued' USING ERRCODE = 'P0001';
        END IF;
        RETURN NEW;
    END IF;
    IF OLD.status <> 'Draft' AND (NEW.total_minor IS DISTINCT FROM OLD.total_minor
        OR NEW.currency IS DISTINCT FROM OLD.currency OR NEW.number IS DISTINCT FROM OLD.number
        OR NEW.period_start IS DISTINCT FROM OLD.period_start OR NEW.period_end IS DISTINCT FROM OLD.period_end
        OR NEW.tenant_id IS DISTINCT FROM OLD.tenant_id OR NEW.invoice_id IS DISTINCT FROM OLD.invoice_id
        OR NEW.issued_at IS DISTINCT FROM OLD.issued_at
        -- paid_at and voided_at are set by the move to Paid or Void, and frozen then
        OR (NEW.status = OLD.status AND (NEW.paid_at IS DISTINCT FROM OLD.paid_at OR NEW.voided_at IS DISTINCT FROM OLD.voided_at))) THEN
        RAISE EXCEPTION 'billing: an issued invoice''s money columns are immutable' USING ERRCODE = 'P0001';
    END IF;
    IF NOT ((OLD.status = NEW.status)
        OR (OLD.status = 'Draft' AND NEW.status IN ('Issued', 'Void'))
        OR (OLD.status = 'Issued' AND NEW.status IN ('Paid', 'Void'))) THEN
        RAISE EXCEPTION 'billing: invoice status % cannot become %', OLD.status, NEW.status USING ERRCODE = 'P0001';
    END IF;
    -- sum(bigint) is numeric: the lines' sum cannot wrap around.
    IF OLD.status = 'Draft' AND NEW.status <> 'Draft' AND NEW.total_minor::numeric <> (SELECT COALESCE(sum(l.amount_minor), 0)
            FROM invoice_lines l WHERE l.tenant_id = NEW.tenant_id AND l.invoice_id = NEW.invoice_id) THEN
        RAISE EXCEPTION 'billing: an invoice''s total must be the sum of its lines when it leaves Draft' USING ERRCODE = 'P0001';
    END IF;
    RETURN NEW;
END $$;
-- +goose StatementEnd
CREATE TRIGGER invoices_guard BEFORE INSERT OR UPDATE ON invoices FOR EACH ROW EXECUTE FUNCTION billing_invoice_guard();

-- A line is added to a Draft invoice only (lines are never updated: no grant).
-- +goose StatementBegin
CREATE FUNCTION billing_line_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM invoices i WHERE i.tenant_id = NEW.tenant_id AND i.invoice_id = NEW.invoice_id AND i.status <> 'Draft') THEN
        RAISE EXCEPTION 'billing: lines of an issued invoice are immutable' USING ERRCODE = 'P0001';
    END IF;
    RETURN NEW;
END $$;
-- +goose StatementEnd
CREATE TRIGGER invoice_lines_guard BEFORE INSERT OR UPDATE ON invoice_lines FOR EACH ROW EXECUTE FUNCTION billing_line_guard();

ALTER TABLE subscriptions ENABLE ROW LEVEL SECURITY;
ALTER TABLE subscriptions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON subscriptions
    USING (spine_tenant_visible(tenant_id)) WITH CHECK (spine_tenant_visible(tenant_id));
ALTER TABLE usage_records ENABLE ROW LEVEL SECURITY;
ALTER TABLE usage_records FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON usage_records
    USING (spine_tenant_visible(tenant_id)) WITH CHECK (spine_tenant_visible(tenant_id));
ALTER TABLE invoices ENABLE ROW LEVEL SECURITY;
ALTER TABLE invoices FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON invoices
    USING (spine_tenant_visible(tenant_id)) WITH CHECK (spine_tenant_visible(tenant_id));
ALTER TABLE invoice_lines ENABLE ROW LEVEL SECURITY;
ALTER TABLE invoice_lines FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON invoice_lines
    USING (spine_tenant_visible(tenant_id)) WITH CHECK (spine_tenant_visible(tenant_id));

GRANT SELECT, INSERT, UPDATE ON editions TO billing_app;
GRANT SELECT, INSERT, UPDATE ON subscriptions TO billing_app;
GRANT SELECT, INSERT ON usage_records TO billing_app;
GRANT SELECT, INSERT, UPDATE ON invoices TO billing_app;
GRANT SELECT, INSERT ON invoice_lines TO billing_app;

-- +goose Down
DROP TRIGGER invoice_lines_guard ON invoice_lines;
DROP FUNCTION billing_line_guard();
DROP TRIGGER invoices_guard ON invoices;
DROP FUNCTION billing_invoice_guard();
DROP TABLE invoice_lines;
DROP TABLE invoices;
DROP TABLE usage_records;
DROP TABLE subscriptions;
DROP TABLE editions;
