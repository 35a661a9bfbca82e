package config

const (
	pgDefinitionCols        = `flag_key, flag_type, definition::text, tenant_overridable, version, updated_at, updated_by`
	pgOverrideCols          = `flag_key, variant, disabled, set_by_platform, version, updated_at, updated_by`
	pgSettingDefinitionCols = `setting_key, setting_type, default_value::text, tenant_writable, version, updated_at, updated_by`
	pgSettingCols           = `setting_key, value::text, set_by_platform, version, updated_at, updated_by`
)

// pgStatements is the whole of what the config service asks of PostgreSQL.
var pgStatements = statements{
	definitions:    `SELECT ` + pgDefinitionCols + ` FROM flag_definitions ORDER BY flag_key COLLATE "C"`,
	definition:     `SELECT ` + pgDefinitionCols + ` FROM flag_definitions WHERE flag_key = $1`,
	lockDefinition: `SELECT ` + pgDefinitionCols + ` FROM flag_definitions WHERE flag_key = $1 FOR UPDATE`,
	insertDefinition: `INSERT INTO flag_definitions (flag_key, flag_type, definition, tenant_overridable, version, updated_at, updated_by)
		VALUES ($1, $2, $3::jsonb, $4, $5, $6, $7)`,
	updateDefinition: `UPDATE flag_definitions SET flag_type = $2, definition = $3::jsonb, tenant_overridable = $4, version = $5,
		updated_at = $6, updated_by = $7 WHERE flag_key = $1`,
	deleteDefinition: `DELETE FROM flag_definitions WHERE flag_key = $1`,
	generation:       `SELECT generation FROM flag_generation WHERE id = 1`,
	bumpGeneration:   `UPDATE flag_generation SET generation = generation + 1 WHERE id = 1 RETURNING generation`,

	overrides:    `SELECT ` + pgOverrideCols + ` FROM flag_overrides WHERE tenant_id = $1 ORDER BY flag_key COLLATE "C"`,
	lockOverride: `SELECT ` + pgOverrideCols + ` FROM flag_overrides WHERE tenant_id = $1 AND flag_key = $2 FOR UPDATE`,
	insertOverride: `INSERT INTO flag_overrides (tenant_id, flag_key, variant, disabled, set_by_platform, version, updated_at, updated_by)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
	updateOverride: `UPDATE flag_overrides SET variant = $3, disabled = $4, set_by_platform = $5, version = $6, updated_at = $7, updated_by = $8
		WHERE tenant_id = $1 AND flag_key = $2`,
	deleteOverride: `DELETE FROM flag_overrides WHERE tenant_id = $1 AND flag_key = $2`,

	settingDefinitions:    `SELECT ` + pgSettingDefinitionCols + ` FROM setting_definitions ORDER BY setting_key COLLATE "C"`,
	settingDefinition:     `SELECT ` + pgSettingDefinitionCols + ` FROM setting_definitions WHERE setting_key = $1`,
	lockSettingDefinition: `SELECT ` + pgSettingDefinitionCols + ` FROM setting_definitions WHERE setting_key = $1 FOR UPDATE`,
	upsertSettingDefinition: `INSERT INTO setting_definitions (setting_key, setting_type, default_value, tenant_writable, version, updated_at, updated_by)
		VALUES ($1, $2, $3::jsonb, $4, $5, $6, $7)
		ON CONFLICT (setting_key) DO UPDATE SET setting_type = EXCLUDED.setting_type, default_value = EXCLUDED.default_value,
			tenant_writable = EXCLUDED.tenant_writable, version = EXCLUDED.version, updated_at = EXCLUDED.updated_at, updated_by = EXCLUDED.updated_by`,
	settings:    `SELECT ` + pgSettingCols + ` FROM settings WHERE tenant_id = $1 ORDER BY setting_key COLLATE "C"`,
	setting:     `SELECT ` + pgSettingCols + ` FROM settings WHERE tenant_id = $1 AND setting_key = $2`,
	lockSetting: `SELECT ` + pgSettingCols + ` FROM settings WHERE tenant_id = $1 AND setting_key = $2 FOR UPDATE`,
	upsertSetting: `INSERT INTO settings (tenant_id, setting_key, value, version, updated_at, updated_by, setting_type, set_by_platform)
		VALUES ($1, $2, $3::jsonb, $4, $5, $6, $7, $8)
		ON CONFLICT (tenant_id, setting_key) DO UPDATE SET value = EXCLUDED.value, setting_type = EXCLUDED.setting_type,
			set_by_platform = EXCLUDED.set_by_platform,
			version = EXCLUDED.version, updated_at = EXCLUDED.updated_at, updated_by = EXCLUDED.updated_by`,
}
