package authz

import (
	"bytes"
	"context"
	"encoding/hex"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"spine/shared/ids"
	"spine/shared/sqlstore"
	"spine/shared/testenv"
)

// Tenant A's token on every authz route with tenant B's ids: 404 (B's clients do not exist for
// A); naming B with ?tenantId=: 403 tenant-mismatch; the platform's clients: 403. B's clients are
// unchanged afterwards and still authenticate.
func TestIsolation_TenantTokenOnEveryRouteWithAnotherTenantsIDs(t *testing.T) {
	h := newHarness(t)
	a, b := h.tenant(), h.tenant()
	bc := h.create(b.admin, "", confidentialBody())
	bp := h.create(b.admin, "", publicBody())

	routes := []struct {
		method, path string
		body         any
	}{
		{"GET", "/api/clients/" + bc.ID, nil},
		{"PATCH", "/api/clients/" + bc.ID, map[string]any{"name": "x"}},
		{"DELETE", "/api/clients/" + bc.ID, nil},
		{"POST", "/api/clients/" + bc.ID + "/secret", nil},
		{"GET", "/api/clients/" + bp.ID, nil},
		{"PATCH", "/api/clients/" + bp.ID, map[string]any{"redirectUris": []string{"https://evil.example/cb"}}},
		{"DELETE", "/api/clients/" + bp.ID, nil},
	}
	for _, rt := range routes {
		r := h.do(rt.method, rt.path, a.admin, rt.body)
		if r.Code != http.StatusNotFound || r.ProblemCode(t) != "client-not-found" {
			t.Errorf("A's token, %s %s: %d %s, want 404 client-not-found", rt.method, rt.path, r.Code, r.Body)
		}
	}
	all := append(routes, []struct {
		method, path string
		body         any
	}{
		{"GET", "/api/clients", nil},
		{"POST", "/api/clients", confidentialBody()},
	}...)
	for _, rt := range all {
		r := h.do(rt.method, rt.path+"?tenantId="+b.id.String(), a.admin, rt.body)
		if r.Code != http.StatusForbidden || r.ProblemCode(t) != "tenant-mismatch" {
			t.Errorf("A's token naming B, %s %s: %d %s", rt.method, rt.path, r.Code, r.Body)
		}
		r = h.do(rt.method, rt.path+"?platform=true", a.admin, rt.body)
		if r.Code != http.StatusForbidden || r.ProblemCode(t) != "platform-admin-required" {
			t.Errorf("A's token on the platform's clients, %s %s: %d %s", rt.method, rt.path, r.Code, r.Body)
		}
	}
	if r := h.must(http.StatusOK, "GET", "/api/clients", a.admin, nil); len(r.JSON(t)["value"].([]any)) != 0 {
		t.Errorf("A lists B's clients: %s", r.Body)
	}
	// B is untouched.
	for _, c := range []created{bc, bp} {
		if r := h.must(http.StatusOK, "GET", "/api/clients/"+c.ID, b.admin, nil); r.Header.Get("ETag") != `"1"` {
			t.Errorf("B's client changed: %s", r.Body)
		}
	}
	if _, err := h.store.AuthenticateClient(context.Background(), bc.ID, bc.ClientSecret); err != nil {
		t.Errorf("B's client no longer authenticates: %v", err)
	}
}

// Row-level security: the runtime role, in one tenant's scope, sees only that tenant's rows of
// every tenant table even with no tenant filter at all, and cannot write another tenant's; the
// platform-level directory holds nothing but ids.
func TestRLS_HidesOtherTenantsRowsFromUnfilteredQueries(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	a, b := h.tenant(), h.tenant()
	for _, f := range []tenantFixture{a, b} {
		c := h.create(f.admin, "", publicBody())
		cl := Client{ID: ClientID(c.ID), Tenant: f.id.String()}
		code := Code{TenantID: cl.Tenant, Hash: HashCode(ids.New()), AuthRequestID: "ar", ClientID: cl.ID, Subject: "u",
			Request: []byte(`{}`), ExpiresAt: h.clock.now().Add(time.Minute)}
		if err := h.store.CreateCode(ctx, code); err != nil {
			t.Fatal(err)
		}
		if _, err := h.store.CreateRefreshToken(ctx, refreshFixture(cl, "", h.clock.now())); err != nil {
			t.Fatal(err)
		}
		if err := h.store.RevokeAccessToken(ctx, cl.Tenant, ids.New(), c.ID, h.clock.now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if err := h.store.GrantConsent(ctx, cl.Tenant, "u", c.ID, []string{"openid"}); err != nil {
			t.Fatal(err)
		}
	}
	for _, table := range []string{"clients", "auth_codes", "refresh_tokens", "revoked_tokens", "consents"} {
		var ids []string
		if err := h.rt.InReadTx(ctx, sqlstore.TenantScope(a.id), func(tx *sqlstore.Tx) error {
			var err error
			ids, err = testenv.QueryStrings(ctx, tx, `SELECT DISTINCT tenant_id::text FROM `+table) // no WHERE on purpose
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if len(ids) != 1 || ids[0] != a.id.String() {
			t.Errorf("%s unfiltered in A's scope: %v", table, ids)
		}
	}
	err := h.rt.InTx(ctx, sqlstore.TenantScope(a.id), func(tx *sqlstore.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO revoked_tokens (tenant_id, jti, client_id, expires_at)
			VALUES ($1, gen_random_uuid(), gen_random_uuid(), now())`, b.id.String())
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "row-level security") {
		t.Errorf("A writing B's row: %v, want a row-level security violation", err)
	}
	cols, err := testenv.QueryStrings(ctx, h.rt, `SELECT column_name FROM information_schema.columns
		WHERE table_name = 'client_directory' ORDER BY ordinal_position`)
	if err != nil || !slices.Equal(cols, []string{"client_id", "tenant_id"}) {
		t.Errorf("client_directory columns %v %v, want only the ids", cols, err)
	}
	// The runtime role cannot delete a client (DELETE soft-deletes) nor touch the directory.
	for _, q := range []string{`DELETE FROM clients`, `UPDATE client_directory SET tenant_id = client_id`, `DELETE FROM consents`} {
		err := h.rt.InTx(ctx, sqlstore.TenantScope(a.id), func(tx *sqlstore.Tx) error {
			_, err := tx.ExecContext(ctx, q)
			return err
		})
		if err == nil || !strings.Contains(err.Error(), "permission denied") {
			t.Errorf("%s: %v, want permission denied", q, err)
		}
	}
}

// A dump of the authz database (pg_dump, and every column of every table read as text), and the
// cached clients in Redis, hold none of the values issued: client secrets (created and rotated),
// refresh tokens (created and rotated), authorization codes. They do hold the values' SHA-256, so
// the rows are there.
func TestDump_HoldsNoIssuedValue(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	f := h.tenant()
	var issued []string
	conf := h.create(f.admin, "", confidentialBody())
	issued = append(issued, conf.ClientSecret)
	r := h.must(http.StatusOK, "POST", "/api/clients/"+conf.ID+"/secret", f.admin, nil)
	rotated, _ := r.JSON(t)["clientSecret"].(string)
	issued = append(issued, rotated)
	if _, err := h.store.AuthenticateClient(ctx, conf.ID, rotated); err != nil { // cached in Redis now
		t.Fatal(err)
	}
	plat := h.create(h.platformAdmin(), "?platform=true", map[string]any{"name": "Ops", "clientType": "confidential",
		"grantTypes": []string{"client_credentials"}, "scopes": []string{"platform.ops"}, "platformAdmin": true})
	issued = append(issued, plat.ClientSecret)
	pub := h.create(f.admin, "", publicBody())
	cl := Client{ID: ClientID(pub.ID), Tenant: f.id.String()}
	for range 3 {
		code := "code-" + ids.New() + "-" + ids.New()
		issued = append(issued, code)
		c := Code{TenantID: cl.Tenant, Hash: HashCode(code), AuthRequestID: ids.New(), ClientID: cl.ID, Subject: "user-1",
			Request: []byte(`{"scopes":["openid"]}`), ExpiresAt: h.clock.now().Add(time.Minute)}
		if err := h.store.CreateCode(ctx, c); err != nil {
			t.Fatal(err)
		}
		v, err := h.store.CreateRefreshToken(ctx, refreshFixture(cl, "", h.clock.now()))
		if err != nil {
			t.Fatal(err)
		}
		next, err := h.store.RotateRefreshToken(ctx, v, RefreshToken{ClientID: cl.ID})
		if err != nil {
			t.Fatal(err)
		}
		issued = append(issued, v, next)
	}

	var dumps [][]byte
	if pgDump, err := exec.LookPath("pg_dump"); err == nil {
		out, err := exec.Command(pgDump, "--data-only", "--dbname="+testDB.AdminURL).Output()
		if err != nil {
			t.Fatalf("pg_dump: %v", err)
		}
		dumps = append(dumps, out)
	} else {
		t.Logf("pg_dump is not on PATH; the dump is read as every column of every table instead")
	}
	tables, err := testenv.QueryStrings(ctx, openAdmin(t), `SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	var rows bytes.Buffer
	for _, table := range tables {
		lines, err := testenv.QueryStrings(ctx, openAdmin(t), `SELECT t::text FROM `+table+` t`)
		if err != nil {
			t.Fatal(err)
		}
		rows.WriteString(strings.Join(lines, "\n"))
	}
	dumps = append(dumps, rows.Bytes(), redisDump(t))
	for i, dump := range dumps {
		for _, v := range issued {
			if v == "" {
				t.Fatal("an issued value is empty")
			}
			if bytes.Contains(dump, []byte(v)) {
				t.Errorf("dump %d holds an issued value (%.8s…)", i, v)
			}
		}
	}
	// The rows are there, as hashes, in every database dump (the last dump is Redis's).
	for i, dump := range dumps[:len(dumps)-1] {
		for _, v := range []string{rotated, issued[len(issued)-1]} {
			if h := hex.EncodeToString(hashOf(v)); !bytes.Contains(dump, []byte(h)) {
				t.Errorf("dump %d lacks the hash %s: the check read nothing", i, h)
			}
		}
	}
}

// openAdmin opens the cluster superuser on the package database (row-level security does not
// apply to it: the dump sees every row).
func openAdmin(t *testing.T) *sqlstore.DB {
	t.Helper()
	db, err := sqlstore.Open(context.Background(), "authz", sqlstore.Postgres, testDB.AdminURL, sqlstore.PoolConfig{MaxOpen: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// redisDump is every authz key's value in the stack's Redis.
func redisDump(t *testing.T) []byte {
	t.Helper()
	url, err := testenv.Require("SPINE_REDIS_URL")
	if err != nil {
		t.Fatal(err)
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	ctx := context.Background()
	var out bytes.Buffer
	iter := rdb.Scan(ctx, 0, "*authz*", 1000).Iterator()
	n := 0
	for iter.Next(ctx) {
		v, err := rdb.Get(ctx, iter.Val()).Bytes()
		if err == nil {
			out.Write(v)
			n++
		}
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("no authz key in Redis: the cached clients were not found")
	}
	return out.Bytes()
}
