// Package azure is a small typed layer over the Pulumi resource providers this
// program uses: azure-native (every Azure resource) and command (the one-way lock
// of the audit archive's immutability policy).
//
// The providers' generated Go SDKs are not used. Each resource is registered with
// ctx.RegisterResource under its provider type token (for example
// "azure-native:storage:StorageAccount") and a property bag whose names are the
// provider's own input property names, built from typed Args structs. With the
// Pulumi CLI and the provider plugins installed, `pulumi preview` and
// `pulumi up` drive the real providers; under pulumi.WithMocks the same calls are
// recorded for the policy tests.
package azure

import (
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Provider plugin versions the program is written against. Every resource is
// registered with pulumi.Version so the engine loads exactly these plugins.
const (
	// AzureNativeVersion is the azure-native provider plugin version.
	AzureNativeVersion = "3.28.0"
	// CommandVersion is the command provider plugin version.
	CommandVersion = "1.2.1"
)

// PluginVersion returns the provider plugin version pinned for a resource or
// invoke type token, or "" when the token's package is not one this layer uses.
func PluginVersion(token string) string {
	pkg, _, _ := strings.Cut(token, ":")
	switch pkg {
	case "azure-native":
		return AzureNativeVersion
	case "command":
		return CommandVersion
	}
	return ""
}

// Tags are Azure resource tags.
type Tags map[string]string

func (t Tags) input() pulumi.StringMap {
	m := pulumi.StringMap{}
	for k, v := range t {
		m[k] = pulumi.String(v)
	}
	return m
}

// Resource is the state every registered resource exposes: its provider ID
// (through CustomResourceState) and its name.
type Resource struct {
	pulumi.CustomResourceState
	Name pulumi.StringOutput `pulumi:"name"`
}

// ID returns a resource's provider ID (its Azure resource ID) as a string output.
func ID(r pulumi.CustomResource) pulumi.StringOutput { return r.ID().ToStringOutput() }

// NameValue is one name/value pair, for properties that are lists of pairs
// (a Function App's app settings).
type NameValue struct {
	Name  string
	Value pulumi.StringInput
}

// register registers a custom resource under token with the pinned plugin
// version of its provider.
func register(ctx *pulumi.Context, token, name string, props obj, res pulumi.CustomResource, opts []pulumi.ResourceOption) error {
	all := make([]pulumi.ResourceOption, 0, len(opts)+1)
	if v := PluginVersion(token); v != "" {
		all = append(all, pulumi.Version(v))
	}
	all = append(all, opts...)
	return ctx.RegisterResource(token, name, pulumi.Map(props), res, all...)
}

// obj builds a property bag and leaves unset values out, so that the provider
// applies its own defaults for them. Booleans are always written: every boolean
// this program sets is a deliberate choice.
type obj pulumi.Map

func (o obj) str(k, v string) obj {
	if v != "" {
		o[k] = pulumi.String(v)
	}
	return o
}

func (o obj) in(k string, v pulumi.Input) obj {
	if v != nil {
		o[k] = v
	}
	return o
}

func (o obj) flag(k string, v bool) obj {
	o[k] = pulumi.Bool(v)
	return o
}

func (o obj) num(k string, v int) obj {
	if v != 0 {
		o[k] = pulumi.Int(v)
	}
	return o
}

func (o obj) sub(k string, v obj) obj {
	if len(v) > 0 {
		o[k] = pulumi.Map(v)
	}
	return o
}

func (o obj) list(k string, v pulumi.Array) obj {
	if len(v) > 0 {
		o[k] = v
	}
	return o
}

func (o obj) strs(k string, v []string) obj {
	if len(v) > 0 {
		a := pulumi.StringArray{}
		for _, s := range v {
			a = append(a, pulumi.String(s))
		}
		o[k] = a
	}
	return o
}

func (o obj) tags(t Tags) obj {
	if len(t) > 0 {
		o["tags"] = t.input()
	}
	return o
}

// stringField reads one string field of an object output.
func stringField(m pulumi.MapOutput, key string) pulumi.StringOutput {
	return m.ApplyT(func(v map[string]any) string {
		s, _ := v[key].(string)
		return s
	}).(pulumi.StringOutput)
}
