package tenants

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"spine/shared/cache"
	"spine/shared/contracts"
	"spine/shared/events"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
)

// Service is the tenants service: the registry's rules on top of its Store, the Redis read cache,
// and the provisioning steps. It implements tenancy.Directory for every other service. Safe for
// concurrent use.
type Service struct {
	store Store
	cache *cache.Cache
	steps []StepRunner
	cfg   ServiceConfig
	log   *slog.Logger
}

var _ tenancy.Directory = (*Service)(nil)

// ServiceConfig tunes the service. Zero fields take the documented defaults.
type ServiceConfig struct {
	// CacheTTL bounds how long a cached tenant may be served. Default 60s.
	CacheTTL time.Duration
	// MaxStepAttempts is how often the sweep retries a failed step. Default 10.
	MaxStepAttempts int
	// RetryAfter is how long a failed step rests before the sweep retries it. Default 30s.
	RetryAfter time.Duration
	// StepTimeout bounds one step's run. Default 15s.
	StepTimeout time.Duration
}

// Validate checks the configuration after defaults are applied.
func (c ServiceConfig) Validate() error {
	if c.CacheTTL <= 0 || c.MaxStepAttempts <= 0 || c.RetryAfter <= 0 || c.StepTimeout <= 0 {
		return errors.New("tenants: CacheTTL, MaxStepAttempts, RetryAfter and StepTimeout must be positive")
	}
	return nil
}

func (c ServiceConfig) withDefaults() ServiceConfig {
	if c.CacheTTL == 0 {
		c.CacheTTL = 60 * time.Second
	}
	if c.MaxStepAttempts == 0 {
		c.MaxStepAttempts = 10
	}
	if c.RetryAfter == 0 {
		c.RetryAfter = 30 * time.Second
	}
	if c.StepTimeout == 0 {
		c.StepTimeout = 15 * time.Second
	}
	return c
}

// NewService wires a service. steps are the provisioning steps every new tenant gets, in order.
// c may be nil (no Redis: every read goes to the store).
func NewService(store Store, c *cache.Cache, steps []StepRunner, cfg ServiceConfig, logger *slog.Logger) (*Service, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(steps) == 0 {
		return nil, errors.New("tenants: at least one provisioning step is required")
	}
	if logger == nil {
		logger = slog.Default()
	}
	return &Service{store: store, cache: c, steps: steps, cfg: cfg, log: logger}, nil
}

// Caller is who asks (the kit's caller, built at the edge by httpx.CallerOf).
type Caller = tenancy.Caller

const service = "tenants"

func tenantKey(id tenancy.TenantID) string {
	return cache.TenantKey(id.String(), service, "tenant", "v1")
}
func slugKey(s Slug) string { return cache.PlatformKey(service, "slug", string(s)) }

// RegisterInput is a validated registration request.
type RegisterInput struct {
	Name        string
	Slug        Slug
	EditionCode EditionCode
	OwnerEmail  string
}

// Validate checks every member.
func (in RegisterInput) Validate() error {
	if err := validName(in.Name); err != nil {
		return err
	}
	if _, err := ParseSlug(string(in.Slug)); err != nil {
		return err
	}
	if err := validEdition(string(in.EditionCode)); err != nil {
		return err
	}
	return validEmail(in.OwnerEmail)
}

// Register creates a tenant in Provisioning with its steps Pending and emits TenantRegistered.
// The request's Idempotency-Key, if any, is claimed in the same transaction (shared/idempotency).
func (s *Service) Register(ctx context.Context, c Caller, in RegisterInput) (View, error) {
	if err := c.RequirePlatform(); err != nil {
		return View{}, err
	}
	if err := in.Validate(); err != nil {
		return View{}, err
	}
	now := sqlstore.Now()
	t := Tenant{ID: tenancy.NewTenantID(), Name: in.Name, Slug: in.Slug, Status: tenancy.StatusProvisioning,
		EditionCode: in.EditionCode, OwnerEmail: in.OwnerEmail, Version: 1, CreatedAt: now, UpdatedAt: now}
	steps := make([]Step, len(s.steps))
	for i, r := range s.steps {
		steps[i] = Step{Seq: i + 1, Name: r.Name(), Status: StepPending, UpdatedAt: now}
	}
	ev, err := events.New(service, contracts.TenantRegistered, t.ID.String(), t.ID.String(), contracts.TenantRegisteredData{
		TenantID: t.ID.String(), Name: t.Name, Slug: string(t.Slug), EditionCode: string(t.EditionCode), OwnerEmail: t.OwnerEmail,
	}, events.MetaFrom(ctx))
	if err != nil {
		return View{}, err
	}
	if err := s.store.Create(ctx, sqlstore.TenantScope(t.ID), t, steps, []events.Event{ev}); err != nil {
		return View{}, err
	}
	s.cache.Invalidate(ctx, slugKey(t.Slug)) // a cached "no such slug" must not outlive the insert
	return View{Tenant: t, Steps: steps}, nil
}

// Get returns a tenant with its steps as GET answers it, from the cache when it can. The caller's
// reach is checked first: a tenant token never gets another tenant's bytes, cached or not.
func (s *Service) Get(ctx context.Context, c Caller, id tenancy.TenantID) (Rendered, error) {
	if !c.Sees(id) {
		return Rendered{}, ErrNotFound
	}
	return s.cached(ctx, id)
}

// cached is the cache-aside read of a tenant, rendered: a hit is the process's local copy (no
// round trip; dropped on every instance when the tenant's key is invalidated) or one Redis GET, and
// no decoding. The loader uses platform scope because the cached value is shared by every caller;
// access was checked before.
func (s *Service) cached(ctx context.Context, id tenancy.TenantID) (Rendered, error) {
	return cache.GetOrLoadLocal(ctx, s.cache, tenantKey(id), s.cfg.CacheTTL, renderedCodec{}, func(ctx context.Context) (Rendered, error) {
		v, err := s.store.Get(ctx, sqlstore.PlatformScope(), id)
		if err != nil {
			return Rendered{}, err
		}
		return render(v)
	})
}

// GetBySlug returns the tenant with this slug as GET answers it, if the caller may see it.
func (s *Service) GetBySlug(ctx context.Context, c Caller, slug Slug) (Rendered, error) {
	idStr, err := cache.GetOrLoad(ctx, s.cache, slugKey(slug), s.cfg.CacheTTL, func(ctx context.Context) (string, error) {
		v, err := s.store.GetBySlug(ctx, sqlstore.PlatformScope(), slug)
		if err != nil {
			return "", err
		}
		return v.Tenant.ID.String(), nil
	})
	if err != nil {
		return Rendered{}, err
	}
	id, err := tenancy.ParseTenantID(idStr)
	if err != nil {
		return Rendered{}, err
	}
	if !c.Sees(id) {
		return Rendered{}, ErrNotFound
	}
	r, err := s.cached(ctx, id)
	if err == nil && r.Slug != slug {
		// The slug moved (PATCH while Provisioning) after the mapping was cached: ask the store.
		s.cache.Invalidate(ctx, slugKey(slug))
		v, err := s.store.GetBySlug(ctx, c.Scope(), slug)
		if err != nil {
			return Rendered{}, err
		}
		return render(v)
	}
	return r, err
}

// List returns a page of the tenants the caller can see (its own tenant, or all for admins).
func (s *Service) List(ctx context.Context, c Caller, q ListQuery) ([]Tenant, error) {
	return s.store.List(ctx, c.Scope(), q)
}

// TenantStatus implements tenancy.Directory from the cache, falling back to the store.
func (s *Service) TenantStatus(ctx context.Context, id tenancy.TenantID) (tenancy.Status, error) {
	r, err := s.cached(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return "", fmt.Errorf("%w: %s", tenancy.ErrTenantNotFound, id)
	}
	if err != nil {
		return "", err
	}
	return r.Status, nil
}

// Patch is a JSON merge patch of a tenant: nil members are left as they are.
type Patch struct {
	Name        *string
	Slug        *Slug
	EditionCode *EditionCode
	OwnerEmail  *string
}

// Update applies p. Tenant-scoped callers may change name and ownerEmail of their own tenant while
// it accepts writes; slug and editionCode are platform-admin fields. The slug may change only
// while the tenant is Provisioning. ifMatch, when set, must equal the current version.
func (s *Service) Update(ctx context.Context, c Caller, id tenancy.TenantID, ifMatch *int64, p Patch) (View, error) {
	if !c.Sees(id) {
		return View{}, ErrNotFound
	}
	if !c.Platform && (p.Slug != nil || p.EditionCode != nil) {
		return View{}, tenancy.ErrPlatformAdminRequired
	}
	if p.Name != nil {
		if err := validName(*p.Name); err != nil {
			return View{}, err
		}
	}
	if p.Slug != nil {
		if _, err := ParseSlug(string(*p.Slug)); err != nil {
			return View{}, err
		}
	}
	if p.EditionCode != nil {
		if err := validEdition(string(*p.EditionCode)); err != nil {
			return View{}, err
		}
	}
	if p.OwnerEmail != nil {
		if err := validEmail(*p.OwnerEmail); err != nil {
			return View{}, err
		}
	}
	var oldSlug Slug
	v, err := s.store.Update(ctx, c.Scope(), id, func(v *View) ([]events.Event, error) {
		t := &v.Tenant
		if err := checkVersion(t, ifMatch); err != nil {
			return nil, err
		}
		if t.Status == tenancy.StatusDecommissioned {
			return nil, ErrDecommissioned
		}
		if !c.Platform && !t.Status.AcceptsWrites() {
			return nil, fmt.Errorf("%w: %s", tenancy.ErrTenantSuspended, t.Status)
		}
		oldSlug = t.Slug
		if p.Slug != nil && *p.Slug != t.Slug {
			if t.Status != tenancy.StatusProvisioning {
				return nil, ErrSlugImmutable
			}
			t.Slug = *p.Slug
		}
		if p.Name != nil {
			t.Name = *p.Name
		}
		if p.EditionCode != nil {
			t.EditionCode = *p.EditionCode
		}
		if p.OwnerEmail != nil {
			t.OwnerEmail = *p.OwnerEmail
		}
		return nil, nil
	})
	if err != nil {
		return View{}, err
	}
	s.cache.Invalidate(ctx, tenantKey(id), slugKey(oldSlug), slugKey(v.Tenant.Slug))
	return v, nil
}

func checkVersion(t *Tenant, ifMatch *int64) error {
	if ifMatch != nil && *ifMatch != t.Version {
		return ErrVersionMismatch
	}
	return nil
}

// Action is a lifecycle transition requested through the API.
type Action string

// The transitions a platform admin can request (provisioning has its own method).
const (
	ActionSuspend      Action = "suspend"
	ActionReactivate   Action = "reactivate"
	ActionDecommission Action = "decommission"
)

// Transition moves the tenant through its lifecycle and emits the matching event. Illegal moves
// (e.g. reactivating an Active tenant) yield ErrIllegalTransition.
func (s *Service) Transition(ctx context.Context, c Caller, id tenancy.TenantID, ifMatch *int64, a Action, reason string) (View, error) {
	if err := c.RequirePlatform(); err != nil {
		return View{}, err
	}
	var to tenancy.Status
	var typ string
	switch a {
	case ActionSuspend:
		to, typ = tenancy.StatusSuspended, contracts.TenantSuspended
	case ActionReactivate:
		to, typ = tenancy.StatusActive, contracts.TenantReactivated
	case ActionDecommission:
		to, typ = tenancy.StatusDecommissioned, contracts.TenantDecommissioned
	default:
		return View{}, fmt.Errorf("%w: unknown action %q", ErrInvalidInput, a)
	}
	if len(reason) > 500 {
		return View{}, fmt.Errorf("%w: reason must be at most 500 characters", ErrInvalidInput)
	}
	v, err := s.store.Update(ctx, c.Scope(), id, func(v *View) ([]events.Event, error) {
		t := &v.Tenant
		if err := checkVersion(t, ifMatch); err != nil {
			return nil, err
		}
		if a == ActionReactivate && t.Status != tenancy.StatusSuspended {
			return nil, fmt.Errorf("%w: only a Suspended tenant can be reactivated (it is %s)", ErrIllegalTransition, t.Status)
		}
		if err := t.moveTo(to, sqlstore.Now()); err != nil {
			return nil, err
		}
		data := contracts.TenantStatusChangedData{TenantID: t.ID.String(), Status: string(t.Status), Reason: reason}
		ev, err := events.New(service, typ, t.ID.String(), t.ID.String(), data, events.MetaFrom(ctx))
		return []events.Event{ev}, err
	})
	if err != nil {
		return View{}, err
	}
	s.cache.Invalidate(ctx, tenantKey(id))
	return v, nil
}

// Provision runs the tenant's pending and failed steps in order, recording each outcome, and
// makes the tenant Active (emitting TenantProvisioned) when every step has succeeded. The first
// failing step stops the run with a *StepError; calling Provision again resumes from that step.
// Steps run outside any transaction (they call out), so they must be idempotent.
func (s *Service) Provision(ctx context.Context, c Caller, id tenancy.TenantID, ifMatch *int64) (View, error) {
	if err := c.RequirePlatform(); err != nil {
		return View{}, err
	}
	v, err := s.store.Get(ctx, sqlstore.PlatformScope(), id)
	if err != nil {
		return View{}, err
	}
	if err := checkVersion(&v.Tenant, ifMatch); err != nil {
		return View{}, err
	}
	if v.Tenant.Status != tenancy.StatusProvisioning {
		return View{}, fmt.Errorf("%w: the tenant is %s, not Provisioning", ErrIllegalTransition, v.Tenant.Status)
	}
	defer s.cache.Invalidate(context.WithoutCancel(ctx), tenantKey(id))
	for _, st := range v.Steps {
		if st.Status == StepSucceeded {
			continue
		}
		code := ""
		if r := s.runner(st.Name); r == nil {
			code = "unknown-step"
		} else {
			sctx, cancel := context.WithTimeout(ctx, s.cfg.StepTimeout)
			if err := r.Run(sctx, v.Tenant); err != nil {
				code = stepCode(err)
				s.log.WarnContext(ctx, "tenants: provisioning step failed", "tenantId", id.String(), "step", st.Name, "code", code, "error", err)
			}
			cancel()
		}
		if err := s.store.RecordStep(ctx, sqlstore.PlatformScope(), id, st.Seq, code == "", code); err != nil {
			return View{}, err
		}
		if code != "" {
			return View{}, &StepError{Step: st.Name, Code: code}
		}
	}
	v, err = s.store.Update(ctx, sqlstore.PlatformScope(), id, func(v *View) ([]events.Event, error) {
		for _, st := range v.Steps {
			if st.Status != StepSucceeded {
				return nil, &StepError{Step: st.Name, Code: "step-not-succeeded"}
			}
		}
		if v.Tenant.Status != tenancy.StatusProvisioning {
			return nil, fmt.Errorf("%w: the tenant is %s, not Provisioning", ErrIllegalTransition, v.Tenant.Status)
		}
		now := sqlstore.Now()
		if err := v.Tenant.moveTo(tenancy.StatusActive, now); err != nil {
			return nil, err
		}
		ev, err := events.New(service, contracts.TenantProvisioned, id.String(), id.String(), contracts.TenantProvisionedData{
			TenantID: id.String(), Slug: string(v.Tenant.Slug), EditionCode: string(v.Tenant.EditionCode),
			ProvisionedAt: now, OwnerEmail: v.Tenant.OwnerEmail,
		}, events.MetaFrom(ctx))
		return []events.Event{ev}, err
	})
	return v, err
}

func (s *Service) runner(name string) StepRunner {
	for _, r := range s.steps {
		if r.Name() == name {
			return r
		}
	}
	return nil
}

// SweepProvisioning retries provisioning for tenants whose failed steps have rested RetryAfter
// and have attempts left. It returns how many tenants it tried and how many became Active.
func (s *Service) SweepProvisioning(ctx context.Context, limit int) (tried, activated int, err error) {
	ids, err := s.store.RetryDue(ctx, sqlstore.PlatformScope(), sqlstore.Now().Add(-s.cfg.RetryAfter), s.cfg.MaxStepAttempts, limit)
	if err != nil {
		return 0, 0, err
	}
	admin := Caller{Subject: "system:provisioning-sweep", Platform: true}
	m := events.MetaFrom(ctx)
	m.Actor = "system:provisioning-sweep"
	ctx = events.WithMeta(ctx, m)
	for _, id := range ids {
		if ctx.Err() != nil {
			break
		}
		tried++
		_, perr := s.Provision(ctx, admin, id, nil)
		var se *StepError
		switch {
		case perr == nil:
			activated++
		case errors.As(perr, &se), errors.Is(perr, ErrIllegalTransition):
			// Recorded on the step (or someone else finished it); the next sweep decides again.
		default:
			return tried, activated, perr
		}
	}
	return tried, activated, nil
}
