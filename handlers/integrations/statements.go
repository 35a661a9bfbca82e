package integrations

// statements is one engine's SQL for the integrations store (the engines' sets: pgStatements,
// msStatements; those files hold SQL only). Each field's comment gives its parameters in order
// and the columns it returns. Times are UTC, ids canonical text, settings JSON text. Every
// statement names its tenant first and row-level security checks it again. Only live
// connections (deleted_at null) are ever read.
type statements struct {
	// insert: tenant, id, type, name, settings JSON, secret vault, secret name, secret version,
	// status, version, created at (= updated at).
	insert string
	// connection: tenant, id → connectionColumns of the live connection.
	connection string
	// lockConnection: tenant, id → connectionColumns, locking the row until the transaction ends.
	lockConnection string
	// list: tenant, after (an id; the nil UUID for the first page), limit → connectionColumns of
	// the tenant's live connections with an id above after, by id (ids are UUIDv7: oldest first).
	list string
	// update: tenant, id, name, settings JSON, secret version, status, last tested at, last sync
	// at, last error class (nullable), version, updated at, deleted at (nullable).
	update string

	// The IntegrationPurge sweep's statements (purge.go): a soft-deleted connection is due when
	// deleted_at < cutoff; the keyset is (deleted at, connection id).
	//
	// purgeTenants (platform scope): before → tenant id text of every tenant with a due connection.
	purgeTenants string
	// purgeNext: tenant, after deleted at, after id, cutoff, limit → id, deleted at of the due
	// connections after (deleted at, id), in keyset order.
	purgeNext string
	// purgeRange: tenant, from deleted at, from id, to deleted at, to id, cutoff → deletes the due
	// connections from..to (inclusive); rows affected is how many.
	purgeRange string
}

// connectionColumns: id, type, name, settings JSON, secret vault, secret name, secret version,
// status, last tested at (nullable), last sync at (nullable), last error class ("" when none),
// version, created at, updated at.
