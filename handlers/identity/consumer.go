package identity

import (
	"context"
	"errors"
	"fmt"

	"spine/shared/bus"
	"spine/shared/contracts"
	"spine/shared/events"
	"spine/shared/ids"
	"spine/shared/outbox"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
)

// Consumer is the inbox consumer name (and Service Bus subscription) of IdentityOnTenantsEvent.
const Consumer = "identity"

// systemActor is who the consumer's changes are recorded as.
const systemActor = "system:identity"

// TenantsEffect returns the effect of IdentityOnTenantsEvent for delivery d (bus.Consumer: it
// runs inside the transaction that claims the event in identity's inbox, in the event's tenant's
// scope, so a redelivery has no second effect). An effect must not call out (it holds its
// transaction and a pooled connection while it runs), so what it needs from another service is
// asked here, before that transaction opens: for TenantProvisioned, the tenant's status (the
// tenant directory). An error fails the delivery, which the host retries.
//
//   - TenantProvisioned seeds the tenant's system roles (tenant-admin with every catalog
//     permission, read through the effect's own transaction; member) and invites the owner
//     e-mail as tenant-admin (UserInvited, RoleAssigned). Nothing seeded twice: roles are matched
//     by code and the owner by address.
//   - TenantDecommissioned disables every Invited or Active user (UserDisabled, reason
//     "tenant-decommissioned"), revokes every pending invitation, and drops the users' cached
//     permission sets after the commit.
//
// The write fence and these effects (the rule): the fence refuses a tenant's writes while it is
// Suspended or Decommissioned, because the tenant's own users and clients must not change it then.
// These two effects are not such writes; each is the consequence of the lifecycle event itself,
// decided by the tenants service. So TenantDecommissioned is never refused (it is the very change
// that makes the fence refuse), and TenantProvisioned seeds while the tenant accepts writes and
// also while it is Suspended (refusing would lose the roles for good: a redelivery cannot outlive
// a suspension), but not once it is Decommissioned (acknowledged without effect: nothing of a
// decommissioned tenant is to be created). Events of other types are acknowledged and ignored.
//
// The status is read before the transaction, so a decommissioning that lands in between is not
// seen: the seeding then happens, and the decommissioning's own event (consumed after it, or
// waiting for its row locks) disables the owner and revokes the invitation, as it would had the
// provisioning been consumed a moment earlier.
func (s *Service) TenantsEffect(ctx context.Context, d bus.Delivery) (bus.Effect, error) {
	var status tenancy.Status
	// A platform delivery (no tenant) is acknowledged by bus.Consumer without the effect (identity
	// takes no platform events): there is no tenant to ask about.
	if d.Event.Type == contracts.TenantProvisioned && !d.Platform {
		var err error
		if status, err = s.dir.TenantStatus(ctx, d.TenantID); err != nil {
			return nil, err
		}
	}
	return func(ctx context.Context, tx *sqlstore.Tx, d bus.Delivery) error {
		return s.onTenantsEvent(ctx, tx, d, status)
	}, nil
}

// onTenantsEvent is the effect TenantsEffect returns; status is the tenant's, asked before the
// transaction (TenantProvisioned only).
func (s *Service) onTenantsEvent(ctx context.Context, tx *sqlstore.Tx, d bus.Delivery, status tenancy.Status) error {
	meta := events.Meta{TraceParent: d.Event.TraceParent, CorrelationID: d.Event.CorrelationID, CausationID: d.Event.ID,
		Actor: systemActor}
	t := s.store.Bind(tx, d.TenantID)
	switch d.Event.Type {
	case contracts.TenantProvisioned:
		var data contracts.TenantProvisionedData
		if err := d.Data(&data); err != nil {
			return err
		}
		if status == tenancy.StatusDecommissioned {
			return fmt.Errorf("%w: tenant %s is decommissioned", bus.ErrSkip, d.TenantID)
		}
		return s.seed(ctx, t, d.TenantID, data.OwnerEmail, meta)
	case contracts.TenantDecommissioned:
		return s.disableAll(ctx, t, d.TenantID, meta)
	}
	return fmt.Errorf("%w: %s is not for identity", bus.ErrSkip, d.Event.Type)
}

// seed creates the system roles that are missing and invites the owner when no user has the
// address yet.
func (s *Service) seed(ctx context.Context, tx *Tx, tenant tenancy.TenantID, ownerEmail string, meta events.Meta) error {
	now := s.cfg.Now()
	var admin RoleID
	for _, sr := range []struct {
		code  RoleCode
		name  string
		perms []PermissionCode // nil: the whole catalog
	}{
		{RoleTenantAdmin, "Tenant administrator", nil},
		{RoleMember, "Member", memberPermissions},
	} {
		r, err := tx.RoleByCode(ctx, sr.code)
		if errors.Is(err, ErrRoleNotFound) {
			r = Role{ID: RoleID(ids.New()), Tenant: tenant, Code: sr.code, Name: sr.name, IsSystem: true, Version: 1,
				CreatedAt: now, UpdatedAt: now, Permissions: sr.perms}
			if err = tx.InsertRole(ctx, r); err == nil && sr.perms == nil {
				// The catalog through this transaction (Service.Catalog would take a second
				// connection while this one is held).
				err = tx.GrantCatalog(ctx, r.ID)
			}
		}
		if err != nil {
			return err
		}
		if sr.code == RoleTenantAdmin {
			admin = r.ID
		}
	}
	email, err := ParseEmail(ownerEmail)
	if err != nil {
		s.log.WarnContext(ctx, "identity: the provisioned tenant has no valid owner e-mail; nobody invited", "tenantId", tenant.String())
		return nil
	}
	if _, err := tx.UserByEmail(ctx, email); err == nil {
		return nil // invited (or a user) already
	} else if !errors.Is(err, ErrUserNotFound) {
		return err
	}
	// The token is not kept: the owner gets a usable one when an operator re-invites the address
	// (POST /api/users/invitations as platform admin), which revokes this invitation.
	_, err = s.invite(ctx, tx, tenant, InviteInput{Email: email, Roles: []RoleID{admin}}, systemActor, meta)
	return err
}

// disableAll disables every live user of the tenant (one set-based statement) and revokes the
// pending invitations (another), and emits a UserDisabled per user with one outbox.Emit.
func (s *Service) disableAll(ctx context.Context, tx *Tx, tenant tenancy.TenantID, meta events.Meta) error {
	now := s.cfg.Now()
	ids, err := tx.DisableLiveUsers(ctx, now)
	if err != nil {
		return err
	}
	evs := make([]events.Event, 0, len(ids))
	for _, id := range ids {
		ev, err := events.New(service, contracts.UserDisabled, string(id), tenant.String(), contracts.UserStatusChangedData{
			TenantID: tenant.String(), UserID: string(id), Status: string(StatusDisabled), Reason: "tenant-decommissioned"}, meta)
		if err != nil {
			return err
		}
		evs = append(evs, ev)
	}
	if err := tx.RevokeTenantInvitations(ctx, now); err != nil {
		return err
	}
	if err := outbox.Emit(ctx, tx.Tx, evs...); err != nil {
		return err
	}
	tx.AfterCommit(func() { s.invalidate(context.Background(), tenant, ids...) })
	return nil
}
