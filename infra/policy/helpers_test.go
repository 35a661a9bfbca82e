package policy_test

import (
	"encoding/json"
	"maps"
	"strings"
	"sync"
	"testing"

	"spine/infra/internal/stacktest"
	"spine/infra/policy"
	"spine/infra/spine"
)

// A run of the program for one stack or fixture.
type run struct {
	snap *policy.Snapshot
	cfg  spine.Config
}

var (
	runsMu sync.Mutex
	runs   = map[string]run{}
)

// allServices is the product's full service list.
func allServices() []string {
	var out []string
	for _, s := range spine.Catalog() {
		out = append(out, s.Name)
	}
	return out
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// fixtures are test-only stacks: a real stack's configuration with the whole
// product's services, and the Azure SQL engine, so that every policy also runs
// over many databases, topics and filtered subscriptions.
func fixtureConfig(t *testing.T, name string) (string, map[string]string) {
	t.Helper()
	var base string
	overrides := map[string]string{}
	switch name {
	case "full-postgres":
		base = "dev"
		overrides["spine:environment"] = spine.EnvDev
	case "full-sqlserver":
		base = "staging"
		overrides["spine:environment"] = spine.EnvStaging
		overrides["spine:database"] = mustJSON(t, map[string]any{
			"engine": "sqlserver",
			"sql": map[string]any{
				"databaseSku":             map[string]any{"name": "GP_S_Gen5", "tier": "GeneralPurpose", "family": "Gen5", "capacity": 2},
				"backupStorageRedundancy": "Zone",
			},
			"admin": map[string]any{"login": "spine-staging-dba", "objectId": "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", "principalType": "Group"},
		})
	case "full-sqlserver-pool":
		base = "prod"
		overrides["spine:environment"] = spine.EnvProd
		overrides["spine:database"] = mustJSON(t, map[string]any{
			"engine": "sqlserver",
			"sql": map[string]any{
				"elasticPool": map[string]any{
					"sku":                    map[string]any{"name": "GP_Gen5", "tier": "GeneralPurpose", "family": "Gen5", "capacity": 4},
					"perDatabaseMinCapacity": 0.25, "perDatabaseMaxCapacity": 2,
				},
				"backupStorageRedundancy": "GeoZone",
				"zoneRedundant":           true,
			},
		})
	default:
		project, cfg, err := stacktest.LoadStack(name)
		if err != nil {
			t.Fatalf("loading stack %s: %v", name, err)
		}
		return project, cfg
	}
	project, cfg, err := stacktest.LoadStack(base)
	if err != nil {
		t.Fatalf("loading stack %s: %v", base, err)
	}
	cfg = maps.Clone(cfg)
	cfg["spine:services"] = mustJSON(t, allServices())
	maps.Copy(cfg, overrides)
	return project, cfg
}

// runStack runs the program for a stack or fixture once per test binary and
// returns a private copy of its snapshot.
func runStack(t *testing.T, name string) (*policy.Snapshot, spine.Config) {
	t.Helper()
	runsMu.Lock()
	defer runsMu.Unlock()
	r, ok := runs[name]
	if !ok {
		project, cfg := fixtureConfig(t, name)
		snap, loaded, err := stacktest.Run(project, name, cfg)
		if err != nil {
			t.Fatalf("running the program for %s: %v", name, err)
		}
		r = run{snap: snap, cfg: loaded}
		runs[name] = r
	}
	return r.snap.Clone(), r.cfg
}

// failing returns the names of the checks that fail on a snapshot, and their errors.
func failing(s *policy.Snapshot, e policy.Expectations) (map[string]bool, map[string]error) {
	names, errs := map[string]bool{}, map[string]error{}
	for _, c := range policy.Checks() {
		if err := c.Run(s, e); err != nil {
			names[c.Name] = true
			errs[c.Name] = err
		}
	}
	return names, errs
}

// find returns a pointer to a resource of the snapshot, so a fixture can break it.
func find(t *testing.T, s *policy.Snapshot, typ, name string) *policy.Resource {
	t.Helper()
	for i := range s.Resources {
		if s.Resources[i].Type == typ && s.Resources[i].Name == name {
			return &s.Resources[i]
		}
	}
	t.Fatalf("fixture: no %s %q in the snapshot", typ, name)
	return nil
}

// drop removes a resource from the snapshot.
func drop(t *testing.T, s *policy.Snapshot, typ, name string) {
	t.Helper()
	find(t, s, typ, name)
	var kept []policy.Resource
	for _, r := range s.Resources {
		if r.Type != typ || r.Name != name {
			kept = append(kept, r)
		}
	}
	s.Resources = kept
}

// set writes a value at a dotted path of a property map, creating objects on
// the way and unwrapping secrets.
func set(m map[string]any, path string, v any) {
	parts := strings.Split(path, ".")
	cur := m
	for _, p := range parts[:len(parts)-1] {
		next := cur[p]
		if s, ok := next.(policy.Secret); ok {
			next = s.Value
		}
		obj, ok := next.(map[string]any)
		if !ok {
			obj = map[string]any{}
		}
		cur[p] = obj
		cur = obj
	}
	cur[parts[len(parts)-1]] = v
}

// appSetting rewrites (or adds) one app setting of the Function App.
func appSetting(t *testing.T, s *policy.Snapshot, name, value string) {
	t.Helper()
	app := find(t, s, "azure-native:web:WebApp", "func")
	settings, _ := app.In("siteConfig.appSettings").([]any)
	for _, it := range settings {
		if m := it.(map[string]any); m["name"] == name {
			m["value"] = value
			return
		}
	}
	settings = append(settings, map[string]any{"name": name, "value": value})
	set(app.Inputs, "siteConfig.appSettings", settings)
}
