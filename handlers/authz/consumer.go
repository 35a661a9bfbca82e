package authz

import (
	"context"
	"fmt"
	"net/http"

	"spine/shared/bus"
	"spine/shared/contracts"
	"spine/shared/problem"
	"spine/shared/sqlstore"
)

// Consumer is the inbox consumer name (and Service Bus subscription) of AuthzOnIdentityEvent and
// AuthzOnTenantsEvent.
const Consumer = "authz"

// The events the consumers take, as infra's catalog filters them.
var (
	identityEventTypes = []string{contracts.RoleRevoked, contracts.UserDisabled}
	tenantsEventTypes  = []string{contracts.TenantDecommissioned, contracts.TenantSuspended}
)

// onEvent is the effect of AuthzOnIdentityEvent and AuthzOnTenantsEvent (bus.Consumer: inside the
// transaction that claims the event in authz's inbox, in the event's tenant's scope, so a
// redelivery has no second effect). It ends sign-ins that the platform no longer allows, at the
// store, where every refresh token is checked on every use:
//
//   - UserDisabled and RoleRevoked revoke the user's refresh tokens (the user signs in again, and
//     whatever it is granted then follows what it holds then);
//   - TenantSuspended and TenantDecommissioned revoke every refresh token of the tenant.
//
// Access tokens already issued stay valid for the API until they expire (minutes); introspection
// says inactive for the user's ones at once (their families' cached answers are dropped after the
// commit), for a tenant's only once those answers expire (RevokeTenantTokens drops none). Events
// of other types are acknowledged and ignored.
func (s *Service) onEvent(ctx context.Context, tx *sqlstore.Tx, d bus.Delivery) error {
	tenant := d.TenantID.String()
	switch d.Event.Type {
	case contracts.UserDisabled:
		var data contracts.UserStatusChangedData
		if err := d.Data(&data); err != nil {
			return err
		}
		return s.revokeUser(ctx, tx, d, tenant, data.UserID)
	case contracts.RoleRevoked:
		var data contracts.RoleAssignmentData
		if err := d.Data(&data); err != nil {
			return err
		}
		return s.revokeUser(ctx, tx, d, tenant, data.UserID)
	case contracts.TenantSuspended, contracts.TenantDecommissioned:
		_, err := s.store.RevokeTenantTokens(ctx, tx, tenant)
		return err
	}
	return nil
}

// revokeUser revokes the refresh tokens of the event's user; an event without one breaks its
// contract (400: dead-lettered, never a tenant-wide revocation).
func (s *Service) revokeUser(ctx context.Context, tx *sqlstore.Tx, d bus.Delivery, tenant, user string) error {
	if user == "" {
		return problem.New(http.StatusBadRequest, "invalid-event",
			fmt.Sprintf("The data of %s %s names no user.", d.Event.Type, d.Event.ID))
	}
	_, err := s.store.RevokeSubjectTokens(ctx, tx, tenant, user)
	return err
}
