package main

import (
	"context"
	"fmt"
	"slices"
)

// benchEdition is the edition the bench's seeded tenants are registered on: its request limits
// exist (so every tenant-token case pays for the rate-limit decision, a Redis round trip, as in
// production) but never bind at this machine's rates, so no case measures 429s. The seeded
// catalog's editions allow at most a few hundred requests per second per tenant.
const benchEdition = "bench"

// benchEditionEntitlements: 1,000,000 requests per second, burst 1,000,000, tenant-wide and on
// the routes the seeded catalog limits separately.
const benchEditionEntitlements = `{"maxUsers":0,"limits":[` +
	`{"route":"","rate":1000000,"burst":1000000,"periodSeconds":1},` +
	`{"route":"/api/audit-entries","rate":1000000,"burst":1000000,"periodSeconds":1}],` +
	`"featureDefaults":{},"retentionDays":{}}`

// addBenchEdition writes the bench edition into the billing catalog as the superuser, after the
// migrations and before the handler starts (no cache holds the catalog yet).
// TODO(lead): once the platform-admin route PUT /api/editions/{code} exists, create the edition
// through it instead of SQL.
func (b *bench) addBenchEdition(ctx context.Context) error {
	if !slices.Contains(b.stack.services(), "billing") {
		return nil
	}
	db, err := b.stack.openAdmin(ctx, "billing")
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `INSERT INTO editions (code, name, price_minor, currency, period_months, trial_days, rank, entitlements, version, updated_at)
		VALUES ($1, 'Bench (limits that never bind)', 0, 'EUR', 1, 30, 1000, $2::jsonb, 1, now())
		ON CONFLICT (code) DO UPDATE SET entitlements = EXCLUDED.entitlements`, benchEdition, benchEditionEntitlements); err != nil {
		return fmt.Errorf("bench edition: %w", err)
	}
	b.edition = benchEdition
	return nil
}

// seedEdition is the edition the seeded tenants register on: the bench edition when the billing
// catalog took it, else "standard".
func (b *bench) seedEdition() string {
	if b.edition != "" {
		return b.edition
	}
	return "standard"
}
