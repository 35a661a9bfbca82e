package spine

import (
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"spine/infra/azure"
)

// Private link sub-resources ("group IDs") of the stores.
const (
	GroupBlob       = "blob"
	GroupTable      = "table"
	GroupVault      = "vault"
	GroupRedis      = "redisCache"
	GroupServiceBus = "namespace"
	GroupSQL        = "sqlServer"
	GroupPostgres   = "postgresqlServer"
)

// PrivateDNSZones maps each private link sub-resource to the private DNS zone
// its endpoint registers in (Azure public cloud).
var PrivateDNSZones = map[string]string{
	GroupBlob:       "privatelink.blob.core.windows.net",
	GroupTable:      "privatelink.table.core.windows.net",
	GroupVault:      "privatelink.vaultcore.azure.net",
	GroupRedis:      "privatelink.redis.cache.windows.net",
	GroupServiceBus: "privatelink.servicebus.windows.net",
	GroupSQL:        "privatelink.database.windows.net",
	GroupPostgres:   "privatelink.postgres.database.azure.com",
}

// network is the virtual network, its two subnets and the private DNS zones.
type network struct {
	vnet            *azure.Resource
	functionsSubnet *azure.Resource
	endpointsSubnet *azure.Resource
	zones           map[string]*azure.Resource
	zoneLinks       []pulumi.Resource
}

// groupsInUse are the private link sub-resources this stack's stores expose.
func (c Config) groupsInUse() []string {
	groups := []string{GroupBlob, GroupTable, GroupVault, GroupRedis, GroupServiceBus}
	if c.Database.Engine == EngineSQLServer {
		return append(groups, GroupSQL)
	}
	return append(groups, GroupPostgres)
}

func (d *deployment) network() (*network, error) {
	n := &network{zones: map[string]*azure.Resource{}}
	tags := d.tags(OwnerPlatform, ClassInternal)
	var err error
	n.vnet, err = azure.NewVirtualNetwork(d.ctx, "vnet", azure.VirtualNetworkArgs{
		VirtualNetworkName: d.names.VirtualNetwork, ResourceGroupName: d.rgName, Location: d.cfg.Location,
		AddressPrefixes: []string{d.cfg.Network.AddressSpace}, Tags: tags,
	})
	if err != nil {
		return nil, err
	}
	n.functionsSubnet, err = azure.NewSubnet(d.ctx, "snet-functions", azure.SubnetArgs{
		SubnetName: d.names.FunctionsSubnet, VirtualNetworkName: n.vnet.Name, ResourceGroupName: d.rgName,
		AddressPrefix: d.cfg.Network.FunctionsSubnet, Delegation: "Microsoft.Web/serverFarms",
		PrivateEndpointNetworkPolicies: "Disabled", DefaultOutboundAccess: false,
	})
	if err != nil {
		return nil, err
	}
	// Subnets of one network are updated one at a time.
	n.endpointsSubnet, err = azure.NewSubnet(d.ctx, "snet-private-endpoints", azure.SubnetArgs{
		SubnetName: d.names.EndpointsSubnet, VirtualNetworkName: n.vnet.Name, ResourceGroupName: d.rgName,
		AddressPrefix: d.cfg.Network.PrivateEndpointsSubnet, PrivateEndpointNetworkPolicies: "Enabled",
		DefaultOutboundAccess: false,
	}, pulumi.DependsOn([]pulumi.Resource{n.functionsSubnet}))
	if err != nil {
		return nil, err
	}
	for _, group := range d.cfg.groupsInUse() {
		zone, err := azure.NewPrivateZone(d.ctx, "dns-"+group, azure.PrivateZoneArgs{
			PrivateZoneName: PrivateDNSZones[group], ResourceGroupName: d.rgName, Tags: tags,
		})
		if err != nil {
			return nil, err
		}
		link, err := azure.NewVirtualNetworkLink(d.ctx, "dns-link-"+group, azure.VirtualNetworkLinkArgs{
			VirtualNetworkLinkName: d.names.VirtualNetwork, PrivateZoneName: zone.Name, ResourceGroupName: d.rgName,
			VirtualNetworkID: azure.ID(n.vnet), Tags: tags,
		})
		if err != nil {
			return nil, err
		}
		n.zones[group] = zone
		n.zoneLinks = append(n.zoneLinks, link)
	}
	return n, nil
}

// privateEndpoint gives a store's sub-resource a private endpoint in the
// endpoints subnet and registers its address in the matching private DNS zone.
func (d *deployment) privateEndpoint(store string, target pulumi.StringInput, group string, tags azure.Tags) error {
	name := "pe-" + store + "-" + group
	pe, err := azure.NewPrivateEndpoint(d.ctx, name, azure.PrivateEndpointArgs{
		PrivateEndpointName: "pe-" + d.cfg.NamePrefix + "-" + d.cfg.Environment + "-" + store + "-" + group,
		ResourceGroupName:   d.rgName, Location: d.cfg.Location, SubnetID: azure.ID(d.net.endpointsSubnet),
		PrivateLinkServiceID: target, GroupID: group, Tags: tags,
	})
	if err != nil {
		return err
	}
	_, err = azure.NewPrivateDNSZoneGroup(d.ctx, name+"-dns", azure.PrivateDNSZoneGroupArgs{
		PrivateEndpointName: pe.Name, ResourceGroupName: d.rgName,
		ZoneConfigName: group, PrivateDNSZoneID: azure.ID(d.net.zones[group]),
	}, pulumi.DependsOn(d.net.zoneLinks))
	return err
}
