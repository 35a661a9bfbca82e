// Package entitlements is the question "what does this tenant's edition grant?", answered by the
// billing service (its subscription's edition in the edition catalog) and asked by the rate
// limiter, configuration and tenants without importing billing.
package entitlements

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"spine/shared/tenancy"
)

// Limit is a request limit: Rate requests per Period with bursts up to Burst. Route "" is the
// tenant-wide limit; otherwise an echo route template such as "/api/tenants/:id". A Shadow limit
// is counted but never refuses a request (rolling out a new limit: observe before enforcing).
type Limit struct {
	Route  string
	Rate   int
	Burst  int
	Period time.Duration
	Shadow bool // counted, never refused: a limit being rolled out
}

// Entitlements are what a tenant's edition grants.
type Entitlements struct {
	Edition         string                     // edition code
	MaxUsers        int                        // 0 = unlimited
	Limits          []Limit                    // tenant-wide (Route "") and per-route limits
	FeatureDefaults map[string]json.RawMessage // flag key → default value of this edition
	Retention       map[string]time.Duration   // data kind → retention override
}

// Source answers a tenant's effective entitlements (billing: its subscription's edition), cached;
// safe for concurrent use. An unknown tenant is ErrUnknownTenant.
type Source interface {
	Of(ctx context.Context, tenant tenancy.TenantID) (Entitlements, error)
	// Edition returns an edition's entitlements by code (ErrUnknownEdition).
	Edition(ctx context.Context, code string) (Entitlements, error)
}

// The sentinels a Source answers with.
var (
	ErrUnknownTenant  = errors.New("entitlements: unknown tenant")
	ErrUnknownEdition = errors.New("entitlements: unknown edition")
)
