package policy_test

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// platformSettings are app settings read by something other than the app's own configuration:
// the Functions platform and host (and its bindings, by connection name), the Azure SDK's
// credential (AZURE_CLIENT_ID), and Application Insights.
var platformSettings = regexp.MustCompile(`^(FUNCTIONS_EXTENSION_VERSION|FUNCTIONS_WORKER_RUNTIME|AZURE_CLIENT_ID|` +
	`AzureWebJobsStorage__[A-Za-z]+|WEBSITE_[A-Z_]+|APPLICATIONINSIGHTS_[A-Z_]+|ServiceBusConnection__[A-Za-z]+)$`)

// perServiceSettings are the database settings shared/config builds from each service's name.
var perServiceSettings = regexp.MustCompile(`^SPINE_[A-Z0-9]+_DB_(DIALECT|URL|MIGRATE_URL)$`)

// Every app setting the program writes is read by something: the platform, or the app, whose
// settings are the SPINE_* names in shared/config/config.go. A setting nothing reads is noise
// that looks like configuration (and, for a secret, an exposure with no use).
func TestEveryAppSettingIsRead(t *testing.T) {
	src, err := os.ReadFile("../../shared/config/config.go")
	if err != nil {
		t.Fatalf("the app's settings are read in shared/config/config.go: %v", err)
	}
	if !strings.Contains(string(src), `_DB_"`) {
		t.Fatal(`shared/config/config.go no longer builds SPINE_<SERVICE>_DB_* names: update perServiceSettings`)
	}
	read := map[string]bool{}
	for _, m := range regexp.MustCompile(`"(SPINE_[A-Z0-9_]+)"`).FindAllStringSubmatch(string(src), -1) {
		read[m[1]] = true
	}
	for _, stack := range []string{"dev", "prod", "full-sqlserver"} {
		snap, _ := runStack(t, stack)
		app := find(t, snap, "azure-native:web:WebApp", "func")
		settings, _ := app.In("siteConfig.appSettings").([]any)
		if len(settings) < 10 {
			t.Fatalf("%s: found %d app settings", stack, len(settings))
		}
		for _, it := range settings {
			name, _ := it.(map[string]any)["name"].(string)
			if !platformSettings.MatchString(name) && !perServiceSettings.MatchString(name) && !read[name] {
				t.Errorf("%s: app setting %s is read by nothing (neither the platform nor shared/config)", stack, name)
			}
		}
	}
}
