package azure

import "github.com/pulumi/pulumi/sdk/v3/go/pulumi"

// PostgresServerArgs are the inputs of azure-native:dbforpostgresql:Server
// (Azure Database for PostgreSQL flexible server), reached through a private
// endpoint (no VNet injection).
type PostgresServerArgs struct {
	ServerName        string
	ResourceGroupName pulumi.StringInput
	Location          string
	// Version is the major version ("16", "17").
	Version string
	// SkuName is e.g. "Standard_D2ds_v5"; SkuTier "Burstable", "GeneralPurpose"
	// or "MemoryOptimized".
	SkuName       string
	SkuTier       string
	StorageSizeGB int
	// EntraAuth and PasswordAuth select the authentication methods.
	EntraAuth    bool
	PasswordAuth bool
	TenantID     string
	// PublicNetworkAccess is "Enabled" or "Disabled".
	PublicNetworkAccess string
	// HighAvailability is "Disabled", "SameZone" or "ZoneRedundant".
	HighAvailability    string
	BackupRetentionDays int
	GeoRedundantBackup  bool
	Tags                Tags
}

// PostgresServer is a flexible server with its host name.
type PostgresServer struct {
	pulumi.CustomResourceState
	Name                     pulumi.StringOutput `pulumi:"name"`
	FullyQualifiedDomainName pulumi.StringOutput `pulumi:"fullyQualifiedDomainName"`
}

func enabled(b bool) string {
	if b {
		return "Enabled"
	}
	return "Disabled"
}

// NewPostgresServer registers a PostgreSQL flexible server. Its data is
// encrypted at rest with a service-managed key.
func NewPostgresServer(ctx *pulumi.Context, name string, a PostgresServerArgs, opts ...pulumi.ResourceOption) (*PostgresServer, error) {
	r := &PostgresServer{}
	p := obj{}.str("serverName", a.ServerName).in("resourceGroupName", a.ResourceGroupName).
		str("location", a.Location).str("version", a.Version).str("createMode", "Create").
		sub("sku", obj{}.str("name", a.SkuName).str("tier", a.SkuTier)).
		sub("storage", obj{}.num("storageSizeGB", a.StorageSizeGB).str("autoGrow", "Enabled")).
		sub("authConfig", obj{}.str("activeDirectoryAuth", enabled(a.EntraAuth)).
			str("passwordAuth", enabled(a.PasswordAuth)).str("tenantId", a.TenantID)).
		sub("network", obj{}.str("publicNetworkAccess", a.PublicNetworkAccess)).
		sub("highAvailability", obj{}.str("mode", a.HighAvailability)).
		sub("backup", obj{}.num("backupRetentionDays", a.BackupRetentionDays).
			str("geoRedundantBackup", enabled(a.GeoRedundantBackup))).
		sub("dataEncryption", obj{}.str("type", "SystemAssigned")).tags(a.Tags)
	return r, register(ctx, "azure-native:dbforpostgresql:Server", name, p, r, opts)
}

// PostgresAdminArgs are the inputs of
// azure-native:dbforpostgresql:AdministratorsMicrosoftEntra.
type PostgresAdminArgs struct {
	ServerName        pulumi.StringInput
	ResourceGroupName pulumi.StringInput
	Admin             EntraAdmin
}

// NewPostgresAdmin registers a flexible server's Microsoft Entra administrator.
func NewPostgresAdmin(ctx *pulumi.Context, name string, a PostgresAdminArgs, opts ...pulumi.ResourceOption) (*Resource, error) {
	r := &Resource{}
	p := obj{}.in("serverName", a.ServerName).in("resourceGroupName", a.ResourceGroupName).
		str("objectId", a.Admin.ObjectID).str("principalName", a.Admin.Login).
		str("principalType", a.Admin.PrincipalType).str("tenantId", a.Admin.TenantID)
	return r, register(ctx, "azure-native:dbforpostgresql:AdministratorsMicrosoftEntra", name, p, r, opts)
}

// PostgresDatabaseArgs are the inputs of azure-native:dbforpostgresql:Database.
type PostgresDatabaseArgs struct {
	DatabaseName      string
	ServerName        pulumi.StringInput
	ResourceGroupName pulumi.StringInput
}

// NewPostgresDatabase registers a database (UTF8, en_US.utf8).
func NewPostgresDatabase(ctx *pulumi.Context, name string, a PostgresDatabaseArgs, opts ...pulumi.ResourceOption) (*Resource, error) {
	r := &Resource{}
	p := obj{}.str("databaseName", a.DatabaseName).in("serverName", a.ServerName).
		in("resourceGroupName", a.ResourceGroupName).str("charset", "UTF8").str("collation", "en_US.utf8")
	return r, register(ctx, "azure-native:dbforpostgresql:Database", name, p, r, opts)
}

// PostgresConfigurationArgs are the inputs of
// azure-native:dbforpostgresql:Configuration (one server parameter).
type PostgresConfigurationArgs struct {
	ConfigurationName string
	Value             string
	ServerName        pulumi.StringInput
	ResourceGroupName pulumi.StringInput
}

// NewPostgresConfiguration registers a server parameter set by the user.
func NewPostgresConfiguration(ctx *pulumi.Context, name string, a PostgresConfigurationArgs, opts ...pulumi.ResourceOption) (*Resource, error) {
	r := &Resource{}
	p := obj{}.str("configurationName", a.ConfigurationName).str("value", a.Value).str("source", "user-override").
		in("serverName", a.ServerName).in("resourceGroupName", a.ResourceGroupName)
	return r, register(ctx, "azure-native:dbforpostgresql:Configuration", name, p, r, opts)
}
