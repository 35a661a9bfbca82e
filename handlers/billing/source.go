package billing

import (
	"context"
	"errors"
	"time"

	"spine/shared/cache"
	"spine/shared/entitlements"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
)

// Source is the service's answer to entitlements.Source (kit.EntitlementsProvider hands it to
// every service).
type Source struct{ s *Service }

var _ entitlements.Source = Source{}

// Source returns the service's entitlements.Source.
func (s *Service) Source() Source { return Source{s} }

// cachedGrants is what the cache keeps per tenant: the grants now and, when a downgrade is
// pending, the grants from SwitchAt on — so a cached value never outlives the period end that
// changes it.
type cachedGrants struct {
	Now      entitlements.Entitlements  `json:"now"`
	SwitchAt *time.Time                 `json:"switchAt,omitempty"`
	Next     *entitlements.Entitlements `json:"next,omitempty"`
}

// Of implements entitlements.Source: the grants of the edition of the tenant's live subscription
// (a pending downgrade from its period end on). A tenant without one is
// entitlements.ErrUnknownTenant. Cached (Redis and the in-process copy, cache.GetOrLoadLocal)
// for CacheTTL; every subscription change invalidates it after its commit, on every instance.
func (src Source) Of(ctx context.Context, tenant tenancy.TenantID) (entitlements.Entitlements, error) {
	s := src.s
	g, err := cache.GetOrLoadLocal(ctx, s.cache, entitlementsKey(tenant), s.cfg.CacheTTL, cache.JSON[cachedGrants]{},
		func(ctx context.Context) (cachedGrants, error) { return s.loadGrants(ctx, tenant) })
	if err != nil {
		return entitlements.Entitlements{}, err
	}
	if g.SwitchAt != nil && g.Next != nil && !s.cfg.Now().Before(*g.SwitchAt) {
		return *g.Next, nil
	}
	return g.Now, nil
}

func (s *Service) loadGrants(ctx context.Context, tenant tenancy.TenantID) (cachedGrants, error) {
	var g cachedGrants
	err := s.store.Read(ctx, sqlstore.TenantScope(tenant), tenant, func(tx *Tx) error {
		sub, err := tx.LiveSubscription(ctx)
		if errors.Is(err, ErrNoSubscription) {
			return entitlements.ErrUnknownTenant
		}
		if err != nil {
			return err
		}
		if sub, err = s.rolled(ctx, tx, sub); err != nil {
			return err
		}
		e, err := tx.Edition(ctx, sub.EditionCode)
		if err != nil {
			return err
		}
		g.Now = e.Grants()
		if sub.PendingEdition != "" {
			next, err := tx.Edition(ctx, sub.PendingEdition)
			if err != nil {
				return err
			}
			n, at := next.Grants(), sub.PeriodEnd
			g.Next, g.SwitchAt = &n, &at
		}
		return nil
	})
	return g, err
}

// Edition implements entitlements.Source: an edition's grants by code, or
// entitlements.ErrUnknownEdition. Cached like Of (the catalog changes by migration only).
func (src Source) Edition(ctx context.Context, code string) (entitlements.Entitlements, error) {
	s := src.s
	return cache.GetOrLoadLocal(ctx, s.cache, cache.PlatformKey(service, "edition", code), s.cfg.CacheTTL,
		cache.JSON[entitlements.Entitlements]{}, func(ctx context.Context) (entitlements.Entitlements, error) {
			e, err := s.Edition(ctx, code)
			if errors.Is(err, ErrEditionNotFound) {
				return entitlements.Entitlements{}, entitlements.ErrUnknownEdition
			}
			return e.Grants(), err
		})
}
