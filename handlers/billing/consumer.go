package billing

import (
	"context"
	"errors"
	"fmt"

	"spine/shared/bus"
	"spine/shared/contracts"
	"spine/shared/events"
	"spine/shared/sqlstore"
)

// Consumer is the inbox consumer name (and Service Bus subscription) of BillingOnTenantsEvent.
const Consumer = "billing"

// systemActor is who the consumer's changes are recorded as.
const systemActor = "system:billing"

// onTenantsEvent is BillingOnTenantsEvent's effect (bus.Consumer: inside the transaction that
// claims the event in billing's inbox, in the event's tenant's scope, so a redelivery has no
// second effect). The write fence does not apply: these are consequences of the lifecycle event.
//
//   - TenantRegistered subscribes the tenant to the edition it registered with (a Trial when the
//     edition has one), public or private (the registration is the platform's). A tenant with a live subscription already keeps it (acknowledged, no
//     second one). An edition outside the catalog is acknowledged without effect: the tenants
//     service's edition step refuses it too, and the subscription follows at TenantProvisioned,
//     once the tenant's edition has been corrected and checked.
//   - TenantProvisioned subscribes the tenant to its edition when it has no live subscription yet
//     (its registration named an edition outside the catalog); otherwise nothing.
//   - TenantDecommissioned cancels the live subscription (reason "tenant-decommissioned"); its
//     invoices and usage stay (financial retention). None: acknowledged.
func (s *Service) onTenantsEvent(ctx context.Context, tx *sqlstore.Tx, d bus.Delivery) error {
	meta := events.Meta{TraceParent: d.Event.TraceParent, CorrelationID: d.Event.CorrelationID, CausationID: d.Event.ID,
		Actor: systemActor}
	t := s.store.Bind(tx, d.TenantID)
	switch d.Event.Type {
	case contracts.TenantRegistered:
		var data contracts.TenantRegisteredData
		if err := d.Data(&data); err != nil {
			return err
		}
		_, err := s.subscribe(ctx, t, d.TenantID, data.EditionCode, true, meta)
		switch {
		case errors.Is(err, ErrSubscriptionExists):
			return nil
		case errors.Is(err, ErrEditionNotFound):
			return fmt.Errorf("%w: edition %q is not in the catalog; the subscription waits for TenantProvisioned", bus.ErrSkip, data.EditionCode)
		}
		return err
	case contracts.TenantProvisioned:
		var data contracts.TenantProvisionedData
		if err := d.Data(&data); err != nil {
			return err
		}
		_, err := s.subscribe(ctx, t, d.TenantID, data.EditionCode, true, meta)
		if errors.Is(err, ErrSubscriptionExists) {
			return nil
		}
		return err
	case contracts.TenantDecommissioned:
		sub, err := t.LiveSubscription(ctx)
		if errors.Is(err, ErrNoSubscription) {
			return nil
		}
		if err != nil {
			return err
		}
		_, err = s.changeIn(ctx, t, d.TenantID, sub.ID, nil, true, s.cancel(ctx, d.TenantID, "tenant-decommissioned", meta))
		return err
	}
	return fmt.Errorf("%w: %s", bus.ErrSkip, d.Event.Type)
}
