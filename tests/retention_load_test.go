package tests

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"spine/shared/sqlstore"
)

// TestLoad_NotificationArchive_1000Tenants is the load figure: 1,000 tenants × 1,000
// notifications older than 90 days (seeded in SQL as the owner, with UUIDv7 ids of their
// creation time and one delivery attempt each), archived by NotificationArchive in bounded runs
// (SPINE_RETENTION_MAX_ROWS, invoked as the host invokes the timer) while clients read a live
// tenant's notifications through the API. It reports the time, the runs and the API's latency
// during the sweep; it asserts only correctness (every seeded row archived, the runs' counts equal
// to the rows). It takes minutes, so it runs only when asked:
//
//	SPINE_LOAD_RETENTION=1 go test -count=1 -run TestLoad_NotificationArchive -v -timeout 60m ./tests/
//
// SPINE_LOAD_TENANTS and SPINE_LOAD_PER_TENANT change the shape (defaults 1000 and 1000).
func TestLoad_NotificationArchive_1000Tenants(t *testing.T) {
	if os.Getenv("SPINE_LOAD_RETENTION") == "" {
		t.Skip("a load test of minutes: set SPINE_LOAD_RETENTION=1 to run it (README, Retention sweeps)")
	}
	tenants, per := envInt("SPINE_LOAD_TENANTS", 1000), envInt("SPINE_LOAD_PER_TENANT", 1000)
	s := startServer(t, map[string]string{"SPINE_RETENTION_MAX_ROWS": "100000"})
	ctx := context.Background()

	// The live tenant the API serves during the sweep.
	// On enterprise (2,000 requests/s): the readers below stay far under the edition's rate limit.
	live := s.register(slug("live"), "enterprise")
	if r := s.call("POST", "/api/tenants/"+live+"/provision", s.admin, nil, nil); r.Code != http.StatusOK {
		t.Fatalf("provision: %d %s", r.Code, r.Body)
	}
	tok := s.mint("e2e", live, false, "notification.read", "notification.send")
	var hot []string
	for i := range 20 {
		r := s.call("POST", "/api/notifications", tok, map[string]any{"channel": "inApp", "recipient": "0193a1b2-0000-7000-8000-00000000000" + strconv.Itoa(i%10),
			"subject": "hot " + strconv.Itoa(i), "body": "live"}, nil)
		if r.Code != http.StatusAccepted {
			t.Fatalf("send: %d %s", r.Code, r.Body)
		}
		hot = append(hot, r.JSON(t)["id"].(string))
	}

	owner, err := sqlstore.Open(ctx, "notifications", sqlstore.Postgres, s.dbs["notifications"].OwnerURL, sqlstore.PoolConfig{MaxOpen: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer owner.Close()
	seedStart := time.Now()
	if err := owner.InTx(ctx, sqlstore.PlatformScope(), func(tx *sqlstore.Tx) error {
		// UUIDv7 of a timestamp: the 48-bit milliseconds over a random UUID, version bits 0111.
		if _, err := tx.ExecContext(ctx, `CREATE FUNCTION pg_temp.uuid7(ts timestamptz) RETURNS uuid LANGUAGE sql AS $$
			SELECT encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid()) PLACING
				substring(int8send((extract(epoch FROM ts) * 1000)::bigint) FROM 3) FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::uuid $$`); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `
			WITH t AS (SELECT gen_random_uuid() AS tenant_id FROM generate_series(1, $1)),
			     n AS (SELECT t.tenant_id, now() - interval '100 days' - (i * interval '43 minutes') AS at
			           FROM t, generate_series(1, $2) AS i)
			INSERT INTO notifications (tenant_id, notification_id, channel, recipient, event_type, subject, body, body_size, body_sha256,
			                           status, attempts, created_at, updated_at, delivered_at)
			SELECT tenant_id, pg_temp.uuid7(at), 'inApp', '0193a1b2-0000-7000-8000-000000000001', 'load.test', 'old notification',
			       'an old body', 11, repeat('0', 64), 'Delivered', 1, at, at, at
			FROM n`, tenants, per)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO delivery_attempts (tenant_id, notification_id, attempt, attempted_at, status_code, latency_ms)
			SELECT tenant_id, notification_id, 1, created_at, NULL, 3 FROM notifications WHERE created_at < now() - interval '99 days'`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	seeded := s.ownerCount(t, "notifications", `SELECT count(*) FROM notifications WHERE created_at < now() - interval '99 days'`)
	t.Logf("seeded %d notifications (%d tenants × %d) with their delivery attempts in %s", seeded, tenants, per, time.Since(seedStart).Round(time.Second))
	if _, err := owner.ExecContext(ctx, `ANALYZE notifications; ANALYZE delivery_attempts`); err != nil {
		t.Fatal(err)
	}

	// Readers: GET one hot notification and the list, as the live tenant, until the sweep ends.
	stop := make(chan struct{})
	var mu sync.Mutex
	var lat []time.Duration
	var failures int
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 30 * time.Second}
			tick := time.NewTicker(10 * time.Millisecond) // 100 requests/s each: a steady API load
			defer tick.Stop()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				path := "/api/notifications/" + hot[(i+w)%len(hot)]
				if i%4 == 3 {
					path = "/api/notifications?limit=20"
				}
				req, _ := http.NewRequest("GET", s.base+path, nil)
				req.Header.Set("Authorization", "Bearer "+tok)
				t0 := time.Now()
				resp, err := client.Do(req)
				d := time.Since(t0)
				ok := err == nil && resp.StatusCode == http.StatusOK
				if resp != nil {
					resp.Body.Close()
				}
				mu.Lock()
				if ok {
					lat = append(lat, d)
				} else {
					failures++
					if failures <= 3 {
						code := 0
						if resp != nil {
							code = resp.StatusCode
						}
						t.Logf("API request failed: %s %d %v", path, code, err)
					}
				}
				mu.Unlock()
			}
		}()
	}

	start := time.Now()
	runs, affected := 0, 0
	for {
		inv := s.invoke("NotificationArchive", hostTimerBody(t, "NotificationArchive"))
		if inv.Code != http.StatusOK {
			t.Fatalf("run %d: %d %s", runs+1, inv.Code, inv.Body)
		}
		runs++
		r := s.call("GET", "/api/ops/sweeps/NotificationArchive/runs?limit=1", s.admin, nil, nil)
		var page struct {
			Value []struct {
				Status   string `json:"status"`
				Affected int    `json:"affected"`
				Batches  int    `json:"batches"`
				Units    int    `json:"units"`
			} `json:"value"`
		}
		if r.Code != http.StatusOK || json.Unmarshal(r.Body, &page) != nil || len(page.Value) == 0 {
			t.Fatalf("runs: %d %s", r.Code, r.Body)
		}
		last := page.Value[0]
		affected += last.Affected
		t.Logf("run %d: %s, %d units, %d batches, %d archived (%s so far)", runs, last.Status, last.Units, last.Batches, last.Affected,
			time.Since(start).Round(time.Second))
		if last.Status == "completed" {
			break
		}
		if last.Status == "failed" || runs > 100 {
			t.Fatalf("run %d %s", runs, last.Status)
		}
	}
	took := time.Since(start)
	close(stop)
	wg.Wait()

	left := s.ownerCount(t, "notifications", `SELECT count(*) FROM notifications WHERE created_at < now() - interval '99 days'`)
	if left != 0 || affected != seeded {
		t.Errorf("%d old notifications left, %d archived by the runs; want 0 and %d", left, affected, seeded)
	}
	slices.Sort(lat)
	pct := func(p float64) time.Duration { return lat[int(float64(len(lat)-1)*p)] }
	t.Logf("FIGURE: %d notifications of %d tenants archived in %s by %d bounded runs (%.0f rows/s); API during the sweep: %d answered requests, p50 %s, p99 %s, max %s, %d failed",
		seeded, tenants, took.Round(time.Second), runs, float64(seeded)/took.Seconds(), len(lat), pct(0.50).Round(time.Microsecond),
		pct(0.99).Round(time.Microsecond), lat[len(lat)-1].Round(time.Microsecond), failures)
	if failures > 0 {
		t.Errorf("%d API requests failed during the sweep", failures)
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}
