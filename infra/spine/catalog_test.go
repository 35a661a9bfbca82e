package spine

import (
	"slices"
	"testing"
)

func allServiceNames() []string {
	var out []string
	for _, s := range Catalog() {
		out = append(out, s.Name)
	}
	return out
}

func TestCatalogEventsHaveOnePublisher(t *testing.T) {
	publisher := map[string]string{}
	for _, s := range Catalog() {
		for _, e := range s.Publishes {
			if slices.Contains(PlatformEvents, e) {
				if p, ok := publisher[e]; !ok || p == "*" {
					publisher[e] = "*" // every topic carries it
				}
				continue
			}
			if p, ok := publisher[e]; ok {
				t.Errorf("event %s is published by %s and %s", e, p, s.Name)
			}
			publisher[e] = s.Name
		}
	}
	for _, s := range Catalog() {
		for _, e := range s.Consumes {
			if _, ok := publisher[e]; !ok {
				t.Errorf("%s consumes %s, which nobody publishes", s.Name, e)
			}
		}
	}
	// The design's 21, plus identity's UserEnabled and RolePermissionsChanged (issue 9), plus
	// authz's RefreshTokenReuseDetected and its four client events (issue 11), plus billing's
	// SubscriptionEditionChanged and InvoiceIssued and config's SettingChanged (issue 12), plus
	// notifications' NotificationFailed and WebhookEndpointDisabled, integrations' IntegrationCreated,
	// -Updated, -SecretRotated, -Deleted and -Tested, and reporting's ReportFailed (issue 13), plus
	// the retention engine's RetentionApplied, which every topic carries (issue 14).
	if len(publisher) != 40 {
		t.Errorf("%d event types, want the 40 of the design", len(publisher))
	}
}

func TestAuditConsumesEveryOtherEvent(t *testing.T) {
	audit, ok := LookupService("audit")
	if !ok {
		t.Fatal("no audit service")
	}
	for _, s := range Catalog() {
		for _, e := range s.Publishes {
			consumed := slices.Contains(audit.Consumes, e)
			if slices.Contains(PlatformEvents, e) {
				continue // every topic carries it; Subscriptions leaves out audit's own (below)
			}
			if s.Name == "audit" && consumed {
				t.Errorf("audit consumes its own %s, which would loop", e)
			}
			if s.Name != "audit" && !consumed {
				t.Errorf("audit does not consume %s", e)
			}
		}
	}
}

func TestTopicsAndSubscriptions(t *testing.T) {
	if got := Topics([]string{"tenants"}); len(got) != 1 || got[0].Publisher != "tenants" || len(got[0].EventTypes) != 6 {
		t.Errorf("Topics(tenants) = %+v", got)
	}
	if got := Subscriptions([]string{"tenants"}); len(got) != 0 {
		t.Errorf("tenants alone consumes nothing, got %+v", got)
	}
	got := Subscriptions([]string{"tenants", "billing"})
	want := []SubscriptionSpec{{Topic: "tenants", Consumer: "billing", EventTypes: []string{"TenantDecommissioned", "TenantProvisioned", "TenantRegistered"}}}
	if len(got) != 1 || got[0].Topic != want[0].Topic || got[0].Consumer != want[0].Consumer || !slices.Equal(got[0].EventTypes, want[0].EventTypes) {
		t.Errorf("Subscriptions(tenants, billing) = %+v, want %+v", got, want)
	}
	all := Subscriptions(allServiceNames())
	auditSubs := 0
	for _, s := range all {
		if s.Consumer == "audit" {
			auditSubs++
		}
		if len(s.EventTypes) == 0 {
			t.Errorf("subscription %s/%s filters on nothing", s.Topic, s.Consumer)
		}
		if s.Topic == s.Consumer && slices.Contains(s.EventTypes, "RetentionApplied") {
			t.Errorf("%s consumes its own RetentionApplied", s.Consumer)
		}
	}
	if auditSubs != 8 {
		t.Errorf("audit has %d subscriptions, want one on each of the 8 other topics", auditSubs)
	}
}

func TestEventTypeFilter(t *testing.T) {
	if got := EventTypeFilter([]string{"A", "B"}); got != "eventType IN ('A', 'B')" {
		t.Errorf("EventTypeFilter = %q", got)
	}
}

func TestCatalogReturnsCopies(t *testing.T) {
	c := Catalog()
	c[0].Publishes[0] = "Changed"
	if Catalog()[0].Publishes[0] == "Changed" {
		t.Error("Catalog() exposes its backing arrays")
	}
}
