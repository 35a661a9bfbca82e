package azure

import "github.com/pulumi/pulumi/sdk/v3/go/pulumi"

// VaultArgs are the inputs of azure-native:keyvault:Vault. Access is by Azure
// RBAC only (no access policies).
type VaultArgs struct {
	VaultName         string
	ResourceGroupName pulumi.StringInput
	Location          string
	TenantID          string
	// SkuName is "standard" or "premium".
	SkuName                 string
	EnableRbacAuthorization bool
	EnableSoftDelete        bool
	SoftDeleteRetentionDays int
	EnablePurgeProtection   bool
	// PublicNetworkAccess is "Enabled" or "Disabled".
	PublicNetworkAccess string
	// NetworkDefaultAction is the firewall's default action, "Deny" or "Allow".
	NetworkDefaultAction string
	Tags                 Tags
}

// Vault is a key vault; Properties holds vaultUri.
type Vault struct {
	pulumi.CustomResourceState
	Name       pulumi.StringOutput `pulumi:"name"`
	Properties pulumi.MapOutput    `pulumi:"properties"`
}

// URI is the vault's data-plane URL ("https://{name}.vault.azure.net/").
func (v *Vault) URI() pulumi.StringOutput { return stringField(v.Properties, "vaultUri") }

// NewVault registers a key vault.
func NewVault(ctx *pulumi.Context, name string, a VaultArgs, opts ...pulumi.ResourceOption) (*Vault, error) {
	r := &Vault{}
	props := obj{}.str("tenantId", a.TenantID).sub("sku", obj{}.str("family", "A").str("name", a.SkuName)).
		flag("enableRbacAuthorization", a.EnableRbacAuthorization).
		flag("enableSoftDelete", a.EnableSoftDelete).num("softDeleteRetentionInDays", a.SoftDeleteRetentionDays).
		flag("enablePurgeProtection", a.EnablePurgeProtection).
		flag("enabledForDeployment", false).flag("enabledForDiskEncryption", false).
		flag("enabledForTemplateDeployment", false).
		str("publicNetworkAccess", a.PublicNetworkAccess).
		sub("networkAcls", obj{}.str("defaultAction", a.NetworkDefaultAction).str("bypass", "None"))
	p := obj{}.str("vaultName", a.VaultName).in("resourceGroupName", a.ResourceGroupName).
		str("location", a.Location).sub("properties", props).tags(a.Tags)
	return r, register(ctx, "azure-native:keyvault:Vault", name, p, r, opts)
}

// SecretArgs are the inputs of azure-native:keyvault:Secret. The secret is
// written through Azure Resource Manager, so the vault's data-plane firewall
// does not block the deployment.
type SecretArgs struct {
	SecretName        string
	VaultName         pulumi.StringInput
	ResourceGroupName pulumi.StringInput
	// Value is wrapped with pulumi.ToSecret, so it is encrypted in the stack's
	// state and masked in the CLI's output.
	Value       pulumi.StringInput
	ContentType string
	Tags        Tags
}

// Secret is a key vault secret; Properties holds secretUri.
type Secret struct {
	pulumi.CustomResourceState
	Name       pulumi.StringOutput `pulumi:"name"`
	Properties pulumi.MapOutput    `pulumi:"properties"`
}

// URI is the secret's versionless URL, so references follow rotation.
func (s *Secret) URI() pulumi.StringOutput { return stringField(s.Properties, "secretUri") }

// NewSecret registers a key vault secret.
func NewSecret(ctx *pulumi.Context, name string, a SecretArgs, opts ...pulumi.ResourceOption) (*Secret, error) {
	r := &Secret{}
	props := obj{}.in("value", pulumi.ToSecret(a.Value)).str("contentType", a.ContentType)
	p := obj{}.str("secretName", a.SecretName).in("vaultName", a.VaultName).
		in("resourceGroupName", a.ResourceGroupName).sub("properties", props).tags(a.Tags)
	return r, register(ctx, "azure-native:keyvault:Secret", name, p, r, opts)
}
