// Package authn declares the platform's in-process sign-in question — "is this the password of
// this e-mail address in this tenant, and who is it?" — which the identity service answers over
// its users and their argon2id password hashes. The authorization server (handlers/authz) asks it
// through this interface on its sign-in page and for the profile claims of ID tokens and
// userinfo; the binary wires it (kit.Deps.Users). No password, hash or token crosses it back.
package authn

import (
	"context"
	"errors"

	"spine/shared/tenancy"
)

// ErrInvalidCredentials is Authenticate's answer to every failure the user caused: an e-mail
// address that is malformed or unknown in the tenant, a user who is not Active or has no
// password, and a wrong password alike. A caller shows one generic message for it, so a sign-in
// never reveals whether an address exists.
var ErrInvalidCredentials = errors.New("authn: invalid email or password")

// ErrUnknownUser is Profile's answer for a user id that names no Active user of the tenant
// (unknown, invited, disabled): a refresh or a userinfo call for such a user must fail.
var ErrUnknownUser = errors.New("authn: no active user with this id")

// Profile is what an ID token and the userinfo endpoint say about a signed-in user.
type Profile struct {
	// UserID is the identity user id, the tokens' sub.
	UserID string
	// Email is the user's e-mail address (the sign-in name).
	Email string
	// Name is the user's display name; may be empty.
	Name string
}

// Users answers sign-in questions. Implementations are safe for concurrent use. Errors other than
// the two sentinels are infrastructure failures (store unreachable, request cancelled): the caller
// reports "try again later", never "wrong password".
type Users interface {
	// Authenticate returns the user id of the Active user of tenant whose e-mail address is email
	// and whose password is password, and records the sign-in. Every user-caused failure is
	// ErrInvalidCredentials and costs about as long as a wrong password does.
	Authenticate(ctx context.Context, tenant tenancy.TenantID, email, password string) (userID string, err error)
	// Profile returns the Active user userID of tenant, or ErrUnknownUser.
	Profile(ctx context.Context, tenant tenancy.TenantID, userID string) (Profile, error)
}
