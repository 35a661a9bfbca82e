package authz

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"time"

	"spine/shared/ids"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
)

// Service is the authz service's client administration: the rules of the admin API (who may
// reach which clients, what a valid client is, the write fence) on top of its Store, and the
// pruning of expired tokens (prune.go). The OpenID provider works on the Store directly. Safe for
// concurrent use.
type Service struct {
	store Store
	fence tenancy.Fence
	cfg   ServiceConfig
	log   *slog.Logger
}

// ServiceConfig tunes the service. Zero fields take the documented defaults.
type ServiceConfig struct {
	// Prune bounds each pruning run (prune.go).
	Prune PruneConfig
	// Now is the clock (tests move it); default sqlstore.Now.
	Now func() time.Time
}

func (c ServiceConfig) withDefaults() ServiceConfig {
	c.Prune = c.Prune.withDefaults()
	if c.Now == nil {
		c.Now = sqlstore.Now
	}
	return c
}

// NewService wires a service. dir answers tenant states for the write fence (the tenants
// service).
func NewService(store Store, dir tenancy.Directory, cfg ServiceConfig, logger *slog.Logger) (*Service, error) {
	if store == nil || dir == nil {
		return nil, errors.New("authz: NewService needs a store and a tenant directory")
	}
	if logger == nil {
		logger = slog.Default()
	}
	return &Service{store: store, fence: tenancy.Fence{Dir: dir}, cfg: cfg.withDefaults(), log: logger}, nil
}

// Store is the service's store (the OpenID provider issues tokens through it).
func (s *Service) Store() Store { return s.store }

// Caller is who asks (the kit's caller, built at the edge).
type Caller = tenancy.Caller

// reaches checks that the caller may work on tenant's clients: a platform admin on any tenant's
// and on the platform's (PlatformTenant), a tenant token on its own tenant's only.
func reaches(c Caller, tenant string) error {
	if tenant == PlatformTenant {
		return c.RequirePlatform()
	}
	id, err := tenancy.ParseTenantID(tenant)
	if err != nil {
		return tenancy.ErrTenantRequired
	}
	return c.Reaches(id)
}

// writable is the start of every write: the caller reaches the tenant, and a tenant accepts writes
// (the write fence; the platform always does).
func (s *Service) writable(ctx context.Context, c Caller, tenant string) error {
	if err := reaches(c, tenant); err != nil {
		return err
	}
	if tenant == PlatformTenant {
		return nil
	}
	return s.fence.CheckWrite(ctx, tenancy.MustParseTenantID(tenant))
}

// platformOnlyScopes are scopes only platform clients may hold: their routes serve platform
// admins alone.
var platformOnlyScopes = []Scope{"platform.ops"}

// checkClient validates c as it is to be stored, with the rules that depend on its owner.
func checkClient(c *Client) error {
	if err := c.validate(); err != nil {
		return err
	}
	if !c.Platform() {
		for _, sc := range c.Scopes {
			if slices.Contains(platformOnlyScopes, sc) {
				return invalid("scope %s is for platform clients only", sc)
			}
		}
	}
	return nil
}

// ClientInput is a validated-at-the-edge client creation request.
type ClientInput struct {
	Name                   string
	Type                   ClientType
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	GrantTypes             []GrantType
	Scopes                 []Scope
	FirstParty             bool
	PlatformAdmin          bool
}

// Held is the scopes of the caller's token (auth.Principal.Scopes). A caller that is not a
// platform admin may give a client only the API scopes it holds itself (the OpenID Connect
// scopes always), so client.manage cannot mint more than its holder already has: see heldCheck.
type Held []string

// heldCheck refuses a client whose API scopes are not all held by a caller that is not a platform
// admin (ErrScopeNotHeld, naming the missing scopes). A platform admin is not restricted: it
// creates tenants' and the platform's clients, the dev clients of make token among them.
func heldCheck(c Caller, held Held, cl Client) error {
	if c.Platform {
		return nil
	}
	var missing []Scope
	for _, sc := range cl.Scopes {
		if !IsOIDCScope(sc) && !slices.Contains(held, string(sc)) {
			missing = append(missing, sc)
		}
	}
	if len(missing) > 0 {
		return &scopesNotHeldError{missing: missing}
	}
	return nil
}

// CreateClient creates a client of tenant (PlatformTenant: a platform client, platform admins
// only) and returns it with its secret (confidential clients; shown once). A caller that is not
// a platform admin may give it only API scopes its token holds (ErrScopeNotHeld). The request's
// Idempotency-Key is claimed in the same transaction.
func (s *Service) CreateClient(ctx context.Context, c Caller, held Held, tenant string, in ClientInput) (Client, string, error) {
	now := s.cfg.Now()
	cl := Client{ID: ClientID(ids.New()), Tenant: tenant, Name: in.Name, Type: in.Type, RedirectURIs: in.RedirectURIs,
		PostLogoutRedirectURIs: in.PostLogoutRedirectURIs, GrantTypes: in.GrantTypes, Scopes: in.Scopes,
		FirstParty: in.FirstParty, PlatformAdmin: in.PlatformAdmin, Version: 1, CreatedAt: now, UpdatedAt: now}
	if err := reaches(c, tenant); err != nil {
		return Client{}, "", err
	}
	if err := checkClient(&cl); err != nil {
		return Client{}, "", err
	}
	if err := heldCheck(c, held, cl); err != nil {
		return Client{}, "", err
	}
	if err := s.writable(ctx, c, tenant); err != nil {
		return Client{}, "", err
	}
	return s.store.CreateClient(ctx, cl)
}

// GetClient returns a live client of tenant.
func (s *Service) GetClient(ctx context.Context, c Caller, tenant string, id ClientID) (Client, error) {
	if err := reaches(c, tenant); err != nil {
		return Client{}, err
	}
	return s.store.Client(ctx, tenant, id)
}

// ListClients returns up to limit live clients of tenant after after, in id order.
func (s *Service) ListClients(ctx context.Context, c Caller, tenant string, after ClientID, limit int) ([]Client, error) {
	if err := reaches(c, tenant); err != nil {
		return nil, err
	}
	return s.store.ListClients(ctx, tenant, after, limit)
}

// ClientPatch is a JSON merge patch of a client: nil members are left as they are. A client's id,
// tenant and type never change.
type ClientPatch struct {
	Name                   *string
	RedirectURIs           *[]string
	PostLogoutRedirectURIs *[]string
	GrantTypes             *[]GrantType
	Scopes                 *[]Scope
	FirstParty             *bool
	PlatformAdmin          *bool
}

// UpdateClient applies p to a live client of tenant; ifMatch, when set, must equal its version.
// The client as patched must be valid (ErrInvalidInput, and nothing changes), and for a caller
// that is not a platform admin its API scopes must all be held by the caller's token
// (ErrScopeNotHeld), before and after the patch: such a caller can neither widen a client nor
// change one that can already do more than it can — not even by narrowing it first (its grants or
// redirect URIs would then hand its users' codes to someone else).
func (s *Service) UpdateClient(ctx context.Context, c Caller, held Held, tenant string, id ClientID, ifMatch *int64, p ClientPatch) (Client, error) {
	if err := s.writable(ctx, c, tenant); err != nil {
		return Client{}, err
	}
	return s.store.UpdateClient(ctx, tenant, id, ifMatch, func(cl *Client) error {
		if err := heldCheck(c, held, *cl); err != nil {
			return err
		}
		if p.Name != nil {
			cl.Name = *p.Name
		}
		if p.RedirectURIs != nil {
			cl.RedirectURIs = *p.RedirectURIs
		}
		if p.PostLogoutRedirectURIs != nil {
			cl.PostLogoutRedirectURIs = *p.PostLogoutRedirectURIs
		}
		if p.GrantTypes != nil {
			cl.GrantTypes = *p.GrantTypes
		}
		if p.Scopes != nil {
			cl.Scopes = *p.Scopes
		}
		if p.FirstParty != nil {
			cl.FirstParty = *p.FirstParty
		}
		if p.PlatformAdmin != nil {
			cl.PlatformAdmin = *p.PlatformAdmin
		}
		if err := checkClient(cl); err != nil {
			return err
		}
		return heldCheck(c, held, *cl)
	})
}

// RotateSecret gives a confidential client of tenant a new secret (returned once); the previous
// one stops working at once. A caller that is not a platform admin must hold every API scope of
// the client (ErrScopeNotHeld): the new secret mints the client's scopes.
func (s *Service) RotateSecret(ctx context.Context, c Caller, held Held, tenant string, id ClientID, ifMatch *int64) (Client, string, error) {
	if err := s.writable(ctx, c, tenant); err != nil {
		return Client{}, "", err
	}
	if !c.Platform {
		cur, err := s.store.Client(ctx, tenant, id)
		if err != nil {
			return Client{}, "", err
		}
		// A change of the client's scopes between this read and the rotation needs their
		// holder (or a platform admin): it cannot widen what this caller obtains.
		if err := heldCheck(c, held, cur); err != nil {
			return Client{}, "", err
		}
	}
	return s.store.RotateClientSecret(ctx, tenant, id, ifMatch)
}

// DeleteClient deletes a client of tenant (soft: its id is never reused) and revokes its refresh
// tokens. A caller that is not a platform admin must hold every API scope of the client
// (ErrScopeNotHeld): it cannot take away a client that can do more than it can.
func (s *Service) DeleteClient(ctx context.Context, c Caller, held Held, tenant string, id ClientID, ifMatch *int64) error {
	if err := s.writable(ctx, c, tenant); err != nil {
		return err
	}
	if !c.Platform {
		cur, err := s.store.Client(ctx, tenant, id)
		if err != nil {
			return err
		}
		if err := heldCheck(c, held, cur); err != nil {
			return err
		}
	}
	return s.store.DeleteClient(ctx, tenant, id, ifMatch)
}
