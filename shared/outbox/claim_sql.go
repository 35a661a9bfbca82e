package outbox

import "spine/shared/sqlstore"

// ClaimStatement returns the statement a Drainer claims due rows with on dialect d (its only
// parameter is the batch size) and the batch size a Drainer built with a zero DrainerConfig passes,
// so a tool (the bench's EXPLAIN of the claim) runs the drainer's exact SQL without a copy. ok is
// false for a dialect the drainer does not support.
func ClaimStatement(d sqlstore.Dialect) (query string, batchSize int, ok bool) {
	q, ok := drainQueries[d]
	if !ok {
		return "", 0, false
	}
	return q.claim, DrainerConfig{}.withDefaults().BatchSize, true
}
