// Package outbox is the write side of the transactional outbox: a service inserts each CloudEvent
// into its own database's outbox table inside the transaction of the change the event announces,
// so an event exists if and only if its change committed. Draining to Service Bus is separate.
package outbox

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"spine/shared/events"
	"spine/shared/sqlstore"
)

// Insert writes evs into the outbox table through tx, in order. The rows carry the event's tenant
// (the platform's nil tenant for platform-level events), so row-level security applies to them
// like any tenant-owned row. Insert must be called inside the transaction that makes the change.
func Insert(ctx context.Context, tx *sql.Tx, d sqlstore.Dialect, evs ...events.Event) error {
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
	return nil
}

// PlatformTenant is the tenant id recorded for platform-level events (no tenant).
const PlatformTenant = "00000000-0000-0000-0000-000000000000"
