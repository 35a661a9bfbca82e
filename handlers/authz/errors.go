package authz

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"spine/shared/auth"
	"spine/shared/httpx"
	"spine/shared/problem"
)

// Sentinels of the authz service. The store and the service wrap them with %w; MapError turns the
// admin API's into problems once, at the edge. The protocol endpoints map the token sentinels to
// OAuth error JSON (RFC 6749 §5.2) themselves: ErrInvalidClient is invalid_client, the code and
// refresh-token sentinels are invalid_grant. The shared ones (write fence, caller checks, store
// unavailable, idempotency) are httpx's.
var (
	ErrInvalidInput    = errors.New("authz: invalid input")
	ErrInvalidTenant   = errors.New("authz: not a tenant id")
	ErrClientNotFound  = errors.New("authz: client not found")
	ErrVersionMismatch = errors.New("authz: version mismatch")
	// ErrPublicClient: a public client has no secret to rotate.
	ErrPublicClient = errors.New("authz: a public client has no secret")
	// ErrInvalidClient is AuthenticateClient's one answer for an unknown or deleted client, a
	// wrong secret, and a public client presenting a secret alike.
	ErrInvalidClient = errors.New("authz: invalid client")

	// ErrCodeNotFound: no authorization code with this hash in the tenant.
	ErrCodeNotFound = errors.New("authz: authorization code not found")
	// ErrCodeExpired: the code was never redeemed and its time has passed.
	ErrCodeExpired = errors.New("authz: authorization code expired")
	// ErrCodeReused: the code was redeemed before; the refresh-token family its first redemption
	// started has been revoked (committed), and none may be issued in it any more.
	ErrCodeReused = errors.New("authz: authorization code reused")

	// ErrRefreshTokenNotFound: the value is not a refresh token this server issued to the
	// client, or the token has expired or was revoked.
	ErrRefreshTokenNotFound = errors.New("authz: refresh token not found")
	// ErrRefreshTokenReused: the token was rotated before; its whole family has been revoked
	// (committed) and RefreshTokenReuseDetected emitted.
	ErrRefreshTokenReused = errors.New("authz: refresh token reused")
	// ErrScopeNotGranted: a rotation asked for a scope the refresh token does not hold.
	ErrScopeNotGranted = errors.New("authz: scope not granted to the refresh token")
	// ErrTokenClientMismatch: a client asked to revoke a token issued to another client (RFC 7009
	// §2.1: refused).
	ErrTokenClientMismatch = errors.New("authz: the token was issued to another client")
	// ErrRevocationUnconfirmed: an access token's revocation is recorded (committed) but the
	// cached "not revoked" answer could not be deleted from Redis yet (it is retried in the
	// background), so an instance still reading Redis may answer from it until then. RFC 7009
	// §2.2.1: 503, the client retries.
	ErrRevocationUnconfirmed = errors.New("authz: the revocation is recorded but not yet confirmed on every instance")
	// ErrScopeNotHeld: a caller that is not a platform admin asked for a client with an API scope
	// its own token does not hold (the error names the scopes: errors.As a *scopesNotHeldError).
	ErrScopeNotHeld = errors.New("authz: the caller's token does not hold a scope of the client")
)

// scopesNotHeldError is ErrScopeNotHeld naming the scopes the caller's token lacks.
type scopesNotHeldError struct{ missing []Scope }

func (e *scopesNotHeldError) Error() string {
	return ErrScopeNotHeld.Error() + ": " + e.list()
}

func (e *scopesNotHeldError) Unwrap() error { return ErrScopeNotHeld }

// list is the missing scopes, space-separated (scope tokens need no quoting).
func (e *scopesNotHeldError) list() string {
	out := make([]string, len(e.missing))
	for i, s := range e.missing {
		out[i] = string(s)
	}
	return strings.Join(out, " ")
}

// invalid is an ErrInvalidInput with a message for the caller.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidInput, fmt.Sprintf(format, args...))
}

// MapError maps the service's errors to problems; it returns nil for errors it does not own.
// Stable codes: invalid-input (400), client-not-found (404), client-public (409), 412 for a stale
// If-Match, insufficient-scope (403, as auth.RequireScope answers it, with its Bearer challenge
// naming the scopes the token lacks).
func MapError(err error) *problem.Problem {
	var notHeld *scopesNotHeldError
	switch {
	case errors.As(err, &notHeld):
		missing := notHeld.list()
		return problem.New(http.StatusForbidden, auth.CodeInsufficientScope,
			"A client cannot be given API scopes the caller's access token does not hold; missing: "+missing+".").
			WithFields(problem.FieldError{Field: "scopes", Detail: "not held by the caller: " + missing}).
			WithHeader("WWW-Authenticate", `Bearer error="insufficient_scope", scope="`+missing+`"`)
	case errors.Is(err, ErrInvalidInput):
		return problem.New(http.StatusBadRequest, "invalid-input", problem.Detail(err, ErrInvalidInput))
	case errors.Is(err, ErrClientNotFound):
		return problem.New(http.StatusNotFound, "client-not-found", "No client with this id is visible to the caller.")
	case errors.Is(err, ErrPublicClient):
		return problem.New(http.StatusConflict, "client-public", "A public client has no secret to rotate.")
	case errors.Is(err, ErrVersionMismatch):
		return httpx.PreconditionFailed()
	}
	return nil
}
