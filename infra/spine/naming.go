package spine

import "strings"

// Names are the Azure resource names of a stack, derived from the prefix, the
// environment and the optional suffix: "{kind}-{prefix}-{env}" for names that
// are unique in a resource group, plus "-{suffix}" for globally unique ones.
type Names struct {
	ResourceGroup   string
	VirtualNetwork  string
	FunctionsSubnet string
	EndpointsSubnet string
	Workspace       string
	AppInsights     string
	Identity        string
	StorageAccount  string
	KeyVault        string
	Redis           string
	ServiceBus      string
	DatabaseServer  string
	ElasticPool     string
	AppServicePlan  string
	FunctionApp     string
	// MaintenanceTables are the maintenance ledger's tables (shared/retention: sweep runs,
	// watermarks, evidence, legal holds, tenant retention overrides).
	MaintenanceTables []string
}

// Names returns the stack's resource names.
func (c Config) Names() Names {
	base := c.NamePrefix + "-" + c.Environment
	global := func(kind string) string {
		n := kind + "-" + base
		if c.NameSuffix != "" {
			n += "-" + c.NameSuffix
		}
		return n
	}
	server := "psql"
	if c.Database.Engine == EngineSQLServer {
		server = "sql"
	}
	return Names{
		ResourceGroup:     "rg-" + base,
		VirtualNetwork:    "vnet-" + base,
		FunctionsSubnet:   "snet-functions",
		EndpointsSubnet:   "snet-private-endpoints",
		Workspace:         "log-" + base,
		AppInsights:       "appi-" + base,
		Identity:          "id-" + base,
		StorageAccount:    strings.ReplaceAll(global("st"), "-", ""),
		KeyVault:          global("kv"),
		Redis:             global("redis"),
		ServiceBus:        global("sbns"),
		DatabaseServer:    global(server),
		ElasticPool:       "sqlep-" + base,
		AppServicePlan:    "asp-" + base,
		FunctionApp:       global("func"),
		MaintenanceTables: []string{"sweepruns", "watermarks", "evidence", "legalholds", "retentionoverrides"},
	}
}

// Blob containers of the storage account.
const (
	ContainerReports                 = "reports"
	ContainerAuditArchive            = "audit-archive"
	ContainerNotificationBodies      = "notification-bodies"
	ContainerNotificationAttachments = "notification-attachments"
	// ContainerNotificationArchive holds notifications past 90 days (the
	// NotificationArchive sweep's create-only JSON Lines blobs), which
	// GET /api/notifications/{id} still reads: it tiers to cold, never to
	// archive (NotificationArchiveColdAfterDays).
	ContainerNotificationArchive = "notification-archive"
	// ContainerDeployments holds the Function App's zip package, which the app
	// reads with its managed identity (WEBSITE_RUN_FROM_PACKAGE).
	ContainerDeployments = "deployments"
)
