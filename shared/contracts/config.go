package contracts

import (
	"encoding/json"
	"time"
)

// Config's events (topic "config"), the configuration service's. Subject: "flag:<key>" for
// FeatureFlagChanged, "setting:<key>" for SettingChanged (so one key's changes stay in order).
// TenantID is absent ("") for a platform-level change (a flag definition, a setting's platform
// default), which is a platform-level event; otherwise the tenant whose override or value changed.
const (
	FeatureFlagChanged = "FeatureFlagChanged"
	SettingChanged     = "SettingChanged"
)

// ConfigEvents are the types the config service publishes.
var ConfigEvents = []string{FeatureFlagChanged, SettingChanged}

// What a FeatureFlagChanged is about (FeatureFlagChangedData.Change).
const (
	FlagDefinitionPut     = "DefinitionPut"
	FlagDefinitionDeleted = "DefinitionDeleted"
	FlagOverridePut       = "OverridePut"
	FlagOverrideDeleted   = "OverrideDeleted"
)

// FeatureFlagChangedData is the data of FeatureFlagChanged: a flag's platform definition or one
// tenant's override of it changed. Consumers that evaluate flags in process refresh from the
// config service; the event carries the change's summary, not the definition.
type FeatureFlagChangedData struct {
	TenantID string `json:"tenantId,omitempty"`
	FlagKey  string `json:"flagKey"`
	// Change is FlagDefinitionPut, FlagDefinitionDeleted, FlagOverridePut or FlagOverrideDeleted.
	Change string `json:"change"`
	// Disabled is the kill switch after the change (the definition's, or the tenant override's).
	Disabled bool `json:"disabled,omitempty"`
	// Variant is the override's pinned variant after an OverridePut, if any.
	Variant   string    `json:"variant,omitempty"`
	Version   int64     `json:"version"`
	ChangedBy Actor     `json:"changedBy"`
	ChangedAt time.Time `json:"changedAt"`
}

// SettingChangedData is the data of SettingChanged: a setting's platform default (TenantID "")
// or one tenant's value changed to Value (JSON of the setting's type).
type SettingChangedData struct {
	TenantID   string          `json:"tenantId,omitempty"`
	SettingKey string          `json:"settingKey"`
	Type       string          `json:"type"`
	Value      json.RawMessage `json:"value"`
	Version    int64           `json:"version"`
	ChangedBy  Actor           `json:"changedBy"`
	ChangedAt  time.Time       `json:"changedAt"`
}
