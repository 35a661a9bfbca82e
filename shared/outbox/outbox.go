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

// Emit writes evs into the outbox table through tx, in order, with one statement however many
// there are, and has the outbox's drainer kicked once tx commits (sqlstore.SignalOutbox), so
// events leave at once rather than at the next poll. The rows carry the event's tenant (the
// platform's nil tenant for platform-level events), so row-level security applies to them like
// any tenant-owned row; their seq order is evs' order. Call it inside the transaction that makes
// the change the events announce: they exist if and only if it commits.
func Emit(ctx context.Context, tx *sqlstore.Tx, evs ...events.Event) error {
	if len(evs) == 0 {
		return nil
	}
	rows, err := Rows(evs)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, insertSQL[tx.Dialect], rows, sqlstore.UTC(sqlstore.Now())); err != nil {
		return fmt.Errorf("outbox: insert %d events (%s, ...): %w", len(evs), evs[0].Type, sqlstore.Translate(tx.Dialect, err))
	}
	Emitted(tx)
	return nil
}

// Rows validates evs and encodes them as the rows parameter of InsertSQL's statement: a JSON
// array, in evs' order, of {"i": position, "tenant", "id", "subject", "kind", "envelope": the
// CloudEvent's JSON}.
func Rows(evs []events.Event) (string, error) {
	type row struct {
		I        int             `json:"i"`
		Tenant   string          `json:"tenant"`
		ID       string          `json:"id"`
		Subject  string          `json:"subject"`
		Kind     string          `json:"kind"`
		Envelope json.RawMessage `json:"envelope"`
	}
	rows := make([]row, len(evs))
	for i, ev := range evs {
		if err := ev.Validate(); err != nil {
			return "", err
		}
		env, err := json.Marshal(ev)
		if err != nil {
			return "", fmt.Errorf("outbox: marshal %s: %w", ev.Type, err)
		}
		tenant := ev.TenantID
		if tenant == "" {
			tenant = PlatformTenant
		}
		rows[i] = row{I: i, Tenant: tenant, ID: ev.ID, Subject: ev.Subject, Kind: ev.Type, Envelope: env}
	}
	b, err := json.Marshal(rows)
	if err != nil {
		return "", fmt.Errorf("outbox: encode rows: %w", err)
	}
	return string(b), nil
}

// Emitted has the outbox's drainer kicked once tx commits, as Emit does: for a store that wrote
// outbox rows with InsertSQL as part of a statement of its own.
func Emitted(tx *sqlstore.Tx) { tx.Notify(sqlstore.SignalOutbox) }

// PlatformTenant is the tenant id recorded for platform-level events (no tenant).
const PlatformTenant = "00000000-0000-0000-0000-000000000000"
