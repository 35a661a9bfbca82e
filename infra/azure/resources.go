package azure

import "github.com/pulumi/pulumi/sdk/v3/go/pulumi"

// ResourceGroupArgs are the inputs of azure-native:resources:ResourceGroup.
type ResourceGroupArgs struct {
	ResourceGroupName string
	Location          string
	Tags              Tags
}

// NewResourceGroup registers a resource group.
func NewResourceGroup(ctx *pulumi.Context, name string, a ResourceGroupArgs, opts ...pulumi.ResourceOption) (*Resource, error) {
	r := &Resource{}
	p := obj{}.str("resourceGroupName", a.ResourceGroupName).str("location", a.Location).tags(a.Tags)
	return r, register(ctx, "azure-native:resources:ResourceGroup", name, p, r, opts)
}

// ClientConfig is the result of azure-native:authorization:getClientConfig: the
// identity the provider deploys as.
type ClientConfig struct {
	ClientID       string `pulumi:"clientId"`
	ObjectID       string `pulumi:"objectId"`
	SubscriptionID string `pulumi:"subscriptionId"`
	TenantID       string `pulumi:"tenantId"`
}

// GetClientConfig returns the subscription, tenant and principal the
// azure-native provider is authenticated as.
func GetClientConfig(ctx *pulumi.Context) (ClientConfig, error) {
	var out ClientConfig
	err := ctx.Invoke("azure-native:authorization:getClientConfig", struct{}{}, &out, pulumi.Version(AzureNativeVersion))
	return out, err
}
