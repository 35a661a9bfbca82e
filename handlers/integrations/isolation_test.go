package integrations

import (
	"net/http"
	"strings"
	"testing"

	"spine/shared/sqlstore"
	"spine/shared/testenv"
)

// Tenant A's token on every integrations route with tenant B's ids: 404 not-found (B's
// connections do not exist for A — never 200, never 403 revealing them), and naming B with
// ?tenantId=: 403 tenant-mismatch whether or not B has the id. B's connection and its secret are
// unchanged afterwards, and A's list never shows it.
func TestIsolation_TenantTokenOnEveryRouteWithAnotherTenantsIDs(t *testing.T) {
	h := newHarness(t)
	a, b := h.tenant(), h.tenant()
	tg := newTarget(t)
	h.create(a, bearerBody("a's", tg.URL, "tok-a"))
	bc := h.create(b, bearerBody("b's", tg.URL, "tok-b"))
	routes := []struct {
		method, path string
		body         any
	}{
		{"GET", "/api/integrations/" + bc.ID, nil},
		{"PATCH", "/api/integrations/" + bc.ID, map[string]any{"name": "taken"}},
		{"PATCH", "/api/integrations/" + bc.ID, map[string]any{"enabled": false}},
		{"DELETE", "/api/integrations/" + bc.ID, nil},
		{"PUT", "/api/integrations/" + bc.ID + "/secret", map[string]any{"secret": "tok-a-overwrites"}},
		{"POST", "/api/integrations/" + bc.ID + "/test", nil},
		{"POST", "/api/integrations/" + bc.ID + "/sync", nil},
	}
	for _, rt := range routes {
		r := h.do(rt.method, rt.path, a.admin, rt.body)
		if r.Code != http.StatusNotFound || r.ProblemCode(t) != "not-found" {
			t.Errorf("A's token, %s %s: %d %s, want 404 not-found", rt.method, rt.path, r.Code, r.Body)
		}
	}
	all := append(routes, []struct {
		method, path string
		body         any
	}{
		{"GET", "/api/integrations", nil},
		{"POST", "/api/integrations", bearerBody("x", tg.URL, "tok-x")},
	}...)
	for _, rt := range all {
		sep := "?"
		if strings.Contains(rt.path, "?") {
			sep = "&"
		}
		r := h.do(rt.method, rt.path+sep+"tenantId="+b.id.String(), a.admin, rt.body)
		if r.Code != http.StatusForbidden || r.ProblemCode(t) != "tenant-mismatch" {
			t.Errorf("A's token naming B, %s %s: %d %s", rt.method, rt.path, r.Code, r.Body)
		}
	}
	list := decode[struct{ Value []connectionJSON }](t, h.must(http.StatusOK, "GET", "/api/integrations", a.reader, nil).Body)
	for _, c := range list.Value {
		if c.ID == bc.ID || c.TenantID != a.id.String() {
			t.Errorf("A lists %+v", c)
		}
	}
	// B is untouched: same version, same secret, no event but its creation.
	got := decode[connectionJSON](t, h.must(http.StatusOK, "GET", "/api/integrations/"+bc.ID, b.reader, nil).Body)
	if got.Version != 1 || got.Name != "b's" || got.Status != "Untested" || got.SecretRef != bc.SecretRef {
		t.Errorf("B's connection changed: %+v", got)
	}
	if s, err := h.vault.GetVersion(t.Context(), bc.SecretRef.Name, bc.SecretRef.Version); err != nil || s.Value() != "tok-b" {
		t.Errorf("B's secret: %v %v", s, err)
	}
	if evs := h.outbox(b.id); len(evs) != 1 {
		t.Errorf("B has %d events", len(evs))
	}
	// A platform admin reaches B by naming it.
	admin := h.tokens.Mint(t, "", true, ScopeRead, ScopeManage)
	h.must(http.StatusOK, "GET", "/api/integrations/"+bc.ID+"?tenantId="+b.id.String(), admin, nil)
	h.must(http.StatusBadRequest, "GET", "/api/integrations/"+bc.ID, admin, nil)
}

// Row-level security: the runtime role, in one tenant's scope, sees only that tenant's rows even
// with no tenant filter at all.
func TestRLS_HidesOtherTenantsConnectionsFromUnfilteredQueries(t *testing.T) {
	h := newHarness(t)
	a, b := h.tenant(), h.tenant()
	h.create(a, bearerBody("a", "https://api.example.com", "tok"))
	h.create(b, bearerBody("b", "https://api.example.com", "tok"))
	var got []string
	if err := h.rt.InReadTx(t.Context(), sqlstore.TenantScope(a.id), func(tx *sqlstore.Tx) error {
		var err error
		got, err = testenv.QueryStrings(t.Context(), tx, `SELECT DISTINCT tenant_id::text FROM connections`) // no WHERE on purpose
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != a.id.String() {
		t.Errorf("unfiltered in A's scope: %v", got)
	}
}
