package config

import (
	"encoding/json"
	"time"

	"spine/shared/flags"
)

// service is the service's name: its database, topic and cache keys.
const service = "config"

// FlagDefinition is a flag's platform definition as stored: the evaluator's Definition, whether a
// tenant may override it itself, and the row's version (the ETag), when and by whom it was last
// written.
type FlagDefinition struct {
	flags.Definition
	// TenantOverridable: a tenant's own callers may write and delete its override of the flag
	// (platform admins always may), and evaluation applies an override a tenant wrote.
	TenantOverridable bool
	Version           int64
	UpdatedAt         time.Time
	UpdatedBy         string
}

// FlagOverride is one tenant's override of a flag.
type FlagOverride struct {
	FlagKey string
	flags.Override
	// SetByPlatform: a platform admin wrote it; it applies whether or not the flag is
	// TenantOverridable. One a tenant wrote applies only while the flag is.
	SetByPlatform bool
	Version       int64
	UpdatedAt     time.Time
	UpdatedBy     string
}

// SettingDefinition is a setting key's platform definition: its type, platform default value and
// whether tenants may write their own value.
type SettingDefinition struct {
	Key     string
	Type    flags.Type
	Default json.RawMessage
	// TenantWritable: a tenant's own callers may write its value (platform admins always may), and
	// a value a tenant wrote is read back only while it is.
	TenantWritable bool
	Version        int64
	UpdatedAt      time.Time
	UpdatedBy      string
}

// Setting is a tenant's value of a setting.
type Setting struct {
	Key   string
	Value json.RawMessage
	// SetByPlatform: a platform admin wrote it (see SettingDefinition.TenantWritable).
	SetByPlatform bool
	Version       int64
	UpdatedAt     time.Time
	UpdatedBy     string
}
