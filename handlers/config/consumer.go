package config

import (
	"context"

	"spine/shared/bus"
	"spine/shared/functions"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
)

// Consumer is the inbox consumer name (and Service Bus subscription) of ConfigOnBillingEvent.
const Consumer = "config"

// newBillingConsumer is ConfigOnBillingEvent's group consumer (bus.GroupConsumer): the events
// delivered while a group is written share one transaction (one inbox claim, one commit).
func (s *Service) newBillingConsumer() *bus.GroupConsumer {
	return &bus.GroupConsumer{Name: Consumer, DB: s.store.DB(), Effect: s.onBillingEvents, Log: s.log}
}

// onBillingEvents is ConfigOnBillingEvent's group effect: each event's tenant's subscription
// started, ended or changed edition, so the edition defaults in its compiled set may have changed;
// the group reads the current generation once and, once the group's inbox claims commit,
// invalidates every tenant's set key under it in one call (every instance's local copy through
// the invalidation channel). A redelivery invalidates again, which is harmless.
func (s *Service) onBillingEvents(ctx context.Context, tx *sqlstore.Tx, ds []bus.Delivery) ([]string, error) {
	gen, err := s.store.bind(tx, tenancy.TenantID{}).Generation(ctx)
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(ds))
	seen := make(map[tenancy.TenantID]bool, len(ds))
	for _, d := range ds {
		if !seen[d.TenantID] {
			seen[d.TenantID] = true
			keys = append(keys, setKey(d.TenantID, gen))
		}
	}
	tx.AfterCommit(func() { s.cache.Invalidate(context.WithoutCancel(ctx), keys...) })
	return nil, nil
}

// onBillingEvent serves ConfigOnBillingEvent through the service's group consumer over config's
// database and inbox.
func (a *API) onBillingEvent(ctx context.Context, inv *functions.Invocation) (*functions.Result, error) {
	return a.svc.billingConsumer.Consume(ctx, inv)
}
