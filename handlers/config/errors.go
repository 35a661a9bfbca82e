package config

import (
	"errors"
	"fmt"
	"net/http"

	"spine/shared/flags"
	"spine/shared/problem"
)

// The config service's sentinels; MapError maps them to problem+json once, at the edge.
var (
	// ErrFlagNotFound: no flag definition with the key.
	ErrFlagNotFound = errors.New("config: flag not found")
	// ErrOverrideNotFound: the tenant has no override of the flag.
	ErrOverrideNotFound = errors.New("config: override not found")
	// ErrSettingNotFound: no setting definition with the key.
	ErrSettingNotFound = errors.New("config: setting not found")
	// ErrInvalidFlag: the definition or override does not validate (shared/flags says why).
	ErrInvalidFlag = errors.New("config: invalid flag")
	// ErrInvalidSetting: a setting value that is not of its definition's type.
	ErrInvalidSetting = errors.New("config: invalid setting")
	// ErrSettingTypeInUse: a setting definition's type change while tenants hold values of the
	// old type (they would no longer be of the setting's type).
	ErrSettingTypeInUse = errors.New("config: setting type in use")
	// ErrVersionMismatch: If-Match named another version.
	ErrVersionMismatch = errors.New("config: version mismatch")
	// ErrOverrideNotAllowed: a tenant's caller writing or deleting the tenant's override (a pinned
	// variant or its kill switch) of a flag whose definition is not tenantOverridable.
	ErrOverrideNotAllowed = errors.New("config: override not allowed")
	// ErrSettingNotWritable: a tenant's caller writing the tenant's value of a setting whose
	// definition is not tenantWritable.
	ErrSettingNotWritable = errors.New("config: setting not writable")
	// ErrOverrideSetByPlatform: a tenant's caller replacing or deleting an override a platform
	// admin wrote (a value the platform forced on the tenant).
	ErrOverrideSetByPlatform = errors.New("config: override set by platform")
	// ErrSettingSetByPlatform: a tenant's caller replacing a setting value a platform admin wrote.
	ErrSettingSetByPlatform = errors.New("config: setting set by platform")
)

// invalidSetting is ErrInvalidSetting for member field of a setting body.
func invalidSetting(field, detail string) error {
	return fmt.Errorf("%w: %w", ErrInvalidSetting, &InputError{field, detail})
}

// MapError maps the service's sentinels to problems (nil for errors it does not know).
func MapError(err error) *problem.Problem {
	var ie *InputError
	var fe *flags.FieldError
	switch {
	case errors.Is(err, ErrInvalidSetting) && errors.As(err, &ie):
		return problem.Newf(http.StatusBadRequest, "invalid-setting", "%s %s.", ie.Field, ie.Detail).
			WithFields(problem.FieldError{Field: ie.Field, Detail: ie.Detail})
	case errors.As(err, &ie):
		return problem.Newf(http.StatusBadRequest, "invalid-input", "%s %s.", ie.Field, ie.Detail).
			WithFields(problem.FieldError{Field: ie.Field, Detail: ie.Detail})
	case errors.Is(err, ErrFlagNotFound):
		return problem.New(http.StatusNotFound, "flag-not-found", "No feature flag with this key.")
	case errors.Is(err, ErrOverrideNotFound):
		return problem.New(http.StatusNotFound, "override-not-found", "The tenant has no override of this flag.")
	case errors.Is(err, ErrSettingNotFound):
		return problem.New(http.StatusNotFound, "setting-not-found", "No setting with this key.")
	case errors.Is(err, ErrInvalidFlag) && errors.As(err, &fe):
		return problem.Newf(http.StatusBadRequest, "invalid-flag", "%s %s.", fe.Field, fe.Detail).
			WithFields(problem.FieldError{Field: fe.Field, Detail: fe.Detail})
	case errors.Is(err, ErrInvalidFlag):
		return problem.New(http.StatusBadRequest, "invalid-flag", problem.Detail(err, ErrInvalidFlag))
	case errors.Is(err, ErrInvalidSetting):
		return problem.New(http.StatusBadRequest, "invalid-setting", problem.Detail(err, ErrInvalidSetting))
	case errors.Is(err, ErrSettingTypeInUse):
		return problem.New(http.StatusConflict, "setting-type-in-use",
			"Tenants hold values of this setting's current type: its type cannot change while they exist.")
	case errors.Is(err, ErrOverrideNotAllowed):
		return problem.New(http.StatusForbidden, "override-not-allowed",
			"This flag is not tenant-overridable: only a platform admin may change its overrides.")
	case errors.Is(err, ErrSettingNotWritable):
		return problem.New(http.StatusForbidden, "setting-not-writable",
			"This setting is not tenant-writable: only a platform admin may change a tenant's value.")
	case errors.Is(err, ErrOverrideSetByPlatform):
		return problem.New(http.StatusForbidden, "override-set-by-platform",
			"A platform admin set this override: only a platform admin may change or remove it.")
	case errors.Is(err, ErrSettingSetByPlatform):
		return problem.New(http.StatusForbidden, "setting-set-by-platform",
			"A platform admin set this value: only a platform admin may change it.")
	case errors.Is(err, ErrVersionMismatch):
		return problem.New(http.StatusPreconditionFailed, "version-mismatch", "If-Match does not name the current version.")
	}
	return nil
}
