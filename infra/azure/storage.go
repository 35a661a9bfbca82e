package azure

import "github.com/pulumi/pulumi/sdk/v3/go/pulumi"

// StorageAccountArgs are the inputs of azure-native:storage:StorageAccount.
// Kind is always StorageV2 and secure transfer is always required; the other
// security settings are explicit fields so that the caller states them.
type StorageAccountArgs struct {
	AccountName       string
	ResourceGroupName pulumi.StringInput
	Location          string
	SkuName           string
	AccessTier        string
	// MinimumTLSVersion is "TLS1_2" or "TLS1_3".
	MinimumTLSVersion            string
	AllowBlobPublicAccess        bool
	AllowSharedKeyAccess         bool
	DefaultToOAuthAuthentication bool
	AllowCrossTenantReplication  bool
	// PublicNetworkAccess is "Enabled" or "Disabled".
	PublicNetworkAccess string
	// NetworkDefaultAction is the firewall's default action, "Deny" or "Allow".
	NetworkDefaultAction string
	// RequireInfrastructureEncryption adds a second, infrastructure-level layer
	// of encryption at rest (it can only be chosen when the account is created).
	RequireInfrastructureEncryption bool
	Tags                            Tags
}

// StorageAccount is a storage account with its service endpoints.
type StorageAccount struct {
	pulumi.CustomResourceState
	Name             pulumi.StringOutput `pulumi:"name"`
	PrimaryEndpoints pulumi.MapOutput    `pulumi:"primaryEndpoints"`
}

// BlobEndpoint is the account's blob service URL ("https://{name}.blob.core.windows.net/").
func (s *StorageAccount) BlobEndpoint() pulumi.StringOutput {
	return stringField(s.PrimaryEndpoints, "blob")
}

// TableEndpoint is the account's table service URL.
func (s *StorageAccount) TableEndpoint() pulumi.StringOutput {
	return stringField(s.PrimaryEndpoints, "table")
}

// NewStorageAccount registers a StorageV2 account whose blob and table services
// are encrypted with the account's Microsoft-managed key.
func NewStorageAccount(ctx *pulumi.Context, name string, a StorageAccountArgs, opts ...pulumi.ResourceOption) (*StorageAccount, error) {
	r := &StorageAccount{}
	service := func() obj { return obj{}.flag("enabled", true).str("keyType", "Account") }
	encryption := obj{}.str("keySource", "Microsoft.Storage").
		flag("requireInfrastructureEncryption", a.RequireInfrastructureEncryption).
		sub("services", obj{}.sub("blob", service()).sub("table", service()).sub("queue", service()).sub("file", service()))
	p := obj{}.str("accountName", a.AccountName).in("resourceGroupName", a.ResourceGroupName).
		str("location", a.Location).str("kind", "StorageV2").sub("sku", obj{}.str("name", a.SkuName)).
		str("accessTier", a.AccessTier).str("minimumTlsVersion", a.MinimumTLSVersion).
		flag("enableHttpsTrafficOnly", true).
		flag("allowBlobPublicAccess", a.AllowBlobPublicAccess).
		flag("allowSharedKeyAccess", a.AllowSharedKeyAccess).
		flag("defaultToOAuthAuthentication", a.DefaultToOAuthAuthentication).
		flag("allowCrossTenantReplication", a.AllowCrossTenantReplication).
		str("publicNetworkAccess", a.PublicNetworkAccess).
		sub("networkRuleSet", obj{}.str("defaultAction", a.NetworkDefaultAction).str("bypass", "None")).
		sub("encryption", encryption).tags(a.Tags)
	return r, register(ctx, "azure-native:storage:StorageAccount", name, p, r, opts)
}

// BlobServicePropertiesArgs are the inputs of azure-native:storage:BlobServiceProperties
// (the account's single "default" blob service).
type BlobServicePropertiesArgs struct {
	AccountName       pulumi.StringInput
	ResourceGroupName pulumi.StringInput
	Versioning        bool
	// BlobSoftDeleteDays and ContainerSoftDeleteDays enable soft delete when > 0.
	BlobSoftDeleteDays      int
	ContainerSoftDeleteDays int
	ChangeFeed              bool
}

// NewBlobServiceProperties registers the blob service settings of an account.
func NewBlobServiceProperties(ctx *pulumi.Context, name string, a BlobServicePropertiesArgs, opts ...pulumi.ResourceOption) (*Resource, error) {
	r := &Resource{}
	retention := func(days int) obj {
		return obj{}.flag("enabled", days > 0).num("days", days)
	}
	p := obj{}.in("accountName", a.AccountName).in("resourceGroupName", a.ResourceGroupName).
		str("blobServicesName", "default").flag("isVersioningEnabled", a.Versioning).
		sub("deleteRetentionPolicy", retention(a.BlobSoftDeleteDays)).
		sub("containerDeleteRetentionPolicy", retention(a.ContainerSoftDeleteDays)).
		sub("changeFeed", obj{}.flag("enabled", a.ChangeFeed))
	return r, register(ctx, "azure-native:storage:BlobServiceProperties", name, p, r, opts)
}

// BlobContainerArgs are the inputs of azure-native:storage:BlobContainer.
// Containers are always private (publicAccess "None").
type BlobContainerArgs struct {
	ContainerName     string
	AccountName       pulumi.StringInput
	ResourceGroupName pulumi.StringInput
	// VersionLevelImmutability enables version-level WORM support on the
	// container (requires blob versioning on the account).
	VersionLevelImmutability bool
	Metadata                 map[string]string
}

// NewBlobContainer registers a private blob container.
func NewBlobContainer(ctx *pulumi.Context, name string, a BlobContainerArgs, opts ...pulumi.ResourceOption) (*Resource, error) {
	r := &Resource{}
	p := obj{}.str("containerName", a.ContainerName).in("accountName", a.AccountName).
		in("resourceGroupName", a.ResourceGroupName).str("publicAccess", "None")
	if a.VersionLevelImmutability {
		p.sub("immutableStorageWithVersioning", obj{}.flag("enabled", true))
	}
	if len(a.Metadata) > 0 {
		p["metadata"] = Tags(a.Metadata).input()
	}
	return r, register(ctx, "azure-native:storage:BlobContainer", name, p, r, opts)
}

// ImmutabilityPolicyArgs are the inputs of
// azure-native:storage:BlobContainerImmutabilityPolicy: a container's default
// time-based retention policy. A policy is created unlocked; locking is a
// separate, irreversible action (see NewImmutabilityPolicyLock).
type ImmutabilityPolicyArgs struct {
	AccountName                   pulumi.StringInput
	ContainerName                 pulumi.StringInput
	ResourceGroupName             pulumi.StringInput
	PeriodSinceCreationInDays     int
	AllowProtectedAppendWrites    bool
	AllowProtectedAppendWritesAll bool
}

// ImmutabilityPolicy is a container's time-based retention policy; Etag is
// needed to lock or extend it.
type ImmutabilityPolicy struct {
	pulumi.CustomResourceState
	Name pulumi.StringOutput `pulumi:"name"`
	Etag pulumi.StringOutput `pulumi:"etag"`
}

// NewImmutabilityPolicy registers a container's default time-based retention policy.
func NewImmutabilityPolicy(ctx *pulumi.Context, name string, a ImmutabilityPolicyArgs, opts ...pulumi.ResourceOption) (*ImmutabilityPolicy, error) {
	r := &ImmutabilityPolicy{}
	p := obj{}.in("accountName", a.AccountName).in("containerName", a.ContainerName).
		in("resourceGroupName", a.ResourceGroupName).str("immutabilityPolicyName", "default").
		num("immutabilityPeriodSinceCreationInDays", a.PeriodSinceCreationInDays).
		flag("allowProtectedAppendWrites", a.AllowProtectedAppendWrites).
		flag("allowProtectedAppendWritesAll", a.AllowProtectedAppendWritesAll)
	return r, register(ctx, "azure-native:storage:BlobContainerImmutabilityPolicy", name, p, r, opts)
}

// LifecycleRule is one rule of a storage account's lifecycle management policy,
// applying to block blobs under the given prefixes ("container/" or
// "container/path"). A zero day count leaves that action out.
type LifecycleRule struct {
	Name     string
	Prefixes []string
	// Base blob actions, by days since last modification.
	TierToCoolAfterDays    int
	TierToColdAfterDays    int
	TierToArchiveAfterDays int
	DeleteAfterDays        int
	// DeletePreviousVersionsAfterDays deletes previous versions (and snapshots)
	// this many days after they were created.
	DeletePreviousVersionsAfterDays int
}

func (l LifecycleRule) input() pulumi.Map {
	modified := func(days int) obj { return obj{}.num("daysAfterModificationGreaterThan", days) }
	created := func(days int) obj { return obj{}.num("daysAfterCreationGreaterThan", days) }
	base := obj{}
	if l.TierToCoolAfterDays > 0 {
		base.sub("tierToCool", modified(l.TierToCoolAfterDays))
	}
	if l.TierToColdAfterDays > 0 {
		base.sub("tierToCold", modified(l.TierToColdAfterDays))
	}
	if l.TierToArchiveAfterDays > 0 {
		base.sub("tierToArchive", modified(l.TierToArchiveAfterDays))
	}
	if l.DeleteAfterDays > 0 {
		base.sub("delete", modified(l.DeleteAfterDays))
	}
	actions := obj{}.sub("baseBlob", base)
	if l.DeletePreviousVersionsAfterDays > 0 {
		actions.sub("version", obj{}.sub("delete", created(l.DeletePreviousVersionsAfterDays)))
		actions.sub("snapshot", obj{}.sub("delete", created(l.DeletePreviousVersionsAfterDays)))
	}
	definition := obj{}.sub("filters", obj{}.strs("blobTypes", []string{"blockBlob"}).strs("prefixMatch", l.Prefixes)).
		sub("actions", actions)
	return pulumi.Map(obj{}.str("name", l.Name).flag("enabled", true).str("type", "Lifecycle").sub("definition", definition))
}

// ManagementPolicyArgs are the inputs of azure-native:storage:ManagementPolicy
// (the account's single "default" lifecycle management policy).
type ManagementPolicyArgs struct {
	AccountName       pulumi.StringInput
	ResourceGroupName pulumi.StringInput
	Rules             []LifecycleRule
}

// NewManagementPolicy registers an account's lifecycle management policy.
func NewManagementPolicy(ctx *pulumi.Context, name string, a ManagementPolicyArgs, opts ...pulumi.ResourceOption) (*Resource, error) {
	r := &Resource{}
	rules := pulumi.Array{}
	for _, rule := range a.Rules {
		rules = append(rules, rule.input())
	}
	p := obj{}.in("accountName", a.AccountName).in("resourceGroupName", a.ResourceGroupName).
		str("managementPolicyName", "default").sub("policy", obj{}.list("rules", rules))
	return r, register(ctx, "azure-native:storage:ManagementPolicy", name, p, r, opts)
}

// TableArgs are the inputs of azure-native:storage:Table.
type TableArgs struct {
	TableName         string
	AccountName       pulumi.StringInput
	ResourceGroupName pulumi.StringInput
}

// NewTable registers a Table Storage table.
func NewTable(ctx *pulumi.Context, name string, a TableArgs, opts ...pulumi.ResourceOption) (*Resource, error) {
	r := &Resource{}
	p := obj{}.str("tableName", a.TableName).in("accountName", a.AccountName).in("resourceGroupName", a.ResourceGroupName)
	return r, register(ctx, "azure-native:storage:Table", name, p, r, opts)
}
