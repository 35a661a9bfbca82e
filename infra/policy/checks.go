package policy

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"spine/infra/azure"
	"spine/infra/spine"
)

// Type tokens the checks read.
const (
	tResourceGroup      = "azure-native:resources:ResourceGroup"
	tVirtualNetwork     = "azure-native:network:VirtualNetwork"
	tSubnet             = "azure-native:network:Subnet"
	tPrivateEndpoint    = "azure-native:network:PrivateEndpoint"
	tDNSZoneGroup       = "azure-native:network:PrivateDnsZoneGroup"
	tPrivateZone        = "azure-native:privatedns:PrivateZone"
	tZoneLink           = "azure-native:privatedns:VirtualNetworkLink"
	tIdentity           = "azure-native:managedidentity:UserAssignedIdentity"
	tRoleAssignment     = "azure-native:authorization:RoleAssignment"
	tStorageAccount     = "azure-native:storage:StorageAccount"
	tBlobService        = "azure-native:storage:BlobServiceProperties"
	tBlobContainer      = "azure-native:storage:BlobContainer"
	tImmutabilityPolicy = "azure-native:storage:BlobContainerImmutabilityPolicy"
	tManagementPolicy   = "azure-native:storage:ManagementPolicy"
	tTable              = "azure-native:storage:Table"
	tVault              = "azure-native:keyvault:Vault"
	tSecret             = "azure-native:keyvault:Secret"
	tRedis              = "azure-native:redis:Redis"
	tRedisAccess        = "azure-native:redis:AccessPolicyAssignment"
	tNamespace          = "azure-native:servicebus:Namespace"
	tTopic              = "azure-native:servicebus:Topic"
	tSubscription       = "azure-native:servicebus:Subscription"
	tRule               = "azure-native:servicebus:Rule"
	tSQLServer          = "azure-native:sql:Server"
	tSQLDatabase        = "azure-native:sql:Database"
	tElasticPool        = "azure-native:sql:ElasticPool"
	tTDE                = "azure-native:sql:TransparentDataEncryption"
	tPGServer           = "azure-native:dbforpostgresql:Server"
	tPGDatabase         = "azure-native:dbforpostgresql:Database"
	tPGConfiguration    = "azure-native:dbforpostgresql:Configuration"
	tPGAdmin            = "azure-native:dbforpostgresql:AdministratorsMicrosoftEntra"
	tPlan               = "azure-native:web:AppServicePlan"
	tWebApp             = "azure-native:web:WebApp"
	tScmAllowed         = "azure-native:web:WebAppScmAllowed"
	tFtpAllowed         = "azure-native:web:WebAppFtpAllowed"
	tWorkspace          = "azure-native:operationalinsights:Workspace"
	tComponent          = "azure-native:applicationinsights:Component"
	tCommand            = "command:local:Command"
)

// Check is one policy.
type Check struct {
	Name        string
	Description string
	Run         func(*Snapshot, Expectations) error
}

// Checks returns every policy, in a fixed order.
func Checks() []Check {
	return []Check{
		{"private-networking", "every store has a private endpoint per sub-resource, registered in its private DNS zone, and public network access disabled", PrivateNetworking},
		{"encryption-and-tls", "encryption at rest, TLS 1.2+, Entra-only authentication and secret values registered as secrets", EncryptionAndTLS},
		{"audit-archive-immutability", "audit-archive has a version-level WORM policy of the configured period, locked in prod and unlocked in dev", AuditArchiveImmutability},
		{"lifecycle-rules", "lifecycle rules delete reports, tier notifications and the audit archive at the configured ages", LifecycleRules},
		{"database-per-service", "one database per configured service on the configured engine", DatabasePerService},
		{"topic-per-service", "one topic with duplicate detection per publishing service", TopicPerService},
		{"subscriptions-filter-by-event-type", "one subscription per consumer and topic, whose only rule is an eventType SQL filter", SubscriptionsFilterByEventType},
		{"identity-role-assignments", "the app's identity holds exactly the listed role assignments", IdentityRoleAssignments},
		{"function-app", "the Function App runs as its identity in the VNet, HTTPS only, with Key Vault references for secrets", FunctionApp},
		{"no-secrets-in-outputs", "no stack output is or contains a secret value", NoSecretsInOutputs},
		{"tags", "every taggable resource carries environment, owner-service and data-classification", Tags},
		{"provider-versions", "every resource pins its provider plugin version", ProviderVersions},
		{"prod-protection", "in prod, every store is protected from deletion", ProdProtection},
	}
}

// CheckAll runs every policy and joins their failures, each prefixed with the
// policy's name.
func CheckAll(s *Snapshot, e Expectations) error {
	var errs []error
	for _, c := range Checks() {
		if err := c.Run(s, e); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", c.Name, err))
		}
	}
	return errors.Join(errs...)
}

// collector gathers violations.
type collector struct{ errs []error }

func (c *collector) add(err error) {
	if err != nil {
		c.errs = append(c.errs, err)
	}
}

func (c *collector) failf(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf(format, args...))
}

func (c *collector) err() error { return errors.Join(c.errs...) }

// one returns the single resource of a type, or records an error.
func (c *collector) one(s *Snapshot, token string) (Resource, bool) {
	rs := s.OfType(token)
	if len(rs) != 1 {
		c.failf("want exactly one %s, found %d", token, len(rs))
		return Resource{}, false
	}
	return rs[0], true
}

// storeKind describes a store type: its private link sub-resources and where
// its public network access switch is.
type storeKind struct {
	token, publicAccess, engine string
	groups                      []string
}

var storeKinds = []storeKind{
	{token: tStorageAccount, publicAccess: "publicNetworkAccess", groups: []string{"blob", "table"}},
	{token: tVault, publicAccess: "properties.publicNetworkAccess", groups: []string{"vault"}},
	{token: tRedis, publicAccess: "publicNetworkAccess", groups: []string{"redisCache"}},
	{token: tNamespace, publicAccess: "publicNetworkAccess", groups: []string{"namespace"}},
	{token: tSQLServer, publicAccess: "publicNetworkAccess", groups: []string{"sqlServer"}, engine: spine.EngineSQLServer},
	{token: tPGServer, publicAccess: "network.publicNetworkAccess", groups: []string{"postgresqlServer"}, engine: spine.EnginePostgres},
}

// privateZones are the private DNS zones of each sub-resource (Azure public cloud).
var privateZones = map[string]string{
	"blob":             "privatelink.blob.core.windows.net",
	"table":            "privatelink.table.core.windows.net",
	"vault":            "privatelink.vaultcore.azure.net",
	"redisCache":       "privatelink.redis.cache.windows.net",
	"namespace":        "privatelink.servicebus.windows.net",
	"sqlServer":        "privatelink.database.windows.net",
	"postgresqlServer": "privatelink.postgres.database.azure.com",
}

// PrivateNetworking checks that every store is reachable only through private
// endpoints that resolve through private DNS zones linked to the network.
func PrivateNetworking(s *Snapshot, e Expectations) error {
	var c collector
	for _, kind := range storeKinds {
		stores := s.OfType(kind.token)
		want := 1
		if kind.engine != "" && kind.engine != e.Engine {
			want = 0
		}
		if len(stores) != want {
			c.failf("want %d %s, found %d", want, kind.token, len(stores))
		}
		for _, store := range stores {
			if got := store.Str(kind.publicAccess); got != "Disabled" {
				c.failf("%s: %s = %q, want \"Disabled\"", store, kind.publicAccess, got)
			}
			for _, group := range kind.groups {
				c.add(privateEndpointFor(s, store, group))
			}
		}
	}
	if sa, ok := c.one(s, tStorageAccount); ok {
		c.add(sa.mustEqual("networkRuleSet.defaultAction", "Deny"))
	}
	if kv, ok := c.one(s, tVault); ok {
		c.add(kv.mustEqual("properties.networkAcls.defaultAction", "Deny"))
	}
	return c.err()
}

func privateEndpointFor(s *Snapshot, store Resource, group string) error {
	var found []Resource
	for _, pe := range s.OfType(tPrivateEndpoint) {
		conns, _ := pe.In("privateLinkServiceConnections").([]any)
		for _, conn := range conns {
			m, _ := conn.(map[string]any)
			groups, _ := m["groupIds"].([]any)
			if m["privateLinkServiceId"] == store.ID && slices.Contains(groups, any(group)) {
				found = append(found, pe)
			}
		}
	}
	if len(found) != 1 {
		return fmt.Errorf("%s: want one private endpoint for %q, found %d", store, group, len(found))
	}
	pe := found[0]
	subnet, ok := s.ByID(pe.Str("subnet.id"))
	if !ok || subnet.Type != tSubnet {
		return fmt.Errorf("%s: subnet %q is not a subnet of this stack", pe, pe.Str("subnet.id"))
	}
	if len(subnet.strListOfObjects("delegations", "serviceName")) > 0 {
		return fmt.Errorf("%s: placed in delegated subnet %s", pe, subnet)
	}
	zoneName := privateZones[group]
	var zone Resource
	for _, z := range s.OfType(tPrivateZone) {
		if z.Str("privateZoneName") == zoneName {
			zone = z
		}
	}
	if zone.ID == "" {
		return fmt.Errorf("%s: no private DNS zone %s", store, zoneName)
	}
	registered := false
	for _, g := range s.OfType(tDNSZoneGroup) {
		if g.Str("privateEndpointName") != pe.Str("privateEndpointName") {
			continue
		}
		for _, cfg := range g.objects("privateDnsZoneConfigs") {
			if cfg["privateDnsZoneId"] == zone.ID {
				registered = true
			}
		}
	}
	if !registered {
		return fmt.Errorf("%s: not registered in private DNS zone %s", pe, zoneName)
	}
	var vnet Resource
	for _, v := range s.OfType(tVirtualNetwork) {
		if v.Str("virtualNetworkName") == subnet.Str("virtualNetworkName") {
			vnet = v
		}
	}
	for _, l := range s.OfType(tZoneLink) {
		if l.Str("privateZoneName") == zoneName && vnet.ID != "" && l.Str("virtualNetwork.id") == vnet.ID {
			return nil
		}
	}
	return fmt.Errorf("private DNS zone %s is not linked to the endpoint's virtual network", zoneName)
}

// objects returns a list input property of objects.
func (r Resource) objects(path string) []map[string]any {
	var out []map[string]any
	items, _ := r.In(path).([]any)
	for _, it := range items {
		if m, ok := it.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

// strListOfObjects returns one string field of each object of a list property.
func (r Resource) strListOfObjects(path, field string) []string {
	var out []string
	for _, m := range r.objects(path) {
		if v, ok := m[field].(string); ok && v != "" {
			out = append(out, v)
		}
	}
	return out
}

// EncryptionAndTLS checks encryption at rest, minimum TLS versions, disabled
// plain-text and key-based access, and that secret values are Pulumi secrets.
func EncryptionAndTLS(s *Snapshot, e Expectations) error {
	var c collector
	expect := func(token string, props map[string]any) {
		rs := s.OfType(token)
		if len(rs) == 0 {
			c.failf("no %s registered", token)
		}
		for _, r := range rs {
			keys := make([]string, 0, len(props))
			for k := range props {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				c.add(r.mustEqual(k, props[k]))
			}
		}
	}
	expect(tStorageAccount, map[string]any{
		"kind": "StorageV2", "minimumTlsVersion": "TLS1_2", "enableHttpsTrafficOnly": true,
		"allowBlobPublicAccess": false, "allowSharedKeyAccess": false,
		"encryption.keySource": "Microsoft.Storage", "encryption.requireInfrastructureEncryption": true,
		"encryption.services.blob.enabled": true, "encryption.services.table.enabled": true,
	})
	expect(tBlobService, map[string]any{
		"isVersioningEnabled": true, "deleteRetentionPolicy.enabled": true, "containerDeleteRetentionPolicy.enabled": true,
	})
	expect(tBlobContainer, map[string]any{"publicAccess": "None"})
	expect(tVault, map[string]any{
		"properties.enableRbacAuthorization": true, "properties.enableSoftDelete": true,
		"properties.enablePurgeProtection": true,
	})
	for _, kv := range s.OfType(tVault) {
		if d, _ := kv.In("properties.softDeleteRetentionInDays").(float64); d < 7 {
			c.failf("%s: softDeleteRetentionInDays = %v, want >= 7", kv, d)
		}
	}
	for _, secret := range s.OfType(tSecret) {
		if !secret.InputIsSecret("properties.value") {
			c.failf("%s: properties.value is not registered as a secret", secret)
		}
	}
	expect(tRedis, map[string]any{
		"enableNonSslPort": false, "minimumTlsVersion": "1.2", "redisConfiguration.aadEnabled": "true",
		"disableAccessKeyAuthentication": true,
	})
	expect(tNamespace, map[string]any{"minimumTlsVersion": "1.2", "disableLocalAuth": true, "sku.name": "Premium"})
	switch e.Engine {
	case spine.EngineSQLServer:
		expect(tSQLServer, map[string]any{
			"minimalTlsVersion": "1.2", "administrators.administratorType": "ActiveDirectory",
			"administrators.azureADOnlyAuthentication": true,
		})
		for _, db := range s.OfType(tSQLDatabase) {
			ok := false
			for _, tde := range s.OfType(tTDE) {
				if tde.Str("databaseName") == db.Str("databaseName") && tde.Str("state") == "Enabled" {
					ok = true
				}
			}
			if !ok {
				c.failf("%s: no transparent data encryption with state Enabled", db)
			}
		}
	case spine.EnginePostgres:
		expect(tPGServer, map[string]any{
			"authConfig.activeDirectoryAuth": "Enabled", "authConfig.passwordAuth": "Disabled",
			"dataEncryption.type": "SystemAssigned",
		})
		params := map[string]string{}
		for _, p := range s.OfType(tPGConfiguration) {
			params[p.Str("configurationName")] = p.Str("value")
		}
		if params["require_secure_transport"] != "on" {
			c.failf("postgres: require_secure_transport = %q, want \"on\"", params["require_secure_transport"])
		}
		if v := params["ssl_min_protocol_version"]; v != "TLSv1.2" && v != "TLSv1.3" {
			c.failf("postgres: ssl_min_protocol_version = %q, want TLSv1.2 or TLSv1.3", v)
		}
		if len(s.OfType(tPGAdmin)) != 1 {
			c.failf("postgres: want exactly one Microsoft Entra administrator")
		}
	}
	expect(tWebApp, map[string]any{
		"httpsOnly": true, "siteConfig.minTlsVersion": "1.2", "siteConfig.scmMinTlsVersion": "1.2",
		"siteConfig.ftpsState": "Disabled",
	})
	expect(tScmAllowed, map[string]any{"allow": false})
	expect(tFtpAllowed, map[string]any{"allow": false})
	return c.err()
}

// AuditArchiveImmutability checks the WORM policy of the audit archive and its
// lock: a lock command exists exactly when the stack must be (or chose to be)
// locked, and it targets the deployed policy.
func AuditArchiveImmutability(s *Snapshot, e Expectations) error {
	var c collector
	var container Resource
	for _, r := range s.OfType(tBlobContainer) {
		if r.Str("containerName") == spine.ContainerAuditArchive {
			container = r
		}
	}
	if container.ID == "" {
		return errors.New("no audit-archive container")
	}
	c.add(container.mustEqual("immutableStorageWithVersioning.enabled", true))
	var policies []Resource
	for _, p := range s.OfType(tImmutabilityPolicy) {
		if p.Str("containerName") == spine.ContainerAuditArchive {
			policies = append(policies, p)
		}
	}
	if len(policies) != 1 {
		c.failf("want one immutability policy on audit-archive, found %d", len(policies))
		return c.err()
	}
	policy := policies[0]
	c.add(policy.mustEqual("immutabilityPeriodSinceCreationInDays", e.ImmutabilityDays))
	c.add(policy.mustEqual("allowProtectedAppendWrites", false))
	c.add(policy.mustEqual("allowProtectedAppendWritesAll", false))
	if sa, ok := c.one(s, tStorageAccount); ok && policy.Str("accountName") != sa.Str("accountName") {
		c.failf("%s: on account %q, want %q", policy, policy.Str("accountName"), sa.Str("accountName"))
	}

	var locks []Resource
	for _, cmd := range s.OfType(tCommand) {
		if strings.Contains(cmd.Str("create"), "immutability-policy lock") {
			locks = append(locks, cmd)
		}
	}
	locked := len(locks) > 0
	switch {
	case e.LockRequired && !locked:
		c.failf("the audit-archive immutability policy must be locked in %s, but no lock is registered", e.Environment)
	case e.LockForbidden && locked:
		c.failf("the audit-archive immutability policy must stay unlocked in %s, but a lock is registered", e.Environment)
	case locked != e.Locked:
		c.failf("audit-archive lock registered = %v, configured locked = %v", locked, e.Locked)
	}
	if len(locks) > 1 {
		c.failf("want at most one lock command, found %d", len(locks))
	}
	for _, lock := range locks {
		env := func(k string) string { return lock.Str("environment." + k) }
		if env("CONTAINER_NAME") != spine.ContainerAuditArchive {
			c.failf("%s: locks container %q, want audit-archive", lock, env("CONTAINER_NAME"))
		}
		if env("ACCOUNT_NAME") != policy.Str("accountName") {
			c.failf("%s: locks account %q, want %q", lock, env("ACCOUNT_NAME"), policy.Str("accountName"))
		}
		if etag, _ := policy.Out("etag").(string); etag == "" || env("POLICY_ETAG") != etag {
			c.failf("%s: if-match %q is not the deployed policy's etag %q", lock, env("POLICY_ETAG"), etag)
		}
		if !lock.Protect {
			c.failf("%s: the lock must be protected", lock)
		}
	}
	return c.err()
}

// lifecycleExpectation is one lifecycle action the account's policy must hold.
type lifecycleExpectation struct {
	prefix, action string
	days           int
}

// LifecycleRules checks the account's lifecycle management policy.
func LifecycleRules(s *Snapshot, e Expectations) error {
	var c collector
	mp, ok := c.one(s, tManagementPolicy)
	if !ok {
		return c.err()
	}
	if sa, ok := c.one(s, tStorageAccount); ok && mp.Str("accountName") != sa.Str("accountName") {
		c.failf("%s: on account %q, want %q", mp, mp.Str("accountName"), sa.Str("accountName"))
	}
	want := []lifecycleExpectation{
		{spine.ContainerReports + "/", "baseBlob.delete", e.ReportBackstopDays},
		{spine.ContainerNotificationBodies + "/", "baseBlob.tierToCool", e.NotificationCoolAfterDays},
		{spine.ContainerNotificationBodies + "/", "baseBlob.tierToArchive", e.NotificationArchiveAfterDays},
		{spine.ContainerNotificationAttachments + "/", "baseBlob.tierToCool", e.NotificationCoolAfterDays},
		{spine.ContainerNotificationAttachments + "/", "baseBlob.tierToArchive", e.NotificationArchiveAfterDays},
		{spine.ContainerNotificationArchive + "/", "baseBlob.tierToCold", spine.NotificationArchiveColdAfterDays},
		{spine.ContainerAuditArchive + "/", "baseBlob.tierToCold", e.AuditColdAfterDays},
		{spine.ContainerAuditArchive + "/", "baseBlob.tierToArchive", e.AuditArchiveAfterDays},
	}
	rules := mp.objects("policy.rules")
	for _, w := range want {
		var days []any
		for _, rule := range rules {
			if rule["enabled"] != true || rule["type"] != "Lifecycle" {
				continue
			}
			blobTypes, _ := lookup(rule, "definition.filters.blobTypes").([]any)
			prefixes, _ := lookup(rule, "definition.filters.prefixMatch").([]any)
			if !slices.Contains(blobTypes, any("blockBlob")) || !slices.Contains(prefixes, any(w.prefix)) {
				continue
			}
			if d := lookup(rule, "definition.actions."+w.action+".daysAfterModificationGreaterThan"); d != nil {
				days = append(days, d)
			}
		}
		if len(days) != 1 || days[0] != float64(w.days) {
			c.failf("lifecycle: %s under %s after %d days: found %s", w.action, w.prefix, w.days, show(days))
		}
	}
	c.add(reportBackstop(s, rules))
	// The notification archive stays online (the API reads it): never the
	// archive tier, never deleted.
	for _, rule := range rules {
		prefixes, _ := lookup(rule, "definition.filters.prefixMatch").([]any)
		for _, p := range prefixes {
			ps, _ := p.(string)
			if !strings.HasPrefix(ps, spine.ContainerNotificationArchive+"/") && ps != spine.ContainerNotificationArchive {
				continue
			}
			for _, action := range []string{"baseBlob.tierToArchive", "baseBlob.delete"} {
				if lookup(rule, "definition.actions."+action) != nil {
					c.failf("lifecycle rule %v takes the notification archive offline (%s): GET /api/notifications/{id} reads it", rule["name"], action)
				}
			}
		}
	}
	// Nothing may delete from the WORM container.
	for _, rule := range rules {
		prefixes, _ := lookup(rule, "definition.filters.prefixMatch").([]any)
		for _, p := range prefixes {
			ps, _ := p.(string)
			if !strings.HasPrefix(ps, spine.ContainerAuditArchive+"/") && ps != spine.ContainerAuditArchive {
				continue
			}
			for _, action := range []string{"baseBlob.delete", "version.delete", "snapshot.delete"} {
				if lookup(rule, "definition.actions."+action) != nil {
					c.failf("lifecycle rule %v deletes from the audit archive (%s)", rule["name"], action)
				}
			}
		}
	}
	return c.err()
}

// reportBackstop checks that no lifecycle rule deletes report artifacts before the app's artifact
// lifetime (SPINE_REPORTING_ARTIFACT_TTL) has passed: the rule is the ReportArtifactLifecycle
// sweep's backstop, and a download before expiresAt must find its blob.
func reportBackstop(s *Snapshot, rules []map[string]any) error {
	var c collector
	ttl := time.Duration(0)
	for _, app := range s.OfType(tWebApp) {
		for _, kvp := range app.objects("siteConfig.appSettings") {
			if kvp["name"] != "SPINE_REPORTING_ARTIFACT_TTL" {
				continue
			}
			v, _ := kvp["value"].(string)
			d, err := time.ParseDuration(v)
			if err != nil {
				c.failf("%s: SPINE_REPORTING_ARTIFACT_TTL %q is not a duration", app, v)
			}
			ttl = max(ttl, d)
		}
	}
	for _, rule := range rules {
		prefixes, _ := lookup(rule, "definition.filters.prefixMatch").([]any)
		if !slices.Contains(prefixes, any(spine.ContainerReports+"/")) {
			continue
		}
		days, ok := lookup(rule, "definition.actions.baseBlob.delete.daysAfterModificationGreaterThan").(float64)
		if ok && ttl > 0 && time.Duration(days)*24*time.Hour <= ttl {
			c.failf("lifecycle rule %v deletes report artifacts after %v days, not after their lifetime %s (SPINE_REPORTING_ARTIFACT_TTL)",
				rule["name"], days, ttl)
		}
	}
	return c.err()
}

// DatabasePerService checks that the configured engine's server holds exactly
// one database per configured service.
func DatabasePerService(s *Snapshot, e Expectations) error {
	var c collector
	serverType, dbType, other := tPGServer, tPGDatabase, tSQLServer
	if e.Engine == spine.EngineSQLServer {
		serverType, dbType, other = tSQLServer, tSQLDatabase, tPGServer
	}
	if n := len(s.OfType(other)); n != 0 {
		c.failf("engine %s, but %d %s registered", e.Engine, n, other)
	}
	server, ok := c.one(s, serverType)
	if !ok {
		return c.err()
	}
	var names []string
	for _, db := range s.OfType(dbType) {
		names = append(names, db.Str("databaseName"))
		if db.Str("serverName") != server.Str("serverName") {
			c.failf("%s: on server %q, want %q", db, db.Str("serverName"), server.Str("serverName"))
		}
	}
	c.add(sameSet("databases", names, e.Services))
	pools := s.OfType(tElasticPool)
	switch {
	case e.ElasticPool && len(pools) != 1:
		c.failf("want one elastic pool, found %d", len(pools))
	case !e.ElasticPool && len(pools) != 0:
		c.failf("want no elastic pool, found %d", len(pools))
	case e.ElasticPool:
		for _, db := range s.OfType(tSQLDatabase) {
			if db.Str("elasticPoolId") != pools[0].ID {
				c.failf("%s: not in the elastic pool", db)
			}
		}
	}
	return c.err()
}

// sameSet compares two lists as sets without duplicates.
func sameSet(what string, got, want []string) error {
	g, w := slices.Clone(got), slices.Clone(want)
	sort.Strings(g)
	sort.Strings(w)
	if !slices.Equal(g, w) {
		return fmt.Errorf("%s: got %v, want %v", what, g, w)
	}
	return nil
}

// TopicPerService checks one topic per publishing service, with duplicate
// detection.
func TopicPerService(s *Snapshot, e Expectations) error {
	var c collector
	ns, ok := c.one(s, tNamespace)
	if !ok {
		return c.err()
	}
	var want, got []string
	for _, t := range e.Topics {
		want = append(want, t.Publisher)
	}
	for _, t := range s.OfType(tTopic) {
		got = append(got, t.Str("topicName"))
		c.add(t.mustEqual("requiresDuplicateDetection", true))
		c.add(t.mustEqual("duplicateDetectionHistoryTimeWindow", e.DuplicateDetectionWindow))
		if t.Str("namespaceName") != ns.Str("namespaceName") {
			c.failf("%s: in namespace %q, want %q", t, t.Str("namespaceName"), ns.Str("namespaceName"))
		}
	}
	c.add(sameSet("topics", got, want))
	return c.err()
}

var eventTypeFilter = regexp.MustCompile(`^eventType IN \(('[A-Za-z]+'(, '[A-Za-z]+')*)\)$`)

// parseEventTypeFilter returns the types an "eventType IN (...)" filter lists.
func parseEventTypeFilter(expr string) ([]string, bool) {
	m := eventTypeFilter.FindStringSubmatch(expr)
	if m == nil {
		return nil, false
	}
	var types []string
	for _, part := range strings.Split(m[1], ", ") {
		types = append(types, strings.Trim(part, "'"))
	}
	return types, true
}

// SubscriptionsFilterByEventType checks that every subscription belongs to a
// consumer the catalog lists for that topic, dead-letters, and has exactly one
// rule: "$Default" replaced by an eventType SQL filter listing the consumer's
// types from that topic.
func SubscriptionsFilterByEventType(s *Snapshot, e Expectations) error {
	var c collector
	want := map[string][]string{}
	for _, sub := range e.Subscriptions {
		want[sub.Topic+"/"+sub.Consumer] = sub.EventTypes
	}
	published := map[string][]string{}
	for _, t := range e.Topics {
		published[t.Publisher] = t.EventTypes
	}
	var got, wantKeys []string
	for k := range want {
		wantKeys = append(wantKeys, k)
	}
	for _, sub := range s.OfType(tSubscription) {
		key := sub.Str("topicName") + "/" + sub.Str("subscriptionName")
		got = append(got, key)
		c.add(sub.mustEqual("maxDeliveryCount", e.MaxDeliveryCount))
		c.add(sub.mustEqual("deadLetteringOnMessageExpiration", true))
		c.add(sub.mustEqual("deadLetteringOnFilterEvaluationExceptions", true))
		var rules []Resource
		for _, r := range s.OfType(tRule) {
			if r.Str("topicName")+"/"+r.Str("subscriptionName") == key {
				rules = append(rules, r)
			}
		}
		if len(rules) != 1 {
			c.failf("subscription %s: want exactly one rule, found %d", key, len(rules))
			continue
		}
		rule := rules[0]
		if rule.Str("ruleName") != azure.DefaultRuleName {
			c.failf("subscription %s: rule %q does not replace %s, whose TrueFilter would let every event through", key, rule.Str("ruleName"), azure.DefaultRuleName)
		}
		if rule.Str("filterType") != "SqlFilter" {
			c.failf("subscription %s: filterType %q, want SqlFilter", key, rule.Str("filterType"))
		}
		types, ok := parseEventTypeFilter(rule.Str("sqlFilter.sqlExpression"))
		if !ok {
			c.failf("subscription %s: filter %q does not select on eventType", key, rule.Str("sqlFilter.sqlExpression"))
			continue
		}
		for _, t := range types {
			if !slices.Contains(published[sub.Str("topicName")], t) {
				c.failf("subscription %s: filters on %q, which topic %s does not carry", key, t, sub.Str("topicName"))
			}
		}
		if w, ok := want[key]; ok {
			c.add(sameSet("subscription "+key+" event types", types, w))
		}
	}
	for _, r := range s.OfType(tRule) {
		if !slices.Contains(got, r.Str("topicName")+"/"+r.Str("subscriptionName")) {
			c.failf("%s: on no registered subscription", r)
		}
	}
	c.add(sameSet("subscriptions", got, wantKeys))
	return c.err()
}

// ExpectedRoleAssignments lists the app identity's role assignments: Key Vault
// Secrets Officer on the vault (the authorization server writes its keys), Storage Blob Data Contributor on the account,
// Storage Table Data Contributor on each maintenance ledger table, Monitoring
// Metrics Publisher on Application Insights, Service Bus Data Sender on every
// topic and Service Bus Data Receiver on every subscription.
func ExpectedRoleAssignments(s *Snapshot) []string {
	var out []string
	add := func(role string, rs []Resource) {
		for _, r := range rs {
			out = append(out, role+" @ "+r.ID)
		}
	}
	add(azure.RoleKeyVaultSecretsOfficer, s.OfType(tVault))
	add(azure.RoleStorageBlobDataContributor, s.OfType(tStorageAccount))
	add(azure.RoleStorageTableDataContributor, s.OfType(tTable))
	add(azure.RoleMonitoringMetricsPublisher, s.OfType(tComponent))
	add(azure.RoleServiceBusDataSender, s.OfType(tTopic))
	add(azure.RoleServiceBusDataReceiver, s.OfType(tSubscription))
	sort.Strings(out)
	return out
}

var roleDefinitionID = regexp.MustCompile(`^/subscriptions/[0-9a-fA-F-]{36}/providers/Microsoft\.Authorization/roleDefinitions/([0-9a-f-]{36})$`)

// IdentityRoleAssignments checks that the app's identity holds exactly the
// expected role assignments, that no other principal is granted anything by
// this stack, and that the identity is a Redis Data Contributor.
func IdentityRoleAssignments(s *Snapshot, e Expectations) error {
	var c collector
	id, ok := c.one(s, tIdentity)
	if !ok {
		return c.err()
	}
	principal, _ := id.Out("principalId").(string)
	var got []string
	for _, ra := range s.OfType(tRoleAssignment) {
		if ra.Str("principalId") != principal || principal == "" {
			c.failf("%s: granted to %q, not the app's identity", ra, ra.Str("principalId"))
			continue
		}
		c.add(ra.mustEqual("principalType", "ServicePrincipal"))
		m := roleDefinitionID.FindStringSubmatch(ra.Str("roleDefinitionId"))
		if m == nil {
			c.failf("%s: roleDefinitionId %q is not a built-in role definition ID", ra, ra.Str("roleDefinitionId"))
			continue
		}
		got = append(got, m[1]+" @ "+ra.Str("scope"))
	}
	sort.Strings(got)
	if want := ExpectedRoleAssignments(s); !slices.Equal(got, want) {
		c.failf("role assignments differ:\n got  %v\n want %v", got, want)
	}
	access := s.OfType(tRedisAccess)
	if len(access) != 1 {
		c.failf("want one Redis access policy assignment, found %d", len(access))
	}
	for _, a := range access {
		c.add(a.mustEqual("accessPolicyName", "Data Contributor"))
		if a.Str("objectId") != principal {
			c.failf("%s: granted to %q, not the app's identity", a, a.Str("objectId"))
		}
	}
	return c.err()
}

var keyVaultReference = regexp.MustCompile(`^@Microsoft\.KeyVault\(SecretUri=(https://[^)]+)\)$`)

// secretSettings are the app settings whose values must be Key Vault references.
func secretSettings(e Expectations) []string {
	out := []string{"SPINE_REDIS_URL", "APPLICATIONINSIGHTS_CONNECTION_STRING"}
	for _, svc := range e.Services {
		out = append(out, "SPINE_"+strings.ToUpper(svc)+"_DB_URL")
	}
	return out
}

// FunctionApp checks the Function App: Linux custom handler, its identity for
// everything (host storage, Key Vault references, Service Bus), VNet
// integration with all traffic routed, and settings that hold Key Vault
// references instead of secret values.
func FunctionApp(s *Snapshot, e Expectations) error {
	var c collector
	app, ok := c.one(s, tWebApp)
	id, ok2 := c.one(s, tIdentity)
	sa, ok3 := c.one(s, tStorageAccount)
	kv, ok4 := c.one(s, tVault)
	if !ok || !ok2 || !ok3 || !ok4 {
		return c.err()
	}
	c.add(app.mustEqual("kind", "functionapp,linux"))
	c.add(app.mustEqual("identity.type", "UserAssigned"))
	if ids := app.strList("identity.userAssignedIdentities"); !slices.Equal(ids, []string{id.ID}) {
		c.failf("%s: identities %v, want [%s]", app, ids, id.ID)
	}
	c.add(app.mustEqual("keyVaultReferenceIdentity", id.ID))
	c.add(app.mustEqual("siteConfig.vnetRouteAllEnabled", true))
	subnet, ok := s.ByID(app.Str("virtualNetworkSubnetId"))
	if !ok || !slices.Contains(subnet.strListOfObjects("delegations", "serviceName"), "Microsoft.Web/serverFarms") {
		c.failf("%s: not integrated into a subnet delegated to Microsoft.Web/serverFarms", app)
	}
	settings := map[string]string{}
	for _, kvp := range app.objects("siteConfig.appSettings") {
		name, _ := kvp["name"].(string)
		value, _ := kvp["value"].(string)
		if _, dup := settings[name]; dup {
			c.failf("app setting %s is set twice", name)
		}
		settings[name] = value
	}
	clientID, _ := id.Out("clientId").(string)
	blob, _ := sa.Out("primaryEndpoints.blob").(string)
	dialect := "postgres"
	if e.Engine == spine.EngineSQLServer {
		dialect = "sqlserver"
	}
	want := map[string]string{
		"FUNCTIONS_WORKER_RUNTIME":         "custom",
		"FUNCTIONS_EXTENSION_VERSION":      "~4",
		"AZURE_CLIENT_ID":                  clientID,
		"AzureWebJobsStorage__accountName": sa.Str("accountName"),
		"AzureWebJobsStorage__credential":  "managedidentity",
		"AzureWebJobsStorage__clientId":    clientID,
		"SPINE_STORAGE_ACCOUNT_URL":        blob,
		"SPINE_SERVICES":                   strings.Join(e.Services, ","),
	}
	for _, svc := range e.Services {
		want["SPINE_"+strings.ToUpper(svc)+"_DB_DIALECT"] = dialect
	}
	for k, v := range want {
		if settings[k] != v {
			c.failf("app setting %s = %q, want %q", k, settings[k], v)
		}
	}
	if ns, ok := c.one(s, tNamespace); ok {
		endpoint, _ := ns.Out("serviceBusEndpoint").(string)
		u, err := url.Parse(endpoint)
		if err != nil || u.Hostname() == "" || settings["SPINE_SERVICEBUS_NAMESPACE"] != u.Hostname() {
			c.failf("app setting SPINE_SERVICEBUS_NAMESPACE = %q, want the namespace's host name", settings["SPINE_SERVICEBUS_NAMESPACE"])
		}
	}
	// No JWKS URL is needed: the token check reads the in-app authorization server's keys in
	// process, or finds them through the issuer's discovery document.
	for _, k := range []string{"SPINE_AUTH_ISSUER", "SPINE_AUTH_AUDIENCE"} {
		if settings[k] == "" {
			c.failf("app setting %s is missing", k)
		}
	}
	// The app reaches this stack's vault (the authorization server's keys), nothing else.
	if uri, _ := kv.Out("properties.vaultUri").(string); uri == "" || settings["SPINE_KEYVAULT_URL"] != uri {
		c.failf("app setting SPINE_KEYVAULT_URL = %q, want the vault's URI %q", settings["SPINE_KEYVAULT_URL"], uri)
	}
	for _, k := range []string{"AzureWebJobsStorage", "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING"} {
		if _, ok := settings[k]; ok {
			c.failf("app setting %s holds a connection string; the app must use its identity", k)
		}
	}
	secretURIs := map[string]bool{}
	for _, secret := range s.OfType(tSecret) {
		if secret.Str("vaultName") != kv.Str("vaultName") {
			c.failf("%s: in vault %q, want %q", secret, secret.Str("vaultName"), kv.Str("vaultName"))
		}
		if uri, _ := secret.Out("properties.secretUri").(string); uri != "" {
			secretURIs[uri] = true
		}
	}
	for _, k := range secretSettings(e) {
		m := keyVaultReference.FindStringSubmatch(settings[k])
		if m == nil {
			c.failf("app setting %s is not a Key Vault reference", k)
			continue
		}
		if !secretURIs[m[1]] {
			c.failf("app setting %s references %s, which is no secret of this stack's vault", k, m[1])
		}
	}
	values := secretValues(s)
	for k, v := range settings {
		for _, secret := range values {
			if strings.Contains(v, secret) {
				c.failf("app setting %s contains a secret value", k)
			}
		}
	}
	return c.err()
}

// secretValues returns every string registered as a secret (inputs and
// outputs) or written to Key Vault, longer than 8 characters.
func secretValues(s *Snapshot) []string {
	seen := map[string]bool{}
	var walk func(v any, inSecret bool)
	walk = func(v any, inSecret bool) {
		switch t := v.(type) {
		case Secret:
			walk(t.Value, true)
		case map[string]any:
			for _, e := range t {
				walk(e, inSecret)
			}
		case []any:
			for _, e := range t {
				walk(e, inSecret)
			}
		case string:
			if inSecret && len(t) > 8 {
				seen[t] = true
			}
		}
	}
	for _, r := range s.Resources {
		walk(r.Inputs, false)
		walk(r.Outputs, false)
		if r.Type == tSecret {
			if v, ok := r.In("properties.value").(string); ok && len(v) > 8 {
				seen[v] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for v := range seen {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

// NoSecretsInOutputs checks that no stack output is marked secret (which would
// mean a secret flowed into it) and that none contains a secret value.
func NoSecretsInOutputs(s *Snapshot, _ Expectations) error {
	var c collector
	if len(s.Outputs) == 0 {
		return errors.New("the stack has no outputs to check")
	}
	values := secretValues(s)
	if len(values) == 0 {
		return errors.New("the stack registered no secret values to compare outputs with")
	}
	keys := make([]string, 0, len(s.Outputs))
	for k := range s.Outputs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		out := s.Outputs[k]
		if out.Secret {
			c.failf("stack output %s is a secret", k)
		}
		text := show(out.Value)
		for _, secret := range values {
			if strings.Contains(text, secret) || strings.Contains(fmt.Sprint(out.Value), secret) {
				c.failf("stack output %s contains a secret value", k)
				break
			}
		}
	}
	return c.err()
}

// taggable are the resource types that carry Azure tags; notTaggable are child
// or extension resources (they inherit their parent's context) and the
// non-Azure command resources. A type in neither list fails the check,
// so every new type is classified.
var (
	taggable = []string{
		tResourceGroup, tVirtualNetwork, tPrivateZone, tZoneLink, tPrivateEndpoint, tIdentity, tStorageAccount,
		tVault, tSecret, tRedis, tNamespace, tSQLServer, tSQLDatabase, tElasticPool, tPGServer, tPlan, tWebApp,
		tWorkspace, tComponent,
	}
	notTaggable = []string{
		tSubnet, tDNSZoneGroup, tRoleAssignment, tBlobService, tBlobContainer, tImmutabilityPolicy,
		tManagementPolicy, tTable, tRedisAccess, tTopic, tSubscription, tRule, tTDE, tPGDatabase,
		tPGConfiguration, tPGAdmin, tScmAllowed, tFtpAllowed, tCommand,
	}
)

// Tags checks the three required tags on every taggable resource.
func Tags(s *Snapshot, e Expectations) error {
	var c collector
	owners := []string{spine.OwnerPlatform, "gateway"}
	for _, svc := range spine.Catalog() {
		owners = append(owners, svc.Name)
	}
	classes := []string{spine.ClassInternal, spine.ClassConfidential, spine.ClassRestricted}
	tagged := 0
	for _, r := range s.Resources {
		switch {
		case slices.Contains(notTaggable, r.Type):
			continue
		case !slices.Contains(taggable, r.Type):
			c.failf("%s: type is not classified as taggable or not", r)
			continue
		}
		tagged++
		if got := r.Str("tags." + spine.TagEnvironment); got != e.Environment {
			c.failf("%s: tag %s = %q, want %q", r, spine.TagEnvironment, got, e.Environment)
		}
		if got := r.Str("tags." + spine.TagOwnerService); !slices.Contains(owners, got) {
			c.failf("%s: tag %s = %q, want one of %v", r, spine.TagOwnerService, got, owners)
		}
		if got := r.Str("tags." + spine.TagDataClassification); !slices.Contains(classes, got) {
			c.failf("%s: tag %s = %q, want one of %v", r, spine.TagDataClassification, got, classes)
		}
	}
	if tagged == 0 {
		c.failf("no taggable resource registered")
	}
	return c.err()
}

// ProviderVersions checks that every resource is registered with its
// provider's pinned plugin version.
func ProviderVersions(s *Snapshot, _ Expectations) error {
	var c collector
	for _, r := range s.Resources {
		want := azure.PluginVersion(r.Type)
		if want == "" {
			c.failf("%s: provider package is not one this program pins", r)
		} else if r.Version != want {
			c.failf("%s: registered with plugin version %q, want %q", r, r.Version, want)
		}
	}
	if len(s.Resources) == 0 {
		c.failf("no resources registered")
	}
	return c.err()
}

// ProdProtection checks that prod's stores, databases and WORM policy are
// protected from deletion by Pulumi.
func ProdProtection(s *Snapshot, e Expectations) error {
	if e.Environment != spine.EnvProd {
		return nil
	}
	var c collector
	for _, token := range []string{tResourceGroup, tStorageAccount, tVault, tRedis, tNamespace, tSQLServer, tSQLDatabase,
		tPGServer, tPGDatabase, tImmutabilityPolicy} {
		for _, r := range s.OfType(token) {
			if !r.Protect {
				c.failf("%s: not protected", r)
			}
		}
	}
	for _, r := range s.OfType(tBlobContainer) {
		if r.Str("containerName") == spine.ContainerAuditArchive && !r.Protect {
			c.failf("%s: not protected", r)
		}
	}
	return c.err()
}
