package outbox

import "spine/shared/sqlstore"

// ClaimStatement returns the statement a Drainer claims due rows with on dialect d (its only
// parameter is the batch size), the statement it runs before it in the same transaction ("" when
// none: the planner settings the claim relies on), and the batch size a Drainer built with a zero
// DrainerConfig passes, so a tool (the bench's EXPLAIN of the claim) runs the drainer's exact SQL
// without a copy. ok is false for a dialect the drainer does not support.
func ClaimStatement(d sqlstore.Dialect) (plan, query string, batchSize int, ok bool) {
	q, ok := drainQueries[d]
	if !ok {
		return "", "", 0, false
	}
	return q.plan, q.claim, DrainerConfig{}.withDefaults().BatchSize, true
}
