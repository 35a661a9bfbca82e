package spine

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Environments a stack can be.
const (
	EnvDev     = "dev"
	EnvStaging = "staging"
	EnvProd    = "prod"
)

// Database engines.
const (
	EnginePostgres  = "postgres"
	EngineSQLServer = "sqlserver"
)

// ConfigNamespace is the Pulumi config namespace of this program's settings
// (the project name).
const ConfigNamespace = "spine"

// Config is everything a stack decides. LoadConfig reads it from the stack's
// configuration over Defaults; Validate checks it before anything is registered.
type Config struct {
	// Environment is dev, staging or prod (default: the stack name).
	Environment string `json:"environment"`
	// Location is the Azure region (azure-native:location).
	Location string `json:"-"`
	// NamePrefix starts every resource name (lowercase letters and digits).
	NamePrefix string `json:"namePrefix"`
	// NameSuffix is appended to globally unique names (storage account, key
	// vault, cache, namespace, database server, Function App) when the plain
	// names are taken; lowercase letters and digits, at most 6.
	NameSuffix string `json:"nameSuffix"`
	// Services are the owning services deployed by this stack: one database
	// each, one topic each, and the subscriptions the catalog derives. It must
	// match the migrations/<service>/ folders of the app.
	Services []string `json:"services"`
	// Protect marks the stores as protected, so `pulumi destroy` and
	// replacements refuse to delete them (required in prod).
	Protect bool `json:"protect"`

	Network    NetworkConfig    `json:"network"`
	Database   DatabaseConfig   `json:"database"`
	Storage    StorageConfig    `json:"storage"`
	Redis      RedisConfig      `json:"redis"`
	ServiceBus ServiceBusConfig `json:"serviceBus"`
	KeyVault   KeyVaultConfig   `json:"keyVault"`
	Function   FunctionConfig   `json:"functionApp"`
	Monitoring MonitoringConfig `json:"monitoring"`
	Auth       AuthConfig       `json:"auth"`
	// Notifications configures the notifications service's e-mail relay (only read when the
	// service is deployed).
	Notifications NotificationsConfig `json:"notifications"`
}

// NotificationsConfig is the SMTP relay e-mail notifications go through (any relay: Azure
// Communication Services' SMTP endpoint, SendGrid's, a company relay). Without SMTPAddr the app
// gets no SPINE_SMTP_* settings and e-mail notifications fail (webhook and in-app work). The
// password is never in the stack's configuration or state: with SMTPUsername set, the operator
// stores it in the stack's Key Vault as the secret "smtp-password" and the app setting
// SPINE_SMTP_PASSWORD is a Key Vault reference to it.
type NotificationsConfig struct {
	SMTPAddr     string `json:"smtpAddr"`
	SMTPFrom     string `json:"smtpFrom"`
	SMTPUsername string `json:"smtpUsername"`
}

// NetworkConfig is the virtual network's address plan.
type NetworkConfig struct {
	AddressSpace string `json:"addressSpace"`
	// FunctionsSubnet is delegated to the Function App's VNet integration
	// (at least a /27; /26 recommended for Elastic Premium scale-out).
	FunctionsSubnet string `json:"functionsSubnet"`
	// PrivateEndpointsSubnet holds one private endpoint per store sub-resource.
	PrivateEndpointsSubnet string `json:"privateEndpointsSubnet"`
}

// DatabaseConfig selects the relational engine and sizes it.
type DatabaseConfig struct {
	// Engine is "postgres" (Azure Database for PostgreSQL flexible server) or
	// "sqlserver" (Azure SQL).
	Engine string `json:"engine"`
	// Admin is the Microsoft Entra administrator of the server. When it is not
	// set, the principal that runs the deployment is the administrator.
	Admin    *AdminConfig   `json:"admin,omitempty"`
	Postgres PostgresConfig `json:"postgres"`
	SQL      SQLConfig      `json:"sql"`
}

// AdminConfig names a Microsoft Entra principal.
type AdminConfig struct {
	Login    string `json:"login"`
	ObjectID string `json:"objectId"`
	// PrincipalType is "Group", "User" or "ServicePrincipal".
	PrincipalType string `json:"principalType"`
}

// PostgresConfig sizes the PostgreSQL flexible server.
type PostgresConfig struct {
	Version             string `json:"version"`
	SkuName             string `json:"skuName"`
	SkuTier             string `json:"skuTier"`
	StorageSizeGB       int    `json:"storageSizeGB"`
	HighAvailability    string `json:"highAvailability"`
	BackupRetentionDays int    `json:"backupRetentionDays"`
	GeoRedundantBackup  bool   `json:"geoRedundantBackup"`
}

// SQLConfig sizes the Azure SQL databases, optionally in one elastic pool.
type SQLConfig struct {
	// ElasticPool puts every service database in one pool when set.
	ElasticPool *ElasticPoolConfig `json:"elasticPool,omitempty"`
	// DatabaseSku sizes each database when there is no pool.
	DatabaseSku SkuConfig `json:"databaseSku"`
	// BackupStorageRedundancy is "Local", "Zone", "Geo" or "GeoZone".
	BackupStorageRedundancy string `json:"backupStorageRedundancy"`
	ZoneRedundant           bool   `json:"zoneRedundant"`
}

// ElasticPoolConfig sizes an elastic pool.
type ElasticPoolConfig struct {
	Sku                    SkuConfig `json:"sku"`
	PerDatabaseMinCapacity float64   `json:"perDatabaseMinCapacity"`
	PerDatabaseMaxCapacity float64   `json:"perDatabaseMaxCapacity"`
}

// SkuConfig is an Azure SQL SKU.
type SkuConfig struct {
	Name     string `json:"name"`
	Tier     string `json:"tier"`
	Family   string `json:"family,omitempty"`
	Capacity int    `json:"capacity,omitempty"`
}

// StorageConfig is the storage account's redundancy, data protection and
// retention.
type StorageConfig struct {
	SkuName string `json:"skuName"`
	// SoftDeleteDays keeps deleted blobs and containers recoverable.
	SoftDeleteDays int `json:"softDeleteDays"`
	// PreviousVersionRetentionDays deletes previous blob versions of reports and
	// notifications this many days after they became previous versions.
	PreviousVersionRetentionDays int `json:"previousVersionRetentionDays"`
	// ReportRetentionDays is a report artifact's lifetime (default 365): the
	// app's SPINE_REPORTING_ARTIFACT_TTL; the lifecycle rule deletes artifacts
	// ReportBackstopGraceDays later, as the sweep's backstop.
	ReportRetentionDays int `json:"reportRetentionDays"`
	// NotificationCoolAfterDays and NotificationArchiveAfterDays move
	// notification bodies and attachments to the cool, then archive tier.
	NotificationCoolAfterDays    int                `json:"notificationCoolAfterDays"`
	NotificationArchiveAfterDays int                `json:"notificationArchiveAfterDays"`
	AuditArchive                 AuditArchiveConfig `json:"auditArchive"`
}

// AuditArchiveConfig is the WORM retention and tiering of the audit archive.
type AuditArchiveConfig struct {
	// ImmutabilityDays is the time-based retention period of every blob in
	// audit-archive (default 2557 days, seven years).
	ImmutabilityDays int `json:"immutabilityDays"`
	// Locked locks the immutability policy during `pulumi up` (irreversible;
	// required in prod).
	Locked bool `json:"locked"`
	// ColdAfterDays and ArchiveAfterDays move audit archive blobs to the cold,
	// then archive tier.
	ColdAfterDays    int `json:"coldAfterDays"`
	ArchiveAfterDays int `json:"archiveAfterDays"`
}

// RedisConfig sizes the Azure Cache for Redis.
type RedisConfig struct {
	SkuName  string `json:"skuName"`
	Family   string `json:"family"`
	Capacity int    `json:"capacity"`
}

// ServiceBusConfig sizes the Premium namespace and sets the delivery policy of
// every topic and subscription. Durations are ISO 8601 (PT10M, P14D).
type ServiceBusConfig struct {
	Capacity                 int    `json:"capacity"`
	ZoneRedundant            bool   `json:"zoneRedundant"`
	MaxDeliveryCount         int    `json:"maxDeliveryCount"`
	DuplicateDetectionWindow string `json:"duplicateDetectionWindow"`
	MessageTimeToLive        string `json:"messageTimeToLive"`
	LockDuration             string `json:"lockDuration"`
}

// KeyVaultConfig sets the vault's SKU and soft-delete retention.
type KeyVaultConfig struct {
	SkuName                 string `json:"skuName"`
	SoftDeleteRetentionDays int    `json:"softDeleteRetentionDays"`
}

// FunctionConfig chooses the Function App's plan and package.
type FunctionConfig struct {
	// PlanSku and PlanTier: B1-B3/Basic, S1-S3/Standard, P0v3-P3v3/PremiumV3
	// (Dedicated) or EP1-EP3/ElasticPremium (Functions Premium).
	PlanSku  string `json:"planSku"`
	PlanTier string `json:"planTier"`
	// MaxElasticWorkers bounds an Elastic Premium plan's scale-out.
	MaxElasticWorkers int `json:"maxElasticWorkers"`
	// AlwaysReadyInstances is the Elastic Premium always-ready instance count.
	AlwaysReadyInstances int  `json:"alwaysReadyInstances"`
	ZoneRedundant        bool `json:"zoneRedundant"`
	// PackageBlob is the name of the zip package in the deployments container
	// that the app runs from.
	PackageBlob string `json:"packageBlob"`
}

// MonitoringConfig sets the Log Analytics retention.
type MonitoringConfig struct {
	RetentionDays int `json:"retentionDays"`
}

// AuthConfig is the token issuer the app validates. Empty fields default to the
// app's own authorization server at https://{app}.azurewebsites.net/api/connect
// (its JWKS read in process; jwksUrl only for an issuer outside the app).
type AuthConfig struct {
	Issuer   string `json:"issuer"`
	Audience string `json:"audience"`
	JWKSURL  string `json:"jwksUrl"`
}

// Defaults returns the settings a stack gets for every key it does not set.
// They are the secure choices; sizes are the smallest that support the
// required features (private endpoints, zone-independent archive tiering).
func Defaults() Config {
	return Config{
		NamePrefix: "spine",
		Network: NetworkConfig{
			AddressSpace:           "10.40.0.0/16",
			FunctionsSubnet:        "10.40.0.0/26",
			PrivateEndpointsSubnet: "10.40.1.0/24",
		},
		Database: DatabaseConfig{
			Engine: EnginePostgres,
			Postgres: PostgresConfig{
				Version: "17", SkuName: "Standard_B1ms", SkuTier: "Burstable", StorageSizeGB: 32,
				HighAvailability: "Disabled", BackupRetentionDays: 7,
			},
			SQL: SQLConfig{
				DatabaseSku:             SkuConfig{Name: "GP_S_Gen5", Tier: "GeneralPurpose", Family: "Gen5", Capacity: 2},
				BackupStorageRedundancy: "Local",
			},
		},
		Storage: StorageConfig{
			SkuName: "Standard_LRS", SoftDeleteDays: 7, PreviousVersionRetentionDays: 30,
			ReportRetentionDays:       365,
			NotificationCoolAfterDays: 30, NotificationArchiveAfterDays: 90,
			AuditArchive: AuditArchiveConfig{ImmutabilityDays: 2557, ColdAfterDays: 90, ArchiveAfterDays: 365},
		},
		Redis: RedisConfig{SkuName: "Basic", Family: "C", Capacity: 0},
		ServiceBus: ServiceBusConfig{
			Capacity: 1, MaxDeliveryCount: 10, DuplicateDetectionWindow: "PT10M",
			MessageTimeToLive: "P14D", LockDuration: "PT1M",
		},
		KeyVault:   KeyVaultConfig{SkuName: "standard", SoftDeleteRetentionDays: 90},
		Function:   FunctionConfig{PlanSku: "EP1", PlanTier: "ElasticPremium", MaxElasticWorkers: 10, AlwaysReadyInstances: 1, PackageBlob: "spine-functions.zip"},
		Monitoring: MonitoringConfig{RetentionDays: 30},
	}
}

// configKeys maps each spine:* configuration key to the field it sets.
func (c *Config) configKeys() map[string]any {
	return map[string]any{
		"environment":   &c.Environment,
		"namePrefix":    &c.NamePrefix,
		"nameSuffix":    &c.NameSuffix,
		"services":      &c.Services,
		"protect":       &c.Protect,
		"network":       &c.Network,
		"database":      &c.Database,
		"storage":       &c.Storage,
		"redis":         &c.Redis,
		"serviceBus":    &c.ServiceBus,
		"keyVault":      &c.KeyVault,
		"functionApp":   &c.Function,
		"monitoring":    &c.Monitoring,
		"auth":          &c.Auth,
		"notifications": &c.Notifications,
	}
}

// ConfigKeys returns the spine:* configuration keys the program reads, sorted.
func ConfigKeys() []string {
	var c Config
	var keys []string
	for k := range c.configKeys() {
		keys = append(keys, ConfigNamespace+":"+k)
	}
	slices.Sort(keys)
	return keys
}

// LoadConfig reads the stack's configuration over Defaults. Object values are
// merged field by field into the defaults; unknown fields are an error.
func LoadConfig(ctx *pulumi.Context) (Config, error) {
	c := Defaults()
	c.Environment = ctx.Stack()
	c.Location, _ = ctx.GetConfig("azure-native:location")
	var errs []error
	for key, target := range c.configKeys() {
		raw, ok := ctx.GetConfig(ConfigNamespace + ":" + key)
		if !ok {
			continue
		}
		if err := decodeConfigValue(raw, target); err != nil {
			errs = append(errs, fmt.Errorf("config %s:%s: %w", ConfigNamespace, key, err))
		}
	}
	return c, errors.Join(errs...)
}

func decodeConfigValue(raw string, target any) error {
	switch t := target.(type) {
	case *string:
		*t = raw
		return nil
	case *bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return err
		}
		*t = b
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(raw)))
	dec.DisallowUnknownFields()
	return dec.Decode(target)
}

var (
	namePart    = regexp.MustCompile(`^[a-z][a-z0-9]{1,7}$`)
	suffixPart  = regexp.MustCompile(`^[a-z0-9]{0,6}$`)
	uuidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	isoDuration = regexp.MustCompile(`^P(\d+D)?(T(\d+H)?(\d+M)?(\d+S)?)?$`)
)

// archiveCapableSkus are the storage redundancies that support the archive tier.
var archiveCapableSkus = []string{"Standard_LRS", "Standard_GRS", "Standard_RAGRS"}

var planSkus = map[string][]string{
	"Basic":          {"B1", "B2", "B3"},
	"Standard":       {"S1", "S2", "S3"},
	"PremiumV3":      {"P0v3", "P1v3", "P2v3", "P3v3"},
	"ElasticPremium": {"EP1", "EP2", "EP3"},
}

// Validate reports every setting that is invalid or that would break a policy
// this program guarantees (private networking, WORM lock in prod, ...).
func (c Config) Validate() error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if !slices.Contains([]string{EnvDev, EnvStaging, EnvProd}, c.Environment) {
		fail("environment %q: want dev, staging or prod (set %s:environment when the stack has another name)", c.Environment, ConfigNamespace)
	}
	if c.Location == "" {
		fail("azure-native:location is not set")
	}
	if !namePart.MatchString(c.NamePrefix) {
		fail("namePrefix %q: want 2-8 lowercase letters and digits, starting with a letter", c.NamePrefix)
	}
	if !suffixPart.MatchString(c.NameSuffix) {
		fail("nameSuffix %q: want at most 6 lowercase letters and digits", c.NameSuffix)
	}
	names := c.Names()
	if n := len(names.StorageAccount); n < 3 || n > 24 {
		fail("storage account name %q: %d characters, want 3-24 (shorten namePrefix or nameSuffix)", names.StorageAccount, n)
	}
	if n := len(names.KeyVault); n < 3 || n > 24 {
		fail("key vault name %q: %d characters, want 3-24 (shorten namePrefix or nameSuffix)", names.KeyVault, n)
	}
	c.validateServices(fail)
	c.validateNetwork(fail)
	c.validateDatabase(fail)
	c.validateStorage(fail)
	c.validateOthers(fail)
	if c.Environment == EnvProd && !c.Protect {
		fail("prod must set %s:protect: true", ConfigNamespace)
	}
	return errors.Join(errs...)
}

func (c Config) validateServices(fail func(string, ...any)) {
	if len(c.Services) == 0 {
		fail("services: at least one owning service is required")
	}
	seen := map[string]bool{}
	for _, s := range c.Services {
		if _, ok := LookupService(s); !ok {
			fail("services: %q is not an owning service of the product", s)
		}
		if seen[s] {
			fail("services: %q is listed twice", s)
		}
		seen[s] = true
	}
}

func (c Config) validateNetwork(fail func(string, ...any)) {
	space, err := netip.ParsePrefix(c.Network.AddressSpace)
	if err != nil {
		fail("network.addressSpace: %v", err)
		return
	}
	subnets := map[string]struct {
		cidr   string
		maxLen int
	}{
		"functionsSubnet":        {c.Network.FunctionsSubnet, 27},
		"privateEndpointsSubnet": {c.Network.PrivateEndpointsSubnet, 28},
	}
	var parsed []netip.Prefix
	for name, s := range subnets {
		p, err := netip.ParsePrefix(s.cidr)
		if err != nil {
			fail("network.%s: %v", name, err)
			continue
		}
		if p.Masked() != p {
			fail("network.%s %s: not a network address", name, s.cidr)
		}
		if !space.Contains(p.Addr()) || p.Bits() < space.Bits() {
			fail("network.%s %s: not inside %s", name, s.cidr, space)
		}
		if p.Bits() > s.maxLen {
			fail("network.%s %s: too small, want /%d or larger", name, s.cidr, s.maxLen)
		}
		parsed = append(parsed, p)
	}
	if len(parsed) == 2 && parsed[0].Overlaps(parsed[1]) {
		fail("network: functionsSubnet and privateEndpointsSubnet overlap")
	}
}

func (c Config) validateDatabase(fail func(string, ...any)) {
	d := c.Database
	if a := d.Admin; a != nil {
		if a.Login == "" {
			fail("database.admin.login is empty")
		}
		if !uuidPattern.MatchString(a.ObjectID) {
			fail("database.admin.objectId %q: want a Microsoft Entra object ID (UUID)", a.ObjectID)
		}
		if !slices.Contains([]string{"Group", "User", "ServicePrincipal"}, a.PrincipalType) {
			fail("database.admin.principalType %q: want Group, User or ServicePrincipal", a.PrincipalType)
		}
	}
	switch d.Engine {
	case EnginePostgres:
		p := d.Postgres
		if v, err := strconv.Atoi(p.Version); err != nil || v < 14 || v > 18 {
			fail("database.postgres.version %q: want 14-18", p.Version)
		}
		if p.SkuName == "" || !slices.Contains([]string{"Burstable", "GeneralPurpose", "MemoryOptimized"}, p.SkuTier) {
			fail("database.postgres: skuName and skuTier (Burstable, GeneralPurpose, MemoryOptimized) are required")
		}
		if !slices.Contains([]string{"Disabled", "SameZone", "ZoneRedundant"}, p.HighAvailability) {
			fail("database.postgres.highAvailability %q: want Disabled, SameZone or ZoneRedundant", p.HighAvailability)
		}
		if p.SkuTier == "Burstable" && p.HighAvailability != "Disabled" {
			fail("database.postgres: high availability is not available on the Burstable tier")
		}
		if p.StorageSizeGB < 32 {
			fail("database.postgres.storageSizeGB %d: want at least 32", p.StorageSizeGB)
		}
		if p.BackupRetentionDays < 7 || p.BackupRetentionDays > 35 {
			fail("database.postgres.backupRetentionDays %d: want 7-35", p.BackupRetentionDays)
		}
	case EngineSQLServer:
		s := d.SQL
		if s.ElasticPool != nil {
			if s.ElasticPool.Sku.Name == "" || s.ElasticPool.Sku.Tier == "" {
				fail("database.sql.elasticPool.sku: name and tier are required")
			}
			if s.ElasticPool.PerDatabaseMaxCapacity <= 0 || s.ElasticPool.PerDatabaseMinCapacity < 0 ||
				s.ElasticPool.PerDatabaseMinCapacity > s.ElasticPool.PerDatabaseMaxCapacity {
				fail("database.sql.elasticPool: want 0 <= perDatabaseMinCapacity <= perDatabaseMaxCapacity, max > 0")
			}
		} else if s.DatabaseSku.Name == "" {
			fail("database.sql.databaseSku.name is required without an elastic pool")
		}
		if !slices.Contains([]string{"Local", "Zone", "Geo", "GeoZone"}, s.BackupStorageRedundancy) {
			fail("database.sql.backupStorageRedundancy %q: want Local, Zone, Geo or GeoZone", s.BackupStorageRedundancy)
		}
	default:
		fail("database.engine %q: want postgres or sqlserver", d.Engine)
	}
}

func (c Config) validateStorage(fail func(string, ...any)) {
	s := c.Storage
	if !slices.Contains(archiveCapableSkus, s.SkuName) {
		fail("storage.skuName %q: the archive tier (notifications, audit archive) needs one of %v", s.SkuName, archiveCapableSkus)
	}
	positive := map[string]int{
		"softDeleteDays": s.SoftDeleteDays, "previousVersionRetentionDays": s.PreviousVersionRetentionDays,
		"reportRetentionDays": s.ReportRetentionDays, "notificationCoolAfterDays": s.NotificationCoolAfterDays,
		"notificationArchiveAfterDays":  s.NotificationArchiveAfterDays,
		"auditArchive.immutabilityDays": s.AuditArchive.ImmutabilityDays,
		"auditArchive.coldAfterDays":    s.AuditArchive.ColdAfterDays, "auditArchive.archiveAfterDays": s.AuditArchive.ArchiveAfterDays,
	}
	for k, v := range positive {
		if v < 1 {
			fail("storage.%s %d: want at least 1", k, v)
		}
	}
	if s.SoftDeleteDays > 365 {
		fail("storage.softDeleteDays %d: want at most 365", s.SoftDeleteDays)
	}
	if s.AuditArchive.ImmutabilityDays > 146000 {
		fail("storage.auditArchive.immutabilityDays %d: want at most 146000", s.AuditArchive.ImmutabilityDays)
	}
	if s.NotificationCoolAfterDays >= s.NotificationArchiveAfterDays {
		fail("storage: notificationCoolAfterDays (%d) must be before notificationArchiveAfterDays (%d)", s.NotificationCoolAfterDays, s.NotificationArchiveAfterDays)
	}
	if s.AuditArchive.ColdAfterDays >= s.AuditArchive.ArchiveAfterDays {
		fail("storage.auditArchive: coldAfterDays (%d) must be before archiveAfterDays (%d)", s.AuditArchive.ColdAfterDays, s.AuditArchive.ArchiveAfterDays)
	}
	if c.Environment == EnvProd && !s.AuditArchive.Locked {
		fail("storage.auditArchive.locked must be true in prod")
	}
}

func (c Config) validateOthers(fail func(string, ...any)) {
	r := c.Redis
	switch {
	case (r.SkuName == "Basic" || r.SkuName == "Standard") && r.Family == "C" && r.Capacity >= 0 && r.Capacity <= 6:
	case r.SkuName == "Premium" && r.Family == "P" && r.Capacity >= 1 && r.Capacity <= 5:
	default:
		fail("redis %s/%s%d: want Basic or Standard C0-C6, or Premium P1-P5", r.SkuName, r.Family, r.Capacity)
	}
	b := c.ServiceBus
	if !slices.Contains([]int{1, 2, 4, 8, 16}, b.Capacity) {
		fail("serviceBus.capacity %d: want 1, 2, 4, 8 or 16 messaging units", b.Capacity)
	}
	if b.MaxDeliveryCount < 1 || b.MaxDeliveryCount > 100 {
		fail("serviceBus.maxDeliveryCount %d: want 1-100", b.MaxDeliveryCount)
	}
	for k, v := range map[string]string{"duplicateDetectionWindow": b.DuplicateDetectionWindow, "messageTimeToLive": b.MessageTimeToLive, "lockDuration": b.LockDuration} {
		if !isoDuration.MatchString(v) || v == "P" || v == "PT" {
			fail("serviceBus.%s %q: want an ISO 8601 duration such as PT10M or P14D", k, v)
		}
	}
	if !slices.Contains([]string{"standard", "premium"}, c.KeyVault.SkuName) {
		fail("keyVault.skuName %q: want standard or premium", c.KeyVault.SkuName)
	}
	if d := c.KeyVault.SoftDeleteRetentionDays; d < 7 || d > 90 {
		fail("keyVault.softDeleteRetentionDays %d: want 7-90", d)
	}
	f := c.Function
	if skus, ok := planSkus[f.PlanTier]; !ok || !slices.Contains(skus, f.PlanSku) {
		fail("functionApp plan %s/%s: want B1-B3/Basic, S1-S3/Standard, P0v3-P3v3/PremiumV3 or EP1-EP3/ElasticPremium "+
			"(Consumption has no VNet integration; Flex Consumption is not supported by this program)", f.PlanSku, f.PlanTier)
	}
	if f.PlanTier == "ElasticPremium" && (f.MaxElasticWorkers < 1 || f.MaxElasticWorkers > 100 || f.AlwaysReadyInstances < 1 || f.AlwaysReadyInstances > f.MaxElasticWorkers) {
		fail("functionApp: want 1 <= alwaysReadyInstances <= maxElasticWorkers <= 100 on Elastic Premium")
	}
	if f.PlanTier == "ElasticPremium" && f.ZoneRedundant && f.AlwaysReadyInstances < 3 {
		fail("functionApp: a zone-redundant Elastic Premium plan needs at least 3 always-ready instances")
	}
	if f.PackageBlob == "" || strings.ContainsAny(f.PackageBlob, "/\\") {
		fail("functionApp.packageBlob %q: want a blob name without slashes", f.PackageBlob)
	}
	if d := c.Monitoring.RetentionDays; d < 30 || d > 730 {
		fail("monitoring.retentionDays %d: want 30-730", d)
	}
	if n := c.Notifications; n.SMTPAddr != "" {
		if _, port, err := net.SplitHostPort(n.SMTPAddr); err != nil || port == "" {
			fail("notifications.smtpAddr %q: want host:port", n.SMTPAddr)
		}
	} else if n.SMTPFrom != "" || n.SMTPUsername != "" {
		fail("notifications: smtpFrom and smtpUsername need smtpAddr")
	}
	for k, v := range map[string]string{"issuer": c.Auth.Issuer, "jwksUrl": c.Auth.JWKSURL} {
		if v == "" {
			continue
		}
		if u, err := url.Parse(v); err != nil || u.Scheme != "https" || u.Host == "" {
			fail("auth.%s %q: want an https URL", k, v)
		}
	}
}
