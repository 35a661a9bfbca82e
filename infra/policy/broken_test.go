package policy_test

import (
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"spine/infra/internal/stacktest"
	"spine/infra/policy"
)

// A fixture that breaks one rule on purpose: the matching check must fail,
// with the given message, and only the listed other checks may fail with it.
type brokenFixture struct {
	name   string
	base   string
	check  string
	also   []string
	want   string
	mutate func(t *testing.T, s *policy.Snapshot)
}

const (
	tRedis      = "azure-native:redis:Redis"
	tStorage    = "azure-native:storage:StorageAccount"
	tVault      = "azure-native:keyvault:Vault"
	tSecret     = "azure-native:keyvault:Secret"
	tPE         = "azure-native:network:PrivateEndpoint"
	tZoneGroup  = "azure-native:network:PrivateDnsZoneGroup"
	tSQLServer  = "azure-native:sql:Server"
	tSQLDB      = "azure-native:sql:Database"
	tTDE        = "azure-native:sql:TransparentDataEncryption"
	tPGServer   = "azure-native:dbforpostgresql:Server"
	tPGDB       = "azure-native:dbforpostgresql:Database"
	tPGParam    = "azure-native:dbforpostgresql:Configuration"
	tContainer  = "azure-native:storage:BlobContainer"
	tPolicy     = "azure-native:storage:BlobContainerImmutabilityPolicy"
	tLifecycle  = "azure-native:storage:ManagementPolicy"
	tCommand    = "command:local:Command"
	tTopic      = "azure-native:servicebus:Topic"
	tSub        = "azure-native:servicebus:Subscription"
	tRule       = "azure-native:servicebus:Rule"
	tRole       = "azure-native:authorization:RoleAssignment"
	tRedisGrant = "azure-native:redis:AccessPolicyAssignment"
	tWebApp     = "azure-native:web:WebApp"
	tScm        = "azure-native:web:WebAppScmAllowed"
)

// rule returns a lifecycle rule of the management policy by name.
func lifecycleRule(t *testing.T, s *policy.Snapshot, name string) map[string]any {
	t.Helper()
	mp := find(t, s, tLifecycle, "lifecycle")
	rules, _ := mp.In("policy.rules").([]any)
	for _, r := range rules {
		if m := r.(map[string]any); m["name"] == name {
			return m
		}
	}
	t.Fatalf("fixture: no lifecycle rule %q", name)
	return nil
}

var brokenFixtures = []brokenFixture{
	// private networking
	{name: "redis public network access enabled", base: "prod", check: "private-networking", want: `publicNetworkAccess = "Enabled"`,
		mutate: func(t *testing.T, s *policy.Snapshot) {
			set(find(t, s, tRedis, "redis").Inputs, "publicNetworkAccess", "Enabled")
		}},
	{name: "postgres public network access enabled", base: "dev", check: "private-networking", want: `network.publicNetworkAccess = "Enabled"`,
		mutate: func(t *testing.T, s *policy.Snapshot) {
			set(find(t, s, tPGServer, "postgres").Inputs, "network.publicNetworkAccess", "Enabled")
		}},
	{name: "sql server public network access enabled", base: "full-sqlserver-pool", check: "private-networking", want: `publicNetworkAccess = "Enabled"`,
		mutate: func(t *testing.T, s *policy.Snapshot) {
			set(find(t, s, tSQLServer, "sql").Inputs, "publicNetworkAccess", "Enabled")
		}},
	{name: "storage table endpoint missing", base: "dev", check: "private-networking", want: `private endpoint for "table", found 0`,
		mutate: func(t *testing.T, s *policy.Snapshot) { drop(t, s, tPE, "pe-storage-table") }},
	{name: "vault endpoint not in private DNS", base: "staging", check: "private-networking", want: "not registered in private DNS zone privatelink.vaultcore.azure.net",
		mutate: func(t *testing.T, s *policy.Snapshot) { drop(t, s, tZoneGroup, "pe-vault-vault-dns") }},
	{name: "storage firewall allows by default", base: "dev", check: "private-networking", want: `networkRuleSet.defaultAction = "Allow"`,
		mutate: func(t *testing.T, s *policy.Snapshot) {
			set(find(t, s, tStorage, "storage").Inputs, "networkRuleSet.defaultAction", "Allow")
		}},

	// encryption and TLS
	{name: "storage infrastructure encryption off", base: "prod", check: "encryption-and-tls", want: "encryption.requireInfrastructureEncryption = false",
		mutate: func(t *testing.T, s *policy.Snapshot) {
			set(find(t, s, tStorage, "storage").Inputs, "encryption.requireInfrastructureEncryption", false)
		}},
	{name: "storage shared key access allowed", base: "dev", check: "encryption-and-tls", want: "allowSharedKeyAccess = true",
		mutate: func(t *testing.T, s *policy.Snapshot) {
			set(find(t, s, tStorage, "storage").Inputs, "allowSharedKeyAccess", true)
		}},
	{name: "storage TLS 1.0", base: "dev", check: "encryption-and-tls", want: `minimumTlsVersion = "TLS1_0"`,
		mutate: func(t *testing.T, s *policy.Snapshot) {
			set(find(t, s, tStorage, "storage").Inputs, "minimumTlsVersion", "TLS1_0")
		}},
	{name: "redis non-TLS port open", base: "dev", check: "encryption-and-tls", want: "enableNonSslPort = true",
		mutate: func(t *testing.T, s *policy.Snapshot) {
			set(find(t, s, tRedis, "redis").Inputs, "enableNonSslPort", true)
		}},
	{name: "key vault purge protection off", base: "prod", check: "encryption-and-tls", want: "properties.enablePurgeProtection = false",
		mutate: func(t *testing.T, s *policy.Snapshot) {
			set(find(t, s, tVault, "vault").Inputs, "properties.enablePurgeProtection", false)
		}},
	{name: "key vault secret value in clear", base: "dev", check: "encryption-and-tls", want: "properties.value is not registered as a secret",
		mutate: func(t *testing.T, s *policy.Snapshot) {
			r := find(t, s, tSecret, "secret-redis-url")
			set(r.Inputs, "properties.value", r.In("properties.value"))
		}},
	{name: "sql database TDE disabled", base: "full-sqlserver-pool", check: "encryption-and-tls", want: "no transparent data encryption with state Enabled",
		mutate: func(t *testing.T, s *policy.Snapshot) {
			set(find(t, s, tTDE, "tde-billing").Inputs, "state", "Disabled")
		}},
	{name: "sql server accepts SQL logins", base: "full-sqlserver", check: "encryption-and-tls", want: "administrators.azureADOnlyAuthentication = false",
		mutate: func(t *testing.T, s *policy.Snapshot) {
			set(find(t, s, tSQLServer, "sql").Inputs, "administrators.azureADOnlyAuthentication", false)
		}},
	{name: "postgres password authentication", base: "dev", check: "encryption-and-tls", want: `authConfig.passwordAuth = "Enabled"`,
		mutate: func(t *testing.T, s *policy.Snapshot) {
			set(find(t, s, tPGServer, "postgres").Inputs, "authConfig.passwordAuth", "Enabled")
		}},
	{name: "postgres accepts plain connections", base: "staging", check: "encryption-and-tls", want: `require_secure_transport = "off"`,
		mutate: func(t *testing.T, s *policy.Snapshot) {
			set(find(t, s, tPGParam, "postgres-param-require-secure-transport").Inputs, "value", "off")
		}},
	{name: "function app allows HTTP", base: "dev", check: "encryption-and-tls", want: "httpsOnly = false",
		mutate: func(t *testing.T, s *policy.Snapshot) { set(find(t, s, tWebApp, "func").Inputs, "httpsOnly", false) }},
	{name: "SCM basic auth allowed", base: "dev", check: "encryption-and-tls", want: "allow = true",
		mutate: func(t *testing.T, s *policy.Snapshot) {
			set(find(t, s, tScm, "func-scm-basic-auth").Inputs, "allow", true)
		}},

	// audit archive WORM
	{name: "prod lock removed", base: "prod", check: "audit-archive-immutability", want: "must be locked in prod",
		mutate: func(t *testing.T, s *policy.Snapshot) { drop(t, s, tCommand, "audit-archive-immutability-lock") }},
	{name: "dev locked", base: "dev", check: "audit-archive-immutability", want: "must stay unlocked in dev",
		mutate: func(t *testing.T, s *policy.Snapshot) {
			prod, _ := runStack(t, "prod")
			lock := *find(t, prod, tCommand, "audit-archive-immutability-lock")
			s.Resources = append(s.Resources, lock)
		}},
	{name: "lock targets a stale policy", base: "prod", check: "audit-archive-immutability", want: "is not the deployed policy's etag",
		mutate: func(t *testing.T, s *policy.Snapshot) {
			set(find(t, s, tCommand, "audit-archive-immutability-lock").Inputs, "environment.POLICY_ETAG", `"0x8DSTALE"`)
		}},
	{name: "immutability period shortened", base: "prod", check: "audit-archive-immutability", want: "immutabilityPeriodSinceCreationInDays = 1, want 2557",
		mutate: func(t *testing.T, s *policy.Snapshot) {
			set(find(t, s, tPolicy, "audit-archive-immutability").Inputs, "immutabilityPeriodSinceCreationInDays", 1.0)
		}},
	{name: "immutability policy removed", base: "staging", check: "audit-archive-immutability", want: "want one immutability policy on audit-archive, found 0",
		mutate: func(t *testing.T, s *policy.Snapshot) { drop(t, s, tPolicy, "audit-archive-immutability") }},
	{name: "audit archive without version-level WORM", base: "dev", check: "audit-archive-immutability", want: "immutableStorageWithVersioning.enabled = false",
		mutate: func(t *testing.T, s *policy.Snapshot) {
			set(find(t, s, tContainer, "container-audit-archive").Inputs, "immutableStorageWithVersioning.enabled", false)
		}},

	// lifecycle
	{name: "reports kept 30 days instead of the configured 365 and the backstop's grace", base: "dev", check: "lifecycle-rules", want: "baseBlob.delete under reports/ after 367 days",
		mutate: func(t *testing.T, s *policy.Snapshot) {
			set(lifecycleRule(t, s, "reports-expiry"), "definition.actions.baseBlob.delete.daysAfterModificationGreaterThan", 30.0)
		}},
	{name: "report artifacts live longer than the lifecycle rule keeps them", base: "prod", check: "lifecycle-rules",
		want:   "deletes report artifacts after 367 days, not after their lifetime 9000h0m0s",
		mutate: func(t *testing.T, s *policy.Snapshot) { appSetting(t, s, "SPINE_REPORTING_ARTIFACT_TTL", "9000h") }},
	{name: "notifications never archived", base: "prod", check: "lifecycle-rules", want: "baseBlob.tierToArchive under notification-bodies/ after 90 days",
		mutate: func(t *testing.T, s *policy.Snapshot) {
			delete(lifecycleRule(t, s, "notifications-tiering")["definition"].(map[string]any)["actions"].(map[string]any)["baseBlob"].(map[string]any), "tierToArchive")
		}},
	{name: "notification archive never tiered", base: "prod", check: "lifecycle-rules", want: "baseBlob.tierToCold under notification-archive/ after 30 days",
		mutate: func(t *testing.T, s *policy.Snapshot) {
			delete(lifecycleRule(t, s, "notification-archive-tiering")["definition"].(map[string]any)["actions"].(map[string]any)["baseBlob"].(map[string]any), "tierToCold")
		}},
	{name: "notification archive taken offline", base: "prod", check: "lifecycle-rules", want: "takes the notification archive offline (baseBlob.tierToArchive)",
		mutate: func(t *testing.T, s *policy.Snapshot) {
			set(lifecycleRule(t, s, "notification-archive-tiering"), "definition.actions.baseBlob.tierToArchive", map[string]any{"daysAfterModificationGreaterThan": 180.0})
		}},
	{name: "audit archive cold tier at the wrong age", base: "staging", check: "lifecycle-rules", want: "baseBlob.tierToCold under audit-archive/ after 60 days",
		mutate: func(t *testing.T, s *policy.Snapshot) {
			set(lifecycleRule(t, s, "audit-archive-tiering"), "definition.actions.baseBlob.tierToCold.daysAfterModificationGreaterThan", 1.0)
		}},
	{name: "lifecycle deletes from the audit archive", base: "prod", check: "lifecycle-rules", want: "deletes from the audit archive",
		mutate: func(t *testing.T, s *policy.Snapshot) {
			set(lifecycleRule(t, s, "audit-archive-tiering"), "definition.actions.baseBlob.delete.daysAfterModificationGreaterThan", 400.0)
		}},

	// databases, topics, subscriptions
	{name: "a service without its database", base: "full-postgres", check: "database-per-service", want: "databases: got",
		mutate: func(t *testing.T, s *policy.Snapshot) { drop(t, s, tPGDB, "db-billing") }},
	{name: "a database outside the elastic pool", base: "full-sqlserver-pool", check: "database-per-service", want: "not in the elastic pool",
		mutate: func(t *testing.T, s *policy.Snapshot) {
			set(find(t, s, tSQLDB, "db-audit").Inputs, "elasticPoolId", "")
		}},
	{name: "topic without duplicate detection", base: "full-postgres", check: "topic-per-service", want: "requiresDuplicateDetection = false",
		mutate: func(t *testing.T, s *policy.Snapshot) {
			set(find(t, s, tTopic, "topic-audit").Inputs, "requiresDuplicateDetection", false)
		}},
	{name: "a publisher without its topic", base: "full-postgres", check: "topic-per-service", also: []string{"identity-role-assignments"}, want: "topics: got",
		mutate: func(t *testing.T, s *policy.Snapshot) { drop(t, s, tTopic, "topic-config") }},
	{name: "subscription takes every event (1=1)", base: "full-postgres", check: "subscriptions-filter-by-event-type", want: `filter "1=1" does not select on eventType`,
		mutate: func(t *testing.T, s *policy.Snapshot) {
			set(find(t, s, tRule, "rule-tenants-audit").Inputs, "sqlFilter.sqlExpression", "1=1")
		}},
	{name: "filter added beside the default TrueFilter", base: "full-postgres", check: "subscriptions-filter-by-event-type", want: "does not replace $Default",
		mutate: func(t *testing.T, s *policy.Snapshot) {
			set(find(t, s, tRule, "rule-tenants-billing").Inputs, "ruleName", "event-types")
		}},
	{name: "filter on a type the topic does not carry", base: "full-postgres", check: "subscriptions-filter-by-event-type", want: `filters on "UserInvited", which topic tenants does not carry`,
		mutate: func(t *testing.T, s *policy.Snapshot) {
			set(find(t, s, tRule, "rule-tenants-billing").Inputs, "sqlFilter.sqlExpression", "eventType IN ('TenantRegistered', 'UserInvited')")
		}},
	{name: "subscription without dead-lettering on expiry", base: "full-postgres", check: "subscriptions-filter-by-event-type", want: "deadLetteringOnMessageExpiration = false",
		mutate: func(t *testing.T, s *policy.Snapshot) {
			set(find(t, s, tSub, "sub-identity-authz").Inputs, "deadLetteringOnMessageExpiration", false)
		}},

	// identity
	{name: "identity made Owner of the resource group", base: "dev", check: "identity-role-assignments", want: "role assignments differ",
		mutate: func(t *testing.T, s *policy.Snapshot) {
			extra := *find(t, s, tRole, "role-keyvault-secrets-officer")
			extra.Name, extra.ID = "role-owner", "/mock/role-owner"
			extra.Inputs = map[string]any{}
			for k, v := range find(t, s, tRole, "role-keyvault-secrets-officer").Inputs {
				extra.Inputs[k] = v
			}
			extra.Inputs["roleDefinitionId"] = "/subscriptions/" + stacktest.SubscriptionID +
				"/providers/Microsoft.Authorization/roleDefinitions/8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
			extra.Inputs["scope"] = find(t, s, "azure-native:resources:ResourceGroup", "rg").ID
			s.Resources = append(s.Resources, extra)
		}},
	{name: "receiver role missing on a subscription", base: "full-postgres", check: "identity-role-assignments", want: "role assignments differ",
		mutate: func(t *testing.T, s *policy.Snapshot) { drop(t, s, tRole, "role-servicebus-receiver-tenants-audit") }},
	{name: "sender role on the whole namespace", base: "full-postgres", check: "identity-role-assignments", want: "role assignments differ",
		mutate: func(t *testing.T, s *policy.Snapshot) {
			set(find(t, s, tRole, "role-servicebus-sender-tenants").Inputs, "scope",
				find(t, s, "azure-native:servicebus:Namespace", "servicebus").ID)
		}},
	{name: "a role granted to the deployer", base: "prod", check: "identity-role-assignments", want: "not the app's identity",
		mutate: func(t *testing.T, s *policy.Snapshot) {
			set(find(t, s, tRole, "role-keyvault-secrets-officer").Inputs, "principalId", stacktest.DeployerObject)
		}},
	{name: "identity only Secrets User on the vault (the key ring could not write its keys)", base: "dev",
		check: "identity-role-assignments", want: "role assignments differ",
		mutate: func(t *testing.T, s *policy.Snapshot) {
			set(find(t, s, tRole, "role-keyvault-secrets-officer").Inputs, "roleDefinitionId", "/subscriptions/"+
				stacktest.SubscriptionID+"/providers/Microsoft.Authorization/roleDefinitions/4633458b-17de-408a-b874-0445c86b69e6")
		}},
	{name: "redis data owner", base: "dev", check: "identity-role-assignments", want: `accessPolicyName = "Data Owner"`,
		mutate: func(t *testing.T, s *policy.Snapshot) {
			set(find(t, s, tRedisGrant, "redis-access-app").Inputs, "accessPolicyName", "Data Owner")
		}},

	// function app
	{name: "app setting holds the secret value", base: "dev", check: "function-app", want: "SPINE_REDIS_URL is not a Key Vault reference",
		mutate: func(t *testing.T, s *policy.Snapshot) {
			appSetting(t, s, "SPINE_REDIS_URL", find(t, s, tSecret, "secret-redis-url").Str("properties.value"))
		}},
	{name: "app setting references a secret of another vault", base: "staging", check: "function-app", want: "which is no secret of this stack's vault",
		mutate: func(t *testing.T, s *policy.Snapshot) {
			appSetting(t, s, "SPINE_TENANTS_DB_URL", "@Microsoft.KeyVault(SecretUri=https://kv-other.vault.azure.net/secrets/tenants-db-url)")
		}},
	{name: "host storage by connection string", base: "prod", check: "function-app", want: "AzureWebJobsStorage holds a connection string",
		mutate: func(t *testing.T, s *policy.Snapshot) {
			appSetting(t, s, "AzureWebJobsStorage", "DefaultEndpointsProtocol=https;AccountName=stspineprod;AccountKey=bm90LWEta2V5")
		}},
	{name: "app not integrated into the VNet", base: "dev", check: "function-app", want: "not integrated into a subnet delegated",
		mutate: func(t *testing.T, s *policy.Snapshot) {
			set(find(t, s, tWebApp, "func").Inputs, "virtualNetworkSubnetId", "")
		}},
	{name: "app pointed at another vault", base: "staging", check: "function-app", want: "app setting SPINE_KEYVAULT_URL = \"https://kv-other.vault.azure.net/\"",
		mutate: func(t *testing.T, s *policy.Snapshot) {
			appSetting(t, s, "SPINE_KEYVAULT_URL", "https://kv-other.vault.azure.net/")
		}},
	{name: "app without its vault URL", base: "prod", check: "function-app", want: "app setting SPINE_KEYVAULT_URL = \"\"",
		mutate: func(t *testing.T, s *policy.Snapshot) { appSetting(t, s, "SPINE_KEYVAULT_URL", "") }},
	{name: "key vault references resolved with another identity", base: "dev", check: "function-app", want: "keyVaultReferenceIdentity",
		mutate: func(t *testing.T, s *policy.Snapshot) {
			set(find(t, s, tWebApp, "func").Inputs, "keyVaultReferenceIdentity", "SystemAssigned")
		}},

	// outputs
	{name: "stack output exposes a secret", base: "prod", check: "no-secrets-in-outputs", want: "stack output redisUrl contains a secret value",
		mutate: func(t *testing.T, s *policy.Snapshot) {
			s.Outputs["redisUrl"] = policy.Output{Value: find(t, s, tSecret, "secret-redis-url").Str("properties.value")}
		}},
	{name: "stack output carries a secret inside a list", base: "dev", check: "no-secrets-in-outputs", want: "stack output keys contains a secret value",
		mutate: func(t *testing.T, s *policy.Snapshot) {
			s.Outputs["keys"] = policy.Output{Value: []any{"public", find(t, s, tSecret, "secret-appinsights-connection-string").Str("properties.value")}}
		}},
	{name: "stack output is a secret", base: "staging", check: "no-secrets-in-outputs", want: "stack output keyVaultUri is a secret",
		mutate: func(t *testing.T, s *policy.Snapshot) {
			o := s.Outputs["keyVaultUri"]
			o.Secret = true
			s.Outputs["keyVaultUri"] = o
		}},

	// tags, versions, protection
	{name: "store without environment tag", base: "dev", check: "tags", want: `tag environment = ""`,
		mutate: func(t *testing.T, s *policy.Snapshot) {
			delete(find(t, s, tStorage, "storage").Inputs["tags"].(map[string]any), "environment")
		}},
	{name: "secret tagged for another environment", base: "dev", check: "tags", want: `tag environment = "prod", want "dev"`,
		mutate: func(t *testing.T, s *policy.Snapshot) {
			set(find(t, s, tSecret, "secret-redis-url").Inputs, "tags.environment", "prod")
		}},
	{name: "unknown data classification", base: "prod", check: "tags", want: "tag data-classification = \"secret\"",
		mutate: func(t *testing.T, s *policy.Snapshot) {
			set(find(t, s, tVault, "vault").Inputs, "tags.data-classification", "secret")
		}},
	{name: "resource type nobody classified", base: "dev", check: "tags", want: "type is not classified",
		mutate: func(t *testing.T, s *policy.Snapshot) {
			s.Resources = append(s.Resources, policy.Resource{
				Type: "azure-native:network:NetworkSecurityGroup", Name: "nsg", ID: "/mock/nsg",
				Inputs: map[string]any{}, Outputs: map[string]any{}, Version: "3.28.0",
			})
		}},
	{name: "resource without pinned plugin version", base: "dev", check: "provider-versions", want: `registered with plugin version ""`,
		mutate: func(t *testing.T, s *policy.Snapshot) { find(t, s, tTopic, "topic-tenants").Version = "" }},
	{name: "prod vault not protected", base: "prod", check: "prod-protection", want: "not protected",
		mutate: func(t *testing.T, s *policy.Snapshot) { find(t, s, tVault, "vault").Protect = false }},
	{name: "prod audit archive container not protected", base: "prod", check: "prod-protection", want: "not protected",
		mutate: func(t *testing.T, s *policy.Snapshot) {
			find(t, s, tContainer, "container-audit-archive").Protect = false
		}},
}

func TestBrokenFixturesFailTheMatchingPolicy(t *testing.T) {
	checks := map[string]bool{}
	for _, c := range policy.Checks() {
		checks[c.Name] = true
	}
	covered := map[string]bool{}
	for _, f := range brokenFixtures {
		t.Run(f.name, func(t *testing.T) {
			if !checks[f.check] {
				t.Fatalf("unknown check %q", f.check)
			}
			snap, cfg := runStack(t, f.base)
			exp := policy.ExpectFrom(cfg)
			if names, errs := failing(snap, exp); len(names) > 0 {
				t.Fatalf("base %s already fails: %v", f.base, errs)
			}
			f.mutate(t, snap)
			names, errs := failing(snap, exp)
			err := errs[f.check]
			if err == nil {
				t.Fatalf("check %s passed on a snapshot broken on purpose", f.check)
			}
			if !strings.Contains(err.Error(), f.want) {
				t.Errorf("check %s failed with\n%v\nwant a message containing %q", f.check, err, f.want)
			}
			want := append([]string{f.check}, f.also...)
			var got []string
			for n := range names {
				got = append(got, n)
			}
			sort.Strings(got)
			sort.Strings(want)
			if !slices.Equal(got, want) {
				t.Errorf("failing checks %v, want %v: %v", got, want, errs)
			}
			covered[f.check] = true
		})
	}
	for name := range checks {
		if !covered[name] {
			t.Errorf("no broken fixture exercises check %s", name)
		}
	}
}

// A broken stack configuration is refused before anything is registered.
func TestBrokenConfigurationsAreRefused(t *testing.T) {
	cases := []struct {
		name, base, key, value, want string
	}{
		{"prod audit archive unlocked", "prod", "spine:storage",
			`{"skuName":"Standard_RAGRS","auditArchive":{"immutabilityDays":2557,"locked":false,"coldAfterDays":90,"archiveAfterDays":365}}`,
			"storage.auditArchive.locked must be true in prod"},
		{"prod stores unprotected", "prod", "spine:protect", "false", "prod must set spine:protect: true"},
		{"zone-redundant storage cannot archive", "staging", "spine:storage", `{"skuName":"Standard_ZRS"}`, "the archive tier"},
		{"consumption plan has no VNet integration", "dev", "spine:functionApp", `{"planSku":"Y1","planTier":"Dynamic"}`, "Consumption has no VNet integration"},
		{"unknown service", "dev", "spine:services", `["tenants","gateway"]`, `"gateway" is not an owning service`},
		{"misspelled setting", "dev", "spine:storage", `{"reportRetentionDay":30}`, `unknown field "reportRetentionDay"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			project, cfg := fixtureConfig(t, c.base)
			cfg[c.key] = c.value
			_, _, err := stacktest.Run(project, c.base, cfg)
			if err == nil {
				t.Fatal("the program accepted a broken configuration")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want it to contain %q", err, c.want)
			}
		})
	}
}

// hook returns a stack transformation that rewrites the registered properties
// of every resource of one type.
func hook(typ string, edit func(props pulumi.Map)) pulumi.ResourceTransformation {
	return func(args *pulumi.ResourceTransformationArgs) *pulumi.ResourceTransformationResult {
		if args.Type != typ {
			return nil
		}
		props := pulumi.Map{}
		for k, v := range args.Props.(pulumi.Map) {
			props[k] = v
		}
		edit(props)
		return &pulumi.ResourceTransformationResult{Props: props, Opts: args.Opts}
	}
}

// The program itself, bent by a hook at registration time, trips the matching
// policy: the checks read what the program registers, not what it meant to.
func TestBrokenHooksFailTheMatchingPolicy(t *testing.T) {
	cases := []struct {
		name, stack, check, want string
		hook                     pulumi.ResourceTransformation
	}{
		{"redis opened to the internet", "staging", "private-networking", `publicNetworkAccess = "Enabled"`,
			hook(tRedis, func(p pulumi.Map) { p["publicNetworkAccess"] = pulumi.String("Enabled") })},
		{"prod lock turned into a no-op", "prod", "audit-archive-immutability", "must be locked in prod",
			hook(tCommand, func(p pulumi.Map) { p["create"] = pulumi.String("true") })},
		{"subscription filter widened to every event", "dev", "subscriptions-filter-by-event-type", "does not select on eventType",
			hook(tRule, func(p pulumi.Map) { p["sqlFilter"] = pulumi.Map{"sqlExpression": pulumi.String("1=1")} })},
		{"key vault secret written in clear", "dev", "encryption-and-tls", "not registered as a secret",
			hook(tSecret, func(p pulumi.Map) {
				p["properties"] = pulumi.Map{"value": pulumi.String("rediss://leaked@example:6380"), "contentType": pulumi.String("text/plain")}
			})},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			project, cfg := fixtureConfig(t, c.stack)
			if c.check == "subscriptions-filter-by-event-type" {
				cfg["spine:services"] = mustJSON(t, allServices())
			}
			snap, loaded, err := stacktest.Run(project, c.stack, cfg, c.hook)
			if err != nil {
				t.Fatal(err)
			}
			var check policy.Check
			for _, ch := range policy.Checks() {
				if ch.Name == c.check {
					check = ch
				}
			}
			err = check.Run(snap, policy.ExpectFrom(loaded))
			if err == nil {
				t.Fatalf("check %s passed on a program bent on purpose", c.check)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("check %s failed with\n%v\nwant a message containing %q", c.check, err, c.want)
			}
		})
	}
}
