package azure

import "github.com/pulumi/pulumi/sdk/v3/go/pulumi"

// ServiceBusNamespaceArgs are the inputs of azure-native:servicebus:Namespace.
type ServiceBusNamespaceArgs struct {
	NamespaceName     string
	ResourceGroupName pulumi.StringInput
	Location          string
	// SkuName is "Basic", "Standard" or "Premium" (private endpoints need Premium).
	SkuName  string
	Capacity int
	// MinimumTLSVersion is "1.2".
	MinimumTLSVersion string
	// PublicNetworkAccess is "Enabled" or "Disabled".
	PublicNetworkAccess string
	// DisableLocalAuth turns off SAS keys: only Microsoft Entra identities can connect.
	DisableLocalAuth bool
	ZoneRedundant    bool
	Tags             Tags
}

// ServiceBusNamespace is a namespace with its endpoint URL
// ("https://{name}.servicebus.windows.net:443/").
type ServiceBusNamespace struct {
	pulumi.CustomResourceState
	Name               pulumi.StringOutput `pulumi:"name"`
	ServiceBusEndpoint pulumi.StringOutput `pulumi:"serviceBusEndpoint"`
}

// NewServiceBusNamespace registers a Service Bus namespace.
func NewServiceBusNamespace(ctx *pulumi.Context, name string, a ServiceBusNamespaceArgs, opts ...pulumi.ResourceOption) (*ServiceBusNamespace, error) {
	r := &ServiceBusNamespace{}
	p := obj{}.str("namespaceName", a.NamespaceName).in("resourceGroupName", a.ResourceGroupName).
		str("location", a.Location).
		sub("sku", obj{}.str("name", a.SkuName).str("tier", a.SkuName).num("capacity", a.Capacity)).
		str("minimumTlsVersion", a.MinimumTLSVersion).str("publicNetworkAccess", a.PublicNetworkAccess).
		flag("disableLocalAuth", a.DisableLocalAuth).flag("zoneRedundant", a.ZoneRedundant).tags(a.Tags)
	return r, register(ctx, "azure-native:servicebus:Namespace", name, p, r, opts)
}

// TopicArgs are the inputs of azure-native:servicebus:Topic. Durations are ISO 8601.
type TopicArgs struct {
	TopicName                           string
	NamespaceName                       pulumi.StringInput
	ResourceGroupName                   pulumi.StringInput
	RequiresDuplicateDetection          bool
	DuplicateDetectionHistoryTimeWindow string
	DefaultMessageTimeToLive            string
	MaxSizeInMegabytes                  int
}

// NewTopic registers a topic.
func NewTopic(ctx *pulumi.Context, name string, a TopicArgs, opts ...pulumi.ResourceOption) (*Resource, error) {
	r := &Resource{}
	p := obj{}.str("topicName", a.TopicName).in("namespaceName", a.NamespaceName).
		in("resourceGroupName", a.ResourceGroupName).
		flag("requiresDuplicateDetection", a.RequiresDuplicateDetection).
		str("duplicateDetectionHistoryTimeWindow", a.DuplicateDetectionHistoryTimeWindow).
		str("defaultMessageTimeToLive", a.DefaultMessageTimeToLive).
		num("maxSizeInMegabytes", a.MaxSizeInMegabytes).flag("enablePartitioning", false)
	return r, register(ctx, "azure-native:servicebus:Topic", name, p, r, opts)
}

// SubscriptionArgs are the inputs of azure-native:servicebus:Subscription.
type SubscriptionArgs struct {
	SubscriptionName                          string
	TopicName                                 pulumi.StringInput
	NamespaceName                             pulumi.StringInput
	ResourceGroupName                         pulumi.StringInput
	MaxDeliveryCount                          int
	LockDuration                              string
	DefaultMessageTimeToLive                  string
	DeadLetteringOnMessageExpiration          bool
	DeadLetteringOnFilterEvaluationExceptions bool
}

// NewSubscription registers a topic subscription.
func NewSubscription(ctx *pulumi.Context, name string, a SubscriptionArgs, opts ...pulumi.ResourceOption) (*Resource, error) {
	r := &Resource{}
	p := obj{}.str("subscriptionName", a.SubscriptionName).in("topicName", a.TopicName).
		in("namespaceName", a.NamespaceName).in("resourceGroupName", a.ResourceGroupName).
		num("maxDeliveryCount", a.MaxDeliveryCount).str("lockDuration", a.LockDuration).
		str("defaultMessageTimeToLive", a.DefaultMessageTimeToLive).
		flag("deadLetteringOnMessageExpiration", a.DeadLetteringOnMessageExpiration).
		flag("deadLetteringOnFilterEvaluationExceptions", a.DeadLetteringOnFilterEvaluationExceptions).
		flag("requiresSession", false)
	return r, register(ctx, "azure-native:servicebus:Subscription", name, p, r, opts)
}

// DefaultRuleName is the name of the rule Service Bus creates with every
// subscription (a TrueFilter that lets every message through). Writing a rule
// under this name replaces that filter.
const DefaultRuleName = "$Default"

// SQLRuleArgs are the inputs of azure-native:servicebus:Rule with a SQL filter.
type SQLRuleArgs struct {
	RuleName          string
	SubscriptionName  pulumi.StringInput
	TopicName         pulumi.StringInput
	NamespaceName     pulumi.StringInput
	ResourceGroupName pulumi.StringInput
	SQLExpression     string
}

// NewSQLRule registers a subscription rule with a SQL filter.
func NewSQLRule(ctx *pulumi.Context, name string, a SQLRuleArgs, opts ...pulumi.ResourceOption) (*Resource, error) {
	r := &Resource{}
	p := obj{}.str("ruleName", a.RuleName).in("subscriptionName", a.SubscriptionName).
		in("topicName", a.TopicName).in("namespaceName", a.NamespaceName).
		in("resourceGroupName", a.ResourceGroupName).str("filterType", "SqlFilter").
		sub("sqlFilter", obj{}.str("sqlExpression", a.SQLExpression))
	return r, register(ctx, "azure-native:servicebus:Rule", name, p, r, opts)
}
