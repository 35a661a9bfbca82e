package authz

import (
	"strings"
	"testing"

	"spine/shared/contracts"
	"spine/shared/ids"
	"spine/shared/tenancy"
)

// A platform-level event (no tenantid) on authz's subscriptions is acknowledged without effect:
// authz's consumers take no platform events (bus.Consumer skips them), so a UserDisabled or a
// TenantSuspended without a tenant revokes nothing anywhere.
func TestOnEvent_PlatformEvent_AcknowledgedWithoutEffect(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	ana := ids.New()
	tok := h.issue(f, ana)
	for _, tc := range []struct {
		source, typ string
		data        any
	}{
		{"identity", contracts.UserDisabled, contracts.UserStatusChangedData{UserID: ana, Status: "Disabled"}},
		{"tenants", contracts.TenantSuspended, contracts.TenantStatusChangedData{}},
	} {
		res, err := h.deliver(tc.source, tc.typ, tenancy.TenantID{}, tc.data) // the zero tenant: no tenantid
		if err != nil || res == nil || len(res.Logs) != 1 || !strings.HasSuffix(res.Logs[0], "skipped") {
			t.Fatalf("%s without a tenant: %+v %v, want acknowledged as skipped", tc.typ, res, err)
		}
	}
	if !h.live(tok) {
		t.Fatal("a platform event revoked a tenant's refresh token")
	}
}
