package config

const (
	msDefinitionCols        = `flag_key, flag_type, definition, tenant_overridable, version, updated_at, updated_by`
	msOverrideCols          = `flag_key, variant, disabled, set_by_platform, version, updated_at, updated_by`
	msSettingDefinitionCols = `setting_key, setting_type, default_value, tenant_writable, version, updated_at, updated_by`
	msSettingCols           = `setting_key, value, set_by_platform, version, updated_at, updated_by`
)

// msStatements is the whole of what the config service asks of SQL Server (keys are binary
// collated: ORDER BY is byte order, as PostgreSQL's COLLATE "C").
var msStatements = statements{
	definitions:    `SELECT ` + msDefinitionCols + ` FROM dbo.flag_definitions ORDER BY flag_key`,
	definition:     `SELECT ` + msDefinitionCols + ` FROM dbo.flag_definitions WHERE flag_key = @p1`,
	lockDefinition: `SELECT ` + msDefinitionCols + ` FROM dbo.flag_definitions WITH (UPDLOCK, HOLDLOCK) WHERE flag_key = @p1`,
	insertDefinition: `INSERT INTO dbo.flag_definitions (flag_key, flag_type, definition, tenant_overridable, version, updated_at, updated_by)
		VALUES (@p1, @p2, @p3, @p4, @p5, @p6, @p7)`,
	updateDefinition: `UPDATE dbo.flag_definitions SET flag_type = @p2, definition = @p3, tenant_overridable = @p4, version = @p5,
		updated_at = @p6, updated_by = @p7 WHERE flag_key = @p1`,
	deleteDefinition: `DELETE FROM dbo.flag_definitions WHERE flag_key = @p1`,
	generation:       `SELECT generation FROM dbo.flag_generation WHERE id = 1`,
	bumpGeneration:   `UPDATE dbo.flag_generation SET generation = generation + 1 OUTPUT inserted.generation WHERE id = 1`,

	overrides:    `SELECT ` + msOverrideCols + ` FROM dbo.flag_overrides WHERE tenant_id = @p1 ORDER BY flag_key`,
	lockOverride: `SELECT ` + msOverrideCols + ` FROM dbo.flag_overrides WITH (UPDLOCK, HOLDLOCK) WHERE tenant_id = @p1 AND flag_key = @p2`,
	insertOverride: `INSERT INTO dbo.flag_overrides (tenant_id, flag_key, variant, disabled, set_by_platform, version, updated_at, updated_by)
		VALUES (@p1, @p2, @p3, @p4, @p5, @p6, @p7, @p8)`,
	updateOverride: `UPDATE dbo.flag_overrides SET variant = @p3, disabled = @p4, set_by_platform = @p5, version = @p6, updated_at = @p7,
		updated_by = @p8 WHERE tenant_id = @p1 AND flag_key = @p2`,
	deleteOverride: `DELETE FROM dbo.flag_overrides WHERE tenant_id = @p1 AND flag_key = @p2`,

	settingDefinitions:    `SELECT ` + msSettingDefinitionCols + ` FROM dbo.setting_definitions ORDER BY setting_key`,
	settingDefinition:     `SELECT ` + msSettingDefinitionCols + ` FROM dbo.setting_definitions WHERE setting_key = @p1`,
	lockSettingDefinition: `SELECT ` + msSettingDefinitionCols + ` FROM dbo.setting_definitions WITH (UPDLOCK, HOLDLOCK) WHERE setting_key = @p1`,
	// The type is set only when it changes: a row whose referenced key is rewritten to itself
	// must not be held to the foreign key.
	upsertSettingDefinition: `IF EXISTS (SELECT 1 FROM dbo.setting_definitions WITH (UPDLOCK, HOLDLOCK) WHERE setting_key = @p1)
		BEGIN
			UPDATE dbo.setting_definitions SET default_value = @p3, tenant_writable = @p4, version = @p5, updated_at = @p6,
				updated_by = @p7 WHERE setting_key = @p1;
			UPDATE dbo.setting_definitions SET setting_type = @p2 WHERE setting_key = @p1 AND setting_type <> @p2;
		END
		ELSE
			INSERT INTO dbo.setting_definitions (setting_key, setting_type, default_value, tenant_writable, version, updated_at, updated_by)
			VALUES (@p1, @p2, @p3, @p4, @p5, @p6, @p7);`,
	settings:    `SELECT ` + msSettingCols + ` FROM dbo.settings WHERE tenant_id = @p1 ORDER BY setting_key`,
	setting:     `SELECT ` + msSettingCols + ` FROM dbo.settings WHERE tenant_id = @p1 AND setting_key = @p2`,
	lockSetting: `SELECT ` + msSettingCols + ` FROM dbo.settings WITH (UPDLOCK, HOLDLOCK) WHERE tenant_id = @p1 AND setting_key = @p2`,
	upsertSetting: `IF EXISTS (SELECT 1 FROM dbo.settings WITH (UPDLOCK, HOLDLOCK) WHERE tenant_id = @p1 AND setting_key = @p2)
			UPDATE dbo.settings SET value = @p3, version = @p4, updated_at = @p5, updated_by = @p6, setting_type = @p7,
				set_by_platform = @p8 WHERE tenant_id = @p1 AND setting_key = @p2
		ELSE
			INSERT INTO dbo.settings (tenant_id, setting_key, value, version, updated_at, updated_by, setting_type, set_by_platform)
			VALUES (@p1, @p2, @p3, @p4, @p5, @p6, @p7, @p8);`,
}
