package tests

import (
	"context"
	"encoding/json"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"spine/shared/testenv"
)

func TestHost_PingAndHealth(t *testing.T) {
	s := startServer(t, nil)
	if r := s.call("GET", "/", "", nil, nil); r.Code != http.StatusOK {
		t.Fatalf("GET /: %d", r.Code)
	}
	r := s.call("GET", "/api/health", "", nil, nil)
	if r.Code != http.StatusOK || r.JSON(t)["status"] != "ok" {
		t.Fatalf("health: %d %s", r.Code, r.Body)
	}
}

// The whole tenant lifecycle through forwarded HTTP requests, as a caller sees it.
func TestForwardedHTTP_TenantLifecycle(t *testing.T) {
	s := startServer(t, nil)
	sl := slug("acme")
	id := s.register(sl, "standard")
	r := s.call("POST", "/api/tenants/"+id+"/provision", s.admin, nil, nil)
	if r.Code != http.StatusOK || r.JSON(t)["status"] != "Active" {
		t.Fatalf("provision: %d %s", r.Code, r.Body)
	}
	tok := s.token(id, false)
	if r := s.call("GET", "/api/tenants/by-slug/"+sl, tok, nil, nil); r.Code != 200 || r.JSON(t)["id"] != id {
		t.Fatalf("by slug as the tenant: %d %s", r.Code, r.Body)
	}
	if r := s.call("POST", "/api/tenants/"+id+"/suspend", s.admin, map[string]string{"reason": "e2e"}, nil); r.Code != 200 {
		t.Fatalf("suspend: %d %s", r.Code, r.Body)
	}
	r = s.call("PATCH", "/api/tenants/"+id, tok, map[string]string{"name": "Nope"}, nil)
	if r.Code != http.StatusForbidden || r.JSON(t)["code"] != "tenant-suspended" || r.Hdr.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("write while suspended: %d %s", r.Code, r.Body)
	}
	if r.Hdr.Get("traceparent") == "" {
		t.Error("no traceparent on the response")
	}
	other := s.register(slug("other"), "standard")
	if r := s.call("GET", "/api/tenants/"+other, tok, nil, nil); r.Code != http.StatusNotFound {
		t.Fatalf("A reading B: %d %s", r.Code, r.Body)
	}
	if r := s.call("GET", "/api/tenants", "", nil, nil); r.Code != http.StatusUnauthorized {
		t.Fatalf("no token: %d", r.Code)
	}
}

// The provisioning sweep timer, invoked exactly as the host invokes a timer function, retries a
// failed step and activates the tenant.
func TestTimerInvocation_ProvisioningSweepActivatesTenant(t *testing.T) {
	s := startServer(t, nil)
	id := s.register(slug("late"), "gold") // not on sale: the edition step fails
	if r := s.call("POST", "/api/tenants/"+id+"/provision", s.admin, nil, nil); r.Code != http.StatusBadGateway {
		t.Fatalf("first provision: %d %s", r.Code, r.Body)
	}
	if r := s.call("PATCH", "/api/tenants/"+id, s.admin, map[string]string{"editionCode": "standard"}, nil); r.Code != 200 {
		t.Fatalf("patch: %d %s", r.Code, r.Body)
	}
	r := s.invoke("TenantProvisioningSweep", hostTimerBody(t, "TenantProvisioningSweep"))
	if r.Code != http.StatusOK {
		t.Fatalf("timer: %d %s", r.Code, r.Body)
	}
	var out struct {
		Outputs     map[string]any
		Logs        []string
		ReturnValue any
	}
	if err := json.Unmarshal(r.Body, &out); err != nil || out.Outputs == nil || len(out.Logs) != 1 || !contains(out.Logs[0], "activated 1") {
		t.Fatalf("invocation response: %s (%v)", r.Body, err)
	}
	if got := s.call("GET", "/api/tenants/"+id, s.admin, nil, nil).JSON(t); got["status"] != "Active" {
		t.Fatalf("after the sweep: %v", got)
	}
	if !contains(s.logs.String(), `"function":"TenantProvisioningSweep"`) {
		t.Errorf("no invocation log line:\n%s", s.logs.String())
	}
}

func TestTimerInvocation_400_MalformedBody(t *testing.T) {
	s := startServer(t, nil)
	r := s.invoke("TenantProvisioningSweep", []byte(`{"Data":`))
	if r.Code != http.StatusBadRequest || r.Hdr.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("%d %s %v", r.Code, r.Body, r.Hdr)
	}
}

// Redis stopped mid-test: tenant reads still succeed from SQL; after Redis returns, the cache
// refills (the tenant's key is back in Redis).
func TestRedisStopped_TenantReadsSucceedAndCacheRefills(t *testing.T) {
	rs := testenv.StartRedis(t)
	s := startServer(t, map[string]string{"SPINE_REDIS_URL": rs.URL()})
	id := s.register(slug("cache"), "standard")
	key := "{t:" + id + "}:tenants:tenant:v1"
	rdb := redis.NewClient(&redis.Options{Addr: rs.URL()[len("redis://") : len(rs.URL())-2], MaxRetries: 0, DialTimeout: 200 * time.Millisecond})
	defer rdb.Close()
	ctx := context.Background()
	if r := s.call("GET", "/api/tenants/"+id, s.admin, nil, nil); r.Code != 200 {
		t.Fatalf("%d %s", r.Code, r.Body)
	}
	if n := rdb.Exists(ctx, key).Val(); n != 1 {
		t.Fatalf("after a read the tenant is not cached under %s", key)
	}
	rs.Stop()
	for i := 0; i < 10; i++ {
		if r := s.call("GET", "/api/tenants/"+id, s.admin, nil, nil); r.Code != 200 || r.JSON(t)["id"] != id {
			t.Fatalf("read %d with Redis down: %d %s", i, r.Code, r.Body)
		}
	}
	// A write while Redis is down is acknowledged and lands in SQL.
	if r := s.call("PATCH", "/api/tenants/"+id, s.admin, map[string]string{"name": "Renamed while Redis was down"}, nil); r.Code != 200 {
		t.Fatalf("write with Redis down: %d %s", r.Code, r.Body)
	}
	rs.Start()
	deadline := time.Now().Add(15 * time.Second)
	for rdb.Exists(ctx, key).Val() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the cache never refilled after Redis returned")
		}
		if r := s.call("GET", "/api/tenants/"+id, s.admin, nil, nil); r.Code != 200 || r.JSON(t)["name"] != "Renamed while Redis was down" {
			t.Fatalf("read after recovery: %d %s", r.Code, r.Body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// `handler migrate` applies, per service database and with its owner role, the platform schema
// (its own version table) and then the service's migrations; run again, it applies nothing.
func TestMigrateCommand_AppliesAndIsIdempotent(t *testing.T) {
	ctx := context.Background()
	env := []string{"SPINE_SERVICES=tenants,audit", "SPINE_STORAGE_CONNECTION_STRING=UseDevelopmentStorage=true",
		"SPINE_AUTH_ISSUER=x", "SPINE_AUTH_AUDIENCE=y", "SPINE_AUTH_JWKS_FILE=/dev/null"}
	for _, svc := range []string{"tenants", "audit"} {
		db, err := testenv.CreateDatabase(ctx, svc)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Drop()
		up := strings.ToUpper(svc)
		env = append(env, "SPINE_"+up+"_DB_URL="+db.RuntimeURL, "SPINE_"+up+"_DB_MIGRATE_URL="+db.OwnerURL)
	}
	for i := 0; i < 2; i++ {
		cmd := exec.Command(binary, "migrate")
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("migrate run %d: %v\n%s", i+1, err, out)
		}
		got := map[string][2][]int64{}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			var l struct {
				Msg      string  `json:"msg"`
				Service  string  `json:"service"`
				Platform []int64 `json:"platform"`
				Applied  []int64 `json:"applied"`
			}
			if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "migrated" {
				got[l.Service] = [2][]int64{l.Platform, l.Applied}
			}
		}
		for _, svc := range []string{"tenants", "audit"} {
			g, ok := got[svc]
			switch {
			case !ok:
				t.Fatalf("run %d: no migrated line for %s:\n%s", i+1, svc, out)
			case i == 0 && (len(g[0]) == 0 || g[0][0] != 1 || len(g[1]) == 0 || g[1][0] != 1):
				t.Fatalf("run 1, %s: platform %v, applied %v; want both from version 1:\n%s", svc, g[0], g[1], out)
			case i == 1 && (len(g[0]) != 0 || len(g[1]) != 0):
				t.Fatalf("run 2, %s: platform %v, applied %v; want nothing:\n%s", svc, g[0], g[1], out)
			}
		}
	}
}
