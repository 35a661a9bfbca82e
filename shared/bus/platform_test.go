package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"spine/shared/events"
	"spine/shared/functions"
	"spine/shared/outbox"
	"spine/shared/problem"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
	"spine/shared/testenv"
)

// platformEvent is a fresh platform-level event (no tenant), as authz emits for platform clients.
func platformEvent(t *testing.T, typ string) events.Event {
	t.Helper()
	ev, err := events.New("authz", typ, tenancy.NewTenantID().String(), "", map[string]int{"n": 1}, events.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// platformDelivery is a decoded delivery of a fresh platform-level event.
func platformDelivery(t *testing.T, typ string) Delivery {
	return Delivery{Event: platformEvent(t, typ), Platform: true}
}

// An event without tenantid (what the outbox publishes for a platform-level event, with an empty
// tenantId property) decodes as a platform delivery in every host encoding: no tenant, recorded
// under the nil UUID.
func TestDecodeEvent_NoTenantIDIsAPlatformDelivery(t *testing.T) {
	ev := platformEvent(t, "ClientCreated")
	body, _ := json.Marshal(ev)
	if strings.Contains(string(body), "tenantid") {
		t.Fatalf("a platform event's JSON names a tenant: %s", body)
	}
	for _, props := range []map[string]any{nil, {"eventType": ev.Type, "tenantId": ""}} {
		for _, enc := range []functions.Encoding{functions.EncodingObject, functions.EncodingString, functions.EncodingDoubleQuoted, functions.EncodingBase64} {
			d, err := DecodeEvent(invocation(t, body, enc, props))
			if err != nil || !d.Platform || !d.TenantID.IsZero() || d.Tenant() != outbox.PlatformTenant || d.Event.ID != ev.ID {
				t.Fatalf("%v %v: %+v %v; want a platform delivery", enc, props, d, err)
			}
		}
	}
	// A tenant's event is not a platform delivery.
	tid := tenancy.NewTenantID()
	m := event(t, tid, "TenantRegistered", 1)
	if d, err := DecodeEvent(invocation(t, m.Body, functions.EncodingString, m.Properties)); err != nil || d.Platform || d.Tenant() != tid.String() {
		t.Fatalf("a tenant's event: %+v %v", d, err)
	}
}

// Only an absent tenantid means a platform event: one that is present but not a tenant id (empty,
// null, not a UUID, the nil UUID, not a string) is refused with 400 as before, and so is a
// platform event whose tenantId property names a tenant.
func TestDecodeEvent_400_TenantIDPresentButNotATenantID(t *testing.T) {
	ev := platformEvent(t, "ClientCreated")
	body, _ := json.Marshal(ev)
	with := func(member string) string {
		return strings.Replace(string(body), `{`, `{"tenantid":`+member+`,`, 1)
	}
	for name, tc := range map[string]struct {
		body  string
		props map[string]any
	}{
		"empty":                          {with(`""`), nil},
		"null":                           {with(`null`), nil},
		"not a uuid":                     {with(`"nope"`), nil},
		"nil uuid":                       {with(`"` + outbox.PlatformTenant + `"`), nil},
		"a number":                       {with(`42`), nil},
		"platform event, tenant as prop": {string(body), map[string]any{"tenantId": tenancy.NewTenantID().String()}},
	} {
		t.Run(name, func(t *testing.T) {
			d, err := DecodeEvent(invocation(t, []byte(tc.body), functions.EncodingString, tc.props))
			var p *problem.Problem
			if !errors.As(err, &p) || p.Status != http.StatusBadRequest {
				t.Fatalf("decoded %+v, err = %v; want a 400 problem", d, err)
			}
		})
	}
}

// inboxClaims lists consumer's inbox rows as "tenant/event id", read in scope sc.
func inboxClaims(t *testing.T, db *sqlstore.DB, sc sqlstore.Scope, consumer string) []string {
	t.Helper()
	var rows []string
	if err := db.InReadTx(context.Background(), sc, func(tx *sqlstore.Tx) error {
		var err error
		rows, err = testenv.QueryStrings(context.Background(), tx,
			`SELECT tenant_id::text || '/' || event_id::text FROM inbox WHERE consumer = '`+consumer+`' ORDER BY 1`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return rows
}

// A consumer that takes platform events applies a platform delivery once, in platform scope, with
// its inbox claim under the nil UUID (visible in platform scope only): the redelivery in any
// encoding is a duplicate with no second effect, and the effect's own writes commit with it.
func TestConsume_PlatformDeliveryAppliedOnceInPlatformScope(t *testing.T) {
	db := consumeDB.OpenRuntime(t, sqlstore.PoolConfig{})
	var applied []string
	c := Consumer{Name: "consume-platform", DB: db, PlatformEvents: true, Effect: func(ctx context.Context, tx *sqlstore.Tx, d Delivery) error {
		if !d.Platform || !tx.Scope().Platform || tx.Scope().Tenant != "" || len(tx.Scope().Tenants) != 0 {
			return fmt.Errorf("effect ran for %+v in scope %+v, want a platform delivery in platform scope", d, tx.Scope())
		}
		ev, err := events.New("audit", "Echoed", d.Event.Subject, "", nil, events.Meta{})
		if err != nil {
			return err
		}
		applied = append(applied, d.Event.ID)
		return outbox.Emit(ctx, tx, ev) // a platform event of its own, under the nil UUID
	}}
	invoke := consumeHost(t, c)
	ev := platformEvent(t, "ClientCreated")
	body, _ := json.Marshal(ev)
	for _, enc := range []functions.Encoding{functions.EncodingString, functions.EncodingObject, functions.EncodingBase64} {
		if status, raw := invoke(body, enc); status != http.StatusOK {
			t.Fatalf("%v: %d %s", enc, status, raw)
		}
	}
	if len(applied) != 1 || applied[0] != ev.ID {
		t.Fatalf("effects applied for %v, want once for %s", applied, ev.ID)
	}
	if got, want := inboxClaims(t, db, sqlstore.PlatformScope(), c.Name), []string{outbox.PlatformTenant + "/" + ev.ID}; !slices.Equal(got, want) {
		t.Fatalf("platform scope sees claims %v, want %v", got, want)
	}
	if got := inboxClaims(t, db, sqlstore.TenantScope(tenancy.NewTenantID()), c.Name); len(got) != 0 {
		t.Fatalf("a tenant's scope sees the platform claim: %v", got)
	}
}

// A consumer written for tenants' events (no PlatformEvents) acknowledges a platform delivery
// without calling its effect and without a claim, so it never runs tenant logic on no tenant.
func TestConsume_PlatformDeliverySkippedWithoutPlatformEvents(t *testing.T) {
	db := consumeDB.OpenRuntime(t, sqlstore.PoolConfig{})
	calls := 0
	c := Consumer{Name: "consume-tenants-only", DB: db, Effect: func(context.Context, *sqlstore.Tx, Delivery) error {
		calls++
		return nil
	}}
	invoke := consumeHost(t, c)
	body, _ := json.Marshal(platformEvent(t, "ClientCreated"))
	status, raw := invoke(body, functions.EncodingString)
	if status != http.StatusOK || !strings.Contains(string(raw), "skipped") {
		t.Fatalf("a platform delivery: %d %s, want 200 skipped", status, raw)
	}
	if calls != 0 {
		t.Fatalf("the effect ran %d times for a platform delivery", calls)
	}
	if got := inboxClaims(t, db, sqlstore.PlatformScope(), c.Name); len(got) != 0 {
		t.Fatalf("a skipped platform delivery left claims %v", got)
	}
}

// A group consumer that takes platform events writes a group mixing tenants' and platform events
// as two transactions: the tenants' events in exactly their set scope, the platform events in
// platform scope (no tenant's event runs there), each claimed once; the redelivered group is all
// duplicates with no second effect.
func TestGroupConsumer_PlatformDeliveriesGroupApartInPlatformScope(t *testing.T) {
	db := consumeDB.OpenRuntime(t, sqlstore.PoolConfig{})
	type call struct {
		scope sqlstore.Scope
		ids   []string
	}
	var calls []call
	c := &GroupConsumer{Name: "group-platform", DB: db, PlatformEvents: true, Effect: func(ctx context.Context, tx *sqlstore.Tx, ds []Delivery) ([]string, error) {
		ids := make([]string, len(ds))
		for i, d := range ds {
			if d.Platform != tx.Scope().Platform {
				return nil, fmt.Errorf("delivery %+v in scope %+v", d, tx.Scope())
			}
			ids[i] = d.Event.ID
		}
		calls = append(calls, call{tx.Scope(), ids})
		return nil, nil
	}}
	a, b := tenancy.NewTenantID(), tenancy.NewTenantID()
	ds := []Delivery{groupDelivery(t, a, "T"), platformDelivery(t, "ClientCreated"), groupDelivery(t, b, "T"), platformDelivery(t, "TokenIssued")}
	for i, r := range runGroup(c, ds) {
		if r.err != nil || r.outcome != "applied" {
			t.Fatalf("delivery %d: %+v, want applied", i, r)
		}
	}
	if len(calls) != 2 {
		t.Fatalf("effect calls %+v, want two: the tenants' group and the platform group", calls)
	}
	set := []string{a.String(), b.String()}
	slices.Sort(set)
	if sc := calls[0].scope; sc.Platform || !slices.Equal(sc.Tenants, set) ||
		!slices.Equal(calls[0].ids, []string{ds[0].Event.ID, ds[2].Event.ID}) {
		t.Fatalf("tenants' group: %+v, want %v in the set scope %v", calls[0], []string{ds[0].Event.ID, ds[2].Event.ID}, set)
	}
	if sc := calls[1].scope; !sc.Platform || sc.Tenant != "" || len(sc.Tenants) != 0 ||
		!slices.Equal(calls[1].ids, []string{ds[1].Event.ID, ds[3].Event.ID}) {
		t.Fatalf("platform group: %+v, want the two platform events in order in platform scope", calls[1])
	}
	claims := inboxClaims(t, db, sqlstore.PlatformScope(), c.Name)
	want := []string{a.String() + "/" + ds[0].Event.ID, b.String() + "/" + ds[2].Event.ID,
		outbox.PlatformTenant + "/" + ds[1].Event.ID, outbox.PlatformTenant + "/" + ds[3].Event.ID}
	slices.Sort(want)
	if !slices.Equal(claims, want) {
		t.Fatalf("claims %v, want %v", claims, want)
	}
	for i, r := range runGroup(c, ds) {
		if r.err != nil || r.outcome != "duplicate" {
			t.Fatalf("redelivered %d: %+v, want duplicate", i, r)
		}
	}
	if len(calls) != 2 {
		t.Fatalf("a redelivered group ran the effect again: %+v", calls)
	}
}

// A group consumer without PlatformEvents acknowledges a batch's platform events as skipped (no
// effect, no claim) and applies the batch's tenants' events.
func TestGroupConsumer_PlatformDeliveriesSkippedWithoutPlatformEvents(t *testing.T) {
	db := consumeDB.OpenRuntime(t, sqlstore.PoolConfig{})
	var mu sync.Mutex
	var got []Delivery
	c := &GroupConsumer{Name: "group-tenants-only", DB: db, Effect: func(ctx context.Context, tx *sqlstore.Tx, ds []Delivery) ([]string, error) {
		mu.Lock()
		got = append(got, ds...)
		mu.Unlock()
		return nil, nil
	}}
	tenant := tenancy.NewTenantID()
	ds := []Delivery{platformDelivery(t, "ClientCreated"), groupDelivery(t, tenant, "T")}
	res, err := c.Consume(context.Background(), batchInvocation(t, ds, nil))
	if err != nil {
		t.Fatalf("batch: %v", err)
	}
	logs := strings.Join(res.Logs, "\n")
	if !strings.Contains(logs, ds[0].Event.ID+" skipped") || !strings.Contains(logs, ds[1].Event.ID+" applied") {
		t.Fatalf("logs %q, want the platform event skipped and the tenant's applied", logs)
	}
	if len(got) != 1 || got[0].Event.ID != ds[1].Event.ID {
		t.Fatalf("the effect got %+v, want the tenant's event only", got)
	}
	if claims := inboxClaims(t, db, sqlstore.PlatformScope(), c.Name); len(claims) != 1 || !strings.HasPrefix(claims[0], tenant.String()) {
		t.Fatalf("claims %v, want the tenant's event's only", claims)
	}
}
