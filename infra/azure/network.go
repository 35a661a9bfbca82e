package azure

import "github.com/pulumi/pulumi/sdk/v3/go/pulumi"

// VirtualNetworkArgs are the inputs of azure-native:network:VirtualNetwork.
// Subnets are separate Subnet resources.
type VirtualNetworkArgs struct {
	VirtualNetworkName string
	ResourceGroupName  pulumi.StringInput
	Location           string
	AddressPrefixes    []string
	Tags               Tags
}

// NewVirtualNetwork registers a virtual network.
func NewVirtualNetwork(ctx *pulumi.Context, name string, a VirtualNetworkArgs, opts ...pulumi.ResourceOption) (*Resource, error) {
	r := &Resource{}
	p := obj{}.str("virtualNetworkName", a.VirtualNetworkName).in("resourceGroupName", a.ResourceGroupName).
		str("location", a.Location).sub("addressSpace", obj{}.strs("addressPrefixes", a.AddressPrefixes)).tags(a.Tags)
	return r, register(ctx, "azure-native:network:VirtualNetwork", name, p, r, opts)
}

// SubnetArgs are the inputs of azure-native:network:Subnet.
type SubnetArgs struct {
	SubnetName         string
	VirtualNetworkName pulumi.StringInput
	ResourceGroupName  pulumi.StringInput
	AddressPrefix      string
	// Delegation is the service the subnet is delegated to
	// (for example "Microsoft.Web/serverFarms"), or "".
	Delegation string
	// PrivateEndpointNetworkPolicies is "Enabled" or "Disabled".
	PrivateEndpointNetworkPolicies string
	// DefaultOutboundAccess controls the implicit outbound internet access of
	// the subnet.
	DefaultOutboundAccess bool
}

// NewSubnet registers a subnet of a virtual network.
func NewSubnet(ctx *pulumi.Context, name string, a SubnetArgs, opts ...pulumi.ResourceOption) (*Resource, error) {
	r := &Resource{}
	p := obj{}.str("subnetName", a.SubnetName).in("virtualNetworkName", a.VirtualNetworkName).
		in("resourceGroupName", a.ResourceGroupName).str("addressPrefix", a.AddressPrefix).
		str("privateEndpointNetworkPolicies", a.PrivateEndpointNetworkPolicies).
		flag("defaultOutboundAccess", a.DefaultOutboundAccess)
	if a.Delegation != "" {
		p.list("delegations", pulumi.Array{pulumi.Map(obj{}.str("name", "delegation").str("serviceName", a.Delegation))})
	}
	return r, register(ctx, "azure-native:network:Subnet", name, p, r, opts)
}

// PrivateZoneArgs are the inputs of azure-native:privatedns:PrivateZone.
type PrivateZoneArgs struct {
	PrivateZoneName   string
	ResourceGroupName pulumi.StringInput
	Tags              Tags
}

// NewPrivateZone registers a private DNS zone (location "Global").
func NewPrivateZone(ctx *pulumi.Context, name string, a PrivateZoneArgs, opts ...pulumi.ResourceOption) (*Resource, error) {
	r := &Resource{}
	p := obj{}.str("privateZoneName", a.PrivateZoneName).in("resourceGroupName", a.ResourceGroupName).
		str("location", "Global").tags(a.Tags)
	return r, register(ctx, "azure-native:privatedns:PrivateZone", name, p, r, opts)
}

// VirtualNetworkLinkArgs are the inputs of azure-native:privatedns:VirtualNetworkLink.
type VirtualNetworkLinkArgs struct {
	VirtualNetworkLinkName string
	PrivateZoneName        pulumi.StringInput
	ResourceGroupName      pulumi.StringInput
	VirtualNetworkID       pulumi.StringInput
	Tags                   Tags
}

// NewVirtualNetworkLink links a private DNS zone to a virtual network, without
// auto-registration.
func NewVirtualNetworkLink(ctx *pulumi.Context, name string, a VirtualNetworkLinkArgs, opts ...pulumi.ResourceOption) (*Resource, error) {
	r := &Resource{}
	p := obj{}.str("virtualNetworkLinkName", a.VirtualNetworkLinkName).in("privateZoneName", a.PrivateZoneName).
		in("resourceGroupName", a.ResourceGroupName).str("location", "Global").
		sub("virtualNetwork", obj{}.in("id", a.VirtualNetworkID)).flag("registrationEnabled", false).tags(a.Tags)
	return r, register(ctx, "azure-native:privatedns:VirtualNetworkLink", name, p, r, opts)
}

// PrivateEndpointArgs are the inputs of azure-native:network:PrivateEndpoint
// with one private link service connection.
type PrivateEndpointArgs struct {
	PrivateEndpointName  string
	ResourceGroupName    pulumi.StringInput
	Location             string
	SubnetID             pulumi.StringInput
	PrivateLinkServiceID pulumi.StringInput
	// GroupID is the target sub-resource ("blob", "vault", "namespace", ...).
	GroupID string
	Tags    Tags
}

// NewPrivateEndpoint registers a private endpoint.
func NewPrivateEndpoint(ctx *pulumi.Context, name string, a PrivateEndpointArgs, opts ...pulumi.ResourceOption) (*Resource, error) {
	r := &Resource{}
	conn := obj{}.str("name", a.PrivateEndpointName).in("privateLinkServiceId", a.PrivateLinkServiceID).
		strs("groupIds", []string{a.GroupID})
	p := obj{}.str("privateEndpointName", a.PrivateEndpointName).in("resourceGroupName", a.ResourceGroupName).
		str("location", a.Location).sub("subnet", obj{}.in("id", a.SubnetID)).
		list("privateLinkServiceConnections", pulumi.Array{pulumi.Map(conn)}).tags(a.Tags)
	return r, register(ctx, "azure-native:network:PrivateEndpoint", name, p, r, opts)
}

// PrivateDNSZoneGroupArgs are the inputs of azure-native:network:PrivateDnsZoneGroup:
// the private endpoint registers its address in the zone.
type PrivateDNSZoneGroupArgs struct {
	PrivateEndpointName pulumi.StringInput
	ResourceGroupName   pulumi.StringInput
	ZoneConfigName      string
	PrivateDNSZoneID    pulumi.StringInput
}

// NewPrivateDNSZoneGroup registers a private DNS zone group named "default".
func NewPrivateDNSZoneGroup(ctx *pulumi.Context, name string, a PrivateDNSZoneGroupArgs, opts ...pulumi.ResourceOption) (*Resource, error) {
	r := &Resource{}
	cfg := obj{}.str("name", a.ZoneConfigName).in("privateDnsZoneId", a.PrivateDNSZoneID)
	p := obj{}.str("privateDnsZoneGroupName", "default").in("privateEndpointName", a.PrivateEndpointName).
		in("resourceGroupName", a.ResourceGroupName).list("privateDnsZoneConfigs", pulumi.Array{pulumi.Map(cfg)})
	return r, register(ctx, "azure-native:network:PrivateDnsZoneGroup", name, p, r, opts)
}
