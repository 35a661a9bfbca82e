package tests

import (
	"context"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"spine/shared/sqlstore"
)

// A graceful stop (SIGINT/SIGTERM, as Ctrl-C on `make run` sends) loses no acknowledged event:
// every registration answered 201 before the stop has its TenantRegistered entry in the audit
// trail or its row still in the tenants outbox (published at the next start). The drainers stop
// first; the in-process transport delivers what it accepted before it stops.
func TestShutdown_AcknowledgedEventsAreRecordedOrStillInTheOutbox(t *testing.T) {
	s := startServer(t, nil)
	var mu sync.Mutex
	var ids []string
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 8; i++ {
				v := slug("stop")
				r := s.call("POST", "/api/tenants", s.admin, map[string]string{"name": "Stop " + v, "slug": v,
					"editionCode": "standard", "ownerEmail": "owner@" + v + ".example"}, nil)
				if r.Code != http.StatusCreated {
					return
				}
				mu.Lock()
				ids = append(ids, r.JSON(t)["id"].(string))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := s.cmd.Process.Signal(os.Interrupt); err != nil { // while the pipeline is still busy
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(40 * time.Second):
		t.Fatal("the handler did not stop within 40 s")
	}
	if len(ids) == 0 {
		t.Fatal("no registration succeeded")
	}
	ctx := context.Background()
	count := func(svc, q string) map[string]bool {
		t.Helper()
		db, err := sqlstore.Open(ctx, svc, sqlstore.Postgres, s.dbs[svc].OwnerURL, sqlstore.PoolConfig{MaxOpen: 2})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		found := map[string]bool{}
		err = db.InReadTx(ctx, sqlstore.PlatformScope(), func(tx *sqlstore.Tx) error {
			rows, err := tx.QueryContext(ctx, q)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var id string
				if err := rows.Scan(&id); err != nil {
					return err
				}
				found[id] = true
			}
			return rows.Err()
		})
		if err != nil {
			t.Fatal(err)
		}
		return found
	}
	recorded := count("audit", `SELECT tenant_id::text FROM audit_entries WHERE action = 'TenantRegistered'`)
	pending := count("tenants", `SELECT tenant_id::text FROM outbox WHERE event_type = 'TenantRegistered'`)
	lost := 0
	for _, id := range ids {
		if !recorded[id] && !pending[id] {
			lost++
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d acknowledged registrations have neither an audit entry nor an outbox row after a graceful stop", lost, len(ids))
	}
	t.Logf("%d registrations: %d recorded, %d still in the outbox", len(ids), len(recorded), len(pending))
}
