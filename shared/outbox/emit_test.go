package outbox

import (
	"context"
	"encoding/json"
	"testing"

	"spine/shared/events"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
)

// Emit writes any number of events with one statement (one round trip), and their rows' seq
// order is the events' order, whatever their tenants and subjects; each row carries its event's
// tenant (the platform's for a platform event), its envelope, and is due at once.
func TestEmit_ManyEventsOneStatementInOrder(t *testing.T) {
	if err := open(t).InTx(context.Background(), sqlstore.PlatformScope(), func(*sqlstore.Tx) error { return nil }); err != nil {
		t.Fatal(err) // open empties the outbox
	}
	db, rt := testDB.OpenRuntimeCounted(t, sqlstore.PoolConfig{MaxOpen: 1})
	ctx := context.Background()
	tenants := []tenancy.TenantID{tenancy.NewTenantID(), tenancy.NewTenantID(), tenancy.NewTenantID()}
	var evs []events.Event
	for i := 0; i < 12; i++ {
		tenant, subject := tenants[(i*7)%3].String(), tenants[i%2].String()
		if i == 5 {
			tenant = "" // a platform-level event
		}
		ev, err := events.New("tenants", "TenantTouched", subject, tenant, map[string]int{"n": i}, events.Meta{})
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
	}
	emit := func(evs ...events.Event) (roundTrips int64) {
		t.Helper()
		if err := db.InTx(ctx, sqlstore.PlatformScope(), func(tx *sqlstore.Tx) error {
			before := rt.Count()
			err := Emit(ctx, tx, evs...)
			roundTrips = rt.Count() - before
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return roundTrips
	}
	emit(evs[0]) // prepares the statement on the connection
	if n := emit(evs[1:]...); n != 1 {
		t.Fatalf("Emit of %d events took %d round trips, want 1", len(evs)-1, n)
	}
	if n := emit(); n != 0 {
		t.Fatalf("Emit of no events took %d round trips, want 0", n)
	}

	var got []events.Event
	var tenantsGot []string
	err := db.InReadTx(ctx, sqlstore.PlatformScope(), func(tx *sqlstore.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT tenant_id::text, envelope::text, created_at = next_attempt_at, attempts
			FROM outbox ORDER BY seq`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var tenant, env string
			var due bool
			var attempts int
			if err := rows.Scan(&tenant, &env, &due, &attempts); err != nil {
				return err
			}
			if !due || attempts != 0 {
				t.Errorf("row %d: due at once %v, attempts %d; want true, 0", len(got), due, attempts)
			}
			var ev events.Event
			if err := json.Unmarshal([]byte(env), &ev); err != nil {
				return err
			}
			got, tenantsGot = append(got, ev), append(tenantsGot, tenant)
		}
		return rows.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(evs) {
		t.Fatalf("%d rows, want %d", len(got), len(evs))
	}
	for i, ev := range evs {
		want := ev.TenantID
		if want == "" {
			want = PlatformTenant
		}
		var n, wantN struct{ N int }
		if err := json.Unmarshal(got[i].Data, &n); err != nil || json.Unmarshal(ev.Data, &wantN) != nil || n != wantN {
			t.Errorf("row %d (by seq): data %s, want %s", i, got[i].Data, ev.Data)
		}
		if got[i].ID != ev.ID || got[i].Subject != ev.Subject || tenantsGot[i] != want {
			t.Errorf("row %d (by seq) = event %s of %s (tenant %s), want event %s of %s (tenant %s)",
				i, got[i].ID, got[i].Subject, tenantsGot[i], ev.ID, ev.Subject, want)
		}
	}
}
