package spine

import (
	"encoding/json"
	"os"
	"slices"
	"testing"
)

// appEvents is the app's event catalog (`handler events --json`, refreshed by `handler events
// --write`; the app's own test fails when the file is stale).
type appEvents struct {
	Topics []struct {
		Name      string   `json:"name"`
		Publishes []string `json:"publishes"`
	} `json:"topics"`
	Subscriptions []struct {
		Topic        string   `json:"topic"`
		Subscription string   `json:"subscription"`
		Function     string   `json:"function"`
		EventTypes   []string `json:"eventTypes"`
	} `json:"subscriptions"`
}

// The Service Bus topics and subscription filters this program provisions for the app's services
// are exactly what the app's module list and consumers declare: every published type travels on
// its publisher's topic, and every consumer's subscription lets through exactly the types its
// function consumes.
func TestCatalog_MatchesTheAppsEventCatalog(t *testing.T) {
	raw, err := os.ReadFile("testdata/app-events.json")
	if err != nil {
		t.Fatalf("the app's event catalog: %v (run `go run . events --write` in the app)", err)
	}
	var app appEvents
	if err := json.Unmarshal(raw, &app); err != nil {
		t.Fatal(err)
	}
	var services []string
	for _, topic := range app.Topics {
		services = append(services, topic.Name)
		s, ok := LookupService(topic.Name)
		if !ok {
			t.Errorf("the app publishes on topic %s, which the catalog does not know", topic.Name)
			continue
		}
		for _, typ := range topic.Publishes {
			if !slices.Contains(s.Publishes, typ) {
				t.Errorf("the app's %s publishes %s; the catalog's %s does not list it", topic.Name, typ, s.Name)
			}
		}
	}
	want := map[string][]string{}
	for _, s := range app.Subscriptions {
		want[s.Topic+"/"+s.Subscription] = s.EventTypes
	}
	got := map[string][]string{}
	for _, s := range Subscriptions(services) {
		got[s.Topic+"/"+s.Consumer] = s.EventTypes
	}
	for k, types := range want {
		if !slices.Equal(got[k], types) {
			t.Errorf("subscription %s: infra filters %v, the app consumes %v", k, got[k], types)
		}
	}
	for k, types := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("subscription %s (%v) has no consuming function in the app", k, types)
		}
	}
}
