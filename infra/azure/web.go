package azure

import "github.com/pulumi/pulumi/sdk/v3/go/pulumi"

// AppServicePlanArgs are the inputs of azure-native:web:AppServicePlan for a
// Linux plan.
type AppServicePlanArgs struct {
	Name              string
	ResourceGroupName pulumi.StringInput
	Location          string
	// SkuName is e.g. "B1", "P1v3" or "EP1"; SkuTier "Basic", "PremiumV3" or
	// "ElasticPremium".
	SkuName string
	SkuTier string
	// MaximumElasticWorkerCount bounds an Elastic Premium plan's scale-out.
	MaximumElasticWorkerCount int
	ZoneRedundant             bool
	Tags                      Tags
}

// IsElasticPremium reports whether a plan tier is Elastic Premium (a Functions
// Premium plan).
func IsElasticPremium(tier string) bool { return tier == "ElasticPremium" }

// NewAppServicePlan registers a Linux App Service plan.
func NewAppServicePlan(ctx *pulumi.Context, name string, a AppServicePlanArgs, opts ...pulumi.ResourceOption) (*Resource, error) {
	r := &Resource{}
	kind := "linux"
	if IsElasticPremium(a.SkuTier) {
		kind = "elastic"
	}
	p := obj{}.str("name", a.Name).in("resourceGroupName", a.ResourceGroupName).str("location", a.Location).
		str("kind", kind).flag("reserved", true).
		sub("sku", obj{}.str("name", a.SkuName).str("tier", a.SkuTier)).
		num("maximumElasticWorkerCount", a.MaximumElasticWorkerCount).
		flag("zoneRedundant", a.ZoneRedundant).tags(a.Tags)
	return r, register(ctx, "azure-native:web:AppServicePlan", name, p, r, opts)
}

// FunctionAppArgs are the inputs of azure-native:web:WebApp for a Linux
// Function App that runs as one user-assigned identity and sends its outbound
// traffic through a VNet-integration subnet.
type FunctionAppArgs struct {
	Name              string
	ResourceGroupName pulumi.StringInput
	Location          string
	ServerFarmID      pulumi.StringInput
	// IdentityID is the user-assigned identity's resource ID; it is also the
	// identity used to resolve Key Vault references.
	IdentityID pulumi.StringInput
	// SubnetID is the VNet-integration subnet.
	SubnetID pulumi.StringInput
	// RouteAllTrafficThroughVNet sends all outbound traffic through the subnet,
	// so private endpoints and private DNS are used.
	RouteAllTrafficThroughVNet bool
	HTTPSOnly                  bool
	// MinTLSVersion is "1.2" or "1.3"; it applies to the site and its SCM site.
	MinTLSVersion string
	// FTPSState is "Disabled", "FtpsOnly" or "AllAllowed".
	FTPSState   string
	AlwaysOn    bool
	AppSettings []NameValue
	// RuntimeScaleMonitoring lets an Elastic Premium plan scale on triggers
	// whose sources are only reachable through the VNet.
	RuntimeScaleMonitoring bool
	// MinimumElasticInstanceCount is the always-ready instance count on Elastic Premium.
	MinimumElasticInstanceCount int
	Tags                        Tags
}

// FunctionApp is a Function App with its default host name.
type FunctionApp struct {
	pulumi.CustomResourceState
	Name            pulumi.StringOutput `pulumi:"name"`
	DefaultHostName pulumi.StringOutput `pulumi:"defaultHostName"`
}

// NewFunctionApp registers a Linux Function App.
func NewFunctionApp(ctx *pulumi.Context, name string, a FunctionAppArgs, opts ...pulumi.ResourceOption) (*FunctionApp, error) {
	r := &FunctionApp{}
	settings := pulumi.Array{}
	for _, s := range a.AppSettings {
		settings = append(settings, pulumi.Map(obj{}.str("name", s.Name).in("value", s.Value)))
	}
	site := obj{}.list("appSettings", settings).flag("alwaysOn", a.AlwaysOn).
		str("minTlsVersion", a.MinTLSVersion).str("scmMinTlsVersion", a.MinTLSVersion).
		str("ftpsState", a.FTPSState).flag("http20Enabled", true).
		flag("vnetRouteAllEnabled", a.RouteAllTrafficThroughVNet).
		flag("remoteDebuggingEnabled", false).
		flag("functionsRuntimeScaleMonitoringEnabled", a.RuntimeScaleMonitoring).
		num("minimumElasticInstanceCount", a.MinimumElasticInstanceCount)
	identity := obj{}.str("type", "UserAssigned").in("userAssignedIdentities", pulumi.StringArray{a.IdentityID})
	p := obj{}.str("name", a.Name).in("resourceGroupName", a.ResourceGroupName).str("location", a.Location).
		str("kind", "functionapp,linux").flag("reserved", true).in("serverFarmId", a.ServerFarmID).
		sub("identity", identity).in("keyVaultReferenceIdentity", a.IdentityID).
		in("virtualNetworkSubnetId", a.SubnetID).flag("httpsOnly", a.HTTPSOnly).
		flag("clientCertEnabled", false).sub("siteConfig", site).tags(a.Tags)
	return r, register(ctx, "azure-native:web:WebApp", name, p, r, opts)
}

// PublishingCredentialsArgs are the inputs of azure-native:web:WebAppScmAllowed
// and azure-native:web:WebAppFtpAllowed.
type PublishingCredentialsArgs struct {
	AppName           pulumi.StringInput
	ResourceGroupName pulumi.StringInput
	Allow             bool
}

// NewSCMBasicAuth registers whether the app's SCM (Kudu) site accepts basic
// (user name and password) publishing credentials.
func NewSCMBasicAuth(ctx *pulumi.Context, name string, a PublishingCredentialsArgs, opts ...pulumi.ResourceOption) (*Resource, error) {
	r := &Resource{}
	p := obj{}.in("name", a.AppName).in("resourceGroupName", a.ResourceGroupName).flag("allow", a.Allow)
	return r, register(ctx, "azure-native:web:WebAppScmAllowed", name, p, r, opts)
}

// NewFTPBasicAuth registers whether the app's FTP endpoint accepts basic
// publishing credentials.
func NewFTPBasicAuth(ctx *pulumi.Context, name string, a PublishingCredentialsArgs, opts ...pulumi.ResourceOption) (*Resource, error) {
	r := &Resource{}
	p := obj{}.in("name", a.AppName).in("resourceGroupName", a.ResourceGroupName).flag("allow", a.Allow)
	return r, register(ctx, "azure-native:web:WebAppFtpAllowed", name, p, r, opts)
}
