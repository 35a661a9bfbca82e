package integrations

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"spine/shared/bus"
	"spine/shared/contracts"
	"spine/shared/functions"
	"spine/shared/inbox"
	"spine/shared/kit"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
)

// ServiceBusConnection is the app setting prefix IntegrationSync's trigger uses.
const ServiceBusConnection = "ServiceBusConnection"

// Consumer is the inbox consumer name (and Service Bus subscription) of IntegrationSync.
const Consumer = service

// Functions implements kit.Service: the catch-all HTTP function of integrations/ (the host
// forwards its requests to echo; {*rest} also matches the bare prefix) and IntegrationSync, the
// worker consuming IntegrationSyncRequested from the service's own topic; and IntegrationPurge,
// the retention sweep's daily timer (purge.go).
func (a *API) Functions(kit.Catalog) []functions.Function {
	return []functions.Function{
		{Name: "IntegrationsIntegrations", HTTP: &functions.HTTPTrigger{Route: "integrations/{*rest}",
			Methods: []string{"get", "post", "put", "patch", "delete"}, AuthLevel: functions.AuthAnonymous}},
		{
			Name: "IntegrationSync",
			ServiceBus: &functions.ServiceBusTrigger{Topic: service, Subscription: Consumer, Connection: ServiceBusConnection,
				EventTypes: []string{contracts.IntegrationSyncRequested}},
			Handler: a.onSyncRequested,
		},
		a.retention.Function(PurgeSweep, PurgeSchedule),
	}
}

// onSyncRequested is IntegrationSync. The sync calls out (Key Vault, the outside system with the
// tenant's credential), which a consumer's effect must not do (it may run again after a failed
// commit), so it runs first, outside any transaction, and the effect only records its outcome —
// lastSyncAt, the status, the error class — with the inbox claim. Before calling out it looks
// the event up in the inbox (read only): a redelivery of an event already recorded makes no call
// and is acknowledged as a duplicate by the claim. Only two deliveries of the same event racing
// before either commits can both call out; the claim still records one. A connection deleted or
// disabled meanwhile is acknowledged without a sync.
func (a *API) onSyncRequested(ctx context.Context, inv *functions.Invocation) (*functions.Result, error) {
	d, err := bus.DecodeEvent(inv)
	if err != nil {
		return nil, err
	}
	var data contracts.IntegrationSyncRequestedData
	if err := json.Unmarshal(d.Event.Data, &data); err != nil || d.Platform {
		return nil, fmt.Errorf("%w: IntegrationSyncRequested without a connection", bus.ErrInvalidMessage)
	}
	var seen bool
	if err := a.svc.store.Read(ctx, d.TenantID, func(tx *Tx) error {
		var err error
		seen, err = inbox.Seen(ctx, tx.Tx, Consumer, d.Event.ID)
		return err
	}); err != nil {
		return nil, err
	}
	var o Outcome
	ran := false
	if !seen { // processed before: the claim below finds it and records nothing
		if o, ran, err = a.svc.sync(ctx, d.TenantID, data.ConnectionID); err != nil {
			return nil, err
		}
	}
	effect := func(ctx context.Context, tx *sqlstore.Tx, d bus.Delivery) error {
		if !ran {
			return fmt.Errorf("%w: connection %s is deleted or disabled", bus.ErrSkip, data.ConnectionID)
		}
		return a.svc.recordSync(ctx, a.svc.store.Bind(tx, d.TenantID), data.ConnectionID, o)
	}
	return bus.Consumer{Name: Consumer, DB: a.svc.store.DB(), Effect: effect, Log: a.svc.log}.Consume(ctx, inv)
}

// sync runs the connector's sync of a live, enabled connection; ran is false when there is none.
func (s *Service) sync(ctx context.Context, tenant tenancy.TenantID, id string) (o Outcome, ran bool, err error) {
	var cur Connection
	err = s.store.Read(ctx, tenant, func(tx *Tx) error {
		var err error
		cur, err = tx.Connection(ctx, id)
		return err
	})
	if errors.Is(err, ErrNotFound) {
		return Outcome{}, false, nil
	}
	if err != nil || cur.Status == StatusDisabled {
		return Outcome{}, false, err
	}
	return s.run(ctx, cur, true), true, nil
}

// recordSync records a sync's outcome on the connection (skipped when it was deleted or
// disabled since).
func (s *Service) recordSync(ctx context.Context, tx *Tx, id string, o Outcome) error {
	cur, err := tx.Lock(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return fmt.Errorf("%w: connection %s was deleted", bus.ErrSkip, id)
	}
	if err != nil {
		return err
	}
	if cur.Status == StatusDisabled {
		return fmt.Errorf("%w: connection %s was disabled", bus.ErrSkip, id)
	}
	now := s.cfg.Now()
	cur.LastErrorClass, cur.Status = o.ErrorClass, statusOf(o)
	if o.OK() {
		cur.LastSyncAt = &now
	}
	cur.Version, cur.UpdatedAt = cur.Version+1, now
	return tx.Update(ctx, cur, nil)
}
