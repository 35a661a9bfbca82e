package audit

import (
	"context"
	"sync"
	"testing"
	"time"

	"spine/shared/bus"
	"spine/shared/events"
	"spine/shared/functions"
	"spine/shared/outbox"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
)

// crashOnce forwards to the broker, then fails the drain's transaction the first time (the
// drainer "crashes" after the broker accepted and before its delete commits).
type crashOnce struct {
	inner  outbox.Publisher
	mu     sync.Mutex
	cancel context.CancelFunc
}

func (c *crashOnce) Publish(ctx context.Context, topic string, msgs []outbox.Message) error {
	err := c.inner.Publish(ctx, topic, msgs)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cancel != nil {
		c.cancel()
		c.cancel = nil
	}
	return err
}

// The whole backbone on real PostgreSQL: events in an outbox are drained through the in-process
// transport to AuditOnTenantsEvent; a crash between publish and delete makes the drainer publish
// them again, and the consumer's inbox absorbs the second delivery: exactly one entry per event,
// in order per tenant.
func TestBackbone_CrashBetweenPublishAndDelete_ExactlyOneEntryPerEvent(t *testing.T) {
	svc := newTestService(t, fakeDir{})
	h := newHost(t, svc)
	reg := registryOf(t, svc)
	local := bus.NewLocal(reg, bus.LocalConfig{RedeliveryDelay: time.Millisecond}, nil)
	runCtx, stop := context.WithCancel(context.Background())
	defer func() { stop(); local.Wait() }()
	local.Start(runCtx, h.e)

	// The outbox: audit's own database has one, which stands in for the tenants service's here.
	db := openRuntime(t)
	// Other tests of this package leave AuditEntryRecorded rows behind; this test owns the outbox.
	if err := db.InTx(context.Background(), sqlstore.PlatformScope(), func(tx *sqlstore.Tx) error {
		_, err := tx.Exec(`DELETE FROM outbox`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	tenants := []tenancy.TenantID{tenancy.NewTenantID(), tenancy.NewTenantID(), tenancy.NewTenantID()}
	var want []string
	for i := 0; i < 4; i++ {
		for _, tid := range tenants {
			ev, err := events.New("tenants", []string{"TenantRegistered", "TenantProvisioned", "TenantSuspended", "TenantReactivated"}[i],
				tid.String(), tid.String(), map[string]any{"tenantId": tid}, events.Meta{Actor: "admin:ops"})
			if err != nil {
				t.Fatal(err)
			}
			if err := db.InTx(context.Background(), sqlstore.TenantScope(tid), func(tx *sqlstore.Tx) error {
				return outbox.Emit(context.Background(), tx, ev)
			}); err != nil {
				t.Fatal(err)
			}
			if tid == tenants[0] {
				want = append(want, ev.Type)
			}
		}
	}
	crashCtx, crash := context.WithCancel(context.Background())
	pub := &crashOnce{inner: local, cancel: crash}
	d, err := outbox.NewDrainer(db, "tenants", pub, outbox.DrainerConfig{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Drain(crashCtx, time.Second); err == nil {
		t.Fatal("the crashed drain reported success")
	}
	if res, err := d.Drain(context.Background(), 5*time.Second); err != nil || res.Published != 12 {
		t.Fatalf("second drain: %+v %v (the rows must have survived the crash)", res, err)
	}
	idle, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := local.Idle(idle); err != nil {
		t.Fatal(err)
	}
	if dl := local.DeadLetters(); len(dl) != 0 {
		t.Fatalf("dead letters: %+v", dl)
	}
	for _, tid := range tenants {
		got, err := svc.Query(context.Background(), Caller{Subject: "t", Tenant: tid}, tid, Filter{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("tenant %s: %d entries, want exactly %d (every event was delivered twice)", tid, len(got), len(want))
		}
		for i, e := range got {
			if e.Action != want[i] || e.Actor.Type != "admin" || e.Actor.ID != "ops" {
				t.Fatalf("tenant %s entry %d: %s by %v, want %s (order)", tid, i, e.Action, e.Actor, want[i])
			}
		}
	}
}

// registryOf declares the audit functions for the tenants topic, as app.go does.
func registryOf(t *testing.T, svc *Service) *functions.Registry {
	t.Helper()
	reg := &functions.Registry{}
	if err := reg.Add(NewAPI(svc).functions([]string{"tenants"})...); err != nil {
		t.Fatal(err)
	}
	return reg
}
