package config

// statements is one engine's SQL for the config store (the engines' sets: pgStatements,
// msStatements; those files hold SQL only). Each field's comment gives its parameters in order
// and the columns it returns. Times are UTC, tenant ids canonical text, JSON documents text.
// Definitions and setting definitions are platform-level (no tenant parameter); overrides and
// settings name their tenant first and row-level security checks it again.
type statements struct {
	// definitions: → definitionColumns of every flag, by key.
	definitions string
	// definition: key → definitionColumns.
	definition string
	// lockDefinition: key → definitionColumns, locking the row until the transaction ends.
	lockDefinition string
	// insertDefinition: key, type, definition JSON, tenant overridable, version, updated at, updated by.
	insertDefinition string
	// updateDefinition: key, type, definition JSON, tenant overridable, version, updated at, updated by.
	updateDefinition string
	// deleteDefinition: key. The foreign key's cascade deletes the key's overrides of every tenant.
	deleteDefinition string
	// generation: → the platform definitions' generation.
	generation string
	// bumpGeneration: → the generation after adding one.
	bumpGeneration string

	// overrides: tenant → overrideColumns of the tenant's overrides, by key.
	overrides string
	// lockOverride: tenant, key → overrideColumns, locking the row.
	lockOverride string
	// insertOverride: tenant, key, variant (nullable), disabled, set by platform, version, updated
	// at, updated by. A foreign key violation when the key has no definition.
	insertOverride string
	// updateOverride: tenant, key, variant (nullable), disabled, set by platform, version, updated
	// at, updated by.
	updateOverride string
	// deleteOverride: tenant, key.
	deleteOverride string

	// settingDefinitions: → settingDefinitionColumns of every setting, by key.
	settingDefinitions string
	// settingDefinition: key → settingDefinitionColumns (any scope).
	settingDefinition string
	// lockSettingDefinition: key → settingDefinitionColumns, locking the row (platform scope:
	// PostgreSQL applies the UPDATE policy to a locking read).
	lockSettingDefinition string
	// upsertSettingDefinition: key, type, default JSON, tenant writable, version, updated at,
	// updated by. A type
	// change while a tenant holds a value is a foreign key violation (settings_definition_fkey).
	upsertSettingDefinition string
	// settings: tenant → settingColumns of the tenant's values, by key.
	settings string
	// setting: tenant, key → settingColumns.
	setting string
	// lockSetting: tenant, key → settingColumns, locking the row.
	lockSetting string
	// upsertSetting: tenant, key, value JSON, version, updated at, updated by, type (the
	// definition's, as read in the transaction: a foreign key violation when it changed since),
	// set by platform.
	upsertSetting string
}

// definitionColumns: key, type, definition JSON, tenant overridable, version, updated at, updated by.
// overrideColumns: key, variant (nullable), disabled, set by platform, version, updated at, updated by.
// settingDefinitionColumns: key, type, default JSON, tenant writable, version, updated at, updated by.
// settingColumns: key, value JSON, set by platform, version, updated at, updated by.
