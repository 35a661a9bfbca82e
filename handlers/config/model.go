package config

import (
	"encoding/json"
	"time"

	"spine/shared/flags"
)

// service is the service's name: its database, topic and cache keys.
const service = "config"

// FlagDefinition is a flag's platform definition as stored: the evaluator's Definition and the
// row's version (the ETag), when and by whom it was last written.
type FlagDefinition struct {
	flags.Definition
	Version   int64
	UpdatedAt time.Time
	UpdatedBy string
}

// FlagOverride is one tenant's override of a flag.
type FlagOverride struct {
	FlagKey string
	flags.Override
	Version   int64
	UpdatedAt time.Time
	UpdatedBy string
}

// SettingDefinition is a setting key's platform definition: its type and platform default value.
type SettingDefinition struct {
	Key       string
	Type      flags.Type
	Default   json.RawMessage
	Version   int64
	UpdatedAt time.Time
	UpdatedBy string
}

// Setting is a tenant's value of a setting.
type Setting struct {
	Key       string
	Value     json.RawMessage
	Version   int64
	UpdatedAt time.Time
	UpdatedBy string
}
