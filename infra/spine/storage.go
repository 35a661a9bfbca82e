package spine

import (
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"spine/infra/azure"
)

// containerOwners maps each blob container to its owning service and data
// classification (written as container metadata).
var containerOwners = []struct{ name, owner, classification string }{
	{ContainerReports, "reporting", ClassConfidential},
	{ContainerAuditArchive, "audit", ClassRestricted},
	{ContainerNotificationBodies, "notifications", ClassConfidential},
	{ContainerNotificationAttachments, "notifications", ClassConfidential},
	{ContainerNotificationArchive, "notifications", ClassConfidential},
	{ContainerDeployments, OwnerPlatform, ClassInternal},
}

// storage is the storage account with its containers and the maintenance
// ledger table.
type storage struct {
	account    *azure.StorageAccount
	containers map[string]*azure.Resource
	tables     []*azure.Resource // the maintenance ledger's, in Names.MaintenanceTables' order
}

func (d *deployment) storage() (*storage, error) {
	s := &storage{containers: map[string]*azure.Resource{}}
	cfg := d.cfg.Storage
	tags := d.tags(OwnerPlatform, ClassRestricted)
	var err error
	s.account, err = azure.NewStorageAccount(d.ctx, "storage", azure.StorageAccountArgs{
		AccountName: d.names.StorageAccount, ResourceGroupName: d.rgName, Location: d.cfg.Location,
		SkuName: cfg.SkuName, AccessTier: "Hot", MinimumTLSVersion: "TLS1_2",
		AllowBlobPublicAccess: false, AllowSharedKeyAccess: false, DefaultToOAuthAuthentication: true,
		AllowCrossTenantReplication: false, PublicNetworkAccess: "Disabled", NetworkDefaultAction: "Deny",
		RequireInfrastructureEncryption: true, Tags: tags,
	}, d.protect()...)
	if err != nil {
		return nil, err
	}
	account := s.account.Name
	blobService, err := azure.NewBlobServiceProperties(d.ctx, "blob-service", azure.BlobServicePropertiesArgs{
		AccountName: account, ResourceGroupName: d.rgName, Versioning: true,
		BlobSoftDeleteDays: cfg.SoftDeleteDays, ContainerSoftDeleteDays: cfg.SoftDeleteDays,
	})
	if err != nil {
		return nil, err
	}
	// Containers are created after versioning is on: version-level immutability
	// on audit-archive requires it.
	afterService := pulumi.DependsOn([]pulumi.Resource{blobService})
	for _, c := range containerOwners {
		opts := []pulumi.ResourceOption{afterService}
		if c.name == ContainerAuditArchive {
			opts = append(opts, d.protect()...)
		}
		s.containers[c.name], err = azure.NewBlobContainer(d.ctx, "container-"+c.name, azure.BlobContainerArgs{
			ContainerName: c.name, AccountName: account, ResourceGroupName: d.rgName,
			VersionLevelImmutability: c.name == ContainerAuditArchive,
			Metadata:                 map[string]string{"ownerservice": c.owner, "dataclassification": c.classification},
		}, opts...)
		if err != nil {
			return nil, err
		}
	}
	if err := d.auditArchiveImmutability(s); err != nil {
		return nil, err
	}
	_, err = azure.NewManagementPolicy(d.ctx, "lifecycle", azure.ManagementPolicyArgs{
		AccountName: account, ResourceGroupName: d.rgName, Rules: lifecycleRules(cfg),
	}, afterService)
	if err != nil {
		return nil, err
	}
	for _, name := range d.names.MaintenanceTables {
		t, err := azure.NewTable(d.ctx, "table-"+name, azure.TableArgs{
			TableName: name, AccountName: account, ResourceGroupName: d.rgName,
		})
		if err != nil {
			return nil, err
		}
		s.tables = append(s.tables, t)
	}
	for _, group := range []string{GroupBlob, GroupTable} {
		if err := d.privateEndpoint("storage", azure.ID(s.account), group, tags); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// auditArchiveImmutability sets the audit archive's default time-based
// retention policy and, when the stack asks for it, locks it.
func (d *deployment) auditArchiveImmutability(s *storage) error {
	cfg := d.cfg.Storage.AuditArchive
	container := s.containers[ContainerAuditArchive]
	policy, err := azure.NewImmutabilityPolicy(d.ctx, "audit-archive-immutability", azure.ImmutabilityPolicyArgs{
		AccountName: s.account.Name, ContainerName: container.Name, ResourceGroupName: d.rgName,
		PeriodSinceCreationInDays: cfg.ImmutabilityDays,
		// Audit batches are written once as block blobs; no appends.
		AllowProtectedAppendWrites: false, AllowProtectedAppendWritesAll: false,
	}, d.protect()...)
	if err != nil {
		return err
	}
	if !cfg.Locked {
		return nil
	}
	_, err = azure.NewImmutabilityPolicyLock(d.ctx, "audit-archive-immutability-lock", azure.ImmutabilityPolicyLockArgs{
		SubscriptionID: d.client.SubscriptionID, ResourceGroupName: d.rgName,
		AccountName: s.account.Name, ContainerName: container.Name, PolicyEtag: policy.Etag,
	}, pulumi.DependsOn([]pulumi.Resource{policy}), pulumi.Protect(true))
	return err
}

// ReportBackstopGraceDays is how much longer than an artifact's lifetime (reportRetentionDays,
// SPINE_REPORTING_ARTIFACT_TTL) the reports container's lifecycle rule keeps a blob: the daily
// ReportArtifactLifecycle sweep deletes an artifact and marks its run Expired once expiresAt has
// passed; the rule is the backstop for what the sweep missed, and never deletes first (the grace
// covers a missed daily run and the blob being written just before the run's expiresAt is set).
const ReportBackstopGraceDays = 2

// NotificationArchiveColdAfterDays moves notification-archive blobs (written
// once a notification is 90 days old, read rarely) to the cold tier.
const NotificationArchiveColdAfterDays = 30

// lifecycleRules is the storage account's lifecycle management policy.
func lifecycleRules(cfg StorageConfig) []azure.LifecycleRule {
	return []azure.LifecycleRule{
		{
			Name: "reports-expiry", Prefixes: []string{ContainerReports + "/"},
			DeleteAfterDays:                 cfg.ReportRetentionDays + ReportBackstopGraceDays,
			DeletePreviousVersionsAfterDays: cfg.PreviousVersionRetentionDays,
		},
		{
			Name:                            "notifications-tiering",
			Prefixes:                        []string{ContainerNotificationBodies + "/", ContainerNotificationAttachments + "/"},
			TierToCoolAfterDays:             cfg.NotificationCoolAfterDays,
			TierToArchiveAfterDays:          cfg.NotificationArchiveAfterDays,
			DeletePreviousVersionsAfterDays: cfg.PreviousVersionRetentionDays,
		},
		{
			// Cold, not archive: the API answers GET of an archived notification
			// from these blobs, and an archive-tier blob cannot be read.
			Name: "notification-archive-tiering", Prefixes: []string{ContainerNotificationArchive + "/"},
			TierToColdAfterDays: NotificationArchiveColdAfterDays,
		},
		{
			Name: "audit-archive-tiering", Prefixes: []string{ContainerAuditArchive + "/"},
			TierToColdAfterDays:    cfg.AuditArchive.ColdAfterDays,
			TierToArchiveAfterDays: cfg.AuditArchive.ArchiveAfterDays,
		},
	}
}
