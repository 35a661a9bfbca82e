// Package entitlements is the question every service asks about what a tenant's edition grants
// (its user limit, request rate limits, feature defaults and retention overrides). Billing answers
// it from the tenant's subscription; the binary hands the answer to every module (a late-forwarding
// value, like the permission check). The package holds only the contract.
package entitlements

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"spine/shared/tenancy"
)

// Limit is a request limit: Rate requests per Period with bursts up to Burst. Route "" is the
// tenant-wide limit; otherwise an echo route template such as "/api/tenants/:id".
type Limit struct {
	Route  string
	Rate   int
	Burst  int
	Period time.Duration
}

// Entitlements are what a tenant's edition grants.
type Entitlements struct {
	Edition         string                     // edition code
	MaxUsers        int                        // 0 = unlimited
	Limits          []Limit                    // request limits: tenant-wide (Route "") and per route
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

var (
	// ErrUnknownTenant is Source.Of's answer for a tenant it knows nothing about.
	ErrUnknownTenant = errors.New("entitlements: unknown tenant")
	// ErrUnknownEdition is Source.Edition's answer for a code that names no edition.
	ErrUnknownEdition = errors.New("entitlements: unknown edition")
)
