package billing

// statements is one engine's SQL for the billing store: every statement store.go sends, the same
// fields for each engine, so the store's Go is written once. The engines' sets are pgStatements
// (statements_postgres.go) and msStatements (statements_sqlserver.go); those files hold SQL only.
//
// Each field's comment gives its parameters, in order, and the columns it returns. Both engines
// take the same parameters in the same order: times in UTC, ids as canonical lowercase text (the
// tenant first; row-level security checks it again), nullable values as sql.Null*. Statements
// that read an edition return editionColumns (code, name, price minor, currency, period months,
// trial days, rank, entitlements JSON text, version, updated at, public); a subscription
// subscriptionColumns (id, edition code, status, trial ends at, period start, period end, pending
// edition or ”, cancelled at, cancel reason or ”, version, created at, updated at, past due
// since); an invoice
// invoiceColumns (id, number, status, currency, total minor, period start, period end, created
// at, issued at, paid at, voided at). TestSQLServerQueries walks the struct.
type statements struct {
	// editions: → editionColumns of every edition, by rank then code.
	editions string
	// edition: code → editionColumns.
	edition string
	// lockEdition: code → editionColumns, locking the row until the transaction ends.
	lockEdition string
	// insertEdition: code, name, price minor, currency, period months, trial days, rank,
	// entitlements JSON text, version, updated at, public. Platform scope only (PostgreSQL's policy).
	insertEdition string
	// updateEdition: the parameters of insertEdition; the row of that code is replaced.
	updateEdition string

	// liveSubscription: tenant → subscriptionColumns of its subscription that is not Cancelled.
	liveSubscription string
	// shareLiveSubscription: liveSubscription, the row locked against writers (FOR SHARE) until
	// the transaction ends: usage waits for a renewal summing the period, and the renewal for it.
	shareLiveSubscription string
	// subscription: tenant, id → subscriptionColumns.
	subscription string
	// lockSubscription: tenant, id → subscriptionColumns, locking the row until the transaction ends.
	lockSubscription string
	// hadTrial: tenant → whether any of its subscriptions, cancelled ones included, ever had a
	// trial (trial_ends_at set; subscriptions are never deleted).
	hadTrial string
	// subscriptionFacts: tenants (a JSON array of canonical tenant ids) → per id: the id as given,
	// whether the tenant has a subscription that is not Cancelled, whether any of its
	// subscriptions ever had a trial (hadTrial's answer).
	subscriptionFacts string
	// listSubscriptions: tenant → subscriptionColumns of every subscription, newest first.
	listSubscriptions string
	// insertSubscription: tenant, id, edition code, status, trial ends at, period start, period
	// end, created at (= updated at), version.
	insertSubscription string
	// updateSubscription: tenant, id, edition code, status, period start, period end, pending
	// edition (nullable), cancelled at, cancel reason (nullable), version, updated at, past due
	// since (nullable).
	updateSubscription string
	// lockDueSubscription: tenant, id → subscriptionColumns, locking the row; no row when another
	// transaction holds it locked (the renewal timer of another instance is at it).
	lockDueSubscription string
	// dueSubscriptions: now, past-due cutoff (now − grace), limit → tenant id, subscription id
	// (canonical text) of up to limit live subscriptions whose period ended, whose trial ended, or
	// that are PastDue since before the cutoff, by period end, leaving out those whose renewal
	// retry time (after a failure) is after now. Every tenant's: platform scope.
	dueSubscriptions string
	// periodUsage: tenant, period start → metric, sum of quantity of the usage recorded into the
	// period that starts there, by metric. Summed without overflow (numeric/decimal) and read
	// saturated: a sum beyond 9007199254740991 (maxMinor) is 9007199254740992.
	periodUsage string
	// renewalAttempts: tenant, id → renewal attempts that failed in a row, locking the row.
	renewalAttempts string
	// recordRenewalFailure: tenant, id, attempts, failed at, retry at (the renewal timer skips
	// the row until then). updateSubscription clears the three.
	recordRenewalFailure string
	// savepoint and rollbackToSavepoint: a savepoint of the transaction (a cancel that cannot
	// renew first undoes the renewal's writes to it).
	savepoint, rollbackToSavepoint string

	// insertUsage: tenant, usage id, metric, quantity, period start, recorded at. Inserts nothing
	// (0 rows affected, no error) when the usage id is recorded already.
	insertUsage string
	// usage: tenant, usage id → metric, quantity, period start, recorded at.
	usage string
	// listUsage: tenant, metric ('' for every metric), from, to (recorded at in [from, to)), after
	// (canonical id text; the zero UUID for the first page), limit → usage id (canonical text),
	// metric, quantity, period start, recorded at of up to limit records with a greater id, in id
	// order.
	listUsage string
	// usageTotals: tenant, metric ('' for every metric), from, to → metric, sum of quantity, per
	// metric of the records listUsage selects (every page), by metric; saturated as periodUsage.
	usageTotals string

	// countInvoices: tenant → the number of the tenant's invoices.
	countInvoices string
	// insertInvoice: tenant, id, number, status, currency, total minor, period start, period end,
	// created at.
	insertInvoice string
	// insertLine: tenant, invoice id, line no, description, quantity, unit minor, amount minor.
	insertLine string
	// setInvoiceStatus: tenant, id, status, issued at, paid at, voided at (nullable times).
	setInvoiceStatus string
	// invoice: tenant, id → invoiceColumns.
	invoice string
	// lockInvoice: tenant, id → invoiceColumns, locking the row until the transaction ends.
	lockInvoice string
	// countIssuedInvoices: tenant → the number of the tenant's Issued (unpaid) invoices.
	countIssuedInvoices string
	// invoiceLines: tenant, id → line no, description, quantity, unit minor, amount minor, by line no.
	invoiceLines string
	// listInvoices: tenant, after (canonical id text; the zero UUID for the first page), limit →
	// invoiceColumns of up to limit invoices with a greater id, in id order.
	listInvoices string
}
