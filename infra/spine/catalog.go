package spine

import (
	"slices"
	"sort"
)

// Data classifications used in the data-classification tag, from least to most
// sensitive.
const (
	ClassInternal     = "internal"
	ClassConfidential = "confidential"
	ClassRestricted   = "restricted"
)

// OwnerPlatform is the owner-service tag of shared infrastructure that no single
// service owns (network, monitoring, the Function App, shared stores).
const OwnerPlatform = "platform"

// Service is one owning service of the product: its database, the events it
// publishes on its topic and the event types it consumes from other topics.
type Service struct {
	// Name is the package name, the database name and the topic name.
	Name string
	// Classification is the data-classification tag of the service's database.
	Classification string
	// Publishes lists the event types the service emits (CloudEvents `type`,
	// carried in the message's `eventType` application property).
	Publishes []string
	// Consumes lists the event types the service handles, from any publisher.
	Consumes []string
}

// catalog is the product's list of owning services (every service with a
// database; the gateway only uses Redis and is not listed). Who consumes what is
// decided here: a service gets one subscription on each deployed publisher's
// topic that carries at least one type it consumes, filtered to those types.
var catalog = []Service{
	{
		Name: "tenants", Classification: ClassConfidential,
		Publishes: []string{"TenantRegistered", "TenantProvisioned", "TenantSuspended", "TenantReactivated", "TenantDecommissioned"},
	},
	{
		Name: "identity", Classification: ClassConfidential,
		Publishes: []string{"UserInvited", "UserActivated", "UserDisabled", "UserEnabled", "RoleAssigned", "RoleRevoked", "RolePermissionsChanged"},
		// Seed a provisioned tenant's system roles and invite its owner; disable a decommissioned
		// tenant's users.
		Consumes: []string{"TenantProvisioned", "TenantDecommissioned"},
	},
	{
		Name: "authz", Classification: ClassRestricted,
		Publishes: []string{"TokenIssued", "RefreshTokenReuseDetected", "ClientCreated", "ClientUpdated", "ClientDeleted", "ClientSecretRotated"},
		// Revoke refresh tokens of disabled users, revoked roles and suspended tenants.
		Consumes: []string{"UserDisabled", "RoleRevoked", "TenantSuspended", "TenantDecommissioned"},
	},
	{
		Name: "billing", Classification: ClassConfidential,
		Publishes: []string{"SubscriptionActivated", "SubscriptionCancelled", "SubscriptionEditionChanged", "InvoiceIssued"},
		// Open a trial subscription for a new tenant (at provisioning, when the registration named
		// an edition outside the catalog); cancel it on decommission (money records stay).
		Consumes: []string{"TenantRegistered", "TenantProvisioned", "TenantDecommissioned"},
	},
	{
		Name: "config", Classification: ClassInternal,
		Publishes: []string{"FeatureFlagChanged", "SettingChanged"},
		// A tenant's subscription starting, ending or changing edition invalidates its compiled
		// flag set (the edition's feature defaults are in it).
		Consumes: []string{"SubscriptionActivated", "SubscriptionCancelled", "SubscriptionEditionChanged"},
	},
	{
		Name: "audit", Classification: ClassRestricted,
		Publishes: []string{"AuditEntryRecorded", "AuditBatchExported"},
		// Every integration event except audit's own (which would loop).
		Consumes: nil, // filled in init
	},
	{
		Name: "notifications", Classification: ClassConfidential,
		Publishes: []string{"NotificationRequested", "NotificationSent", "NotificationFailed", "WebhookEndpointDisabled"},
		// Its own delivery queue (NotificationDispatch: the first attempt of each notification).
		Consumes: []string{"NotificationRequested"},
	},
	{
		Name: "integrations", Classification: ClassRestricted,
		Publishes: []string{"IntegrationCreated", "IntegrationUpdated", "IntegrationSecretRotated", "IntegrationDeleted",
			"IntegrationTested", "IntegrationSyncRequested"},
		// Its own sync queue (the IntegrationSync worker).
		Consumes: []string{"IntegrationSyncRequested"},
	},
	{
		Name: "reporting", Classification: ClassConfidential,
		Publishes: []string{"ReportRequested", "ReportGenerated", "ReportFailed"},
		// Its own run queue (ReportRequested, the ReportGeneration worker), and every other
		// service's events except audit's: the read models its report sources query (activity by
		// day; identity's users and roles). Filled in init.
		Consumes: nil,
	},
}

// PlatformEvents are the event types every service's topic carries besides its own: the retention
// engine's RetentionApplied (evidence of a sweep's effect, written by the owning service in the
// effect's transaction; the app's shared/contracts.PlatformEvents).
var PlatformEvents = []string{"RetentionApplied"}

func init() {
	for i := range catalog {
		catalog[i].Publishes = append(catalog[i].Publishes, PlatformEvents...)
	}
	for i := range catalog {
		name := catalog[i].Name
		if name != "audit" && name != "reporting" {
			continue
		}
		var all []string
		for _, s := range catalog {
			// Reporting counts the services' activity: not audit's own trail (a record of that
			// activity), and its own topic only for its run queue.
			if s.Name != name && (name != "reporting" || s.Name != "audit") {
				for _, t := range s.Publishes {
					if !slices.Contains(all, t) { // the platform events, once
						all = append(all, t)
					}
				}
			}
		}
		if name == "reporting" {
			all = append(all, "ReportRequested") // its own run queue
		}
		catalog[i].Consumes = all
	}
}

// Catalog returns a copy of the product's owning services, in a fixed order.
func Catalog() []Service {
	out := make([]Service, len(catalog))
	for i, s := range catalog {
		out[i] = Service{
			Name: s.Name, Classification: s.Classification,
			Publishes: slices.Clone(s.Publishes), Consumes: slices.Clone(s.Consumes),
		}
	}
	return out
}

// LookupService returns the catalog entry of a service.
func LookupService(name string) (Service, bool) {
	for _, s := range Catalog() {
		if s.Name == name {
			return s, true
		}
	}
	return Service{}, false
}

// Topic is a publishing service's topic.
type Topic struct {
	// Publisher is the publishing service and the topic's name.
	Publisher string
	// EventTypes are the types published on it.
	EventTypes []string
}

// SubscriptionSpec is one consuming service's subscription on a topic.
type SubscriptionSpec struct {
	// Topic is the publisher's topic name.
	Topic string
	// Consumer is the consuming service and the subscription's name.
	Consumer string
	// EventTypes are the types the subscription's filter lets through, sorted.
	EventTypes []string
}

// Topics returns one topic per deployed service that publishes events, in
// catalog order.
func Topics(services []string) []Topic {
	var out []Topic
	for _, s := range Catalog() {
		if slices.Contains(services, s.Name) && len(s.Publishes) > 0 {
			out = append(out, Topic{Publisher: s.Name, EventTypes: s.Publishes})
		}
	}
	return out
}

// Subscriptions returns, for every deployed consumer and every deployed
// publisher's topic, the subscription that carries the consumer's event types
// from that topic, in catalog order.
func Subscriptions(services []string) []SubscriptionSpec {
	var out []SubscriptionSpec
	for _, topic := range Topics(services) {
		for _, consumer := range Catalog() {
			if !slices.Contains(services, consumer.Name) {
				continue
			}
			var types, platform []string
			for _, t := range consumer.Consumes {
				switch {
				case !slices.Contains(topic.EventTypes, t):
				case slices.Contains(PlatformEvents, t):
					platform = append(platform, t)
				default:
					types = append(types, t)
				}
			}
			// A platform event comes with a topic's own events, never alone (reporting takes no
			// event of audit's topic) and never from the consumer's own topic (audit would loop).
			if len(types) == 0 {
				continue
			}
			if topic.Publisher != consumer.Name {
				types = append(types, platform...)
			}
			sort.Strings(types)
			out = append(out, SubscriptionSpec{Topic: topic.Publisher, Consumer: consumer.Name, EventTypes: types})
		}
	}
	return out
}

// EventTypeFilter is the SQL filter of a subscription: the message's
// `eventType` application property must be one of the listed types.
func EventTypeFilter(types []string) string {
	expr := "eventType IN ("
	for i, t := range types {
		if i > 0 {
			expr += ", "
		}
		expr += "'" + t + "'"
	}
	return expr + ")"
}
