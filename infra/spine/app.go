package spine

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"spine/infra/azure"
)

func (d *deployment) monitoring() (*azure.Component, error) {
	tags := d.tags(OwnerPlatform, ClassInternal)
	ws, err := azure.NewWorkspace(d.ctx, "log", azure.WorkspaceArgs{
		WorkspaceName: d.names.Workspace, ResourceGroupName: d.rgName, Location: d.cfg.Location,
		RetentionInDays: d.cfg.Monitoring.RetentionDays, Tags: tags,
	})
	if err != nil {
		return nil, err
	}
	return azure.NewComponent(d.ctx, "appi", azure.ComponentArgs{
		ResourceName: d.names.AppInsights, ResourceGroupName: d.rgName, Location: d.cfg.Location,
		WorkspaceResourceID: azure.ID(ws), DisableLocalAuth: true, Tags: tags,
	})
}

func (d *deployment) identity() (*azure.UserAssignedIdentity, error) {
	return azure.NewUserAssignedIdentity(d.ctx, "identity", azure.UserAssignedIdentityArgs{
		ResourceName: d.names.Identity, ResourceGroupName: d.rgName, Location: d.cfg.Location,
		Tags: d.tags(OwnerPlatform, ClassInternal),
	})
}

// keyVaultReference is the app setting value that makes the Functions platform
// read a secret from Key Vault with the app's identity.
func keyVaultReference(secret *azure.Secret) pulumi.StringOutput {
	return pulumi.Sprintf("@Microsoft.KeyVault(SecretUri=%s)", secret.URI())
}

// secretSettings are the app settings whose values are Key Vault references,
// by setting name, and the secrets the program writes (also those no setting
// refers to yet).
type secretSettings struct {
	refs    map[string]pulumi.StringOutput
	secrets []pulumi.Resource
}

// DBURLSetting is the app setting that holds a service's database URL.
func DBURLSetting(service string) string {
	return "SPINE_" + strings.ToUpper(service) + "_DB_URL"
}

// DBDialectSetting is the app setting that names a service's SQL dialect.
func DBDialectSetting(service string) string {
	return "SPINE_" + strings.ToUpper(service) + "_DB_DIALECT"
}

// secrets writes the app's connection settings to Key Vault. Their values exist
// only in the vault and, encrypted, in the stack's state; the app reads them
// through Key Vault references. The authorization server's keys are not written
// here: the app creates and rotates them in the vault itself (shared/secrets), so
// no private key is ever in the stack's state.
func (d *deployment) secrets(kv *azure.Vault, id *azure.UserAssignedIdentity, db *database, cache *azure.Redis,
	appi *azure.Component,
) (*secretSettings, error) {
	s := &secretSettings{refs: map[string]pulumi.StringOutput{}}
	type entry struct {
		setting, name, owner, classification, contentType string
		value                                             pulumi.StringOutput
	}
	entries := []entry{}
	for _, svc := range d.cfg.Services {
		meta, _ := LookupService(svc)
		entries = append(entries, entry{
			setting: DBURLSetting(svc), name: svc + "-db-url", owner: svc, classification: meta.Classification,
			contentType: "text/uri-list", value: db.urls[svc],
		})
	}
	entries = append(entries,
		entry{
			setting: "SPINE_REDIS_URL", name: "redis-url", owner: "gateway", classification: ClassConfidential,
			contentType: "text/uri-list",
			// Entra authentication: the user name is the identity's object ID and
			// the password an access token the app obtains itself.
			value: pulumi.Sprintf("rediss://%s@%s:%d/0", id.PrincipalID, cache.HostName, cache.SSLPort),
		},
		entry{
			setting: "APPLICATIONINSIGHTS_CONNECTION_STRING", name: "appinsights-connection-string",
			owner: OwnerPlatform, classification: ClassInternal, contentType: "text/plain", value: appi.ConnectionString,
		},
	)
	for _, e := range entries {
		secret, err := azure.NewSecret(d.ctx, "secret-"+e.name, azure.SecretArgs{
			SecretName: e.name, VaultName: kv.Name, ResourceGroupName: d.rgName, Value: e.value,
			ContentType: e.contentType, Tags: d.tags(e.owner, e.classification),
		})
		if err != nil {
			return nil, err
		}
		if e.setting != "" {
			s.refs[e.setting] = keyVaultReference(secret)
		}
		s.secrets = append(s.secrets, secret)
	}
	return s, nil
}

// roleAssignments grants the app's identity exactly what it uses, each at the
// narrowest scope: reading and writing secrets (the authorization server creates
// and rotates its keys in the vault), blob and table data, sending on every topic,
// receiving on its own subscriptions, and publishing telemetry.
func (d *deployment) roleAssignments(id *azure.UserAssignedIdentity, kv *azure.Vault, st *storage, bus *serviceBus,
	appi *azure.Component,
) ([]pulumi.Resource, error) {
	type grant struct {
		name, role, why string
		scope           pulumi.StringInput
	}
	grants := []grant{
		// Secrets Officer, not Secrets User: besides reading (Key Vault references), the
		// authorization server creates authz-signing-key and authz-crypto-key at first start
		// and writes a new signing key version at every rotation (shared/secrets). A
		// narrower scope (the secrets themselves) needs them to exist before the grant.
		{"role-keyvault-secrets-officer", azure.RoleKeyVaultSecretsOfficer, "read the app's secrets; create and rotate the authorization server's keys", azure.ID(kv)},
		{"role-storage-blob-data-contributor", azure.RoleStorageBlobDataContributor, "read and write blobs (artifacts, host storage, package)", azure.ID(st.account)},
		{"role-monitoring-metrics-publisher", azure.RoleMonitoringMetricsPublisher, "send telemetry with Entra authentication", azure.ID(appi)},
	}
	// One grant per ledger table, not the account: the app reads and writes these tables only.
	for i, name := range d.names.MaintenanceTables {
		grants = append(grants, grant{"role-storage-table-data-contributor-" + name, azure.RoleStorageTableDataContributor,
			"read and write the maintenance ledger's " + name, azure.ID(st.tables[i])})
	}
	for _, t := range bus.topics {
		grants = append(grants, grant{"role-servicebus-sender-" + t.Publisher, azure.RoleServiceBusDataSender,
			"publish " + t.Publisher + " events", bus.topicIDs[t.Publisher]})
	}
	keys := make([]string, 0, len(bus.subscriptionIDs))
	for k := range bus.subscriptionIDs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		grants = append(grants, grant{"role-servicebus-receiver-" + strings.ReplaceAll(k, "/", "-"),
			azure.RoleServiceBusDataReceiver, "receive on subscription " + k, bus.subscriptionIDs[k]})
	}
	var out []pulumi.Resource
	for _, g := range grants {
		ra, err := azure.NewRoleAssignment(d.ctx, g.name, azure.RoleAssignmentArgs{
			Scope: g.scope, PrincipalID: id.PrincipalID, PrincipalType: "ServicePrincipal",
			RoleDefinitionID: azure.RoleDefinitionID(d.client.SubscriptionID, g.role),
			Description:      "spine app: " + g.why,
		})
		if err != nil {
			return nil, err
		}
		out = append(out, ra)
	}
	return out, nil
}

// auth returns the token issuer, audience and JWKS URL the app validates
// against: the configured ones, or the app's own authorization server, whose
// issuer is its /api/connect mount. The JWKS URL is empty unless configured:
// with the authorization server in the app the token check reads its keys in
// process, and without it the app finds them by the issuer's discovery document.
func (d *deployment) auth() (issuer, audience, jwks string) {
	a := d.cfg.Auth
	issuer, audience, jwks = a.Issuer, a.Audience, a.JWKSURL
	if issuer == "" {
		issuer = "https://" + d.names.FunctionApp + ".azurewebsites.net/api/connect"
	}
	if audience == "" {
		audience = "api://" + d.cfg.NamePrefix + "-" + d.cfg.Environment
	}
	return issuer, audience, jwks
}

func (d *deployment) functionApp(id *azure.UserAssignedIdentity, st *storage, bus *serviceBus,
	db *database, kv *azure.Vault, secrets *secretSettings, roles []pulumi.Resource,
) (*azure.FunctionApp, error) {
	f := d.cfg.Function
	tags := d.tags(OwnerPlatform, ClassInternal)
	elastic := azure.IsElasticPremium(f.PlanTier)
	plan := azure.AppServicePlanArgs{
		Name: d.names.AppServicePlan, ResourceGroupName: d.rgName, Location: d.cfg.Location,
		SkuName: f.PlanSku, SkuTier: f.PlanTier, ZoneRedundant: f.ZoneRedundant, Tags: tags,
	}
	if elastic {
		plan.MaximumElasticWorkerCount = f.MaxElasticWorkers
	}
	farm, err := azure.NewAppServicePlan(d.ctx, "plan", plan)
	if err != nil {
		return nil, err
	}
	issuer, audience, jwks := d.auth()
	plain := func(s string) pulumi.StringInput { return pulumi.String(s) }
	// Only settings something reads: the Functions platform and host, its
	// bindings, the Azure SDK (AZURE_CLIENT_ID), or the app (shared/config);
	// policy/settings_test.go holds this list to that.
	settings := []azure.NameValue{
		{Name: "FUNCTIONS_EXTENSION_VERSION", Value: plain("~4")},
		{Name: "FUNCTIONS_WORKER_RUNTIME", Value: plain("custom")},
		{Name: "AZURE_CLIENT_ID", Value: id.ClientID},
		// Host storage over the identity, not a connection string.
		{Name: "AzureWebJobsStorage__accountName", Value: st.account.Name},
		{Name: "AzureWebJobsStorage__credential", Value: plain("managedidentity")},
		{Name: "AzureWebJobsStorage__clientId", Value: id.ClientID},
		// The package is read from the private deployments container with the identity.
		{Name: "WEBSITE_RUN_FROM_PACKAGE", Value: pulumi.Sprintf("%s%s/%s", st.account.BlobEndpoint(), ContainerDeployments, f.PackageBlob)},
		{Name: "WEBSITE_RUN_FROM_PACKAGE_BLOB_MI_RESOURCE_ID", Value: azure.ID(id)},
		{Name: "APPLICATIONINSIGHTS_AUTHENTICATION_STRING", Value: pulumi.Sprintf("ClientId=%s;Authorization=AAD", id.ClientID)},
		// Service Bus triggers (binding connection "ServiceBusConnection") and the publisher.
		{Name: "ServiceBusConnection__fullyQualifiedNamespace", Value: bus.fqdn},
		{Name: "ServiceBusConnection__credential", Value: plain("managedidentity")},
		{Name: "ServiceBusConnection__clientId", Value: id.ClientID},
		{Name: "SPINE_SERVICES", Value: plain(strings.Join(d.cfg.Services, ","))},
		{Name: "SPINE_SERVICEBUS_NAMESPACE", Value: bus.fqdn},
		{Name: "SPINE_STORAGE_ACCOUNT_URL", Value: st.account.BlobEndpoint()},
		{Name: "SPINE_TABLE_ACCOUNT_URL", Value: st.account.TableEndpoint()},
		{Name: "SPINE_AUTH_ISSUER", Value: plain(issuer)},
		{Name: "SPINE_AUTH_AUDIENCE", Value: plain(audience)},
		// The vault the app reads and writes at run time (the authorization server's keys),
		// with its identity (AZURE_CLIENT_ID).
		{Name: "SPINE_KEYVAULT_URL", Value: kv.URI()},
	}
	if jwks != "" {
		settings = append(settings, azure.NameValue{Name: "SPINE_AUTH_JWKS_URL", Value: plain(jwks)})
	}
	settings = append(settings, d.notificationSettings(kv)...)
	for _, svc := range d.cfg.Services {
		settings = append(settings, azure.NameValue{Name: DBDialectSetting(svc), Value: plain(db.dialect)})
	}
	if slices.Contains(d.cfg.Services, "reporting") {
		// An artifact's expiresAt agrees with the reports container's lifecycle rule, which
		// deletes it ReportRetentionDays after it was written; download URLs live 5 minutes.
		settings = append(settings,
			azure.NameValue{Name: "SPINE_REPORTING_ARTIFACT_TTL", Value: plain(fmt.Sprintf("%dh", d.cfg.Storage.ReportRetentionDays*24))},
			azure.NameValue{Name: "SPINE_REPORTING_SAS_TTL", Value: plain("5m")})
	}
	refs := make([]string, 0, len(secrets.refs))
	for name := range secrets.refs {
		refs = append(refs, name)
	}
	sort.Strings(refs)
	for _, name := range refs {
		settings = append(settings, azure.NameValue{Name: name, Value: secrets.refs[name]})
	}
	// The app starts once its identity can read what its settings point at.
	deps := append(append([]pulumi.Resource{}, roles...), secrets.secrets...)
	app, err := azure.NewFunctionApp(d.ctx, "func", azure.FunctionAppArgs{
		Name: d.names.FunctionApp, ResourceGroupName: d.rgName, Location: d.cfg.Location,
		ServerFarmID: azure.ID(farm), IdentityID: azure.ID(id), SubnetID: azure.ID(d.net.functionsSubnet),
		RouteAllTrafficThroughVNet: true, HTTPSOnly: true, MinTLSVersion: "1.2", FTPSState: "Disabled",
		AlwaysOn: !elastic, RuntimeScaleMonitoring: elastic, MinimumElasticInstanceCount: elasticOnly(elastic, f.AlwaysReadyInstances),
		AppSettings: settings, Tags: tags,
	}, pulumi.DependsOn(deps))
	if err != nil {
		return nil, err
	}
	creds := azure.PublishingCredentialsArgs{AppName: app.Name, ResourceGroupName: d.rgName, Allow: false}
	if _, err := azure.NewSCMBasicAuth(d.ctx, "func-scm-basic-auth", creds); err != nil {
		return nil, err
	}
	if _, err := azure.NewFTPBasicAuth(d.ctx, "func-ftp-basic-auth", creds); err != nil {
		return nil, err
	}
	return app, nil
}

// notificationSettings are the notifications service's SMTP settings, when it is deployed and a
// relay is configured: the password as a Key Vault reference to the secret "smtp-password", which
// the operator writes (never the program: no SMTP password is in the stack's state).
func (d *deployment) notificationSettings(kv *azure.Vault) []azure.NameValue {
	n := d.cfg.Notifications
	if !slices.Contains(d.cfg.Services, "notifications") || n.SMTPAddr == "" {
		return nil
	}
	out := []azure.NameValue{{Name: "SPINE_SMTP_ADDR", Value: pulumi.String(n.SMTPAddr)}}
	if n.SMTPFrom != "" {
		out = append(out, azure.NameValue{Name: "SPINE_SMTP_FROM", Value: pulumi.String(n.SMTPFrom)})
	}
	if n.SMTPUsername != "" {
		out = append(out, azure.NameValue{Name: "SPINE_SMTP_USERNAME", Value: pulumi.String(n.SMTPUsername)},
			azure.NameValue{Name: "SPINE_SMTP_PASSWORD", Value: pulumi.Sprintf("@Microsoft.KeyVault(SecretUri=%ssecrets/smtp-password/)", kv.URI())})
	}
	return out
}

func elasticOnly(elastic bool, v int) int {
	if elastic {
		return v
	}
	return 0
}
