package reporting

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"spine/shared/blob"
	"spine/shared/entitlements"
	"spine/shared/httpx"
	"spine/shared/problem"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
	"spine/shared/testenv"
	"spine/shared/testenv/apitest"
)

// fixedEntitlements answers one retention override for every tenant.
type fixedEntitlements struct{ retention time.Duration }

func (f fixedEntitlements) Of(context.Context, tenancy.TenantID) (entitlements.Entitlements, error) {
	return entitlements.Entitlements{Edition: "test", Retention: map[string]time.Duration{RetentionKind: f.retention}}, nil
}

func (f fixedEntitlements) Edition(context.Context, string) (entitlements.Entitlements, error) {
	return entitlements.Entitlements{}, entitlements.ErrUnknownEdition
}

// harness is the reporting API wired as app.go wires it (the /api edge, the authenticated group,
// the shared error mappers) over the package database and the stack's Azurite.
type harness struct {
	t      testing.TB
	e      *echo.Echo
	svc    *Service
	blobs  *blob.Store
	db     *sqlstore.DB
	tokens *apitest.Tokens
	dir    *testenv.Directory
	now    *clock
}

// clock is a settable clock (the service's Now); zero means the real time.
type clock struct {
	mu sync.Mutex
	at time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.at.IsZero() {
		return sqlstore.Now()
	}
	return c.at
}

func (c *clock) set(t time.Time) { c.mu.Lock(); c.at = t; c.mu.Unlock() }

type harnessOpts struct {
	blobs Artifacts // default: the stack's Azurite
	ents  entitlements.Source
	cfg   ServiceConfig
}

func openBlobs(t testing.TB) *blob.Store {
	t.Helper()
	return testenv.Blobs(t, Container)
}

func newHarness(t testing.TB, o harnessOpts) *harness {
	t.Helper()
	bs := openBlobs(t)
	var arts Artifacts = bs
	if o.blobs != nil {
		arts = o.blobs
	}
	db := testDB.OpenRuntime(t, sqlstore.PoolConfig{MaxOpen: 8})
	clk := &clock{}
	cfg := o.cfg
	if cfg.Now == nil {
		cfg.Now = clk.Now
	}
	dir := testenv.NewDirectory()
	svc := NewService(NewStore(db), arts, bs, o.ents, dir, cfg, slog.New(slog.DiscardHandler))
	tokens := apitest.NewTokens(t)
	e := echo.New()
	_, sec := httpx.NewAPI(e, httpx.APIConfig{Verifier: tokens.Verifier(t), MaxBodyBytes: 64 << 10, Mappers: []problem.Mapper{MapError}})
	NewAPI(svc, db).Routes(sec)
	return &harness{t: t, e: e, svc: svc, blobs: bs, db: db, tokens: tokens, dir: dir, now: clk}
}

func (h *harness) do(method, path, token string, body any, hdr ...string) apitest.Response {
	h.t.Helper()
	return apitest.Do(h.t, h.e, method, path, token, body, hdr...)
}

func (h *harness) must(want int, method, path, token string, body any, hdr ...string) apitest.Response {
	h.t.Helper()
	r := h.do(method, path, token, body, hdr...)
	if r.Code != want {
		h.t.Fatalf("%s %s: %d %s, want %d", method, path, r.Code, r.Body, want)
	}
	return r
}

// tenantT is a tenant with a manager's and a reader's token.
type tenantT struct {
	id              tenancy.TenantID
	manager, reader string
}

func (h *harness) tenant() tenantT {
	id := tenancy.NewTenantID()
	h.dir.Set(id, tenancy.StatusActive)
	return tenantT{id: id,
		manager: h.tokens.MintAs(h.t, "manager-"+id.String(), id.String(), false, ScopeReportRead, ScopeReportManage),
		reader:  h.tokens.MintAs(h.t, "reader-"+id.String(), id.String(), false, ScopeReportRead)}
}

func (h *harness) admin() string {
	return h.tokens.MintAs(h.t, "platform-admin", "", true, ScopeReportRead, ScopeReportManage)
}

func decode[T any](t testing.TB, body []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("decode %T: %v: %s", v, err, body)
	}
	return v
}

// createReport creates a report of tn and returns it.
func (h *harness) createReport(tn tenantT, body map[string]any) reportJSON {
	h.t.Helper()
	return decode[reportJSON](h.t, h.must(http.StatusCreated, "POST", "/api/reports", tn.manager, body).Body)
}

// runReport requests a run of report and returns it (Queued).
func (h *harness) runReport(tn tenantT, reportID string, params map[string]any) runJSON {
	h.t.Helper()
	var body any
	if params != nil {
		body = map[string]any{"parameters": params}
	}
	return decode[runJSON](h.t, h.must(http.StatusAccepted, "POST", "/api/reports/"+reportID+"/runs", tn.manager, body).Body)
}

// generate runs the worker's attempt on run as ReportGeneration does for its event.
func (h *harness) generate(tn tenantT, runID string) string {
	h.t.Helper()
	outcome, err := h.svc.Generate(context.Background(), tn.id, runID)
	if err != nil {
		h.t.Fatalf("generate %s: %s: %v", runID, outcome, err)
	}
	return outcome
}

func (h *harness) run(tn tenantT, runID string) runJSON {
	h.t.Helper()
	return decode[runJSON](h.t, h.must(http.StatusOK, "GET", "/api/report-runs/"+runID, tn.reader, nil).Body)
}

// seed runs statements in tenant's scope on the runtime pool (read models are written by
// consumers in the tenant's scope; the tests seed them as those would).
func (h *harness) seed(tenant tenancy.TenantID, stmts ...string) {
	h.t.Helper()
	err := h.db.InTx(context.Background(), sqlstore.TenantScope(tenant), func(tx *sqlstore.Tx) error {
		for _, q := range stmts {
			if _, err := tx.ExecContext(context.Background(), q, tenant.String()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		h.t.Fatal(err)
	}
}

// seedUsers writes n users of tenant into the read model with SQL generate_series (every tenth
// Invited, every third with two roles): about 1.33 rows per user in users-and-roles.
func (h *harness) seedUsers(tenant tenancy.TenantID, n int) {
	h.t.Helper()
	h.seed(tenant, fmt.Sprintf(`INSERT INTO rm_users (tenant_id, user_id, email, status, invited_at, activated_at, updated_at)
		SELECT $1::uuid, gen_random_uuid(), 'user' || lpad(g::text, 7, '0') || '@example.com',
			CASE WHEN g %% 10 = 0 THEN 'Invited' ELSE 'Active' END, now(), CASE WHEN g %% 10 = 0 THEN NULL ELSE now() END, now()
		FROM generate_series(1, %d) AS g`, n),
		`INSERT INTO rm_user_roles (tenant_id, user_id, role_id, role_code, assigned_at)
		SELECT u.tenant_id, u.user_id, r.role_id, r.code, now()
		FROM (SELECT tenant_id, user_id, row_number() OVER (ORDER BY email) AS n FROM rm_users WHERE tenant_id = $1::uuid) AS u
		CROSS JOIN (VALUES ('00000000-0000-4000-8000-000000000001'::uuid, 'tenant-admin'), ('00000000-0000-4000-8000-000000000002'::uuid, 'member')) AS r(role_id, code)
		WHERE u.n % 3 = 0`)
}

// fetch downloads u with a plain net/http GET (no token: the SAS is the credential).
func fetch(t testing.TB, u string) (int, []byte, http.Header) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b, resp.Header
}
