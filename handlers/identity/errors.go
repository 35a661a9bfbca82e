package identity

import (
	"errors"
	"fmt"
	"net/http"

	"spine/shared/httpx"
	"spine/shared/problem"
)

// Sentinels of the identity service. The store and the service wrap them with %w; MapError turns
// them into problems once, at the edge. The shared ones (write fence, caller checks, store
// unavailable, idempotency) are httpx's.
var (
	ErrInvalidID          = errors.New("identity: not an id")
	ErrInvalidInput       = errors.New("identity: invalid input")
	ErrUserNotFound       = errors.New("identity: user not found")
	ErrRoleNotFound       = errors.New("identity: role not found")
	ErrInvitationNotFound = errors.New("identity: invitation not found")
	ErrAssignmentNotFound = errors.New("identity: the user does not hold the role")
	ErrUserExists         = errors.New("identity: a user with this e-mail address exists")
	ErrRoleCodeTaken      = errors.New("identity: role code taken")
	ErrSystemRole         = errors.New("identity: system roles cannot be changed")
	ErrIllegalTransition  = errors.New("identity: illegal status transition")
	ErrVersionMismatch    = errors.New("identity: version mismatch")
	ErrInvitationExpired  = errors.New("identity: invitation expired")
	ErrInvitationAccepted = errors.New("identity: invitation already accepted")
	ErrInvitationRevoked  = errors.New("identity: invitation revoked")
	ErrUnknownPermission  = errors.New("identity: unknown permission")
	ErrWeakPassword       = errors.New("identity: password refused")
	// ErrInvalidCredentials is Authenticate's answer for an unknown e-mail, a user who is not
	// Active or has no password, and a wrong password alike.
	ErrInvalidCredentials = errors.New("identity: invalid credentials")
)

// invalid is an ErrInvalidInput with a message for the caller.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidInput, fmt.Sprintf(format, args...))
}

// MapError maps the service's errors to problems; it returns nil for errors it does not own.
func MapError(err error) *problem.Problem {
	switch {
	case errors.Is(err, ErrInvalidInput):
		return problem.New(http.StatusBadRequest, "invalid-input", problem.Detail(err, ErrInvalidInput))
	case errors.Is(err, ErrWeakPassword):
		return problem.New(http.StatusBadRequest, "invalid-password", problem.Detail(err, ErrWeakPassword)).
			WithFields(problem.FieldError{Field: "password", Detail: problem.Detail(err, ErrWeakPassword)})
	case errors.Is(err, ErrUnknownPermission):
		return problem.New(http.StatusBadRequest, "unknown-permission",
			"Every permission must be a code of the catalog (GET /api/permissions): "+problem.Detail(err, ErrUnknownPermission)+".")
	case errors.Is(err, ErrUserNotFound), errors.Is(err, ErrInvalidID):
		return problem.New(http.StatusNotFound, "user-not-found", "No user with this id is visible to the caller.")
	case errors.Is(err, ErrRoleNotFound):
		return problem.New(http.StatusNotFound, "role-not-found", "No role with this id is visible to the caller.")
	case errors.Is(err, ErrInvitationNotFound):
		return problem.New(http.StatusNotFound, "invitation-not-found", "No invitation matches.")
	case errors.Is(err, ErrAssignmentNotFound):
		return problem.New(http.StatusNotFound, "assignment-not-found", "The user does not hold this role.")
	case errors.Is(err, ErrUserExists):
		return problem.New(http.StatusConflict, "user-exists", "A user with this e-mail address already exists in the tenant.")
	case errors.Is(err, ErrRoleCodeTaken):
		return problem.New(http.StatusConflict, "role-code-taken", "Another role of the tenant (or a system role) uses this code.")
	case errors.Is(err, ErrSystemRole):
		return problem.New(http.StatusConflict, "role-immutable", "System roles (tenant-admin, member) cannot be changed or deleted.")
	case errors.Is(err, ErrIllegalTransition):
		return problem.New(http.StatusConflict, "illegal-transition", problem.Detail(err, ErrIllegalTransition))
	case errors.Is(err, ErrVersionMismatch):
		return httpx.PreconditionFailed()
	case errors.Is(err, ErrInvitationExpired):
		return problem.New(http.StatusGone, "invitation-expired", "The invitation has expired; ask for a new one.")
	case errors.Is(err, ErrInvitationAccepted):
		return problem.New(http.StatusGone, "invitation-accepted", "The invitation was accepted already; an invitation is used once.")
	case errors.Is(err, ErrInvitationRevoked):
		return problem.New(http.StatusGone, "invitation-revoked", "The invitation was revoked; ask for a new one.")
	}
	return nil
}
