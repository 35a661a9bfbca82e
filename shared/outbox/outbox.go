// Package outbox is the write side of the transactional outbox: a service inserts each CloudEvent
// into its own database's outbox table inside the transaction of the change the event announces,
// so an event exists if and only if its change committed. Draining to Service Bus is separate.
// The table and the indexes the drainer's statements need are the platform schema's
// (shared/platform), in every service's database.
package outbox

import (
	"context"
	"encoding/json"
	"fmt"

	"spine/shared/events"
	"spine/shared/sqlstore"
)

// Emit writes evs into the outbox table through tx, in order, and has the outbox's drainer kicked
// once tx commits (sqlstore.SignalOutbox), so events leave at once rather than at the next poll.
// The rows carry the event's tenant (the platform's nil tenant for platform-level events), so
// row-level security applies to them like any tenant-owned row. Call it inside the transaction
// that makes the change the events announce: they exist if and only if it commits.
func Emit(ctx context.Context, tx *sqlstore.Tx, evs ...events.Event) error {
	if len(evs) == 0 {
		return nil
	}
	d := tx.Dialect
	q := insertSQL[d]
	for _, ev := range evs {
		if err := ev.Validate(); err != nil {
			return err
		}
		env, err := json.Marshal(ev)
		if err != nil {
			return fmt.Errorf("outbox: marshal %s: %w", ev.Type, err)
		}
		tenant := ev.TenantID
		if tenant == "" {
			tenant = PlatformTenant
		}
		now := sqlstore.Now()
		if _, err := tx.ExecContext(ctx, q, tenant, ev.ID, ev.Subject, ev.Type, string(env), now); err != nil {
			return fmt.Errorf("outbox: insert %s: %w", ev.Type, sqlstore.Translate(d, err))
		}
	}
	tx.Notify(sqlstore.SignalOutbox)
	return nil
}

// PlatformTenant is the tenant id recorded for platform-level events (no tenant).
const PlatformTenant = "00000000-0000-0000-0000-000000000000"
