// Package stacktest runs the Pulumi program under pulumi.WithMocks with a
// stack's configuration and returns what it registered as a policy.Snapshot.
// The mocks play the providers: they echo each resource's inputs and add the
// outputs the program reads (IDs, host names, URIs, identity IDs), derived
// deterministically from the inputs.
package stacktest

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/pulumi/pulumi/sdk/v3/go/common/diag"
	"github.com/pulumi/pulumi/sdk/v3/go/common/diag/colors"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/config"
	"github.com/pulumi/pulumi/sdk/v3/go/common/workspace"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"spine/infra/policy"
	"spine/infra/spine"
)

// Mock identities of the deploying principal.
const (
	SubscriptionID = "11111111-2222-3333-4444-555555555555"
	TenantID       = "99999999-8888-7777-6666-555555555555"
	DeployerObject = "abcdefab-1234-5678-9abc-def012345678"
)

// nameKeys is the input property that holds each resource type's Azure name.
// A type missing here makes the mock fail, so every type the program registers
// is known to the tests.
var nameKeys = map[string]string{
	"azure-native:resources:ResourceGroup":                      "resourceGroupName",
	"azure-native:network:VirtualNetwork":                       "virtualNetworkName",
	"azure-native:network:Subnet":                               "subnetName",
	"azure-native:network:PrivateEndpoint":                      "privateEndpointName",
	"azure-native:network:PrivateDnsZoneGroup":                  "privateDnsZoneGroupName",
	"azure-native:privatedns:PrivateZone":                       "privateZoneName",
	"azure-native:privatedns:VirtualNetworkLink":                "virtualNetworkLinkName",
	"azure-native:managedidentity:UserAssignedIdentity":         "resourceName",
	"azure-native:authorization:RoleAssignment":                 "",
	"azure-native:storage:StorageAccount":                       "accountName",
	"azure-native:storage:BlobServiceProperties":                "blobServicesName",
	"azure-native:storage:BlobContainer":                        "containerName",
	"azure-native:storage:BlobContainerImmutabilityPolicy":      "immutabilityPolicyName",
	"azure-native:storage:ManagementPolicy":                     "managementPolicyName",
	"azure-native:storage:Table":                                "tableName",
	"azure-native:keyvault:Vault":                               "vaultName",
	"azure-native:keyvault:Secret":                              "secretName",
	"azure-native:redis:Redis":                                  "name",
	"azure-native:redis:AccessPolicyAssignment":                 "accessPolicyAssignmentName",
	"azure-native:servicebus:Namespace":                         "namespaceName",
	"azure-native:servicebus:Topic":                             "topicName",
	"azure-native:servicebus:Subscription":                      "subscriptionName",
	"azure-native:servicebus:Rule":                              "ruleName",
	"azure-native:sql:Server":                                   "serverName",
	"azure-native:sql:Database":                                 "databaseName",
	"azure-native:sql:ElasticPool":                              "elasticPoolName",
	"azure-native:sql:TransparentDataEncryption":                "tdeName",
	"azure-native:dbforpostgresql:Server":                       "serverName",
	"azure-native:dbforpostgresql:Database":                     "databaseName",
	"azure-native:dbforpostgresql:Configuration":                "configurationName",
	"azure-native:dbforpostgresql:AdministratorsMicrosoftEntra": "objectId",
	"azure-native:web:AppServicePlan":                           "name",
	"azure-native:web:WebApp":                                   "name",
	"azure-native:web:WebAppScmAllowed":                         "",
	"azure-native:web:WebAppFtpAllowed":                         "",
	"azure-native:operationalinsights:Workspace":                "workspaceName",
	"azure-native:applicationinsights:Component":                "resourceName",
	"command:local:Command":                                     "",
}

// mocks records every registration.
type mocks struct {
	mu        sync.Mutex
	resources []policy.Resource
}

// fakeUUID derives a stable UUID-shaped value from a seed.
func fakeUUID(seed string) string {
	h := fmt.Sprintf("%x", sha256.Sum256([]byte(seed)))
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func (m *mocks) NewResource(args pulumi.MockResourceArgs) (string, resource.PropertyMap, error) {
	nameKey, known := nameKeys[args.TypeToken]
	if !known {
		return "", nil, fmt.Errorf("mock: resource type %s is not known to the tests", args.TypeToken)
	}
	id := "/mock/" + strings.ReplaceAll(args.TypeToken, ":", "/") + "/" + args.Name
	in := args.Inputs
	str := func(k string) string {
		v := in[resource.PropertyKey(k)]
		if v.IsSecret() {
			v = v.SecretValue().Element
		}
		if v.IsString() {
			return v.StringValue()
		}
		return ""
	}
	name := args.Name
	if nameKey != "" && str(nameKey) != "" {
		name = str(nameKey)
	}
	out := map[string]any{"name": name}
	var secretOut []string
	switch args.TypeToken {
	case "azure-native:managedidentity:UserAssignedIdentity":
		out["clientId"] = fakeUUID("client:" + name)
		out["principalId"] = fakeUUID("principal:" + name)
		out["tenantId"] = TenantID
	case "azure-native:storage:StorageAccount":
		out["primaryEndpoints"] = map[string]any{
			"blob": "https://" + name + ".blob.core.windows.net/", "table": "https://" + name + ".table.core.windows.net/",
			"queue": "https://" + name + ".queue.core.windows.net/", "file": "https://" + name + ".file.core.windows.net/",
		}
	case "azure-native:storage:BlobContainerImmutabilityPolicy":
		out["etag"] = `"0x8D` + strings.ToUpper(fakeUUID("etag:" + args.Name)[:8]) + `"`
	case "azure-native:keyvault:Vault":
		props := plain(in["properties"]).(map[string]any)
		props["vaultUri"] = "https://" + name + ".vault.azure.net/"
		out["properties"] = props
	case "azure-native:keyvault:Secret":
		out["properties"] = map[string]any{
			"secretUri":            "https://" + str("vaultName") + ".vault.azure.net/secrets/" + name,
			"secretUriWithVersion": "https://" + str("vaultName") + ".vault.azure.net/secrets/" + name + "/" + fakeUUID(name)[:8],
		}
	case "azure-native:redis:Redis":
		out["hostName"] = name + ".redis.cache.windows.net"
		out["sslPort"] = 6380.0
		out["port"] = 6379.0
	case "azure-native:servicebus:Namespace":
		out["serviceBusEndpoint"] = "https://" + name + ".servicebus.windows.net:443/"
	case "azure-native:sql:Server":
		out["fullyQualifiedDomainName"] = name + ".database.windows.net"
	case "azure-native:dbforpostgresql:Server":
		out["fullyQualifiedDomainName"] = name + ".postgres.database.azure.com"
	case "azure-native:applicationinsights:Component":
		key := fakeUUID("ikey:" + name)
		out["instrumentationKey"] = key
		out["connectionString"] = "InstrumentationKey=" + key + ";IngestionEndpoint=https://westeurope-5.in.applicationinsights.azure.com/"
		secretOut = append(secretOut, "instrumentationKey", "connectionString")
	case "azure-native:web:WebApp":
		out["defaultHostName"] = name + ".azurewebsites.net"
	}

	state := in.Copy()
	for k, v := range out {
		pv := resource.NewPropertyValue(v)
		if contains(secretOut, k) {
			pv = resource.MakeSecret(pv)
		}
		state[resource.PropertyKey(k)] = pv
	}
	inputs, _ := plain(resource.NewProperty(in)).(map[string]any)
	outputs, _ := plain(resource.NewProperty(state)).(map[string]any)
	rec := policy.Resource{Type: args.TypeToken, Name: args.Name, ID: id, Inputs: inputs, Outputs: outputs}
	if rpc := args.RegisterRPC; rpc != nil {
		rec.Version = rpc.GetVersion()
		rec.Protect = rpc.GetProtect()
	}
	m.mu.Lock()
	m.resources = append(m.resources, rec)
	m.mu.Unlock()
	return id, state, nil
}

func (m *mocks) Call(args pulumi.MockCallArgs) (resource.PropertyMap, error) {
	if args.Token == "azure-native:authorization:getClientConfig" {
		return resource.NewPropertyMapFromMap(map[string]any{
			"clientId": fakeUUID("deployer-client"), "objectId": DeployerObject,
			"subscriptionId": SubscriptionID, "tenantId": TenantID,
		}), nil
	}
	return nil, fmt.Errorf("mock: invoke %s is not known to the tests", args.Token)
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// plain converts a property value to plain Go values, wrapping secrets in
// policy.Secret.
func plain(v resource.PropertyValue) any {
	switch {
	case v.IsSecret():
		return policy.Secret{Value: plain(v.SecretValue().Element)}
	case v.IsOutput():
		o := v.OutputValue()
		if !o.Known {
			return nil
		}
		if o.Secret {
			return policy.Secret{Value: plain(o.Element)}
		}
		return plain(o.Element)
	case v.IsComputed():
		return nil
	case v.IsObject():
		m := map[string]any{}
		for k, e := range v.ObjectValue() {
			m[string(k)] = plain(e)
		}
		return m
	case v.IsArray():
		a := []any{}
		for _, e := range v.ArrayValue() {
			a = append(a, plain(e))
		}
		return a
	case v.IsResourceReference():
		return string(v.ResourceReferenceValue().URN)
	}
	return v.V
}

// Run runs the program for a stack with the given configuration (keys such as
// "spine:services", values as the Pulumi CLI passes them: objects and lists as
// JSON). Hooks are stack transformations applied to every resource before it is
// registered, for fixtures that break the program's output on purpose. It
// returns the snapshot and the configuration the program loaded.
func Run(project, stack string, cfg map[string]string, hooks ...pulumi.ResourceTransformation) (*policy.Snapshot, spine.Config, error) {
	m := &mocks{}
	snap := &policy.Snapshot{Stack: stack, Outputs: map[string]policy.Output{}}
	var loaded spine.Config
	withConfig := func(info *pulumi.RunInfo) { info.Config = cfg }
	err := pulumi.RunErr(func(ctx *pulumi.Context) error {
		for _, h := range hooks {
			if err := ctx.RegisterStackTransformation(h); err != nil {
				return err
			}
		}
		st, err := spine.Run(ctx)
		if err != nil {
			return err
		}
		loaded = st.Config
		var mu sync.Mutex
		var wg sync.WaitGroup
		for k, out := range st.Outputs {
			wg.Add(1)
			secret := pulumi.IsSecret(out)
			out.ApplyT(func(v any) any {
				mu.Lock()
				snap.Outputs[k] = policy.Output{Value: v, Secret: secret}
				mu.Unlock()
				wg.Done()
				return v
			})
		}
		wg.Wait()
		return nil
	}, pulumi.WithMocks(project, stack, m), withConfig)
	if err != nil {
		return nil, spine.Config{}, err
	}
	m.mu.Lock()
	snap.Resources = append(snap.Resources, m.resources...)
	m.mu.Unlock()
	sort.SliceStable(snap.Resources, func(i, j int) bool {
		if snap.Resources[i].Type != snap.Resources[j].Type {
			return snap.Resources[i].Type < snap.Resources[j].Type
		}
		return snap.Resources[i].Name < snap.Resources[j].Name
	})
	return snap, loaded, nil
}

// InfraDir returns the infra/ directory (the Pulumi project), found from the
// working directory upwards.
func InfraDir() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "Pulumi.yaml")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no Pulumi.yaml in the working directory or above")
		}
		dir = parent
	}
}

// Stacks lists the stacks with a Pulumi.<stack>.yaml file in the project.
func Stacks() ([]string, error) {
	dir, err := InfraDir()
	if err != nil {
		return nil, err
	}
	files, err := filepath.Glob(filepath.Join(dir, "Pulumi.*.yaml"))
	if err != nil {
		return nil, err
	}
	var stacks []string
	for _, f := range files {
		stacks = append(stacks, strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "Pulumi."), ".yaml"))
	}
	sort.Strings(stacks)
	return stacks, nil
}

// LoadStack reads Pulumi.yaml and Pulumi.<stack>.yaml the way the Pulumi CLI
// does and returns the project name and the stack's configuration in the form
// the CLI hands it to the program.
func LoadStack(stack string) (string, map[string]string, error) {
	dir, err := InfraDir()
	if err != nil {
		return "", nil, err
	}
	project, err := workspace.LoadProject(filepath.Join(dir, "Pulumi.yaml"))
	if err != nil {
		return "", nil, err
	}
	path := filepath.Join(dir, "Pulumi."+stack+".yaml")
	if _, err := os.Stat(path); err != nil {
		return "", nil, err
	}
	sink := diag.DefaultSink(os.Stderr, os.Stderr, diag.FormatOptions{Color: colors.Never})
	ps, err := workspace.LoadProjectStack(sink, project, path)
	if err != nil {
		return "", nil, err
	}
	values, err := ps.Config.Decrypt(config.NopDecrypter)
	if err != nil {
		return "", nil, err
	}
	out := map[string]string{}
	for k, v := range values {
		out[k.String()] = v
	}
	return project.Name.String(), out, nil
}
