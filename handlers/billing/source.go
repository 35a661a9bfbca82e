package billing

import (
	"context"
	"errors"
	"fmt"
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

// cachedRef is what the cache keeps per tenant: the code of its subscription's edition now and,
// when a downgrade is pending, the code from SwitchAt on — so a cached value never outlives the
// period end that changes it. The grants themselves are the edition's, cached per edition
// (Edition): an edition change (PUT /api/editions/{code}) invalidates one key and every tenant on
// that edition sees it.
type cachedRef struct {
	Edition  string     `json:"edition"`
	SwitchAt *time.Time `json:"switchAt,omitempty"`
	Next     string     `json:"next,omitempty"`
}

// Of implements entitlements.Source: the grants of the edition of the tenant's live subscription
// (a pending downgrade from its period end on). A tenant without one is
// entitlements.ErrUnknownTenant. Both the tenant's edition code and the edition's grants are
// cached (Redis and the in-process copy, cache.GetOrLoadLocal) for CacheTTL; every subscription
// change invalidates the tenant's key and every edition change the edition's key after its commit,
// on every instance (cache.Invalidate publishes the keys). Staleness: none on the writing instance;
// on another instance as long as the invalidation takes to arrive over Redis pub/sub, and at most
// CacheTTL (default 60 s) when Redis cannot deliver it.
func (src Source) Of(ctx context.Context, tenant tenancy.TenantID) (entitlements.Entitlements, error) {
	s := src.s
	ref, err := cache.GetOrLoadLocal(ctx, s.cache, entitlementsKey(tenant), s.cfg.CacheTTL, cache.JSON[cachedRef]{},
		func(ctx context.Context) (cachedRef, error) { return s.loadRef(ctx, tenant) })
	if err != nil {
		return entitlements.Entitlements{}, err
	}
	code := ref.Edition
	if ref.SwitchAt != nil && ref.Next != "" && !s.cfg.Now().Before(*ref.SwitchAt) {
		code = ref.Next
	}
	g, err := src.Edition(ctx, code)
	if errors.Is(err, entitlements.ErrUnknownEdition) {
		// editions are never deleted: a reference to an unknown one is a broken catalog
		return entitlements.Entitlements{}, fmt.Errorf("billing: tenant %s refers to edition %q: %w", tenant, code, ErrEditionNotFound)
	}
	return g, err
}

func (s *Service) loadRef(ctx context.Context, tenant tenancy.TenantID) (cachedRef, error) {
	var ref cachedRef
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
		ref.Edition = sub.EditionCode
		if sub.PendingEdition != "" {
			at := sub.PeriodEnd
			ref.Next, ref.SwitchAt = sub.PendingEdition, &at
		}
		return nil
	})
	return ref, err
}

// Edition implements entitlements.Source: an edition's grants by code, or
// entitlements.ErrUnknownEdition. Cached like Of; PutEdition invalidates it after its commit.
func (src Source) Edition(ctx context.Context, code string) (entitlements.Entitlements, error) {
	s := src.s
	return cache.GetOrLoadLocal(ctx, s.cache, editionKey(code), s.cfg.CacheTTL,
		cache.JSON[entitlements.Entitlements]{}, func(ctx context.Context) (entitlements.Entitlements, error) {
			e, err := s.Edition(ctx, code)
			if errors.Is(err, ErrEditionNotFound) {
				return entitlements.Entitlements{}, entitlements.ErrUnknownEdition
			}
			return e.Grants(), err
		})
}
