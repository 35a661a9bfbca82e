package spine

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"spine/infra/azure"
)

func (d *deployment) keyVault() (*azure.Vault, error) {
	tags := d.tags(OwnerPlatform, ClassRestricted)
	kv, err := azure.NewVault(d.ctx, "vault", azure.VaultArgs{
		VaultName: d.names.KeyVault, ResourceGroupName: d.rgName, Location: d.cfg.Location,
		TenantID: d.client.TenantID, SkuName: d.cfg.KeyVault.SkuName,
		EnableRbacAuthorization: true, EnableSoftDelete: true,
		SoftDeleteRetentionDays: d.cfg.KeyVault.SoftDeleteRetentionDays, EnablePurgeProtection: true,
		PublicNetworkAccess: "Disabled", NetworkDefaultAction: "Deny", Tags: tags,
	}, d.protect()...)
	if err != nil {
		return nil, err
	}
	return kv, d.privateEndpoint("vault", azure.ID(kv), GroupVault, tags)
}

// redis is the shared cache: sessions, hot reads and rate-limit counters
// (gateway, config, identity). The app authenticates with its identity.
func (d *deployment) redis(id *azure.UserAssignedIdentity) (*azure.Redis, error) {
	tags := d.tags("gateway", ClassConfidential)
	r := d.cfg.Redis
	cache, err := azure.NewRedis(d.ctx, "redis", azure.RedisArgs{
		Name: d.names.Redis, ResourceGroupName: d.rgName, Location: d.cfg.Location,
		SkuName: r.SkuName, Family: r.Family, Capacity: r.Capacity,
		EnableNonSSLPort: false, MinimumTLSVersion: "1.2", PublicNetworkAccess: "Disabled",
		EntraAuth: true, DisableAccessKeyAuthentication: true, RedisVersion: "6", Tags: tags,
	}, d.protect()...)
	if err != nil {
		return nil, err
	}
	_, err = azure.NewRedisAccessPolicyAssignment(d.ctx, "redis-access-app", azure.RedisAccessPolicyAssignmentArgs{
		AssignmentName: "spine-app", CacheName: cache.Name, ResourceGroupName: d.rgName,
		AccessPolicyName: "Data Contributor", ObjectID: id.PrincipalID, ObjectIDAlias: id.Name,
	})
	if err != nil {
		return nil, err
	}
	return cache, d.privateEndpoint("redis", azure.ID(cache), GroupRedis, tags)
}

// serviceBus is the namespace with one topic per publishing service and one
// filtered subscription per consuming service.
type serviceBus struct {
	namespace     *azure.ServiceBusNamespace
	fqdn          pulumi.StringOutput
	topics        []Topic
	subscriptions []SubscriptionSpec
	topicIDs      map[string]pulumi.StringOutput
	// subscriptionIDs are keyed "topic/consumer".
	subscriptionIDs map[string]pulumi.StringOutput
}

func (d *deployment) serviceBus() (*serviceBus, error) {
	cfg := d.cfg.ServiceBus
	tags := d.tags(OwnerPlatform, ClassConfidential)
	b := &serviceBus{
		topics: Topics(d.cfg.Services), subscriptions: Subscriptions(d.cfg.Services),
		topicIDs: map[string]pulumi.StringOutput{}, subscriptionIDs: map[string]pulumi.StringOutput{},
	}
	var err error
	b.namespace, err = azure.NewServiceBusNamespace(d.ctx, "servicebus", azure.ServiceBusNamespaceArgs{
		NamespaceName: d.names.ServiceBus, ResourceGroupName: d.rgName, Location: d.cfg.Location,
		SkuName: "Premium", Capacity: cfg.Capacity, MinimumTLSVersion: "1.2",
		PublicNetworkAccess: "Disabled", DisableLocalAuth: true, ZoneRedundant: cfg.ZoneRedundant, Tags: tags,
	}, d.protect()...)
	if err != nil {
		return nil, err
	}
	b.fqdn = b.namespace.ServiceBusEndpoint.ApplyT(func(endpoint string) (string, error) {
		u, err := url.Parse(endpoint)
		if err != nil {
			return "", err
		}
		return u.Hostname(), nil
	}).(pulumi.StringOutput)
	if err := d.privateEndpoint("servicebus", azure.ID(b.namespace), GroupServiceBus, tags); err != nil {
		return nil, err
	}
	ns := b.namespace.Name
	topics := map[string]*azure.Resource{}
	for _, t := range b.topics {
		topic, err := azure.NewTopic(d.ctx, "topic-"+t.Publisher, azure.TopicArgs{
			TopicName: t.Publisher, NamespaceName: ns, ResourceGroupName: d.rgName,
			RequiresDuplicateDetection: true, DuplicateDetectionHistoryTimeWindow: cfg.DuplicateDetectionWindow,
			DefaultMessageTimeToLive: cfg.MessageTimeToLive,
		})
		if err != nil {
			return nil, err
		}
		topics[t.Publisher] = topic
		b.topicIDs[t.Publisher] = azure.ID(topic)
	}
	for _, s := range b.subscriptions {
		name := s.Topic + "-" + s.Consumer
		sub, err := azure.NewSubscription(d.ctx, "sub-"+name, azure.SubscriptionArgs{
			SubscriptionName: s.Consumer, TopicName: topics[s.Topic].Name, NamespaceName: ns,
			ResourceGroupName: d.rgName, MaxDeliveryCount: cfg.MaxDeliveryCount, LockDuration: cfg.LockDuration,
			DefaultMessageTimeToLive: cfg.MessageTimeToLive, DeadLetteringOnMessageExpiration: true,
			DeadLetteringOnFilterEvaluationExceptions: true,
		})
		if err != nil {
			return nil, err
		}
		// Replacing $Default's TrueFilter: the subscription only ever receives
		// the consumer's event types.
		_, err = azure.NewSQLRule(d.ctx, "rule-"+name, azure.SQLRuleArgs{
			RuleName: azure.DefaultRuleName, SubscriptionName: sub.Name, TopicName: topics[s.Topic].Name,
			NamespaceName: ns, ResourceGroupName: d.rgName, SQLExpression: EventTypeFilter(s.EventTypes),
		})
		if err != nil {
			return nil, err
		}
		b.subscriptionIDs[s.Topic+"/"+s.Consumer] = azure.ID(sub)
	}
	return b, nil
}

// database is the relational server with one database per owning service.
type database struct {
	fqdn pulumi.StringOutput
	// dialect is the app's SPINE_<SERVICE>_DB_DIALECT value.
	dialect string
	// urls are the services' connection URLs (secret values), by service.
	urls map[string]pulumi.StringOutput
}

// admin returns the server's Microsoft Entra administrator.
func (d *deployment) admin() azure.EntraAdmin {
	if a := d.cfg.Database.Admin; a != nil {
		principalType := a.PrincipalType
		if d.cfg.Database.Engine == EngineSQLServer && principalType == "ServicePrincipal" {
			principalType = "Application"
		}
		return azure.EntraAdmin{Login: a.Login, ObjectID: a.ObjectID, TenantID: d.client.TenantID, PrincipalType: principalType}
	}
	principalType := "ServicePrincipal"
	if d.cfg.Database.Engine == EngineSQLServer {
		principalType = "Application"
	}
	return azure.EntraAdmin{
		Login: d.cfg.NamePrefix + "-" + d.cfg.Environment + "-deployer", ObjectID: d.client.ObjectID,
		TenantID: d.client.TenantID, PrincipalType: principalType,
	}
}

func (d *deployment) database(id *azure.UserAssignedIdentity) (*database, error) {
	if d.cfg.Database.Engine == EngineSQLServer {
		return d.sqlServer(id)
	}
	return d.postgres()
}

func (d *deployment) postgres() (*database, error) {
	p := d.cfg.Database.Postgres
	tags := d.tags(OwnerPlatform, ClassRestricted)
	server, err := azure.NewPostgresServer(d.ctx, "postgres", azure.PostgresServerArgs{
		ServerName: d.names.DatabaseServer, ResourceGroupName: d.rgName, Location: d.cfg.Location,
		Version: p.Version, SkuName: p.SkuName, SkuTier: p.SkuTier, StorageSizeGB: p.StorageSizeGB,
		EntraAuth: true, PasswordAuth: false, TenantID: d.client.TenantID, PublicNetworkAccess: "Disabled",
		HighAvailability: p.HighAvailability, BackupRetentionDays: p.BackupRetentionDays,
		GeoRedundantBackup: p.GeoRedundantBackup, Tags: tags,
	}, d.protect()...)
	if err != nil {
		return nil, err
	}
	if err := d.privateEndpoint("postgres", azure.ID(server), GroupPostgres, tags); err != nil {
		return nil, err
	}
	// A flexible server applies one change at a time: the administrator,
	// parameters and databases are chained.
	previous, err := azure.NewPostgresAdmin(d.ctx, "postgres-admin", azure.PostgresAdminArgs{
		ServerName: server.Name, ResourceGroupName: d.rgName, Admin: d.admin(),
	})
	if err != nil {
		return nil, err
	}
	for _, param := range []struct{ name, value string }{
		{"require_secure_transport", "on"},
		{"ssl_min_protocol_version", "TLSv1.2"},
	} {
		previous, err = azure.NewPostgresConfiguration(d.ctx, "postgres-param-"+strings.ReplaceAll(param.name, "_", "-"),
			azure.PostgresConfigurationArgs{
				ConfigurationName: param.name, Value: param.value, ServerName: server.Name, ResourceGroupName: d.rgName,
			}, pulumi.DependsOn([]pulumi.Resource{previous}))
		if err != nil {
			return nil, err
		}
	}
	db := &database{fqdn: server.FullyQualifiedDomainName, dialect: "postgres", urls: map[string]pulumi.StringOutput{}}
	for _, svc := range d.cfg.Services {
		opts := append([]pulumi.ResourceOption{pulumi.DependsOn([]pulumi.Resource{previous})}, d.protect()...)
		previous, err = azure.NewPostgresDatabase(d.ctx, "db-"+svc, azure.PostgresDatabaseArgs{
			DatabaseName: svc, ServerName: server.Name, ResourceGroupName: d.rgName,
		}, opts...)
		if err != nil {
			return nil, err
		}
		// Passwordless: the app signs in as its managed identity (a server role
		// of the same name, created by the migration job) with an Entra token.
		db.urls[svc] = pulumi.Sprintf("postgres://%s@%s:5432/%s?sslmode=verify-full",
			url.PathEscape(d.names.Identity), server.FullyQualifiedDomainName, svc)
	}
	return db, nil
}

func (d *deployment) sqlServer(id *azure.UserAssignedIdentity) (*database, error) {
	s := d.cfg.Database.SQL
	tags := d.tags(OwnerPlatform, ClassRestricted)
	server, err := azure.NewSQLServer(d.ctx, "sql", azure.SQLServerArgs{
		ServerName: d.names.DatabaseServer, ResourceGroupName: d.rgName, Location: d.cfg.Location,
		Admin: d.admin(), EntraOnlyAuth: true, MinimalTLSVersion: "1.2", PublicNetworkAccess: "Disabled", Tags: tags,
	}, d.protect()...)
	if err != nil {
		return nil, err
	}
	if err := d.privateEndpoint("sql", azure.ID(server), GroupSQL, tags); err != nil {
		return nil, err
	}
	var poolID pulumi.StringInput
	if p := s.ElasticPool; p != nil {
		pool, err := azure.NewElasticPool(d.ctx, "sql-pool", azure.ElasticPoolArgs{
			ElasticPoolName: d.names.ElasticPool, ServerName: server.Name, ResourceGroupName: d.rgName,
			Location: d.cfg.Location, Sku: azure.SQLSku(p.Sku), ZoneRedundant: s.ZoneRedundant,
			PerDatabaseMinCapacity: p.PerDatabaseMinCapacity, PerDatabaseMaxCapacity: p.PerDatabaseMaxCapacity,
			Tags: d.tags(OwnerPlatform, ClassRestricted),
		})
		if err != nil {
			return nil, err
		}
		poolID = azure.ID(pool)
	}
	db := &database{fqdn: server.FullyQualifiedDomainName, dialect: "sqlserver", urls: map[string]pulumi.StringOutput{}}
	for _, svc := range d.cfg.Services {
		meta, _ := LookupService(svc)
		sqlDB, err := azure.NewSQLDatabase(d.ctx, "db-"+svc, azure.SQLDatabaseArgs{
			DatabaseName: svc, ServerName: server.Name, ResourceGroupName: d.rgName, Location: d.cfg.Location,
			ElasticPoolID: poolID, Sku: azure.SQLSku(s.DatabaseSku), BackupStorageRedundancy: s.BackupStorageRedundancy,
			ZoneRedundant: s.ZoneRedundant, Tags: d.tags(svc, meta.Classification),
		}, d.protect()...)
		if err != nil {
			return nil, err
		}
		_, err = azure.NewTransparentDataEncryption(d.ctx, "tde-"+svc, azure.TransparentDataEncryptionArgs{
			DatabaseName: sqlDB.Name, ServerName: server.Name, ResourceGroupName: d.rgName, Enabled: true,
		})
		if err != nil {
			return nil, err
		}
		// Passwordless: go-mssqldb's azuresql driver signs in as the
		// user-assigned identity (a contained database user created by the
		// migration job).
		db.urls[svc] = pulumi.All(server.FullyQualifiedDomainName, id.ClientID).ApplyT(func(v []any) string {
			q := url.Values{}
			q.Set("database", svc)
			q.Set("encrypt", "true")
			q.Set("fedauth", "ActiveDirectoryManagedIdentity")
			q.Set("user id", v[1].(string))
			return fmt.Sprintf("sqlserver://%s:1433?%s", v[0].(string), q.Encode())
		}).(pulumi.StringOutput)
	}
	return db, nil
}
