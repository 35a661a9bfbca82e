package identity

import (
	"context"
	"errors"

	"spine/shared/authn"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
)

// signIn is identity's answer to authn.Users (the authorization server's sign-in page and profile
// claims), over the Service's Authenticate and its store.
type signIn struct{ s *Service }

var _ authn.Users = signIn{}

// Users implements kit.UsersProvider: identity answers the authorization server's sign-in.
func (a *API) Users() authn.Users { return signIn{a.svc} }

// Authenticate implements authn.Users over Service.Authenticate: a malformed address is a
// failed sign-in like any other (it names no user).
func (u signIn) Authenticate(ctx context.Context, tenant tenancy.TenantID, email, password string) (string, error) {
	addr, err := ParseEmail(email)
	if err != nil {
		return "", authn.ErrInvalidCredentials
	}
	usr, err := u.s.Authenticate(ctx, tenant, addr, password)
	if errors.Is(err, ErrInvalidCredentials) {
		return "", authn.ErrInvalidCredentials
	}
	if err != nil {
		return "", err
	}
	return string(usr.ID), nil
}

// Profile implements authn.Users: the Active user's address and display name.
func (u signIn) Profile(ctx context.Context, tenant tenancy.TenantID, userID string) (authn.Profile, error) {
	id, err := ParseUserID(userID)
	if err != nil {
		return authn.Profile{}, authn.ErrUnknownUser
	}
	var usr User
	err = u.s.store.Read(ctx, sqlstore.TenantScope(tenant), tenant, func(tx *Tx) error {
		var err error
		usr, err = tx.User(ctx, id)
		return err
	})
	if errors.Is(err, ErrUserNotFound) || (err == nil && usr.Status != StatusActive) {
		return authn.Profile{}, authn.ErrUnknownUser
	}
	if err != nil {
		return authn.Profile{}, err
	}
	return authn.Profile{UserID: string(usr.ID), Email: string(usr.Email), Name: usr.DisplayName}, nil
}
