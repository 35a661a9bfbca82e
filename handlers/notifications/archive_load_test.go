package notifications

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"spine/shared/retention"
	"spine/shared/tenancy"
)

// The archive under load (issue 14's figure), run on demand:
//
//	SPINE_ARCHIVE_LOAD=1 go test -count=1 -run TestArchiveLoad -timeout 60m -v ./handlers/notifications/
//
// seeds SPINE_ARCHIVE_LOAD_TENANTS (1,000) tenants × SPINE_ARCHIVE_LOAD_PER_TENANT (1,000)
// Delivered notifications older than 90 days by COPY (each with one delivery-log row), then runs
// NotificationArchive in bounded runs (SPINE_ARCHIVE_LOAD_MAX_ROWS per run, 50,000) until nothing
// is due, while two clients call GET /api/notifications/{id} (random tenants and ids: hot, then
// archived) and GET /api/notifications over HTTP. It prints the sweep's total time and the API's
// p50/p99 during it, and fails unless every row was archived exactly once.
func TestArchiveLoad_MillionNotifications_ArchivedInBoundedRunsWhileTheAPIServes(t *testing.T) {
	if os.Getenv("SPINE_ARCHIVE_LOAD") == "" {
		t.Skip("load run: set SPINE_ARCHIVE_LOAD=1 (minutes of 2 CPUs; not part of make test)")
	}
	tenants, perTenant, maxRows := envInt(t, "SPINE_ARCHIVE_LOAD_TENANTS", 1000), envInt(t, "SPINE_ARCHIVE_LOAD_PER_TENANT", 1000),
		envInt(t, "SPINE_ARCHIVE_LOAD_MAX_ROWS", 50000)
	h := newHarness(t)
	ctx := context.Background()

	// Seed by COPY as the cluster superuser (COPY FROM refuses tables under row-level security).
	conn, err := pgx.Connect(ctx, testDB.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	base := monthOf(time.Now().Add(-150 * 24 * time.Hour)).Add(24 * time.Hour)
	ids := make([]tenancy.TenantID, tenants)
	sample := make([][]string, tenants) // a few ids of each tenant for the readers
	seedStart := time.Now()
	for ti := range tenants {
		ids[ti] = tenancy.NewTenantID()
		rows := make([][]any, perTenant)
		for i := range perTenant {
			at := base.Add(time.Duration(i) * time.Second)
			id := uuidV7At(at)
			rows[i] = []any{ids[ti].String(), id, "email", "load@example.test", "load.test", "load", "body", int64(4),
				"c6b5e5a8b9e1c1e0c9b1b3a7b7e1c5e9a3b6e6c1d4f0e2a1b9c8d7e6f5a4b3c2", "Delivered", int32(1), at, at, at}
			if i%100 == 0 {
				sample[ti] = append(sample[ti], id)
			}
		}
		if _, err := conn.CopyFrom(ctx, pgx.Identifier{"notifications"}, []string{"tenant_id", "notification_id", "channel", "recipient",
			"event_type", "subject", "body", "body_size", "body_sha256", "status", "attempts", "created_at", "updated_at", "delivered_at"},
			pgx.CopyFromRows(rows)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := conn.Exec(ctx, `INSERT INTO delivery_attempts (tenant_id, notification_id, attempt, attempted_at, status_code, latency_ms)
		SELECT tenant_id, notification_id, 1, created_at, 250, 3 FROM notifications`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `VACUUM ANALYZE notifications`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `VACUUM ANALYZE delivery_attempts`); err != nil {
		t.Fatal(err)
	}
	seedTime := time.Since(seedStart)
	total := tenants * perTenant

	srv := httptest.NewServer(h.e)
	defer srv.Close()
	tokens := make([]string, tenants)
	for i, id := range ids {
		tokens[i] = h.tokens.Mint(t, id.String(), false, ScopeRead)
	}
	var mu sync.Mutex
	lat := map[string][]time.Duration{}
	failures := map[string]int{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for c := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				ti := rand.IntN(tenants)
				kind, path := "GET /api/notifications/{id}", "/api/notifications/"+sample[ti][rand.IntN(len(sample[ti]))]
				if (n+c)%2 == 1 {
					kind, path = "GET /api/notifications", "/api/notifications?limit=50"
				}
				req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
				req.Header.Set("Authorization", "Bearer "+tokens[ti])
				start := time.Now()
				resp, err := http.DefaultClient.Do(req)
				d := time.Since(start)
				mu.Lock()
				if err != nil || resp.StatusCode != http.StatusOK {
					failures[kind]++
				} else {
					lat[kind] = append(lat[kind], d)
				}
				mu.Unlock()
				if err == nil {
					_ = resp.Body.Close()
				}
			}
		}()
	}

	rig := newArchiveRig(t, h, time.Now, 500)
	e := rig.newEngine(retention.Config{MaxRows: maxRows, MaxDuration: 4 * time.Minute})
	sweepStart := time.Now()
	var runs, affected, batches int
	for {
		run, err := e.Run(ctx, rig.sweep.Name)
		if err != nil {
			t.Fatalf("run %d: %v (%s)", runs+1, err, run)
		}
		runs++
		affected += run.Affected
		batches += run.Batches
		if run.Batches == 0 {
			break
		}
	}
	sweepTime := time.Since(sweepStart)
	close(stop)
	wg.Wait()

	var left int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM notifications`).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 || affected != total {
		t.Fatalf("%d notifications left, %d archived of %d", left, affected, total)
	}
	blobs, err := h.blobs.List(ctx, ArchiveContainer, ids[0].String()+"/")
	if err != nil || len(blobs) != (perTenant+499)/500 {
		t.Fatalf("first tenant's blobs %v (%v)", blobs, err)
	}
	report := fmt.Sprintf("archive load: %d tenants × %d notifications seeded by COPY in %s; NotificationArchive: %d rows in %d ranges over %d bounded runs (≤ %d rows each) in %s (%.0f rows/s)",
		tenants, perTenant, seedTime.Round(time.Millisecond), affected, batches, runs-1, maxRows, sweepTime.Round(time.Millisecond),
		float64(affected)/sweepTime.Seconds())
	for _, kind := range []string{"GET /api/notifications/{id}", "GET /api/notifications"} {
		ds := lat[kind]
		slices.Sort(ds)
		if len(ds) == 0 {
			t.Fatalf("no successful %s during the sweep (%d failures)", kind, failures[kind])
		}
		report += fmt.Sprintf("\n  %s during the sweep: %d ok, %d failed, p50 %s, p99 %s, max %s", kind, len(ds), failures[kind],
			ds[len(ds)/2].Round(10*time.Microsecond), ds[len(ds)*99/100].Round(10*time.Microsecond), ds[len(ds)-1].Round(10*time.Microsecond))
	}
	t.Log(report)
	fmt.Println(report)
	if failures["GET /api/notifications/{id}"]+failures["GET /api/notifications"] != 0 {
		t.Fatalf("API failures during the sweep: %v", failures)
	}
}

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: a positive number", name, v)
	}
	return n
}
