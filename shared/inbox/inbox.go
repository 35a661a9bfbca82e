// Package inbox makes Service Bus consumers idempotent: a consumer records each event id in its
// own database's inbox table in the same transaction as the event's effect, so a redelivered or
// duplicated message finds its id already there and has no second effect.
//
// The platform schema (shared/platform) creates the table in every service's database (same
// shape on both engines):
//
//	inbox (tenant_id uuid, event_id uuid, consumer text, event_type text, received_at timestamptz,
//	       PRIMARY KEY (tenant_id, consumer, event_id))  -- with the tenant row-level-security policy
package inbox

import (
	"context"
	"fmt"

	"spine/shared/sqlstore"
)

// Claim claims eventID for consumer inside tx, in the tenant of tx's scope (the inbox row is
// tenant-owned: call it in the event's tenant's scope, as the consumer's effect runs). It returns
// true when this is the first delivery (apply the effect, then commit) and false when the event
// was already processed (skip the effect and commit, so the message is acknowledged). Concurrent
// deliveries of the same event serialize on the primary key; the loser waits for the winner's
// commit and then sees false.
func Claim(ctx context.Context, tx *sqlstore.Tx, consumer, eventID, eventType string) (bool, error) {
	tenant := tx.Scope().Tenant
	if tenant == "" {
		return false, fmt.Errorf("inbox: claim %s outside a tenant scope", eventID)
	}
	res, err := tx.ExecContext(ctx, recordSQL[tx.Dialect], tenant, consumer, eventID, eventType, sqlstore.Now())
	if err != nil {
		return false, fmt.Errorf("inbox: claim %s: %w", eventID, sqlstore.Translate(tx.Dialect, err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, err
	}
	return n == 1, nil
}

var recordSQL = map[sqlstore.Dialect]string{
	sqlstore.Postgres: `INSERT INTO inbox (tenant_id, consumer, event_id, event_type, received_at)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`,
	sqlstore.SQLServer: `INSERT INTO dbo.inbox (tenant_id, consumer, event_id, event_type, received_at)
		SELECT @p1, @p2, @p3, @p4, @p5
		WHERE NOT EXISTS (SELECT 1 FROM dbo.inbox WITH (UPDLOCK, HOLDLOCK)
			WHERE tenant_id = @p1 AND consumer = @p2 AND event_id = @p3)`,
}
