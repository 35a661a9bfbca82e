package config

import (
	"context"

	"spine/shared/bus"
	"spine/shared/functions"
	"spine/shared/sqlstore"
)

// Consumer is the inbox consumer name (and Service Bus subscription) of ConfigOnBillingEvent.
const Consumer = "config"

// onBillingEvent is ConfigOnBillingEvent's effect: a tenant's subscription started, ended or
// changed edition, so the edition defaults in its compiled set may have changed; the set's key
// under the current generation is invalidated once the inbox claim commits (every instance's local
// copy through the invalidation channel). A redelivery invalidates again, which is harmless.
func (s *Service) onBillingEvent(ctx context.Context, tx *sqlstore.Tx, d bus.Delivery) error {
	gen, err := s.store.bind(tx, d.TenantID).Generation(ctx)
	if err != nil {
		return err
	}
	tx.AfterCommit(func() { s.cache.Invalidate(context.WithoutCancel(ctx), setKey(d.TenantID, gen)) })
	return nil
}

// onBillingEvent serves ConfigOnBillingEvent: bus.Consumer over config's database and inbox.
func (a *API) onBillingEvent(ctx context.Context, inv *functions.Invocation) (*functions.Result, error) {
	return bus.Consumer{Name: Consumer, DB: a.svc.store.DB(), Effect: a.svc.onBillingEvent, Log: a.svc.log}.Consume(ctx, inv)
}
