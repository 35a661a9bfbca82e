package azure

import "github.com/pulumi/pulumi/sdk/v3/go/pulumi"

// EntraAdmin is the Microsoft Entra principal that administers a database server.
type EntraAdmin struct {
	// Login is the principal's display name (the name it logs in with).
	Login    string
	ObjectID string
	TenantID string
	// PrincipalType is "User", "Group" or "Application" (SQL) /
	// "User", "Group" or "ServicePrincipal" (PostgreSQL).
	PrincipalType string
}

// SQLServerArgs are the inputs of azure-native:sql:Server (an Azure SQL logical
// server) with a Microsoft Entra administrator. With EntraOnlyAuth there is no
// SQL login and no password.
type SQLServerArgs struct {
	ServerName        string
	ResourceGroupName pulumi.StringInput
	Location          string
	Admin             EntraAdmin
	EntraOnlyAuth     bool
	// MinimalTLSVersion is "1.2" or "1.3".
	MinimalTLSVersion string
	// PublicNetworkAccess is "Enabled" or "Disabled".
	PublicNetworkAccess string
	Tags                Tags
}

// SQLServer is a logical server with its host name.
type SQLServer struct {
	pulumi.CustomResourceState
	Name                     pulumi.StringOutput `pulumi:"name"`
	FullyQualifiedDomainName pulumi.StringOutput `pulumi:"fullyQualifiedDomainName"`
}

// NewSQLServer registers an Azure SQL logical server.
func NewSQLServer(ctx *pulumi.Context, name string, a SQLServerArgs, opts ...pulumi.ResourceOption) (*SQLServer, error) {
	r := &SQLServer{}
	admin := obj{}.str("administratorType", "ActiveDirectory").flag("azureADOnlyAuthentication", a.EntraOnlyAuth).
		str("login", a.Admin.Login).str("sid", a.Admin.ObjectID).str("tenantId", a.Admin.TenantID).
		str("principalType", a.Admin.PrincipalType)
	p := obj{}.str("serverName", a.ServerName).in("resourceGroupName", a.ResourceGroupName).
		str("location", a.Location).str("version", "12.0").sub("administrators", admin).
		str("minimalTlsVersion", a.MinimalTLSVersion).str("publicNetworkAccess", a.PublicNetworkAccess).tags(a.Tags)
	return r, register(ctx, "azure-native:sql:Server", name, p, r, opts)
}

// SQLSku is an Azure SQL database or elastic pool SKU.
type SQLSku struct {
	Name     string `json:"name"`
	Tier     string `json:"tier"`
	Family   string `json:"family,omitempty"`
	Capacity int    `json:"capacity,omitempty"`
}

func (s SQLSku) input() obj {
	return obj{}.str("name", s.Name).str("tier", s.Tier).str("family", s.Family).num("capacity", s.Capacity)
}

// ElasticPoolArgs are the inputs of azure-native:sql:ElasticPool.
type ElasticPoolArgs struct {
	ElasticPoolName   string
	ServerName        pulumi.StringInput
	ResourceGroupName pulumi.StringInput
	Location          string
	Sku               SQLSku
	// PerDatabaseMinCapacity and PerDatabaseMaxCapacity bound each database's
	// share of the pool (vCores).
	PerDatabaseMinCapacity float64
	PerDatabaseMaxCapacity float64
	ZoneRedundant          bool
	Tags                   Tags
}

// NewElasticPool registers an elastic pool.
func NewElasticPool(ctx *pulumi.Context, name string, a ElasticPoolArgs, opts ...pulumi.ResourceOption) (*Resource, error) {
	r := &Resource{}
	per := obj{}.in("minCapacity", pulumi.Float64(a.PerDatabaseMinCapacity)).in("maxCapacity", pulumi.Float64(a.PerDatabaseMaxCapacity))
	p := obj{}.str("elasticPoolName", a.ElasticPoolName).in("serverName", a.ServerName).
		in("resourceGroupName", a.ResourceGroupName).str("location", a.Location).sub("sku", a.Sku.input()).
		sub("perDatabaseSettings", per).flag("zoneRedundant", a.ZoneRedundant).tags(a.Tags)
	return r, register(ctx, "azure-native:sql:ElasticPool", name, p, r, opts)
}

// SQLDatabaseArgs are the inputs of azure-native:sql:Database. A database is
// either in ElasticPoolID's pool or sized by Sku.
type SQLDatabaseArgs struct {
	DatabaseName      string
	ServerName        pulumi.StringInput
	ResourceGroupName pulumi.StringInput
	Location          string
	ElasticPoolID     pulumi.StringInput
	Sku               SQLSku
	// BackupStorageRedundancy is "Local", "Zone", "Geo" or "GeoZone".
	BackupStorageRedundancy string
	ZoneRedundant           bool
	Tags                    Tags
}

// NewSQLDatabase registers an Azure SQL database.
func NewSQLDatabase(ctx *pulumi.Context, name string, a SQLDatabaseArgs, opts ...pulumi.ResourceOption) (*Resource, error) {
	r := &Resource{}
	p := obj{}.str("databaseName", a.DatabaseName).in("serverName", a.ServerName).
		in("resourceGroupName", a.ResourceGroupName).str("location", a.Location).
		str("requestedBackupStorageRedundancy", a.BackupStorageRedundancy).
		flag("zoneRedundant", a.ZoneRedundant).tags(a.Tags)
	if a.ElasticPoolID != nil {
		p.in("elasticPoolId", a.ElasticPoolID)
	} else {
		p.sub("sku", a.Sku.input())
	}
	return r, register(ctx, "azure-native:sql:Database", name, p, r, opts)
}

// TransparentDataEncryptionArgs are the inputs of
// azure-native:sql:TransparentDataEncryption (a database's "current" TDE setting).
type TransparentDataEncryptionArgs struct {
	DatabaseName      pulumi.StringInput
	ServerName        pulumi.StringInput
	ResourceGroupName pulumi.StringInput
	Enabled           bool
}

// NewTransparentDataEncryption registers a database's encryption-at-rest setting.
func NewTransparentDataEncryption(ctx *pulumi.Context, name string, a TransparentDataEncryptionArgs, opts ...pulumi.ResourceOption) (*Resource, error) {
	r := &Resource{}
	state := "Disabled"
	if a.Enabled {
		state = "Enabled"
	}
	p := obj{}.in("databaseName", a.DatabaseName).in("serverName", a.ServerName).
		in("resourceGroupName", a.ResourceGroupName).str("tdeName", "current").str("state", state)
	return r, register(ctx, "azure-native:sql:TransparentDataEncryption", name, p, r, opts)
}
