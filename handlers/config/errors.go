package config

import "errors"

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
	// ErrVersionMismatch: If-Match named another version.
	ErrVersionMismatch = errors.New("config: version mismatch")
)
