package azure

import (
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

func TestPluginVersion(t *testing.T) {
	cases := map[string]string{
		"azure-native:storage:StorageAccount":        AzureNativeVersion,
		"azure-native:authorization:getClientConfig": AzureNativeVersion,
		"tls:index/privateKey:PrivateKey":            "",
		"command:local:Command":                      CommandVersion,
		"random:index/randomPassword:RandomPassword": "",
	}
	for token, want := range cases {
		if got := PluginVersion(token); got != want {
			t.Errorf("PluginVersion(%q) = %q, want %q", token, got, want)
		}
	}
}

func TestObjLeavesUnsetValuesOut(t *testing.T) {
	o := obj{}.str("a", "").str("b", "x").num("c", 0).num("d", 2).sub("e", obj{}).strs("f", nil).flag("g", false).in("h", nil)
	want := []string{"b", "d", "g"}
	if len(o) != len(want) {
		t.Fatalf("obj = %v, want only keys %v", o, want)
	}
	for _, k := range want {
		if _, ok := o[k]; !ok {
			t.Errorf("obj is missing %q", k)
		}
	}
}

func TestLifecycleRuleInput(t *testing.T) {
	m := LifecycleRule{Name: "r", Prefixes: []string{"c/"}, TierToCoolAfterDays: 30, DeleteAfterDays: 365}.input()
	def := m["definition"].(pulumi.Map)
	base := def["actions"].(pulumi.Map)["baseBlob"].(pulumi.Map)
	if _, ok := base["tierToArchive"]; ok {
		t.Error("an action with zero days must be left out")
	}
	if got := base["delete"].(pulumi.Map)["daysAfterModificationGreaterThan"]; got != pulumi.Int(365) {
		t.Errorf("delete after %v, want 365", got)
	}
	if _, ok := def["actions"].(pulumi.Map)["version"]; ok {
		t.Error("no previous-version action was asked for")
	}
	if m["type"] != pulumi.String("Lifecycle") || m["enabled"] != pulumi.Bool(true) {
		t.Errorf("rule header = %v", m)
	}
}

func TestRoleDefinitionID(t *testing.T) {
	got := RoleDefinitionID("sub", RoleKeyVaultSecretsOfficer)
	want := "/subscriptions/sub/providers/Microsoft.Authorization/roleDefinitions/b86a8fe4-44ce-4948-aee5-eccb2c155cd7"
	if got != want {
		t.Errorf("RoleDefinitionID = %q, want %q", got, want)
	}
}
