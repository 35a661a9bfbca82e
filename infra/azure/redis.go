package azure

import "github.com/pulumi/pulumi/sdk/v3/go/pulumi"

// RedisArgs are the inputs of azure-native:redis:Redis (Azure Cache for Redis).
type RedisArgs struct {
	Name              string
	ResourceGroupName pulumi.StringInput
	Location          string
	// SkuName is "Basic", "Standard" or "Premium"; Family "C" or "P".
	SkuName  string
	Family   string
	Capacity int
	// EnableNonSSLPort opens the plain-text port 6379.
	EnableNonSSLPort bool
	// MinimumTLSVersion is "1.2".
	MinimumTLSVersion string
	// PublicNetworkAccess is "Enabled" or "Disabled".
	PublicNetworkAccess string
	// EntraAuth enables Microsoft Entra authentication (redisConfiguration aad-enabled).
	EntraAuth bool
	// DisableAccessKeyAuthentication turns off the shared access keys.
	DisableAccessKeyAuthentication bool
	RedisVersion                   string
	Zones                          []string
	Tags                           Tags
}

// Redis is a cache with its host name and TLS port.
type Redis struct {
	pulumi.CustomResourceState
	Name     pulumi.StringOutput `pulumi:"name"`
	HostName pulumi.StringOutput `pulumi:"hostName"`
	SSLPort  pulumi.IntOutput    `pulumi:"sslPort"`
}

// NewRedis registers an Azure Cache for Redis.
func NewRedis(ctx *pulumi.Context, name string, a RedisArgs, opts ...pulumi.ResourceOption) (*Redis, error) {
	r := &Redis{}
	redisConfiguration := obj{}
	if a.EntraAuth {
		redisConfiguration.str("aadEnabled", "true")
	}
	p := obj{}.str("name", a.Name).in("resourceGroupName", a.ResourceGroupName).str("location", a.Location).
		sub("sku", obj{}.str("name", a.SkuName).str("family", a.Family).in("capacity", pulumi.Int(a.Capacity))).
		flag("enableNonSslPort", a.EnableNonSSLPort).str("minimumTlsVersion", a.MinimumTLSVersion).
		str("publicNetworkAccess", a.PublicNetworkAccess).
		flag("disableAccessKeyAuthentication", a.DisableAccessKeyAuthentication).
		sub("redisConfiguration", redisConfiguration).str("redisVersion", a.RedisVersion).
		strs("zones", a.Zones).tags(a.Tags)
	return r, register(ctx, "azure-native:redis:Redis", name, p, r, opts)
}

// RedisAccessPolicyAssignmentArgs are the inputs of
// azure-native:redis:AccessPolicyAssignment: a Microsoft Entra principal's data
// access to a cache.
type RedisAccessPolicyAssignmentArgs struct {
	AssignmentName    string
	CacheName         pulumi.StringInput
	ResourceGroupName pulumi.StringInput
	// AccessPolicyName is a built-in policy: "Data Owner", "Data Contributor" or "Data Reader".
	AccessPolicyName string
	ObjectID         pulumi.StringInput
	ObjectIDAlias    pulumi.StringInput
}

// NewRedisAccessPolicyAssignment registers a cache data access assignment.
func NewRedisAccessPolicyAssignment(ctx *pulumi.Context, name string, a RedisAccessPolicyAssignmentArgs, opts ...pulumi.ResourceOption) (*Resource, error) {
	r := &Resource{}
	p := obj{}.str("accessPolicyAssignmentName", a.AssignmentName).in("cacheName", a.CacheName).
		in("resourceGroupName", a.ResourceGroupName).str("accessPolicyName", a.AccessPolicyName).
		in("objectId", a.ObjectID).in("objectIdAlias", a.ObjectIDAlias)
	return r, register(ctx, "azure-native:redis:AccessPolicyAssignment", name, p, r, opts)
}
