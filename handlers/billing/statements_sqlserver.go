package billing

// Azure SQL (SQL Server): the same statements as statements_postgres.go, in T-SQL. Written and
// reviewed; not run on these machines (no SQL Server): TestSQLServerQueries checks them without a
// server, TestSQLServerStore_Conformance runs them where SPINE_TEST_SQLSERVER_URL names one. Ids
// are read through the persisted canonical text columns (subscription_key, invoice_key); FOR
// UPDATE is WITH (UPDLOCK, ROWLOCK, HOLDLOCK); times travel in UTC (see identity's set).

const (
	msEditionCols      = `code, name, price_minor, currency, period_months, trial_days, rank, entitlements, version, updated_at, is_public`
	msSubscriptionCols = `subscription_key, edition_code, status, trial_ends_at, period_start, period_end,
		COALESCE(pending_edition, ''), cancelled_at, COALESCE(cancel_reason, N''), version, created_at, updated_at, past_due_since`
	msInvoiceCols = `invoice_key, number, status, currency, total_minor, period_start, period_end, created_at, issued_at, paid_at, voided_at`
)

// msStatements is the whole of what the billing service asks of Azure SQL.
var msStatements = statements{
	editions:    `SELECT ` + msEditionCols + ` FROM dbo.editions ORDER BY rank, code`,
	edition:     `SELECT ` + msEditionCols + ` FROM dbo.editions WHERE code = @p1`,
	lockEdition: `SELECT ` + msEditionCols + ` FROM dbo.editions WITH (UPDLOCK, ROWLOCK, HOLDLOCK) WHERE code = @p1`,
	insertEdition: `INSERT INTO dbo.editions (code, name, price_minor, currency, period_months, trial_days, rank, entitlements, version, updated_at, is_public)
		VALUES (@p1, @p2, @p3, @p4, @p5, @p6, @p7, @p8, @p9, @p10, @p11)`,
	updateEdition: `UPDATE dbo.editions SET name = @p2, price_minor = @p3, currency = @p4, period_months = @p5, trial_days = @p6, rank = @p7,
			entitlements = @p8, version = @p9, updated_at = @p10, is_public = @p11
		WHERE code = @p1`,

	liveSubscription: `SELECT ` + msSubscriptionCols + ` FROM dbo.subscriptions WHERE tenant_id = @p1 AND status <> 'Cancelled'`,
	// UPDLOCK: a shared lock would not stop the renewal's UPDLOCK read (U and S are compatible),
	// so usage takes the update lock (usage of one tenant is serialized on SQL Server).
	shareLiveSubscription: `SELECT ` + msSubscriptionCols + ` FROM dbo.subscriptions WITH (UPDLOCK, ROWLOCK, HOLDLOCK)
		WHERE tenant_id = @p1 AND status <> 'Cancelled'`,
	subscription:     `SELECT ` + msSubscriptionCols + ` FROM dbo.subscriptions WHERE tenant_id = @p1 AND subscription_id = @p2`,
	lockSubscription: `SELECT ` + msSubscriptionCols + ` FROM dbo.subscriptions WITH (UPDLOCK, ROWLOCK, HOLDLOCK) WHERE tenant_id = @p1 AND subscription_id = @p2`,
	hadTrial: `SELECT CASE WHEN EXISTS (SELECT 1 FROM dbo.subscriptions WHERE tenant_id = @p1 AND trial_ends_at IS NOT NULL)
		THEN CAST(1 AS bit) ELSE CAST(0 AS bit) END`,
	subscriptionFacts: `SELECT x.value,
			CASE WHEN f.live > 0 THEN CAST(1 AS bit) ELSE CAST(0 AS bit) END,
			CASE WHEN f.had_trial > 0 THEN CAST(1 AS bit) ELSE CAST(0 AS bit) END
		FROM OPENJSON(@p1) AS x
		CROSS APPLY (SELECT SUM(CASE WHEN s.status <> 'Cancelled' THEN 1 ELSE 0 END) AS live,
				SUM(CASE WHEN s.trial_ends_at IS NOT NULL THEN 1 ELSE 0 END) AS had_trial
			FROM dbo.subscriptions AS s WHERE s.tenant_id = CAST(x.value AS uniqueidentifier)) AS f`,
	listSubscriptions: `SELECT ` + msSubscriptionCols + ` FROM dbo.subscriptions WHERE tenant_id = @p1 ORDER BY created_at DESC, subscription_key DESC`,
	insertSubscription: `INSERT INTO dbo.subscriptions (tenant_id, subscription_id, edition_code, status, trial_ends_at, period_start,
			period_end, created_at, updated_at, version)
		VALUES (@p1, @p2, @p3, @p4, @p5, @p6, @p7, @p8, @p8, @p9)`,
	updateSubscription: `UPDATE dbo.subscriptions SET edition_code = @p3, status = @p4, period_start = @p5, period_end = @p6,
			pending_edition = @p7, cancelled_at = @p8, cancel_reason = @p9, version = @p10, updated_at = @p11, past_due_since = @p12,
			renewal_attempts = 0, renewal_failed_at = NULL, renewal_retry_at = NULL
		WHERE tenant_id = @p1 AND subscription_id = @p2`,
	renewalAttempts: `SELECT renewal_attempts FROM dbo.subscriptions WITH (UPDLOCK, ROWLOCK, HOLDLOCK) WHERE tenant_id = @p1 AND subscription_id = @p2`,
	recordRenewalFailure: `UPDATE dbo.subscriptions SET renewal_attempts = @p3, renewal_failed_at = @p4, renewal_retry_at = @p5
		WHERE tenant_id = @p1 AND subscription_id = @p2`,
	savepoint:           `SAVE TRANSACTION billing_renewal`,
	rollbackToSavepoint: `ROLLBACK TRANSACTION billing_renewal`,
	// READPAST skips a row another transaction holds locked (PostgreSQL's SKIP LOCKED).
	lockDueSubscription: `SELECT ` + msSubscriptionCols + ` FROM dbo.subscriptions WITH (UPDLOCK, ROWLOCK, READPAST)
		WHERE tenant_id = @p1 AND subscription_id = @p2`,
	dueSubscriptions: `SELECT TOP (@p3) LOWER(CONVERT(char(36), tenant_id)), subscription_key FROM dbo.subscriptions
		WHERE status <> 'Cancelled' AND (period_end <= @p1 OR (status = 'Trial' AND trial_ends_at <= @p1)
			OR (status = 'PastDue' AND past_due_since <= @p2))
			AND (renewal_retry_at IS NULL OR renewal_retry_at <= @p1)
		ORDER BY period_end`,
	periodUsage: `SELECT metric, CAST(CASE WHEN SUM(CAST(quantity AS decimal(38, 0))) > 9007199254740991 THEN 9007199254740992
		ELSE SUM(CAST(quantity AS decimal(38, 0))) END AS bigint) FROM dbo.usage_records WHERE tenant_id = @p1 AND period_start = @p2
		GROUP BY metric ORDER BY metric`,

	// HOLDLOCK on the key's range makes a concurrent insert of the same id wait and then insert nothing.
	insertUsage: `INSERT INTO dbo.usage_records (tenant_id, usage_id, metric, quantity, period_start, recorded_at)
		SELECT @p1, @p2, @p3, @p4, @p5, @p6
		WHERE NOT EXISTS (SELECT 1 FROM dbo.usage_records WITH (UPDLOCK, HOLDLOCK) WHERE tenant_id = @p1 AND usage_id = @p2)`,
	usage: `SELECT metric, quantity, period_start, recorded_at FROM dbo.usage_records WHERE tenant_id = @p1 AND usage_id = @p2`,
	listUsage: `SELECT TOP (@p6) usage_key, metric, quantity, period_start, recorded_at FROM dbo.usage_records
		WHERE tenant_id = @p1 AND (@p2 = '' OR metric = @p2) AND recorded_at >= @p3 AND recorded_at < @p4 AND usage_key > @p5
		ORDER BY usage_key`,
	usageTotals: `SELECT metric, CAST(CASE WHEN SUM(CAST(quantity AS decimal(38, 0))) > 9007199254740991 THEN 9007199254740992
		ELSE SUM(CAST(quantity AS decimal(38, 0))) END AS bigint) FROM dbo.usage_records
		WHERE tenant_id = @p1 AND (@p2 = '' OR metric = @p2) AND recorded_at >= @p3 AND recorded_at < @p4
		GROUP BY metric ORDER BY metric`,

	countInvoices: `SELECT COUNT(*) FROM dbo.invoices WHERE tenant_id = @p1`,
	insertInvoice: `INSERT INTO dbo.invoices (tenant_id, invoice_id, number, status, currency, total_minor, period_start, period_end, created_at)
		VALUES (@p1, @p2, @p3, @p4, @p5, @p6, @p7, @p8, @p9)`,
	insertLine: `INSERT INTO dbo.invoice_lines (tenant_id, invoice_id, line_no, description, quantity, unit_minor, amount_minor)
		VALUES (@p1, @p2, @p3, @p4, @p5, @p6, @p7)`,
	setInvoiceStatus: `UPDATE dbo.invoices SET status = @p3, issued_at = @p4, paid_at = @p5, voided_at = @p6
		WHERE tenant_id = @p1 AND invoice_id = @p2`,
	invoice:             `SELECT ` + msInvoiceCols + ` FROM dbo.invoices WHERE tenant_id = @p1 AND invoice_id = @p2`,
	lockInvoice:         `SELECT ` + msInvoiceCols + ` FROM dbo.invoices WITH (UPDLOCK, ROWLOCK, HOLDLOCK) WHERE tenant_id = @p1 AND invoice_id = @p2`,
	countIssuedInvoices: `SELECT COUNT(*) FROM dbo.invoices WHERE tenant_id = @p1 AND status = 'Issued'`,
	invoiceLines:        `SELECT line_no, description, quantity, unit_minor, amount_minor FROM dbo.invoice_lines WHERE tenant_id = @p1 AND invoice_id = @p2 ORDER BY line_no`,
	listInvoices:        `SELECT TOP (@p3) ` + msInvoiceCols + ` FROM dbo.invoices WHERE tenant_id = @p1 AND invoice_key > @p2 ORDER BY invoice_key`,
}
