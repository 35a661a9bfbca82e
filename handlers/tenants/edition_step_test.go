package tenants

import (
	"context"
	"errors"
	"testing"

	"spine/shared/entitlements"
	"spine/shared/tenancy"
)

// catalogSource is an in-memory entitlements.Source: the editions it knows, or err for every
// question when set.
type catalogSource struct {
	editions map[string]bool
	err      error
}

func (c catalogSource) Of(context.Context, tenancy.TenantID) (entitlements.Entitlements, error) {
	return entitlements.Entitlements{}, entitlements.ErrUnknownTenant
}

func (c catalogSource) Edition(_ context.Context, code string) (entitlements.Entitlements, error) {
	if c.err != nil {
		return entitlements.Entitlements{}, c.err
	}
	if !c.editions[code] {
		return entitlements.Entitlements{}, entitlements.ErrUnknownEdition
	}
	return entitlements.Entitlements{Edition: code}, nil
}

// With billing's catalog wired, the catalog decides (the setting's list is not consulted); a
// catalog that cannot answer is a step failure of its own code.
func TestEditionStep_AsksTheCatalogWhenWired(t *testing.T) {
	ctx := context.Background()
	step := EditionStep{Catalog: catalogSource{editions: map[string]bool{"gold": true}}, Editions: []string{"free"}}
	if err := step.Run(ctx, Tenant{EditionCode: "gold"}); err != nil {
		t.Errorf("catalog edition: %v", err)
	}
	if err := step.Run(ctx, Tenant{EditionCode: "free"}); stepCode(err) != "unknown-edition" {
		t.Errorf("edition only in the setting: %v", err)
	}
	down := EditionStep{Catalog: catalogSource{err: errors.New("billing: store unavailable")}}
	if err := down.Run(ctx, Tenant{EditionCode: "gold"}); stepCode(err) != "catalog-unavailable" {
		t.Errorf("catalog down: %v", err)
	}
	// Without a catalog, the setting's list.
	if err := (EditionStep{Editions: []string{"free"}}).Run(ctx, Tenant{EditionCode: "free"}); err != nil {
		t.Errorf("setting: %v", err)
	}
}
