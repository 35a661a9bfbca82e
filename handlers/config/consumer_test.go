package config

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"spine/shared/contracts"
	"spine/shared/entitlements"
	"spine/shared/events"
	"spine/shared/functions"
	"spine/shared/tenancy"
)

// deliverBilling hands one billing event to ConfigOnBillingEvent as the host would.
func (h *harness) deliverBilling(tenant tenancy.TenantID, typ string, data any) error {
	h.t.Helper()
	ev, err := events.New("billing", typ, "subscription:"+tenant.String(), tenant.String(), data, events.Meta{Actor: "system:billing"})
	if err != nil {
		h.t.Fatal(err)
	}
	body, _ := json.Marshal(ev)
	d, meta := functions.ServiceBusMessage(body, functions.EncodingString, functions.ServiceBusMetadata{MessageID: ev.ID,
		DeliveryCount: 1, EnqueuedTimeUTC: time.Now(), ApplicationProperties: map[string]any{"tenantId": ev.TenantID}})
	raw, _ := json.Marshal(map[string]any{"Data": map[string]any{functions.ServiceBusBinding: d}, "Metadata": meta})
	var inv functions.Invocation
	if err := json.Unmarshal(raw, &inv); err != nil {
		h.t.Fatal(err)
	}
	inv.FunctionName = "ConfigOnBillingEvent"
	_, err = NewAPI(h.svc).onBillingEvent(context.Background(), &inv)
	return err
}

// A tenant's edition change reaches its next evaluation through SubscriptionEditionChanged,
// without waiting for the compiled set's TTL; a redelivery is harmless.
func TestOnSubscriptionEditionChanged_NextEvaluationHasTheNewEditionDefault(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	key := newKey("upgrade")
	h.ents.editions["basic"] = entitlements.Entitlements{Edition: "basic"}
	h.ents.editions["pro"] = entitlements.Entitlements{Edition: "pro", FeatureDefaults: map[string]json.RawMessage{key: json.RawMessage("true")}}
	tn := tenancy.NewTenantID()
	h.ents.set(tn, "basic")
	h.must(http.StatusCreated, "PUT", "/api/feature-flags/"+key, h.admin(), boolFlagBody())
	tok := h.tenantToken(tn)
	if m := evaluate(t, h, tok, key, nil); m["value"] != false {
		t.Fatalf("on basic: %v", m)
	}
	h.ents.set(tn, "pro") // billing's source answers the new edition
	if m := evaluate(t, h, tok, key, nil); m["value"] != false {
		t.Fatalf("the compiled set was not cached (the test proves nothing): %v", m)
	}
	for range 2 {
		if err := h.deliverBilling(tn, contracts.SubscriptionEditionChanged, contracts.SubscriptionEditionChangedData{TenantID: tn.String(),
			FromEdition: "basic", ToEdition: "pro"}); err != nil {
			t.Fatal(err)
		}
	}
	if m := evaluate(t, h, tok, key, nil); m["value"] != true || m["variant"] != "on" {
		t.Fatalf("after SubscriptionEditionChanged: %v", m)
	}
}
