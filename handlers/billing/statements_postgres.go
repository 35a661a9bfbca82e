package billing

// pgEditionCols, pgSubscriptionCols and pgInvoiceCols are editionColumns, subscriptionColumns and
// invoiceColumns (statements.go) in PostgreSQL.
const (
	pgEditionCols      = `code, name, price_minor, currency, period_months, trial_days, rank, entitlements::text, version, updated_at, is_public`
	pgSubscriptionCols = `subscription_id::text, edition_code, status, trial_ends_at, period_start, period_end,
		COALESCE(pending_edition, ''), cancelled_at, COALESCE(cancel_reason, ''), version, created_at, updated_at, past_due_since`
	pgInvoiceCols = `invoice_id::text, number, status, currency, total_minor, period_start, period_end, created_at, issued_at, paid_at, voided_at`
)

// pgStatements is the whole of what the billing service asks of PostgreSQL.
var pgStatements = statements{
	editions:    `SELECT ` + pgEditionCols + ` FROM editions ORDER BY rank, code`,
	edition:     `SELECT ` + pgEditionCols + ` FROM editions WHERE code = $1`,
	lockEdition: `SELECT ` + pgEditionCols + ` FROM editions WHERE code = $1 FOR UPDATE`,
	insertEdition: `INSERT INTO editions (code, name, price_minor, currency, period_months, trial_days, rank, entitlements, version, updated_at, is_public)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10, $11)`,
	updateEdition: `UPDATE editions SET name = $2, price_minor = $3, currency = $4, period_months = $5, trial_days = $6, rank = $7,
			entitlements = $8::jsonb, version = $9, updated_at = $10, is_public = $11
		WHERE code = $1`,

	liveSubscription:      `SELECT ` + pgSubscriptionCols + ` FROM subscriptions WHERE tenant_id = $1 AND status <> 'Cancelled'`,
	shareLiveSubscription: `SELECT ` + pgSubscriptionCols + ` FROM subscriptions WHERE tenant_id = $1 AND status <> 'Cancelled' FOR SHARE`,
	subscription:          `SELECT ` + pgSubscriptionCols + ` FROM subscriptions WHERE tenant_id = $1 AND subscription_id = $2`,
	lockSubscription:      `SELECT ` + pgSubscriptionCols + ` FROM subscriptions WHERE tenant_id = $1 AND subscription_id = $2 FOR UPDATE`,
	hadTrial:              `SELECT EXISTS (SELECT 1 FROM subscriptions WHERE tenant_id = $1 AND trial_ends_at IS NOT NULL)`,
	// One index lookup per tenant (an aggregate subquery is never flattened into a join): a hashed
	// subplan or a join would scan every subscription, with the set scope's row-level-security
	// check on each row.
	subscriptionFacts: `SELECT t.value, COALESCE(f.live, false), COALESCE(f.had_trial, false)
		FROM json_array_elements_text($1::json) AS t(value)
		CROSS JOIN LATERAL (SELECT bool_or(s.status <> 'Cancelled') AS live, bool_or(s.trial_ends_at IS NOT NULL) AS had_trial
			FROM subscriptions s WHERE s.tenant_id = t.value::uuid) AS f`,
	listSubscriptions: `SELECT ` + pgSubscriptionCols + ` FROM subscriptions WHERE tenant_id = $1 ORDER BY created_at DESC, subscription_id DESC`,
	insertSubscription: `INSERT INTO subscriptions (tenant_id, subscription_id, edition_code, status, trial_ends_at, period_start,
			period_end, created_at, updated_at, version)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9)`,
	updateSubscription: `UPDATE subscriptions SET edition_code = $3, status = $4, period_start = $5, period_end = $6,
			pending_edition = $7, cancelled_at = $8, cancel_reason = $9, version = $10, updated_at = $11, past_due_since = $12,
			renewal_attempts = 0, renewal_failed_at = NULL, renewal_retry_at = NULL
		WHERE tenant_id = $1 AND subscription_id = $2`,
	renewalAttempts: `SELECT renewal_attempts FROM subscriptions WHERE tenant_id = $1 AND subscription_id = $2 FOR UPDATE`,
	recordRenewalFailure: `UPDATE subscriptions SET renewal_attempts = $3, renewal_failed_at = $4, renewal_retry_at = $5
		WHERE tenant_id = $1 AND subscription_id = $2`,
	savepoint:           `SAVEPOINT billing_renewal`,
	rollbackToSavepoint: `ROLLBACK TO SAVEPOINT billing_renewal`,
	lockDueSubscription: `SELECT ` + pgSubscriptionCols + ` FROM subscriptions WHERE tenant_id = $1 AND subscription_id = $2
		FOR UPDATE SKIP LOCKED`,
	dueSubscriptions: `SELECT tenant_id::text, subscription_id::text FROM subscriptions
		WHERE status <> 'Cancelled' AND (period_end <= $1 OR (status = 'Trial' AND trial_ends_at <= $1)
			OR (status = 'PastDue' AND past_due_since <= $2))
			AND (renewal_retry_at IS NULL OR renewal_retry_at <= $1)
		ORDER BY period_end LIMIT $3`,
	periodUsage: `SELECT metric, LEAST(sum(quantity), 9007199254740992)::bigint FROM usage_records WHERE tenant_id = $1 AND period_start = $2
		GROUP BY metric ORDER BY metric`,

	insertUsage: `INSERT INTO usage_records (tenant_id, usage_id, metric, quantity, period_start, recorded_at)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, usage_id) DO NOTHING`,
	usage: `SELECT metric, quantity, period_start, recorded_at FROM usage_records WHERE tenant_id = $1 AND usage_id = $2`,
	listUsage: `SELECT usage_id::text, metric, quantity, period_start, recorded_at FROM usage_records
		WHERE tenant_id = $1 AND ($2 = '' OR metric = $2) AND recorded_at >= $3 AND recorded_at < $4 AND usage_id > $5::uuid
		ORDER BY usage_id LIMIT $6`,
	usageTotals: `SELECT metric, LEAST(sum(quantity), 9007199254740992)::bigint FROM usage_records
		WHERE tenant_id = $1 AND ($2 = '' OR metric = $2) AND recorded_at >= $3 AND recorded_at < $4
		GROUP BY metric ORDER BY metric`,

	countInvoices: `SELECT count(*) FROM invoices WHERE tenant_id = $1`,
	insertInvoice: `INSERT INTO invoices (tenant_id, invoice_id, number, status, currency, total_minor, period_start, period_end, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
	insertLine: `INSERT INTO invoice_lines (tenant_id, invoice_id, line_no, description, quantity, unit_minor, amount_minor)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`,
	setInvoiceStatus: `UPDATE invoices SET status = $3, issued_at = $4, paid_at = $5, voided_at = $6
		WHERE tenant_id = $1 AND invoice_id = $2`,
	invoice:             `SELECT ` + pgInvoiceCols + ` FROM invoices WHERE tenant_id = $1 AND invoice_id = $2`,
	lockInvoice:         `SELECT ` + pgInvoiceCols + ` FROM invoices WHERE tenant_id = $1 AND invoice_id = $2 FOR UPDATE`,
	countIssuedInvoices: `SELECT count(*) FROM invoices WHERE tenant_id = $1 AND status = 'Issued'`,
	invoiceLines:        `SELECT line_no, description, quantity, unit_minor, amount_minor FROM invoice_lines WHERE tenant_id = $1 AND invoice_id = $2 ORDER BY line_no`,
	listInvoices:        `SELECT ` + pgInvoiceCols + ` FROM invoices WHERE tenant_id = $1 AND invoice_id > $2::uuid ORDER BY invoice_id LIMIT $3`,
}
