package identity

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"spine/shared/cache"
	"spine/shared/contracts"
	"spine/shared/events"
	"spine/shared/idempotency"
	"spine/shared/ids"
	"spine/shared/outbox"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
)

// service is the identity service's name: its topic, its events' source, its cache keys' service
// part, its inbox consumer.
const service = "identity"

// Service is the identity service: the rules of users, invitations, roles and assignments on top
// of its Store, the write fence, and the effective-permission cache. It implements
// authz.Permissions for every other service. Safe for concurrent use.
type Service struct {
	store *Store
	cache *cache.Cache
	dir   tenancy.Directory
	fence tenancy.Fence
	cfg   ServiceConfig
	log   *slog.Logger

	catMu      sync.Mutex
	catalog    []Permission
	catalogAt  time.Time
	catalogSet map[PermissionCode]bool
}

// ServiceConfig tunes the service. Zero fields take the documented defaults.
type ServiceConfig struct {
	// InvitationTTL is how long an invitation can be accepted. Default 7 days.
	InvitationTTL time.Duration
	// CacheTTL bounds how long a cached effective permission set may be served (every change
	// that alters one invalidates it after its commit; the TTL is the backstop). Default 60s.
	CacheTTL time.Duration
	// Now is the clock (tests move it); default sqlstore.Now.
	Now func() time.Time
}

func (c ServiceConfig) withDefaults() ServiceConfig {
	if c.InvitationTTL == 0 {
		c.InvitationTTL = 7 * 24 * time.Hour
	}
	if c.CacheTTL == 0 {
		c.CacheTTL = 60 * time.Second
	}
	if c.Now == nil {
		c.Now = sqlstore.Now
	}
	return c
}

// NewService wires a service. dir answers tenant states for the write fence (the tenants
// service); c may be nil (no Redis: every check reads the store).
func NewService(store *Store, c *cache.Cache, dir tenancy.Directory, cfg ServiceConfig, logger *slog.Logger) (*Service, error) {
	if store == nil || dir == nil {
		return nil, errors.New("identity: NewService needs a store and a tenant directory")
	}
	cfg = cfg.withDefaults()
	if cfg.InvitationTTL <= 0 || cfg.CacheTTL <= 0 {
		return nil, errors.New("identity: InvitationTTL and CacheTTL must be positive")
	}
	if logger == nil {
		logger = slog.Default()
	}
	return &Service{store: store, cache: c, dir: dir, fence: tenancy.Fence{Dir: dir}, cfg: cfg, log: logger}, nil
}

// Caller is who asks (the kit's caller, built at the edge by httpx.Target).
type Caller = tenancy.Caller

// permsKey is the cache key of a user's effective permission set.
func permsKey(tenant tenancy.TenantID, user UserID) string {
	return cache.TenantKey(tenant.String(), service, "perms", string(user))
}

// invalidate drops the cached effective sets of users, after the commit of the change that
// altered them. It runs detached from the request's cancellation: a client that hangs up must not
// leave a stale set behind.
func (s *Service) invalidate(ctx context.Context, tenant tenancy.TenantID, users ...UserID) {
	if len(users) == 0 {
		return
	}
	keys := make([]string, len(users))
	for i, u := range users {
		keys[i] = permsKey(tenant, u)
	}
	s.cache.Invalidate(context.WithoutCancel(ctx), keys...)
}

// actor is who a write is recorded as: the request's actor ("user:<sub>", "admin:<sub>"), or the
// caller's subject.
func actor(ctx context.Context, c Caller) string {
	if a := events.MetaFrom(ctx).Actor; a != "" {
		return a
	}
	return c.Subject
}

// writable is the start of every tenant-level write: the caller reaches the tenant and the
// tenant accepts writes (the write fence; 403 tenant-suspended otherwise).
func (s *Service) writable(ctx context.Context, c Caller, tenant tenancy.TenantID) error {
	if err := c.Reaches(tenant); err != nil {
		return err
	}
	return s.fence.CheckWrite(ctx, tenant)
}

func (s *Service) event(ctx context.Context, typ, subject string, tenant tenancy.TenantID, data any) (events.Event, error) {
	return events.New(service, typ, subject, tenant.String(), data, events.MetaFrom(ctx))
}

func checkVersion(current int64, ifMatch *int64) error {
	if ifMatch != nil && *ifMatch != current {
		return ErrVersionMismatch
	}
	return nil
}

// ---- the permission catalog ----

// catalogRefresh is how long the in-process copy of the catalog is used: the catalog changes only
// by migration, so a running process may keep it for a while.
const catalogRefresh = time.Minute

// Catalog returns the permission catalog, by code.
func (s *Service) Catalog(ctx context.Context) ([]Permission, error) {
	s.catMu.Lock()
	defer s.catMu.Unlock()
	if s.catalog != nil && time.Since(s.catalogAt) < catalogRefresh {
		return s.catalog, nil
	}
	ps, err := s.store.Catalog(ctx)
	if err != nil {
		return nil, err
	}
	set := make(map[PermissionCode]bool, len(ps))
	for _, p := range ps {
		set[p.Code] = true
	}
	s.catalog, s.catalogAt, s.catalogSet = ps, time.Now(), set
	return ps, nil
}

// checkPermissions returns codes sorted and deduplicated, or ErrUnknownPermission naming the
// first code the catalog does not have.
func (s *Service) checkPermissions(ctx context.Context, codes []PermissionCode) ([]PermissionCode, error) {
	if _, err := s.Catalog(ctx); err != nil {
		return nil, err
	}
	s.catMu.Lock()
	set := s.catalogSet
	s.catMu.Unlock()
	for _, c := range codes {
		if !set[c] {
			return nil, fmt.Errorf("%w: %s", ErrUnknownPermission, c)
		}
	}
	return sortedCodes(codes), nil
}

// ---- effective permissions: authz.Permissions ----

// Effective implements authz.Permissions: every permission code user holds in tenant through its
// roles, sorted in byte order; empty for an unknown, Invited or Disabled user. Served from Redis
// ({t:<tenant>}:identity:perms:<user>) with cache.GetOrLoadConsistent, which never stores a set
// read before a change whose invalidation has run; with Redis down, from the store. The store
// sorts in Go; a cached set is sorted again if it is not (one cached before that, in the order of
// the database's collation), so the order never depends on the engine.
func (s *Service) Effective(ctx context.Context, tenant tenancy.TenantID, user string) ([]string, error) {
	id, err := ParseUserID(user)
	if err != nil || tenant.IsZero() {
		return []string{}, nil
	}
	set, err := cache.GetOrLoadConsistent(ctx, s.cache, permsKey(tenant, id), s.cfg.CacheTTL, func(ctx context.Context) ([]string, error) {
		return s.store.Effective(ctx, tenant, id)
	})
	if err != nil {
		return nil, err
	}
	if !slices.IsSorted(set) {
		set = slices.Sorted(slices.Values(set))
	}
	return set, nil
}

// Allowed implements authz.Permissions: whether user holds permission in tenant. It binary-searches
// Effective's set, which is in byte order whatever the database's collation.
func (s *Service) Allowed(ctx context.Context, tenant tenancy.TenantID, user, permission string) (bool, error) {
	set, err := s.Effective(ctx, tenant, user)
	if err != nil {
		return false, err
	}
	_, found := slices.BinarySearch(set, permission)
	return found, nil
}

// UserPermissions is GET /users/{id}/permissions: the user's effective set, for a user of the
// tenant (ErrUserNotFound otherwise).
func (s *Service) UserPermissions(ctx context.Context, c Caller, tenant tenancy.TenantID, id UserID) ([]string, error) {
	if err := c.Reaches(tenant); err != nil {
		return nil, err
	}
	if err := s.store.Read(ctx, sqlstore.TenantScope(tenant), tenant, func(tx *Tx) error {
		_, err := tx.User(ctx, id)
		return err
	}); err != nil {
		return nil, err
	}
	return s.Effective(ctx, tenant, string(id))
}

// Check is POST /authz/check: whether user holds permission in the caller's tenant.
func (s *Service) Check(ctx context.Context, c Caller, tenant tenancy.TenantID, user, permission string) (bool, error) {
	if err := c.Reaches(tenant); err != nil {
		return false, err
	}
	return s.Allowed(ctx, tenant, user, permission)
}

// ---- users ----

// GetUser returns a user of the tenant with its role ids.
func (s *Service) GetUser(ctx context.Context, c Caller, tenant tenancy.TenantID, id UserID) (User, error) {
	if err := c.Reaches(tenant); err != nil {
		return User{}, err
	}
	var u User
	err := s.store.Read(ctx, sqlstore.TenantScope(tenant), tenant, func(tx *Tx) error {
		var err error
		if u, err = tx.User(ctx, id); err != nil {
			return err
		}
		u.Roles, err = tx.UserRoles(ctx, id)
		return err
	})
	return u, err
}

// ListUsers returns a page of the tenant's users.
func (s *Service) ListUsers(ctx context.Context, c Caller, tenant tenancy.TenantID, q UserQuery) ([]User, error) {
	if err := c.Reaches(tenant); err != nil {
		return nil, err
	}
	var out []User
	err := s.store.Read(ctx, sqlstore.TenantScope(tenant), tenant, func(tx *Tx) error {
		var err error
		out, err = tx.ListUsers(ctx, q)
		return err
	})
	return out, err
}

// UserPatch is a JSON merge patch of a user: nil members are left as they are.
type UserPatch struct {
	DisplayName *string
}

// UpdateUser applies p to a user of the tenant. ifMatch, when set, must equal its version.
func (s *Service) UpdateUser(ctx context.Context, c Caller, tenant tenancy.TenantID, id UserID, ifMatch *int64, p UserPatch) (User, error) {
	if p.DisplayName != nil {
		if err := validName("displayName", *p.DisplayName, 0, 200); err != nil {
			return User{}, err
		}
	}
	if err := s.writable(ctx, c, tenant); err != nil {
		return User{}, err
	}
	var u User
	err := s.store.Write(ctx, sqlstore.TenantScope(tenant), tenant, func(tx *Tx) error {
		var err error
		if u, err = tx.LockUser(ctx, id); err != nil {
			return err
		}
		if err := checkVersion(u.Version, ifMatch); err != nil {
			return err
		}
		if p.DisplayName != nil && *p.DisplayName != u.DisplayName {
			u.DisplayName = *p.DisplayName
			u.Version++
			u.UpdatedAt = s.cfg.Now()
			if err := tx.UpdateUser(ctx, u); err != nil {
				return err
			}
		}
		u.Roles, err = tx.UserRoles(ctx, id)
		return err
	})
	return u, err
}

// UserAction is a user lifecycle move requested through the API.
type UserAction string

// The moves: disable (Active → Disabled) and enable (Disabled → Active).
const (
	ActionDisable UserAction = "disable"
	ActionEnable  UserAction = "enable"
)

// SetUserStatus disables or enables a user of the tenant and emits UserDisabled or UserEnabled.
// A disabled user holds no permission (its roles are kept for when it is enabled again).
func (s *Service) SetUserStatus(ctx context.Context, c Caller, tenant tenancy.TenantID, id UserID, ifMatch *int64, a UserAction, reason string) (User, error) {
	from, to, typ := StatusActive, StatusDisabled, contracts.UserDisabled
	switch a {
	case ActionDisable:
	case ActionEnable:
		from, to, typ = StatusDisabled, StatusActive, contracts.UserEnabled
	default:
		return User{}, invalid("unknown action %q", a)
	}
	if err := validName("reason", reason, 0, 500); err != nil {
		return User{}, err
	}
	if err := s.writable(ctx, c, tenant); err != nil {
		return User{}, err
	}
	var u User
	err := s.store.Write(ctx, sqlstore.TenantScope(tenant), tenant, func(tx *Tx) error {
		var err error
		if u, err = tx.LockUser(ctx, id); err != nil {
			return err
		}
		if err := checkVersion(u.Version, ifMatch); err != nil {
			return err
		}
		if u.Status != from {
			return fmt.Errorf("%w: only an %s user can be %sd (this one is %s)", ErrIllegalTransition, from, a, u.Status)
		}
		u.Status, u.Version, u.UpdatedAt = to, u.Version+1, s.cfg.Now()
		if err := tx.UpdateUser(ctx, u); err != nil {
			return err
		}
		ev, err := s.event(ctx, typ, string(u.ID), tenant, contracts.UserStatusChangedData{
			TenantID: tenant.String(), UserID: string(u.ID), Status: string(to), Reason: reason})
		if err != nil {
			return err
		}
		if err := outbox.Emit(ctx, tx.Tx, ev); err != nil {
			return err
		}
		u.Roles, err = tx.UserRoles(ctx, id)
		return err
	})
	if err != nil {
		return User{}, err
	}
	s.invalidate(ctx, tenant, id)
	return u, nil
}

// ---- invitations ----

// InviteInput is a validated invitation request.
type InviteInput struct {
	Email       Email
	DisplayName string
	Roles       []RoleID
}

// Invited is what Invite did: the (new or still Invited) user, its invitation, and the token,
// which exists only here.
type Invited struct {
	User       User
	Invitation Invitation
	Token      string
}

// Invite invites email into the tenant with roles, and emits UserInvited. A new address becomes
// a user in status Invited; an address whose user is still Invited is re-invited (its pending
// invitations are revoked, the new roles added), so a lost token can be replaced; an address
// whose user is Active or Disabled is ErrUserExists. The request's Idempotency-Key is claimed in
// the same transaction.
func (s *Service) Invite(ctx context.Context, c Caller, tenant tenancy.TenantID, in InviteInput) (Invited, error) {
	if err := validName("displayName", in.DisplayName, 0, 200); err != nil {
		return Invited{}, err
	}
	if len(in.Roles) > 50 {
		return Invited{}, invalid("roleIds may name at most 50 roles")
	}
	if err := s.writable(ctx, c, tenant); err != nil {
		return Invited{}, err
	}
	var out Invited
	err := s.store.Write(ctx, sqlstore.TenantScope(tenant), tenant, func(tx *Tx) error {
		if err := idempotency.Claim(ctx, tx.Tx); err != nil {
			return err
		}
		var err error
		out, err = s.invite(ctx, tx, tenant, in, actor(ctx, c), events.MetaFrom(ctx))
		return err
	})
	if err != nil {
		return Invited{}, err
	}
	s.invalidate(ctx, tenant, out.User.ID)
	return out, nil
}

// invite is Invite's body inside tx (the consumer's owner invitation shares it).
func (s *Service) invite(ctx context.Context, tx *Tx, tenant tenancy.TenantID, in InviteInput, by string, meta events.Meta) (Invited, error) {
	now := s.cfg.Now()
	codes := make(map[RoleID]RoleCode, len(in.Roles))
	for i, r := range in.Roles {
		ro, err := tx.LockRole(ctx, r)
		if errors.Is(err, ErrRoleNotFound) {
			return Invited{}, invalid("roleIds[%d] is not a role of the tenant", i)
		} else if err != nil {
			return Invited{}, err
		}
		codes[r] = ro.Code
	}
	u, err := tx.LockUserByEmail(ctx, in.Email)
	created := false
	if errors.Is(err, ErrUserNotFound) {
		nu := User{ID: UserID(ids.New()), Tenant: tenant, Email: in.Email, DisplayName: in.DisplayName, Status: StatusInvited,
			Version: 1, CreatedAt: now, UpdatedAt: now}
		switch err = tx.InsertUser(ctx, nu); {
		case err == nil:
			u, created = nu, true
		case errors.Is(err, ErrUserExists):
			// A concurrent invitation of the same new address inserted it first (the lock above
			// had no row to take; the insert waited for that invitation to commit): this one is
			// a re-invitation of that user, as when it comes later.
			u, err = tx.LockUserByEmail(ctx, in.Email)
		}
	}
	switch {
	case err != nil:
		return Invited{}, err
	case created:
	case u.Status != StatusInvited:
		return Invited{}, ErrUserExists
	default: // re-invitation: the earlier tokens stop working
		if err := tx.RevokeUserInvitations(ctx, u.ID, now); err != nil {
			return Invited{}, err
		}
		if in.DisplayName != "" && in.DisplayName != u.DisplayName {
			u.DisplayName, u.Version, u.UpdatedAt = in.DisplayName, u.Version+1, now
			if err := tx.UpdateUser(ctx, u); err != nil {
				return Invited{}, err
			}
		}
	}
	inv := Invitation{ID: InvitationID(ids.New()), Tenant: tenant, User: u.ID, InvitedBy: by, CreatedAt: now,
		ExpiresAt: now.Add(s.cfg.InvitationTTL)}
	token, hash := newInvitationToken(tenant, inv.ID)
	inv.TokenHash = hash
	if err := tx.InsertInvitation(ctx, inv); err != nil {
		return Invited{}, err
	}
	// Each assignment the invitation creates is a RoleAssigned like any other (a projection of
	// assignments must see what it will later see revoked); a role the user holds already, or
	// named twice, assigns nothing and emits nothing. They follow UserInvited, which names them.
	var assigned []events.Event
	for _, r := range in.Roles {
		created, err := tx.Assign(ctx, r, u.ID, by, now)
		if err != nil {
			return Invited{}, err
		}
		if !created {
			continue
		}
		ev, err := events.New(service, contracts.RoleAssigned, string(u.ID), tenant.String(), contracts.RoleAssignmentData{
			TenantID: tenant.String(), UserID: string(u.ID), RoleID: string(r), RoleCode: string(codes[r])}, meta)
		if err != nil {
			return Invited{}, err
		}
		assigned = append(assigned, ev)
	}
	if u.Roles, err = tx.UserRoles(ctx, u.ID); err != nil {
		return Invited{}, err
	}
	roles := make([]string, len(u.Roles))
	for i, r := range u.Roles {
		roles[i] = string(r)
	}
	ev, err := events.New(service, contracts.UserInvited, string(u.ID), tenant.String(), contracts.UserInvitedData{
		TenantID: tenant.String(), UserID: string(u.ID), InvitationID: string(inv.ID), Email: string(u.Email),
		RoleIDs: roles, ExpiresAt: inv.ExpiresAt}, meta)
	if err != nil {
		return Invited{}, err
	}
	if err := outbox.Emit(ctx, tx.Tx, append([]events.Event{ev}, assigned...)...); err != nil {
		return Invited{}, err
	}
	return Invited{User: u, Invitation: inv, Token: token}, nil
}

// RevokeInvitation ends a pending invitation of the tenant; revoking it again is no error. The
// user stays Invited (a new invitation can be issued).
func (s *Service) RevokeInvitation(ctx context.Context, c Caller, tenant tenancy.TenantID, id InvitationID) error {
	if err := s.writable(ctx, c, tenant); err != nil {
		return err
	}
	return s.store.Write(ctx, sqlstore.TenantScope(tenant), tenant, func(tx *Tx) error {
		inv, err := tx.LockInvitation(ctx, id)
		if err != nil {
			return err
		}
		if inv.AcceptedAt != nil {
			return ErrInvitationAccepted
		}
		_, err = tx.EndInvitation(ctx, id, false, s.cfg.Now())
		return err
	})
}

// AcceptInput is what the invitee may set when accepting.
type AcceptInput struct {
	// Password, when set, becomes the user's password for the authorization server's sign-in.
	Password *string
	// DisplayName, when set, replaces the display name the inviter gave.
	DisplayName *string
}

// Accept accepts the invitation the token names: the token is the credential (single use,
// expiring, compared in constant time). The user becomes Active, with a password when one is
// given (argon2id), and UserActivated is emitted. A token that does not match any invitation is
// ErrInvitationNotFound, whatever is wrong with it; the fence applies once the token matched.
func (s *Service) Accept(ctx context.Context, token string, in AcceptInput) (User, error) {
	if in.Password != nil {
		if err := checkPassword(*in.Password); err != nil {
			return User{}, err
		}
	}
	if in.DisplayName != nil {
		if err := validName("displayName", *in.DisplayName, 0, 200); err != nil {
			return User{}, err
		}
	}
	tok, err := parseInvitationToken(token)
	if err != nil {
		return User{}, err
	}
	tenant := tok.tenant
	sc := sqlstore.TenantScope(tenant)
	// verify accepts a pending invitation (Invitation.Pending) whose token matches, and says why
	// any other cannot be accepted.
	verify := func(inv Invitation) error {
		switch {
		case !tok.matches(inv.TokenHash):
			return ErrInvitationNotFound
		case inv.Pending(s.cfg.Now()):
			return nil
		case inv.AcceptedAt != nil:
			return ErrInvitationAccepted
		case inv.RevokedAt != nil:
			return ErrInvitationRevoked
		}
		return ErrInvitationExpired
	}
	readVerify := func(tx *Tx) error {
		inv, err := tx.Invitation(ctx, tok.invitation)
		if err != nil {
			return err
		}
		return verify(inv)
	}
	// Verify first (cheap, read-only), so a wrong token costs no password hashing.
	if err := s.store.Read(ctx, sc, tenant, readVerify); err != nil {
		return User{}, err
	}
	if err := s.fence.CheckWrite(ctx, tenant); err != nil {
		if errors.Is(err, tenancy.ErrTenantNotFound) {
			return User{}, ErrInvitationNotFound
		}
		return User{}, err
	}
	hash := ""
	if in.Password != nil {
		// Hashing holds one of the process's few argon2id slots (64 MiB each). Once this request
		// has one, the invitation is checked again: the losers of concurrent acceptances of one
		// token that queued for a slot fail here, without hashing for a write that refuses them.
		if err := withArgonSlot(ctx, func() error {
			if err := s.store.Read(ctx, sc, tenant, readVerify); err != nil {
				return err
			}
			hash = hashPassword(*in.Password)
			return nil
		}); err != nil {
			return User{}, err
		}
	}
	var u User
	err = s.store.Write(ctx, sc, tenant, func(tx *Tx) error {
		inv, err := tx.LockInvitation(ctx, tok.invitation)
		if err != nil {
			return err
		}
		if err := verify(inv); err != nil { // again, under the lock: single use
			return err
		}
		if u, err = tx.LockUser(ctx, inv.User); err != nil {
			return err
		}
		if u.Status != StatusInvited {
			return fmt.Errorf("%w: the invited user is %s", ErrIllegalTransition, u.Status)
		}
		now := s.cfg.Now()
		if ok, err := tx.EndInvitation(ctx, inv.ID, true, now); err != nil || !ok {
			if err == nil {
				err = ErrInvitationAccepted
			}
			return err
		}
		u.Status, u.Version, u.UpdatedAt, u.ActivatedAt = StatusActive, u.Version+1, now, &now
		if in.DisplayName != nil {
			u.DisplayName = *in.DisplayName
		}
		if err := tx.UpdateUser(ctx, u); err != nil {
			return err
		}
		if hash != "" {
			if err := tx.SetPassword(ctx, u.ID, hash, now); err != nil {
				return err
			}
		}
		meta := events.MetaFrom(ctx)
		meta.Actor = "user:" + string(u.ID)
		ev, err := events.New(service, contracts.UserActivated, string(u.ID), tenant.String(), contracts.UserActivatedData{
			TenantID: tenant.String(), UserID: string(u.ID), InvitationID: string(inv.ID), ActivatedAt: now,
			PasswordSet: hash != ""}, meta)
		if err != nil {
			return err
		}
		if err := outbox.Emit(ctx, tx.Tx, ev); err != nil {
			return err
		}
		u.Roles, err = tx.UserRoles(ctx, u.ID)
		return err
	})
	if err != nil {
		return User{}, err
	}
	s.invalidate(ctx, tenant, u.ID)
	return u, nil
}

// dummyHash is verified against when no user matches, so Authenticate takes as long for an
// unknown address as for a wrong password.
var dummyHash = sync.OnceValue(func() string { return hashPassword("not a password of anyone") })

// Authenticate is the authorization server's sign-in question: the Active user of tenant with
// this e-mail address whose password matches, with its sign-in recorded (lastLoginAt). Every
// failure is ErrInvalidCredentials.
func (s *Service) Authenticate(ctx context.Context, tenant tenancy.TenantID, email Email, password string) (User, error) {
	var u User
	var hash string
	err := s.store.Read(ctx, sqlstore.TenantScope(tenant), tenant, func(tx *Tx) error {
		var err error
		if u, err = tx.UserByEmail(ctx, email); err != nil {
			return err
		}
		hash, err = tx.PasswordHash(ctx, u.ID)
		return err
	})
	if err != nil && !errors.Is(err, ErrUserNotFound) {
		return User{}, err
	}
	ok := false
	if err := withArgonSlot(ctx, func() error {
		if hash == "" {
			verifyPassword(dummyHash(), password)
			return nil
		}
		ok = verifyPassword(hash, password)
		return nil
	}); err != nil {
		return User{}, err
	}
	if !ok || u.Status != StatusActive {
		return User{}, ErrInvalidCredentials
	}
	now := s.cfg.Now()
	if err := s.store.Write(ctx, sqlstore.TenantScope(tenant), tenant, func(tx *Tx) error {
		return tx.TouchLogin(ctx, u.ID, now)
	}); err != nil {
		return User{}, err
	}
	u.LastLoginAt = &now
	return u, nil
}

// ---- roles ----

// RoleInput is a validated role creation request.
type RoleInput struct {
	Code        RoleCode
	Name        string
	Permissions []PermissionCode
}

// CreateRole creates a tenant role (not a system role). The request's Idempotency-Key is claimed
// in the same transaction.
func (s *Service) CreateRole(ctx context.Context, c Caller, tenant tenancy.TenantID, in RoleInput) (Role, error) {
	if systemRole(in.Code) {
		return Role{}, ErrRoleCodeTaken
	}
	if err := validName("name", in.Name, 1, 200); err != nil {
		return Role{}, err
	}
	perms, err := s.checkPermissions(ctx, in.Permissions)
	if err != nil {
		return Role{}, err
	}
	if err := s.writable(ctx, c, tenant); err != nil {
		return Role{}, err
	}
	now := s.cfg.Now()
	r := Role{ID: RoleID(ids.New()), Tenant: tenant, Code: in.Code, Name: in.Name, Version: 1, CreatedAt: now, UpdatedAt: now,
		Permissions: perms}
	err = s.store.Write(ctx, sqlstore.TenantScope(tenant), tenant, func(tx *Tx) error {
		if err := idempotency.Claim(ctx, tx.Tx); err != nil {
			return err
		}
		return tx.InsertRole(ctx, r)
	})
	return r, err
}

// GetRole returns a role of the tenant with its permissions.
func (s *Service) GetRole(ctx context.Context, c Caller, tenant tenancy.TenantID, id RoleID) (Role, error) {
	if err := c.Reaches(tenant); err != nil {
		return Role{}, err
	}
	var r Role
	err := s.store.Read(ctx, sqlstore.TenantScope(tenant), tenant, func(tx *Tx) error {
		var err error
		r, err = tx.Role(ctx, id)
		return err
	})
	return r, err
}

// ListRoles returns a page of the tenant's roles, each with its permissions.
func (s *Service) ListRoles(ctx context.Context, c Caller, tenant tenancy.TenantID, after RoleID, limit int) ([]Role, error) {
	if err := c.Reaches(tenant); err != nil {
		return nil, err
	}
	var out []Role
	err := s.store.Read(ctx, sqlstore.TenantScope(tenant), tenant, func(tx *Tx) error {
		var err error
		out, err = tx.ListRoles(ctx, after, limit)
		return err
	})
	return out, err
}

// RolePatch is a JSON merge patch of a role: nil members are left as they are.
type RolePatch struct {
	Name *string
}

// changeRole runs fn on a locked, non-system role of the tenant at the If-Match version, and
// invalidates the effective sets of the users fn reports as affected, after the commit.
func (s *Service) changeRole(ctx context.Context, c Caller, tenant tenancy.TenantID, id RoleID, ifMatch *int64,
	fn func(tx *Tx, r *Role) (affected []UserID, err error)) (Role, error) {
	if err := s.writable(ctx, c, tenant); err != nil {
		return Role{}, err
	}
	var r Role
	var affected []UserID
	err := s.store.Write(ctx, sqlstore.TenantScope(tenant), tenant, func(tx *Tx) error {
		var err error
		if r, err = tx.LockRole(ctx, id); err != nil {
			return err
		}
		if err := checkVersion(r.Version, ifMatch); err != nil {
			return err
		}
		if r.IsSystem {
			return ErrSystemRole
		}
		if r.Permissions, err = tx.RolePermissions(ctx, id); err != nil {
			return err
		}
		affected, err = fn(tx, &r)
		return err
	})
	if err != nil {
		return Role{}, err
	}
	s.invalidate(ctx, tenant, affected...)
	return r, nil
}

// UpdateRole applies p to a tenant role; system roles are ErrSystemRole.
func (s *Service) UpdateRole(ctx context.Context, c Caller, tenant tenancy.TenantID, id RoleID, ifMatch *int64, p RolePatch) (Role, error) {
	if p.Name != nil {
		if err := validName("name", *p.Name, 1, 200); err != nil {
			return Role{}, err
		}
	}
	return s.changeRole(ctx, c, tenant, id, ifMatch, func(tx *Tx, r *Role) ([]UserID, error) {
		if p.Name == nil || *p.Name == r.Name {
			return nil, nil
		}
		r.Name, r.Version, r.UpdatedAt = *p.Name, r.Version+1, s.cfg.Now()
		return nil, tx.UpdateRole(ctx, *r)
	})
}

// DeleteRole deletes a tenant role with its permissions and assignments, emitting RoleRevoked
// (reason "role-deleted") for every holder; system roles are ErrSystemRole.
func (s *Service) DeleteRole(ctx context.Context, c Caller, tenant tenancy.TenantID, id RoleID, ifMatch *int64) error {
	_, err := s.changeRole(ctx, c, tenant, id, ifMatch, func(tx *Tx, r *Role) ([]UserID, error) {
		holders, err := tx.RoleHolders(ctx, id)
		if err != nil {
			return nil, err
		}
		if err := tx.DeleteRole(ctx, id); err != nil {
			return nil, err
		}
		evs := make([]events.Event, 0, len(holders))
		for _, u := range holders {
			ev, err := s.event(ctx, contracts.RoleRevoked, string(u), tenant, contracts.RoleAssignmentData{
				TenantID: tenant.String(), UserID: string(u), RoleID: string(id), RoleCode: string(r.Code), Reason: "role-deleted"})
			if err != nil {
				return nil, err
			}
			evs = append(evs, ev)
		}
		return holders, outbox.Emit(ctx, tx.Tx, evs...)
	})
	return err
}

// SetRolePermissions replaces a tenant role's permission set and, when it changed, emits
// RolePermissionsChanged; every holder's cached set is invalidated. System roles are
// ErrSystemRole.
func (s *Service) SetRolePermissions(ctx context.Context, c Caller, tenant tenancy.TenantID, id RoleID, ifMatch *int64, codes []PermissionCode) (Role, error) {
	want, err := s.checkPermissions(ctx, codes)
	if err != nil {
		return Role{}, err
	}
	return s.changeRole(ctx, c, tenant, id, ifMatch, func(tx *Tx, r *Role) ([]UserID, error) {
		var added, removed []string
		for _, p := range want {
			if !slices.Contains(r.Permissions, p) {
				added = append(added, string(p))
				if err := tx.AddRolePermission(ctx, id, p); err != nil {
					return nil, err
				}
			}
		}
		for _, p := range r.Permissions {
			if !slices.Contains(want, p) {
				removed = append(removed, string(p))
				if err := tx.RemoveRolePermission(ctx, id, p); err != nil {
					return nil, err
				}
			}
		}
		if len(added)+len(removed) == 0 {
			return nil, nil
		}
		r.Permissions, r.Version, r.UpdatedAt = want, r.Version+1, s.cfg.Now()
		if err := tx.UpdateRole(ctx, *r); err != nil {
			return nil, err
		}
		all := make([]string, len(want))
		for i, p := range want {
			all[i] = string(p)
		}
		ev, err := s.event(ctx, contracts.RolePermissionsChanged, string(id), tenant, contracts.RolePermissionsChangedData{
			TenantID: tenant.String(), RoleID: string(id), RoleCode: string(r.Code), Permissions: all,
			Added: nonNil(added), Removed: nonNil(removed)})
		if err != nil {
			return nil, err
		}
		if err := outbox.Emit(ctx, tx.Tx, ev); err != nil {
			return nil, err
		}
		return tx.RoleHolders(ctx, id)
	})
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Assign assigns a role of the tenant (system roles included) to a user of the tenant and emits
// RoleAssigned; it reports false (and emits nothing) when the user held the role already.
func (s *Service) Assign(ctx context.Context, c Caller, tenant tenancy.TenantID, role RoleID, user UserID) (bool, error) {
	if err := s.writable(ctx, c, tenant); err != nil {
		return false, err
	}
	var created bool
	err := s.store.Write(ctx, sqlstore.TenantScope(tenant), tenant, func(tx *Tx) error {
		r, err := tx.LockRole(ctx, role) // a concurrent delete of the role waits, or wins first
		if err != nil {
			return err
		}
		if _, err := tx.User(ctx, user); err != nil {
			return err
		}
		if created, err = tx.Assign(ctx, role, user, actor(ctx, c), s.cfg.Now()); err != nil || !created {
			return err
		}
		ev, err := s.event(ctx, contracts.RoleAssigned, string(user), tenant, contracts.RoleAssignmentData{
			TenantID: tenant.String(), UserID: string(user), RoleID: string(role), RoleCode: string(r.Code)})
		if err != nil {
			return err
		}
		return outbox.Emit(ctx, tx.Tx, ev)
	})
	if err != nil {
		return false, err
	}
	s.invalidate(ctx, tenant, user)
	return created, nil
}

// Unassign takes a role from a user and emits RoleRevoked; ErrAssignmentNotFound when the user
// does not hold it.
func (s *Service) Unassign(ctx context.Context, c Caller, tenant tenancy.TenantID, role RoleID, user UserID) error {
	if err := s.writable(ctx, c, tenant); err != nil {
		return err
	}
	err := s.store.Write(ctx, sqlstore.TenantScope(tenant), tenant, func(tx *Tx) error {
		r, err := tx.LockRole(ctx, role)
		if err != nil {
			return err
		}
		if err := tx.Unassign(ctx, role, user); err != nil {
			return err
		}
		ev, err := s.event(ctx, contracts.RoleRevoked, string(user), tenant, contracts.RoleAssignmentData{
			TenantID: tenant.String(), UserID: string(user), RoleID: string(role), RoleCode: string(r.Code)})
		if err != nil {
			return err
		}
		return outbox.Emit(ctx, tx.Tx, ev)
	})
	if err != nil {
		return err
	}
	s.invalidate(ctx, tenant, user)
	return nil
}
