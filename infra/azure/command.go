package azure

import (
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// ImmutabilityPolicyLockArgs describe the lock of a container's time-based
// retention policy.
type ImmutabilityPolicyLockArgs struct {
	SubscriptionID    string
	ResourceGroupName pulumi.StringInput
	AccountName       pulumi.StringInput
	ContainerName     pulumi.StringInput
	// PolicyEtag is the policy's current ETag: the lock applies to exactly the
	// policy that was deployed.
	PolicyEtag pulumi.StringInput
}

// NewImmutabilityPolicyLock registers a command:local:Command that locks a
// container's immutability policy with the Azure CLI when it is created.
//
// Azure Resource Manager has no declarative "locked" property for a container's
// immutability policy: locking is the one-way LockImmutabilityPolicy action, so
// it is run here as part of `pulumi up`, inside the IaC pipeline. A locked
// policy cannot be unlocked or deleted and its period can only be extended;
// deleting this resource does nothing in Azure.
func NewImmutabilityPolicyLock(ctx *pulumi.Context, name string, a ImmutabilityPolicyLockArgs, opts ...pulumi.ResourceOption) (*pulumi.CustomResourceState, error) {
	r := &pulumi.CustomResourceState{}
	script := `az storage container immutability-policy lock --only-show-errors --output none ` +
		`--subscription "$SUBSCRIPTION_ID" --resource-group "$RESOURCE_GROUP" ` +
		`--account-name "$ACCOUNT_NAME" --container-name "$CONTAINER_NAME" --if-match "$POLICY_ETAG"`
	env := pulumi.StringMap{
		"SUBSCRIPTION_ID": pulumi.String(a.SubscriptionID),
		"RESOURCE_GROUP":  a.ResourceGroupName,
		"ACCOUNT_NAME":    a.AccountName,
		"CONTAINER_NAME":  a.ContainerName,
		"POLICY_ETAG":     a.PolicyEtag,
	}
	p := obj{}.str("create", script).in("environment", env).
		in("triggers", pulumi.Array{a.AccountName, a.ContainerName})
	return r, register(ctx, "command:local:Command", name, p, r, opts)
}
