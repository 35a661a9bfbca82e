package notifications

import (
	"context"
	"fmt"

	"spine/shared/bus"
	"spine/shared/contracts"
	"spine/shared/functions"
	"spine/shared/kit"
	"spine/shared/sqlstore"
)

// Consumer is NotificationDispatch's subscription on the notifications topic and its inbox name.
const Consumer = "notifications"

// RetrySchedule is NotificationRetries' schedule: every 5 seconds.
const RetrySchedule = "*/5 * * * * *"

// ServiceBusConnection is the app setting prefix NotificationDispatch's trigger uses.
const ServiceBusConnection = "ServiceBusConnection"

// Functions implements kit.Service: the catch-all HTTP functions of notifications/ and
// webhook-endpoints/, NotificationDispatch (NotificationRequested on the service's own topic: the
// first attempt), the NotificationRetries timer (due retries, every 5 s) and the
// NotificationArchive timer (daily: 90 days hot, then the archive; archive.go).
func (a *API) Functions(kit.Catalog) []functions.Function {
	http := func(name, prefix string, methods ...string) functions.Function {
		return functions.Function{Name: name, HTTP: &functions.HTTPTrigger{Route: prefix + "/{*rest}", Methods: methods,
			AuthLevel: functions.AuthAnonymous}}
	}
	return []functions.Function{
		http("NotificationsNotifications", "notifications", "get", "post"),
		http("NotificationsWebhookEndpoints", "webhook-endpoints", "get", "post", "patch", "delete"),
		{
			Name: "NotificationDispatch",
			ServiceBus: &functions.ServiceBusTrigger{Topic: service, Subscription: Consumer, Connection: ServiceBusConnection,
				EventTypes: []string{contracts.NotificationRequested}},
			Handler: a.dispatch,
		},
		{
			Name:    "NotificationRetries",
			Timer:   &functions.TimerTrigger{Schedule: RetrySchedule},
			Handler: a.retries,
		},
		a.retention.Function(ArchiveSweep, ArchiveSchedule),
	}
}

// dispatch serves NotificationDispatch: the kit's consumer claims the event in the inbox (a
// redelivered or duplicated NotificationRequested is a no-op), then, after that commit, the first
// attempt runs — outside any transaction, since it calls out. If the instance dies between the
// two, the notification is still due and NotificationRetries attempts it.
func (a *API) dispatch(ctx context.Context, inv *functions.Invocation) (*functions.Result, error) {
	var req *contracts.NotificationRequestedData
	var tenant bus.Delivery
	c := bus.Consumer{Name: Consumer, DB: a.db, Log: a.svc.log, Effect: func(_ context.Context, _ *sqlstore.Tx, d bus.Delivery) error {
		if d.Event.Type != contracts.NotificationRequested {
			return fmt.Errorf("%w: %s", bus.ErrSkip, d.Event.Type)
		}
		var data contracts.NotificationRequestedData
		if err := d.Data(&data); err != nil {
			return err
		}
		req, tenant = &data, d
		return nil
	}}
	res, err := c.Consume(ctx, inv)
	if err != nil || req == nil {
		return res, err
	}
	if err := a.svc.Attempt(ctx, tenant.TenantID, req.NotificationID); err != nil {
		return nil, err
	}
	return res, nil
}

// retries serves NotificationRetries.
func (a *API) retries(ctx context.Context, _ *functions.Invocation) (*functions.Result, error) {
	n, err := a.svc.RunDue(ctx)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return &functions.Result{Quiet: true}, nil
	}
	return &functions.Result{Logs: []string{fmt.Sprintf("notifications: %d due attempts run", n)}}, nil
}
