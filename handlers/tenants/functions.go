package tenants

import (
	"context"
	"fmt"

	"spine/shared/functions"
	"spine/shared/kit"
)

// SweepBatch bounds how many tenants one sweep invocation retries.
const SweepBatch = 50

// Functions implements kit.Service: one catch-all HTTP function whose requests the host forwards
// to echo, and the provisioning retry timer.
func (a *API) Functions(kit.Catalog) []functions.Function {
	return []functions.Function{
		{
			Name: "Tenants",
			HTTP: &functions.HTTPTrigger{Route: "tenants/{*rest}", Methods: []string{"get", "post", "patch"},
				AuthLevel: functions.AuthAnonymous},
		},
		{
			Name:    "TenantProvisioningSweep",
			Timer:   &functions.TimerTrigger{Schedule: "0 * * * * *"},
			Handler: a.sweep,
		},
	}
}

// sweep is the TenantProvisioningSweep timer: it retries failed provisioning steps whose rest is
// over. A store failure answers non-2xx so the host records the failed run. A tick that found
// nothing to retry is Quiet and has no Logs: an idle server says nothing at Info every minute.
func (a *API) sweep(ctx context.Context, inv *functions.Invocation) (*functions.Result, error) {
	tried, activated, err := a.svc.SweepProvisioning(ctx, SweepBatch)
	if err != nil {
		return nil, err
	}
	if tried == 0 {
		return &functions.Result{Quiet: true}, nil
	}
	return &functions.Result{Logs: []string{fmt.Sprintf("provisioning sweep: tried %d, activated %d", tried, activated)}}, nil
}
