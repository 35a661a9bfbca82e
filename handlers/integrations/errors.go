package integrations

import (
	"errors"
	"fmt"
	"net/http"

	"spine/shared/problem"
	"spine/shared/secrets"
)

// The integrations service's sentinels; MapError maps them to problem+json once, at the edge.
var (
	// ErrNotFound: no live connection with this id in the tenant (another tenant's, a deleted one
	// and a malformed id alike).
	ErrNotFound = errors.New("integrations: connection not found")
	// ErrUnknownType: the connector type is not in the registry.
	ErrUnknownType = errors.New("integrations: unknown connector type")
	// ErrInvalidSettings: the settings fail the connector's schema (a SettingsError says where).
	ErrInvalidSettings = errors.New("integrations: invalid settings")
	// ErrSecretInSettings: a settings member looks like a secret (a SettingsError says where).
	ErrSecretInSettings = errors.New("integrations: secret in settings")
	// ErrInvalidInput: another request member is wrong (an InputError says which).
	ErrInvalidInput = errors.New("integrations: invalid input")
	// ErrDisabled: the connection is Disabled; checks and syncs are refused until it is enabled.
	ErrDisabled = errors.New("integrations: connection disabled")
	// ErrVersionMismatch: If-Match named another version.
	ErrVersionMismatch = errors.New("integrations: version mismatch")
	// ErrVaultUnavailable: Key Vault failed (unreachable, throttled, refused); nothing was stored.
	ErrVaultUnavailable = errors.New("integrations: key vault unavailable")
)

// SettingsError names the member of the settings (a JSON path such as settings.headers[0].value)
// that failed and why; it wraps ErrInvalidSettings or ErrSecretInSettings.
type SettingsError struct {
	kind   error
	Path   string
	Detail string
}

func (e *SettingsError) Error() string { return fmt.Sprintf("%v: %s %s", e.kind, e.Path, e.Detail) }

// Unwrap returns the sentinel.
func (e *SettingsError) Unwrap() error { return e.kind }

// InputError names a request member that is wrong; it wraps ErrInvalidInput.
type InputError struct{ Field, Detail string }

func (e *InputError) Error() string {
	return fmt.Sprintf("%v: %s %s", ErrInvalidInput, e.Field, e.Detail)
}

// Unwrap returns ErrInvalidInput.
func (e *InputError) Unwrap() error { return ErrInvalidInput }

func invalidInput(field, detail string) error { return &InputError{Field: field, Detail: detail} }

// vaultError maps a Key Vault failure to ErrVaultUnavailable (secrets' sentinels carry no SDK text).
func vaultError(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrVaultUnavailable, err)
}

// MapError maps the service's sentinels to problems (nil for errors it does not know).
func MapError(err error) *problem.Problem {
	var se *SettingsError
	var ie *InputError
	switch {
	case errors.Is(err, ErrSecretInSettings) && errors.As(err, &se):
		return problem.Newf(http.StatusBadRequest, "secret-in-settings",
			"%s %s. Settings are stored and shown as they are: send the credential in the secret member, which goes to Key Vault only.",
			se.Path, se.Detail).WithFields(problem.FieldError{Field: se.Path, Detail: se.Detail})
	case errors.Is(err, ErrInvalidSettings) && errors.As(err, &se):
		return problem.Newf(http.StatusBadRequest, "invalid-settings", "%s %s.", se.Path, se.Detail).
			WithFields(problem.FieldError{Field: se.Path, Detail: se.Detail})
	case errors.As(err, &ie):
		return problem.Newf(http.StatusBadRequest, "invalid-input", "%s %s.", ie.Field, ie.Detail).
			WithFields(problem.FieldError{Field: ie.Field, Detail: ie.Detail})
	case errors.Is(err, ErrUnknownType):
		return problem.New(http.StatusBadRequest, "unknown-connector-type", "No connector of this type; the types are listed at GET /api/integrations/types.").
			WithFields(problem.FieldError{Field: "type", Detail: "unknown connector type"})
	case errors.Is(err, ErrNotFound):
		return problem.New(http.StatusNotFound, "not-found", "No connection with this id.")
	case errors.Is(err, ErrDisabled):
		return problem.New(http.StatusConflict, "integration-disabled", "The connection is disabled: enable it (PATCH enabled true) first.")
	case errors.Is(err, ErrVersionMismatch):
		return problem.New(http.StatusPreconditionFailed, "version-mismatch", "If-Match does not name the current version.")
	case errors.Is(err, ErrVaultUnavailable), errors.Is(err, secrets.ErrUnavailable), errors.Is(err, secrets.ErrThrottled):
		return problem.New(http.StatusServiceUnavailable, "vault-unavailable", "Key Vault could not be reached; nothing was changed. Try again later.").
			WithHeader("Retry-After", "5")
	}
	return nil
}
