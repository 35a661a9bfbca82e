package identity

import (
	"context"

	"spine/shared/authz"
	"spine/shared/contracts"
	"spine/shared/kit"
	"spine/shared/problem"
)

// Module is Identity as the binary serves it (kit.Module): users, invitations, roles, the
// permission catalog and the authorization check, which it answers for every other service
// (kit.PermissionsProvider), and the authorization server's sign-in (kit.UsersProvider).
var Module = kit.Module{
	Name:      service,
	Publishes: contracts.IdentityEvents,
	Declare:   &API{},
	New:       newModule,
}

var (
	_ kit.Service             = (*API)(nil)
	_ kit.PublicRouter        = (*API)(nil)
	_ kit.PermissionsProvider = (*API)(nil)
	_ kit.UsersProvider       = (*API)(nil)
	_ authz.Permissions       = (*Service)(nil)
)

func newModule(_ context.Context, d kit.Deps) (kit.Service, error) {
	svc, err := NewService(NewStore(d.DB), d.Cache, d.Directory, ServiceConfig{
		InvitationTTL: d.Config.IdentityInvitationTTL, CacheTTL: d.Config.CacheTTL}, d.Log)
	if err != nil {
		return nil, err
	}
	return NewAPI(svc, d.DB), nil
}

// MapError implements kit.Service.
func (a *API) MapError(err error) *problem.Problem { return MapError(err) }

// Permissions implements kit.PermissionsProvider: identity answers every service's
// authorization checks.
func (a *API) Permissions() authz.Permissions { return a.svc }
