package spine

import (
	"strings"
	"testing"
)

func validDev() Config {
	c := Defaults()
	c.Environment = EnvDev
	c.Location = "westeurope"
	c.Services = []string{"tenants"}
	return c
}

func TestDefaultsAreValid(t *testing.T) {
	if err := validDev().Validate(); err != nil {
		t.Fatalf("defaults with environment, location and services: %v", err)
	}
	prod := validDev()
	prod.Environment, prod.Protect, prod.Storage.AuditArchive.Locked = EnvProd, true, true
	if err := prod.Validate(); err != nil {
		t.Fatalf("prod with protect and lock: %v", err)
	}
}

func TestValidateRejects(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"unknown environment", func(c *Config) { c.Environment = "qa" }, `environment "qa"`},
		{"no location", func(c *Config) { c.Location = "" }, "azure-native:location is not set"},
		{"bad prefix", func(c *Config) { c.NamePrefix = "Spine!" }, "namePrefix"},
		{"bad suffix", func(c *Config) { c.NameSuffix = "a-b" }, "nameSuffix"},
		{"key vault name too long", func(c *Config) {
			c.NamePrefix, c.Environment, c.NameSuffix = "abcdefgh", EnvStaging, "abcdef"
		}, "key vault name"},
		{"no services", func(c *Config) { c.Services = nil }, "at least one owning service"},
		{"unknown service", func(c *Config) { c.Services = []string{"tenants", "gateway"} }, `"gateway" is not an owning service`},
		{"duplicate service", func(c *Config) { c.Services = []string{"tenants", "tenants"} }, "listed twice"},
		{"bad address space", func(c *Config) { c.Network.AddressSpace = "10.0.0/16" }, "network.addressSpace"},
		{"subnet outside the address space", func(c *Config) { c.Network.FunctionsSubnet = "10.99.0.0/26" }, "not inside"},
		{"overlapping subnets", func(c *Config) { c.Network.PrivateEndpointsSubnet = "10.40.0.0/24" }, "overlap"},
		{"integration subnet too small", func(c *Config) { c.Network.FunctionsSubnet = "10.40.0.0/28" }, "too small"},
		{"unknown engine", func(c *Config) { c.Database.Engine = "mysql" }, `database.engine "mysql"`},
		{"burstable with high availability", func(c *Config) { c.Database.Postgres.HighAvailability = "ZoneRedundant" }, "Burstable"},
		{"postgres too old", func(c *Config) { c.Database.Postgres.Version = "12" }, "database.postgres.version"},
		{"admin without object ID", func(c *Config) {
			c.Database.Admin = &AdminConfig{Login: "dba", ObjectID: "dba-group", PrincipalType: "Group"}
		}, "database.admin.objectId"},
		{"sql without sku or pool", func(c *Config) {
			c.Database.Engine = EngineSQLServer
			c.Database.SQL.DatabaseSku = SkuConfig{}
		}, "databaseSku.name is required"},
		{"sql pool with inverted capacities", func(c *Config) {
			c.Database.Engine = EngineSQLServer
			c.Database.SQL.ElasticPool = &ElasticPoolConfig{Sku: SkuConfig{Name: "GP_Gen5", Tier: "GeneralPurpose"}, PerDatabaseMinCapacity: 2, PerDatabaseMaxCapacity: 1}
		}, "perDatabaseMinCapacity"},
		{"zone-redundant storage", func(c *Config) { c.Storage.SkuName = "Standard_ZRS" }, "archive tier"},
		{"notifications archived before cool", func(c *Config) { c.Storage.NotificationCoolAfterDays = 90 }, "notificationCoolAfterDays"},
		{"smtp from without a relay", func(c *Config) { c.Notifications.SMTPFrom = "a@b.example" }, "need smtpAddr"},
		{"smtp relay without a port", func(c *Config) { c.Notifications.SMTPAddr = "smtp.example.com" }, "notifications.smtpAddr"},
		{"audit archived before cold", func(c *Config) { c.Storage.AuditArchive.ColdAfterDays = 400 }, "coldAfterDays"},
		{"no report retention", func(c *Config) { c.Storage.ReportRetentionDays = 0 }, "reportRetentionDays 0"},
		{"prod unlocked", func(c *Config) { c.Environment, c.Protect = EnvProd, true }, "locked must be true in prod"},
		{"prod unprotected", func(c *Config) { c.Environment, c.Storage.AuditArchive.Locked = EnvProd, true }, "prod must set spine:protect"},
		{"redis family mismatch", func(c *Config) { c.Redis = RedisConfig{SkuName: "Basic", Family: "P", Capacity: 1} }, "redis"},
		{"service bus capacity", func(c *Config) { c.ServiceBus.Capacity = 3 }, "serviceBus.capacity"},
		{"no delivery attempts", func(c *Config) { c.ServiceBus.MaxDeliveryCount = 0 }, "maxDeliveryCount"},
		{"duration not ISO 8601", func(c *Config) { c.ServiceBus.DuplicateDetectionWindow = "10m" }, "duplicateDetectionWindow"},
		{"key vault retention", func(c *Config) { c.KeyVault.SoftDeleteRetentionDays = 120 }, "softDeleteRetentionDays 120"},
		{"consumption plan", func(c *Config) { c.Function.PlanSku, c.Function.PlanTier = "Y1", "Dynamic" }, "Consumption has no VNet integration"},
		{"zone-redundant premium with one instance", func(c *Config) { c.Function.ZoneRedundant = true }, "at least 3 always-ready"},
		{"package in a folder", func(c *Config) { c.Function.PackageBlob = "builds/app.zip" }, "packageBlob"},
		{"plain-text issuer", func(c *Config) { c.Auth.Issuer = "http://issuer.example" }, "auth.issuer"},
		{"short log retention", func(c *Config) { c.Monitoring.RetentionDays = 7 }, "monitoring.retentionDays"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := validDev()
			tc.mutate(&c)
			err := c.Validate()
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestValidateReportsEveryProblemAtOnce(t *testing.T) {
	c := validDev()
	c.Location, c.Services, c.Redis.Capacity = "", nil, 9
	err := c.Validate()
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{"location", "owning service", "redis"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestDecodeConfigValue(t *testing.T) {
	c := Defaults()
	if err := decodeConfigValue(`{"auditArchive":{"locked":true}}`, &c.Storage); err != nil {
		t.Fatal(err)
	}
	if !c.Storage.AuditArchive.Locked || c.Storage.AuditArchive.ImmutabilityDays != 2557 || c.Storage.ReportRetentionDays != 365 {
		t.Errorf("an object value must merge into the defaults, got %+v", c.Storage)
	}
	if err := decodeConfigValue(`{"lockd":true}`, &c.Storage); err == nil {
		t.Error("an unknown field was accepted")
	}
	if err := decodeConfigValue("yes please", &c.Protect); err == nil {
		t.Error("a non-boolean protect was accepted")
	}
	if err := decodeConfigValue("true", &c.Protect); err != nil || !c.Protect {
		t.Errorf("protect: %v, %v", c.Protect, err)
	}
	if err := decodeConfigValue("x1", &c.NameSuffix); err != nil || c.NameSuffix != "x1" {
		t.Errorf("nameSuffix: %q, %v", c.NameSuffix, err)
	}
}

func TestNames(t *testing.T) {
	c := validDev()
	n := c.Names()
	if n.StorageAccount != "stspinedev" || n.KeyVault != "kv-spine-dev" || n.DatabaseServer != "psql-spine-dev" {
		t.Errorf("names without suffix: %+v", n)
	}
	c.NameSuffix = "x7"
	c.Database.Engine = EngineSQLServer
	n = c.Names()
	if n.StorageAccount != "stspinedevx7" || n.KeyVault != "kv-spine-dev-x7" || n.DatabaseServer != "sql-spine-dev-x7" ||
		n.FunctionApp != "func-spine-dev-x7" || n.ResourceGroup != "rg-spine-dev" {
		t.Errorf("names with suffix: %+v", n)
	}
}

func TestConfigKeys(t *testing.T) {
	keys := ConfigKeys()
	for _, want := range []string{"spine:services", "spine:storage", "spine:database", "spine:protect"} {
		found := false
		for _, k := range keys {
			found = found || k == want
		}
		if !found {
			t.Errorf("ConfigKeys() = %v, missing %s", keys, want)
		}
	}
}
