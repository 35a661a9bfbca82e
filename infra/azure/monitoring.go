package azure

import "github.com/pulumi/pulumi/sdk/v3/go/pulumi"

// WorkspaceArgs are the inputs of azure-native:operationalinsights:Workspace
// (a Log Analytics workspace, pay-as-you-go).
type WorkspaceArgs struct {
	WorkspaceName     string
	ResourceGroupName pulumi.StringInput
	Location          string
	RetentionInDays   int
	Tags              Tags
}

// NewWorkspace registers a Log Analytics workspace.
func NewWorkspace(ctx *pulumi.Context, name string, a WorkspaceArgs, opts ...pulumi.ResourceOption) (*Resource, error) {
	r := &Resource{}
	p := obj{}.str("workspaceName", a.WorkspaceName).in("resourceGroupName", a.ResourceGroupName).
		str("location", a.Location).sub("sku", obj{}.str("name", "PerGB2018")).
		num("retentionInDays", a.RetentionInDays).tags(a.Tags)
	return r, register(ctx, "azure-native:operationalinsights:Workspace", name, p, r, opts)
}

// ComponentArgs are the inputs of azure-native:applicationinsights:Component
// for a workspace-based web application component.
type ComponentArgs struct {
	ResourceName        string
	ResourceGroupName   pulumi.StringInput
	Location            string
	WorkspaceResourceID pulumi.StringInput
	// DisableLocalAuth accepts telemetry only from Microsoft Entra identities
	// (no instrumentation-key ingestion).
	DisableLocalAuth bool
	Tags             Tags
}

// Component is an Application Insights component. Its connection string is a
// secret output.
type Component struct {
	pulumi.CustomResourceState
	Name             pulumi.StringOutput `pulumi:"name"`
	ConnectionString pulumi.StringOutput `pulumi:"connectionString"`
}

// NewComponent registers an Application Insights component. Its connection
// string and instrumentation key are marked secret in the stack's state.
func NewComponent(ctx *pulumi.Context, name string, a ComponentArgs, opts ...pulumi.ResourceOption) (*Component, error) {
	r := &Component{}
	p := obj{}.str("resourceName", a.ResourceName).in("resourceGroupName", a.ResourceGroupName).
		str("location", a.Location).str("kind", "web").str("applicationType", "web").
		str("ingestionMode", "LogAnalytics").in("workspaceResourceId", a.WorkspaceResourceID).
		flag("disableLocalAuth", a.DisableLocalAuth).tags(a.Tags)
	opts = append(opts, pulumi.AdditionalSecretOutputs([]string{"connectionString", "instrumentationKey"}))
	return r, register(ctx, "azure-native:applicationinsights:Component", name, p, r, opts)
}
