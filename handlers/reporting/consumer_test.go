package reporting

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"spine/shared/contracts"
	"spine/shared/events"
	"spine/shared/functions"
	"spine/shared/tenancy"
)

// deliver hands events to fn as the host would: ReportGeneration one message (the first), the
// read-model consumers a batch (CardinalityMany).
func (h *harness) deliver(fn string, evs ...events.Event) error {
	h.t.Helper()
	bodies := make([][]byte, len(evs))
	metas := make([]functions.ServiceBusMetadata, len(evs))
	for i, ev := range evs {
		bodies[i], _ = json.Marshal(ev)
		metas[i] = functions.ServiceBusMetadata{MessageID: ev.ID, DeliveryCount: 1, EnqueuedTimeUTC: time.Now(),
			ApplicationProperties: map[string]any{"tenantId": ev.TenantID}}
	}
	var data any
	var meta map[string]any
	if fn == GenerationFunction { // one message per invocation
		data, meta = functions.ServiceBusMessage(bodies[0], functions.EncodingString, metas[0])
	} else {
		data, meta = functions.ServiceBusBatch(bodies, metas)
	}
	raw, _ := json.Marshal(map[string]any{"Data": map[string]any{functions.ServiceBusBinding: data}, "Metadata": meta})
	var inv functions.Invocation
	if err := json.Unmarshal(raw, &inv); err != nil {
		h.t.Fatal(err)
	}
	inv.FunctionName = fn
	api := NewAPI(h.svc, h.db)
	if fn == GenerationFunction {
		_, err := api.onReportRequested(context.Background(), &inv)
		return err
	}
	_, err := api.onEvent(context.Background(), &inv)
	return err
}

func event(t *testing.T, source, typ, subject string, tenant tenancy.TenantID, at time.Time, data any) events.Event {
	t.Helper()
	ev, err := events.New(source, typ, subject, tenant.String(), data, events.Meta{Actor: "system:test"})
	if err != nil {
		t.Fatal(err)
	}
	ev.Time = at
	return ev
}

// Identity's events build the users-and-roles read model and every event counts once in
// activity by day; a redelivered batch changes nothing.
func TestReadModel_IdentityEventsAndActivity_FromDeliveredBatches(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	tn := h.tenant()
	other := h.tenant()
	day1 := time.Date(2026, 5, 1, 23, 59, 0, 0, time.UTC)
	day2 := time.Date(2026, 5, 2, 0, 1, 0, 0, time.UTC)
	u1, u2 := "00000000-0000-4000-8000-0000000000c1", "00000000-0000-4000-8000-0000000000c2"
	admin, member := "00000000-0000-4000-8000-0000000000d1", "00000000-0000-4000-8000-0000000000d2"
	id := func(typ, user string, at time.Time, data any) events.Event {
		return event(t, "identity", typ, user, tn.id, at, data)
	}
	batch := []events.Event{
		id(contracts.UserInvited, u1, day1, contracts.UserInvitedData{TenantID: tn.id.String(), UserID: u1, Email: "ada@example.com"}),
		id(contracts.RoleAssigned, u1, day1, contracts.RoleAssignmentData{TenantID: tn.id.String(), UserID: u1, RoleID: admin, RoleCode: "tenant-admin"}),
		id(contracts.RoleAssigned, u1, day1, contracts.RoleAssignmentData{TenantID: tn.id.String(), UserID: u1, RoleID: member, RoleCode: "member"}),
		id(contracts.UserInvited, u2, day1, contracts.UserInvitedData{TenantID: tn.id.String(), UserID: u2, Email: "bob@example.com"}),
		id(contracts.UserActivated, u1, day2, contracts.UserActivatedData{TenantID: tn.id.String(), UserID: u1, ActivatedAt: day2}),
		id(contracts.RoleRevoked, u1, day2, contracts.RoleAssignmentData{TenantID: tn.id.String(), UserID: u1, RoleID: member, RoleCode: "member"}),
		id(contracts.UserDisabled, u2, day2, contracts.UserStatusChangedData{TenantID: tn.id.String(), UserID: u2, Status: "Disabled"}),
		// another tenant's event in the same batch counts for that tenant only
		event(t, "identity", contracts.UserInvited, u1, other.id, day1, contracts.UserInvitedData{TenantID: other.id.String(), UserID: u1, Email: "x@example.com"}),
	}
	for range 2 { // the second delivery is a redelivery: every event a duplicate
		if err := h.deliver(ConsumerName("identity"), batch...); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.deliver(ConsumerName("tenants"), event(t, "tenants", contracts.TenantProvisioned, tn.id.String(), tn.id, day2,
		contracts.TenantProvisionedData{TenantID: tn.id.String()})); err != nil {
		t.Fatal(err)
	}

	users := h.runReport(tn, h.createReport(tn, usersReport("csv")).ID, nil)
	h.generate(tn, users.ID)
	recs, err := csv.NewReader(bytes.NewReader(h.download(tn, users.ID))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		{"userId", "email", "status", "roleCode", "invitedAt", "activatedAt"},
		{u1, "ada@example.com", "Active", "tenant-admin", day1.Format(time.RFC3339), day2.Format(time.RFC3339)},
		{u2, "bob@example.com", "Disabled", "", day1.Format(time.RFC3339), ""},
	}
	if fmt.Sprint(recs) != fmt.Sprint(want) {
		t.Fatalf("users and roles:\n%q\nwant\n%q", recs, want)
	}

	act := h.runReport(tn, h.createReport(tn, activityReport("csv")).ID, nil)
	h.generate(tn, act.ID)
	recs, err = csv.NewReader(bytes.NewReader(h.download(tn, act.ID))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want = [][]string{
		{"day", "eventType", "count"},
		{"2026-05-01", "RoleAssigned", "2"},
		{"2026-05-01", "UserInvited", "2"},
		{"2026-05-02", "RoleRevoked", "1"},
		{"2026-05-02", "TenantProvisioned", "1"},
		{"2026-05-02", "UserActivated", "1"},
		{"2026-05-02", "UserDisabled", "1"},
	}
	if fmt.Sprint(recs) != fmt.Sprint(want) {
		t.Fatalf("activity by day:\n%q\nwant\n%q", recs, want)
	}
	// Filtered by type and range, through the run's parameters.
	filtered := h.runReport(tn, h.createReport(tn, activityReport("csv")).ID, map[string]any{"from": "2026-05-02", "to": "2026-05-02", "eventType": "UserDisabled"})
	h.generate(tn, filtered.ID)
	if got := string(h.download(tn, filtered.ID)); got != "day,eventType,count\n2026-05-02,UserDisabled,1\n" {
		t.Fatalf("filtered: %q", got)
	}
}

// ReportGeneration decodes ReportRequested as the host delivers it and generates the run; a
// duplicate delivery is a no-op, and an event of another type is acknowledged without effect.
func TestReportGeneration_Invocation_GeneratesOnce(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	tn := h.tenant()
	rep := h.createReport(tn, usersReport("csv"))
	run := h.runReport(tn, rep.ID, nil)
	ev := event(t, service, contracts.ReportRequested, run.ID, tn.id, time.Now(), contracts.ReportRequestedData{TenantID: tn.id.String(),
		ReportID: rep.ID, RunID: run.ID, Source: run.Source, Format: run.Format, Parameters: json.RawMessage(`{}`)})
	for range 2 {
		if err := h.deliver(GenerationFunction, ev); err != nil {
			t.Fatal(err)
		}
	}
	if got := h.run(tn, run.ID); got.Status != "Succeeded" || got.Attempts != 1 {
		t.Fatalf("run %+v", got)
	}
	h.must(http.StatusFound, "GET", "/api/report-runs/"+run.ID+"/download", tn.reader, nil)
	if err := h.deliver(GenerationFunction, event(t, service, contracts.ReportGenerated, run.ID, tn.id, time.Now(), map[string]any{})); err != nil {
		t.Fatalf("another type: %v", err)
	}
}
