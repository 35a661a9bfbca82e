// Package spine assembles the Spine platform on Azure from a Config: one
// resource group per stack with its network, stores, identity and Function App.
//
// Program is the Pulumi entry point. Deploy does the work in plain functions
// over the typed layer in spine/infra/azure, so the tests run the same code
// under pulumi.WithMocks and check the registered resources against the
// policies in spine/infra/policy.
package spine

import (
	"fmt"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"spine/infra/azure"
)

// Tag names put on every taggable resource.
const (
	TagEnvironment        = "environment"
	TagOwnerService       = "owner-service"
	TagDataClassification = "data-classification"
)

// Stack is what Deploy built: the validated configuration and the stack
// outputs. Outputs never carry a secret value.
type Stack struct {
	Config  Config
	Outputs map[string]pulumi.Output
}

// Program is the Pulumi program: it reads and validates the stack's
// configuration, provisions everything and exports the stack outputs.
func Program(ctx *pulumi.Context) error {
	_, err := Run(ctx)
	return err
}

// Run is Program returning what it built, for tests and tooling.
func Run(ctx *pulumi.Context) (*Stack, error) {
	cfg, err := LoadConfig(ctx)
	if err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("stack %s: invalid configuration:\n%w", ctx.Stack(), err)
	}
	st, err := Deploy(ctx, cfg)
	if err != nil {
		return nil, err
	}
	for k, v := range st.Outputs {
		ctx.Export(k, v)
	}
	return st, nil
}

// deployment carries what the assembly steps share.
type deployment struct {
	ctx    *pulumi.Context
	cfg    Config
	names  Names
	client azure.ClientConfig
	rg     *azure.Resource
	// rgName is the resource group's name output; every resource depends on it.
	rgName pulumi.StringOutput
	net    *network
}

// tags returns the three required tags for a resource.
func (d *deployment) tags(owner, classification string) azure.Tags {
	return azure.Tags{
		TagEnvironment:        d.cfg.Environment,
		TagOwnerService:       owner,
		TagDataClassification: classification,
	}
}

// protect returns the options of a store: protected from deletion when the stack
// says so.
func (d *deployment) protect() []pulumi.ResourceOption {
	if d.cfg.Protect {
		return []pulumi.ResourceOption{pulumi.Protect(true)}
	}
	return nil
}

// Deploy registers every resource of the stack described by cfg, which must
// have passed Validate.
func Deploy(ctx *pulumi.Context, cfg Config) (*Stack, error) {
	d := &deployment{ctx: ctx, cfg: cfg, names: cfg.Names()}
	var err error
	if d.client, err = azure.GetClientConfig(ctx); err != nil {
		return nil, fmt.Errorf("reading the deploying principal: %w", err)
	}
	d.rg, err = azure.NewResourceGroup(ctx, "rg", azure.ResourceGroupArgs{
		ResourceGroupName: d.names.ResourceGroup, Location: cfg.Location,
		Tags: d.tags(OwnerPlatform, ClassInternal),
	}, d.protect()...)
	if err != nil {
		return nil, err
	}
	d.rgName = d.rg.Name

	mon, err := d.monitoring()
	if err != nil {
		return nil, err
	}
	id, err := d.identity()
	if err != nil {
		return nil, err
	}
	if d.net, err = d.network(); err != nil {
		return nil, err
	}
	st, err := d.storage()
	if err != nil {
		return nil, err
	}
	kv, err := d.keyVault()
	if err != nil {
		return nil, err
	}
	cache, err := d.redis(id)
	if err != nil {
		return nil, err
	}
	bus, err := d.serviceBus()
	if err != nil {
		return nil, err
	}
	db, err := d.database(id)
	if err != nil {
		return nil, err
	}
	secrets, err := d.secrets(kv, id, db, cache, mon)
	if err != nil {
		return nil, err
	}
	roles, err := d.roleAssignments(id, kv, st, bus, mon)
	if err != nil {
		return nil, err
	}
	app, err := d.functionApp(id, st, bus, db, kv, secrets, roles)
	if err != nil {
		return nil, err
	}
	return &Stack{Config: cfg, Outputs: d.outputs(id, st, kv, cache, bus, db, app)}, nil
}

// outputs are the stack outputs: names and endpoints only.
func (d *deployment) outputs(id *azure.UserAssignedIdentity, st *storage, kv *azure.Vault, cache *azure.Redis,
	bus *serviceBus, db *database, app *azure.FunctionApp,
) map[string]pulumi.Output {
	topics := pulumi.StringArray{}
	for _, t := range bus.topics {
		topics = append(topics, pulumi.String(t.Publisher))
	}
	subs := pulumi.StringArray{}
	for _, s := range bus.subscriptions {
		subs = append(subs, pulumi.String(s.Topic+"/"+s.Consumer))
	}
	databases := pulumi.StringArray{}
	for _, s := range d.cfg.Services {
		databases = append(databases, pulumi.String(s))
	}
	return map[string]pulumi.Output{
		"environment":            pulumi.String(d.cfg.Environment).ToStringOutput(),
		"resourceGroupName":      d.rgName,
		"functionAppName":        app.Name,
		"functionAppHostName":    app.DefaultHostName,
		"identityClientId":       id.ClientID,
		"storageAccountName":     st.account.Name,
		"blobEndpoint":           st.account.BlobEndpoint(),
		"keyVaultName":           kv.Name,
		"keyVaultUri":            kv.URI(),
		"redisHostName":          cache.HostName,
		"serviceBusNamespace":    bus.fqdn,
		"databaseEngine":         pulumi.String(d.cfg.Database.Engine).ToStringOutput(),
		"databaseServerHostName": db.fqdn,
		"databases":              databases.ToStringArrayOutput(),
		"topics":                 topics.ToStringArrayOutput(),
		"subscriptions":          subs.ToStringArrayOutput(),
		"auditArchiveLocked":     pulumi.Bool(d.cfg.Storage.AuditArchive.Locked).ToBoolOutput(),
	}
}
