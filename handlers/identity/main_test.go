package identity

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/labstack/echo/v4"
	"github.com/redis/go-redis/v9"

	"spine/shared/cache"
	"spine/shared/contracts"
	"spine/shared/events"
	"spine/shared/functions"
	"spine/shared/httpx"
	"spine/shared/problem"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
	"spine/shared/testenv"
	"spine/shared/testenv/apitest"
)

// testDB is this package's fresh database (platform schema + identity's migrations), created in
// TestMain and dropped after.
var testDB *testenv.Database

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, "identity", &testDB)) }

// fakeDir is the tenant directory the tests control (the tenants service answers it in the app).
type fakeDir struct {
	mu sync.Mutex
	m  map[tenancy.TenantID]tenancy.Status
	// asked, when set, runs at every question (a test watches when the directory is called).
	asked func()
}

func (d *fakeDir) TenantStatus(_ context.Context, id tenancy.TenantID) (tenancy.Status, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.asked != nil {
		d.asked()
	}
	st, ok := d.m[id]
	if !ok {
		return "", fmt.Errorf("%w: %s", tenancy.ErrTenantNotFound, id)
	}
	return st, nil
}

func (d *fakeDir) set(id tenancy.TenantID, st tenancy.Status) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.m[id] = st
}

// clock is a settable clock for invitation expiry.
type clock struct{ offset atomic.Int64 }

func (c *clock) now() time.Time       { return sqlstore.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) move(d time.Duration) { c.offset.Add(int64(d)) }

// harness is the identity API wired as app.go wires it (the /api edge, the authenticated group,
// the public routes, the shared error mappers), over the package database and a Redis.
type harness struct {
	t      *testing.T
	e      *echo.Echo
	svc    *Service
	api    *API
	rt     *sqlstore.DB
	cache  *cache.Cache
	rdb    *redis.Client
	tokens *apitest.Tokens
	dir    *fakeDir
	clock  *clock
}

type harnessOpts struct {
	redisURL string          // default: the stack's Redis
	tokens   *apitest.Tokens // default: a fresh key (pass one to share tokens between instances)
	dir      *fakeDir        // default: a fresh directory
	pool     sqlstore.PoolConfig
	db       *sqlstore.DB // default: a runtime pool of the package database with pool's bounds
}

func newHarness(t *testing.T, o harnessOpts) *harness {
	t.Helper()
	if o.redisURL == "" {
		var err error
		if o.redisURL, err = testenv.Require("SPINE_REDIS_URL"); err != nil {
			t.Fatal(err)
		}
	}
	if o.tokens == nil {
		o.tokens = apitest.NewTokens(t)
	}
	if o.dir == nil {
		o.dir = &fakeDir{m: map[tenancy.TenantID]tenancy.Status{}}
	}
	opt, err := redis.ParseURL(o.redisURL)
	if err != nil {
		t.Fatal(err)
	}
	opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout, opt.MaxRetries = 200*time.Millisecond, 200*time.Millisecond, 200*time.Millisecond, 0
	rdb := redis.NewClient(opt)
	c := cache.New(rdb, cache.Config{Cooldown: 100 * time.Millisecond, RetryInterval: 50 * time.Millisecond}, nil)
	t.Cleanup(func() { c.Close(); _ = rdb.Close() })
	rt := o.db
	if rt == nil {
		rt = testDB.OpenRuntime(t, o.pool)
	}
	clk := &clock{}
	svc, err := NewService(NewStore(rt), c, o.dir, ServiceConfig{Now: clk.now}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	api := NewAPI(svc, rt)
	e := echo.New()
	pub, sec := httpx.NewAPI(e, httpx.APIConfig{Verifier: o.tokens.Verifier(t), MaxBodyBytes: 64 << 10, Mappers: []problem.Mapper{MapError}})
	api.Routes(sec)
	api.PublicRoutes(pub)
	return &harness{t: t, e: e, svc: svc, api: api, rt: rt, cache: c, rdb: rdb, tokens: o.tokens, dir: o.dir, clock: clk}
}

func (h *harness) do(method, path, token string, body any, hdr ...string) apitest.Response {
	h.t.Helper()
	return apitest.Do(h.t, h.e, method, path, token, body, hdr...)
}

// must sends a request and fails the test unless it answers want.
func (h *harness) must(want int, method, path, token string, body any, hdr ...string) apitest.Response {
	h.t.Helper()
	r := h.do(method, path, token, body, hdr...)
	if r.Code != want {
		h.t.Fatalf("%s %s: %d %s, want %d", method, path, r.Code, r.Body, want)
	}
	return r
}

// allScopes are every identity scope.
var allScopes = []string{ScopeUserRead, ScopeUserInvite, ScopeUserManage, ScopeRoleRead, ScopeRoleAssign, ScopeRoleManage}

// tenantFixture is a provisioned tenant: its system roles seeded and its owner invited by the
// consumer, and a token of its administrator with every identity scope.
type tenantFixture struct {
	id          tenancy.TenantID
	admin       string // tenant token, every identity scope
	adminRole   RoleID
	memberRole  RoleID
	ownerEmail  string
	ownerUserID UserID
}

// provisioned registers a tenant with the directory and delivers its TenantProvisioned event to
// IdentityOnTenantsEvent, as the app does.
func (h *harness) provisioned() tenantFixture {
	h.t.Helper()
	id := tenancy.NewTenantID()
	h.dir.set(id, tenancy.StatusActive)
	owner := "Owner@" + id.String()[:8] + ".example"
	if r := h.deliver(id, contracts.TenantProvisioned, contracts.TenantProvisionedData{TenantID: id.String(), Slug: "s",
		EditionCode: "standard", ProvisionedAt: time.Now().UTC(), OwnerEmail: owner}); r.err != nil {
		h.t.Fatalf("TenantProvisioned: %v", r.err)
	}
	f := tenantFixture{id: id, ownerEmail: owner, admin: h.tokens.MintAs(h.t, "admin-"+id.String(), id.String(), false, allScopes...)}
	r := h.must(http.StatusOK, "GET", "/api/roles", f.admin, nil)
	var page struct{ Value []roleJSON }
	_ = json.Unmarshal(r.Body, &page)
	for _, ro := range page.Value {
		switch ro.Code {
		case string(RoleTenantAdmin):
			f.adminRole = RoleID(ro.ID)
		case string(RoleMember):
			f.memberRole = RoleID(ro.ID)
		}
	}
	r = h.must(http.StatusOK, "GET", "/api/users?email="+owner, f.admin, nil)
	var users struct{ Value []userJSON }
	_ = json.Unmarshal(r.Body, &users)
	if f.adminRole == "" || f.memberRole == "" || len(users.Value) != 1 {
		h.t.Fatalf("seeding: roles %v, users %s", page.Value, r.Body)
	}
	f.ownerUserID = UserID(users.Value[0].ID)
	return f
}

type delivered struct {
	res *functions.Result
	err error
}

// deliver hands IdentityOnTenantsEvent one event of the tenants topic, in the host's encoding.
func (h *harness) deliver(tenant tenancy.TenantID, typ string, data any) delivered {
	h.t.Helper()
	ev, err := events.New("tenants", typ, tenant.String(), tenant.String(), data, events.Meta{Actor: "admin:test"})
	if err != nil {
		h.t.Fatal(err)
	}
	return h.deliverEvent(ev)
}

func (h *harness) deliverEvent(ev events.Event) delivered {
	h.t.Helper()
	return h.deliverEventCtx(context.Background(), ev)
}

func (h *harness) deliverEventCtx(ctx context.Context, ev events.Event) delivered {
	h.t.Helper()
	body, _ := json.Marshal(ev)
	d, meta := functions.ServiceBusMessage(body, functions.EncodingString, functions.ServiceBusMetadata{MessageID: ev.ID,
		DeliveryCount: 1, EnqueuedTimeUTC: time.Now(), ApplicationProperties: map[string]any{"tenantId": ev.TenantID}})
	raw, _ := json.Marshal(map[string]any{"Data": map[string]any{functions.ServiceBusBinding: d}, "Metadata": meta})
	var inv functions.Invocation
	if err := json.Unmarshal(raw, &inv); err != nil {
		h.t.Fatal(err)
	}
	inv.FunctionName = "IdentityOnTenantsEvent"
	res, err := h.api.onTenantsEvent(ctx, &inv)
	return delivered{res, err}
}

// invite invites email with roles as the tenant's admin and returns the invitation's answer.
func (h *harness) invite(f tenantFixture, email string, roles ...RoleID) invitationJSON {
	h.t.Helper()
	ids := make([]string, len(roles))
	for i, r := range roles {
		ids[i] = string(r)
	}
	r := h.must(http.StatusCreated, "POST", "/api/users/invitations", f.admin, map[string]any{"email": email, "roleIds": ids})
	var inv invitationJSON
	if err := json.Unmarshal(r.Body, &inv); err != nil || inv.Token == "" {
		h.t.Fatalf("invitation %s: %v", r.Body, err)
	}
	return inv
}

// activeUser invites email with roles and accepts the invitation (without a password).
func (h *harness) activeUser(f tenantFixture, email string, roles ...RoleID) UserID {
	h.t.Helper()
	inv := h.invite(f, email, roles...)
	h.accept(inv.Token, nil)
	return UserID(inv.UserID)
}

// activeUserWithPassword is activeUser with a password set on acceptance (a user_credentials row).
func (h *harness) activeUserWithPassword(f tenantFixture, email, password string, roles ...RoleID) UserID {
	h.t.Helper()
	inv := h.invite(f, email, roles...)
	h.accept(inv.Token, map[string]any{"password": password})
	return UserID(inv.UserID)
}

// accept accepts an invitation through the documented route (the token in the body) and fails
// the test unless it answers 200.
func (h *harness) accept(token string, body map[string]any) apitest.Response {
	h.t.Helper()
	return h.must(http.StatusOK, "POST", "/api/users/invitations/accept", "", acceptBody(token, body))
}

// acceptBody is the body of POST /api/users/invitations/accept: the token with the other members.
func acceptBody(token string, body map[string]any) map[string]any {
	out := map[string]any{"token": token}
	for k, v := range body {
		out[k] = v
	}
	return out
}

// stmtLog records every statement a pool sends (a pgx tracer), for the tests that count round trips.
type stmtLog struct {
	mu   sync.Mutex
	sqls []string
}

func (l *stmtLog) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sqls = append(l.sqls, d.SQL)
	return ctx
}

func (l *stmtLog) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (l *stmtLog) reset() { l.mu.Lock(); l.sqls = nil; l.mu.Unlock() }

// count returns how many recorded statements contain every one of parts.
func (l *stmtLog) count(parts ...string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
next:
	for _, q := range l.sqls {
		for _, p := range parts {
			if !strings.Contains(q, p) {
				continue next
			}
		}
		n++
	}
	return n
}

// openTraced opens a runtime pool of the package database whose statements are recorded.
func openTraced(t *testing.T) (*sqlstore.DB, *stmtLog) {
	t.Helper()
	cfg, err := pgx.ParseConfig(testDB.RuntimeURL)
	if err != nil {
		t.Fatal(err)
	}
	log := &stmtLog{}
	cfg.Tracer = log
	db := stdlib.OpenDB(*cfg)
	t.Cleanup(func() { _ = db.Close() })
	return &sqlstore.DB{DB: db, Dialect: sqlstore.Postgres, Service: service}, log
}

// check asks POST /api/authz/check as the tenant's admin.
func (h *harness) check(f tenantFixture, user UserID, perm string) bool {
	h.t.Helper()
	r := h.must(http.StatusOK, "POST", "/api/authz/check", f.admin, map[string]string{"userId": string(user), "permission": perm})
	var out struct{ Allowed bool }
	if err := json.Unmarshal(r.Body, &out); err != nil {
		h.t.Fatal(err)
	}
	return out.Allowed
}

// createRole creates a tenant role with perms and returns its id.
func (h *harness) createRole(f tenantFixture, code string, perms ...string) RoleID {
	h.t.Helper()
	if perms == nil {
		perms = []string{}
	}
	r := h.must(http.StatusCreated, "POST", "/api/roles", f.admin, map[string]any{"code": code, "name": "Role " + code, "permissions": perms})
	return RoleID(r.JSON(h.t)["id"].(string))
}
