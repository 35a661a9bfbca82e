package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"spine/shared/events"
	"spine/shared/functions"
	"spine/shared/outbox"
	"spine/shared/problem"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
	"spine/shared/testenv"
)

// consumeDB is a fresh service database (it has an inbox and an outbox) for the Consume tests.
var consumeDB *testenv.Database

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, "audit", &consumeDB)) }

// consumeHost mounts one Service Bus function whose body is c.Consume and invokes it the way the
// host does.
func consumeHost(t *testing.T, c Consumer) func(body []byte, enc functions.Encoding) (int, []byte) {
	t.Helper()
	reg := &functions.Registry{}
	if err := reg.Add(functions.Function{Name: "TestOnTenantsEvent",
		ServiceBus: &functions.ServiceBusTrigger{Topic: "tenants", Subscription: c.Name, Connection: "ServiceBusConnection"},
		Handler:    c.Consume}); err != nil {
		t.Fatal(err)
	}
	e := echo.New()
	e.HTTPErrorHandler = (&problem.Handler{}).ServeError
	functions.Mount(e, reg, nil)
	return func(body []byte, enc functions.Encoding) (int, []byte) {
		var ev struct{ ID string }
		_ = json.Unmarshal(body, &ev)
		data, md := functions.ServiceBusMessage(body, enc, functions.ServiceBusMetadata{MessageID: ev.ID, DeliveryCount: 1,
			EnqueuedTimeUTC: time.Now(), ContentType: events.ContentType})
		status, _, raw, err := functions.Invoke(context.Background(), e, "TestOnTenantsEvent", map[string]any{functions.ServiceBusBinding: data}, md)
		if err != nil {
			t.Fatal(err)
		}
		return status, raw
	}
}

// The consumer's effect runs once per event, in the event's tenant's scope, with the inbox claim
// in its transaction: duplicates, in any encoding, have no second effect; a failing effect leaves
// no claim (the redelivery applies it); ErrSkip acknowledges with no effect; a message that is not
// a CloudEvent is a 400.
func TestConsume_OneEffectPerEventWhateverTheDeliveries(t *testing.T) {
	db := consumeDB.OpenRuntime(t, sqlstore.PoolConfig{})
	fail := map[string]bool{}
	var applied []string
	c := Consumer{Name: "consume-test", DB: db, Effect: func(ctx context.Context, tx *sqlstore.Tx, d Delivery) error {
		if tx.Scope().Tenant != d.TenantID.String() {
			return fmt.Errorf("effect ran in scope %+v, not the event's tenant", tx.Scope())
		}
		if d.Event.Type == "Ignored" {
			return fmt.Errorf("not mine: %w", ErrSkip)
		}
		if fail[d.Event.ID] {
			delete(fail, d.Event.ID)
			return errors.New("transient")
		}
		var data struct{ N int }
		if err := d.Data(&data); err != nil {
			return err
		}
		ev, err := events.New("audit", "Echoed", d.Event.Subject, d.TenantID.String(), data, events.Meta{})
		if err != nil {
			return err
		}
		applied = append(applied, d.Event.ID)
		return outbox.Emit(ctx, tx, ev) // an effect's own writes commit with the claim
	}}
	invoke := consumeHost(t, c)
	tenant := tenancy.NewTenantID()
	mk := func(typ string, n int) (events.Event, []byte) {
		ev, err := events.New("tenants", typ, tenant.String(), tenant.String(), map[string]int{"n": n}, events.Meta{})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(ev)
		return ev, b
	}

	ev1, b1 := mk("TenantTouched", 1)
	for _, enc := range []functions.Encoding{functions.EncodingObject, functions.EncodingString, functions.EncodingDoubleQuoted, functions.EncodingBase64} {
		if status, raw := invoke(b1, enc); status != http.StatusOK {
			t.Fatalf("%v: %d %s", enc, status, raw)
		}
	}
	ev2, b2 := mk("TenantTouched", 2)
	fail[ev2.ID] = true
	if status, _ := invoke(b2, functions.EncodingString); status < 500 {
		t.Fatalf("a failed effect answered %d, want 5xx so the host retries", status)
	}
	if status, raw := invoke(b2, functions.EncodingString); status != http.StatusOK {
		t.Fatalf("the redelivery: %d %s", status, raw)
	}
	_, b3 := mk("Ignored", 3)
	if status, raw := invoke(b3, functions.EncodingString); status != http.StatusOK {
		t.Fatalf("skipped: %d %s", status, raw)
	}
	if status, _ := invoke([]byte(`{"not":"an event"}`), functions.EncodingString); status != http.StatusBadRequest {
		t.Fatalf("garbage answered %d, want 400", status)
	}
	if len(applied) != 2 || applied[0] != ev1.ID || applied[1] != ev2.ID {
		t.Fatalf("effects applied for %v, want once for %s then %s", applied, ev1.ID, ev2.ID)
	}
	var claims []string
	if err := db.InReadTx(context.Background(), sqlstore.TenantScope(tenant), func(tx *sqlstore.Tx) error {
		var err error
		claims, err = testenv.QueryStrings(context.Background(), tx, `SELECT event_id::text FROM inbox WHERE consumer = 'consume-test'`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(claims) != 2 {
		t.Fatalf("inbox claims %v, want the two applied events only", claims)
	}
}
