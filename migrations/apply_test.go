package migrations_test

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"testing"

	"spine/migrations"
	"spine/shared/platform"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
	"spine/shared/testenv"
)

// These tests run on the local stack's PostgreSQL (`make test`), each on databases of its own.

// newDB creates an empty database of service (roles and grants as the stack makes them), dropped
// when t ends, and opens an owner pool on it.
func newDB(t *testing.T, service string) (*testenv.Database, *sqlstore.DB) {
	t.Helper()
	d, err := testenv.CreateDatabase(context.Background(), service)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Drop)
	return d, d.OpenOwner(t, sqlstore.PoolConfig{MaxOpen: 2})
}

// versions lists the version files of a migrations folder.
func versions(t *testing.T, fsys fs.FS) []int64 {
	t.Helper()
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	var out []int64
	for _, n := range names {
		var v int64
		if _, err := fmt.Sscanf(n, "%d_", &v); err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		out = append(out, v)
	}
	return out
}

// A fresh service database gets the platform schema from the platform set, first and with its
// own version table, then the service's own migrations; a second Apply applies nothing.
func TestApply_FreshDatabase_PlatformSchemaFirstThenTheService(t *testing.T) {
	ctx := context.Background()
	for _, svc := range migrations.Services() {
		t.Run(svc, func(t *testing.T) {
			d, owner := newDB(t, svc)
			own, err := migrations.For(svc, "postgres")
			if err != nil {
				t.Fatal(err)
			}
			got, err := migrations.Apply(ctx, owner, svc, nil)
			if err != nil {
				t.Fatal(err)
			}
			plat, _ := platform.Migrations(sqlstore.Postgres, "x_app")
			if !slices.Equal(got.Platform, versions(t, plat)) || !slices.Equal(got.Service, versions(t, own)) {
				t.Fatalf("Apply = %+v, want platform %v and %s %v", got, versions(t, plat), svc, versions(t, own))
			}
			again, err := migrations.Apply(ctx, owner, svc, nil)
			if err != nil || len(again.Platform)+len(again.Service) != 0 {
				t.Fatalf("second Apply = %+v, %v; want nothing applied", again, err)
			}

			// The platform set has its own version table, beside the service's.
			for table, want := range map[string][]int64{
				sqlstore.MigrationTable(platform.Name): versions(t, plat),
				sqlstore.MigrationTable(svc):           versions(t, own),
			} {
				if got := appliedVersions(t, owner, table); !slices.Equal(got, want) {
					t.Errorf("%s holds %v, want %v", table, got, want)
				}
			}
			// Every service's outbox has every index the drainer needs (audit's lacked
			// outbox_aggregate before the platform set existed).
			idx, err := testenv.QueryStrings(ctx, owner, `SELECT indexname FROM pg_indexes WHERE tablename = 'outbox' ORDER BY 1`)
			if err != nil {
				t.Fatal(err)
			}
			if want := []string{"outbox_aggregate", "outbox_parked", "outbox_pending", "outbox_pkey", "outbox_seq_key"}; !slices.Equal(idx, want) {
				t.Errorf("outbox indexes %v, want %v", idx, want)
			}
			checkPlatformGrants(t, d)
			checkPlatformRLS(t, d)
		})
	}
}

// The platform set runs first: the service's own migrations rely on the RLS helper.
func TestApply_ServiceMigrationsNeedThePlatformSchema(t *testing.T) {
	_, owner := newDB(t, "tenants")
	own, _ := migrations.For("tenants", "postgres")
	_, err := sqlstore.Migrate(context.Background(), owner, "tenants", own, nil)
	if err == nil || !strings.Contains(err.Error(), "spine_tenant_visible") {
		t.Fatalf("tenants' migrations alone: err = %v, want the missing spine_tenant_visible", err)
	}
}

func TestApply_RefusesThePlatformSchemaAsAService(t *testing.T) {
	if _, err := migrations.Apply(context.Background(), &sqlstore.DB{Dialect: sqlstore.Postgres}, platform.Name, nil); err == nil {
		t.Fatal("Apply(platform) succeeded")
	}
}

// A database migrated before the platform schema existed (the services' previous migrations,
// kept in testdata/pre-platform, which created the RLS helper, outbox, inbox and
// idempotency_keys themselves) is adopted: Apply runs the platform set over the existing objects,
// keeps their rows, adds what they lacked, and ends with exactly the schema of a fresh database.
func TestApply_AdoptsADatabaseMigratedBeforeThePlatformSchema(t *testing.T) {
	ctx := context.Background()
	for _, svc := range []string{"tenants", "audit"} {
		t.Run(svc, func(t *testing.T) {
			old, oldOwner := newDB(t, svc)
			pre := os.DirFS("testdata/pre-platform/" + svc + "/postgres")
			if _, err := sqlstore.Migrate(ctx, oldOwner, svc, pre, nil); err != nil {
				t.Fatalf("the pre-platform migrations: %v", err)
			}
			// Rows written before the upgrade must survive it.
			tenant := tenancy.NewTenantID()
			seed := []string{`INSERT INTO outbox (tenant_id, event_id, subject, event_type, envelope, created_at, next_attempt_at)
				VALUES ('` + tenant.String() + `', gen_random_uuid(), 's', 'Seeded', '{}', now(), now())`}
			if svc == "tenants" {
				seed = append(seed, `INSERT INTO idempotency_keys (caller, key, request_hash, status_code, response_body, created_at)
					VALUES ('caller', 'k1', '\x00', 201, '{}', now())`)
			} else {
				seed = append(seed, `INSERT INTO inbox (tenant_id, consumer, event_id, event_type, received_at)
					VALUES ('`+tenant.String()+`', 'audit', gen_random_uuid(), 'Seeded', now())`)
			}
			if err := oldOwner.InTx(ctx, sqlstore.PlatformScope(), func(tx *sqlstore.Tx) error {
				for _, q := range seed {
					if _, err := tx.ExecContext(ctx, q); err != nil {
						return err
					}
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if svc == "audit" && hasIndex(t, oldOwner, "outbox_aggregate") {
				t.Fatal("the pre-platform audit outbox already has outbox_aggregate; the fixture is not the old schema")
			}

			got, err := migrations.Apply(ctx, oldOwner, svc, nil)
			if err != nil {
				t.Fatalf("Apply on the pre-platform database: %v", err)
			}
			plat, _ := platform.Migrations(sqlstore.Postgres, "x_app")
			// Of the service's own, only what came after the fixture (audit's retention tables).
			own, _ := migrations.For(svc, "postgres")
			newer := slices.DeleteFunc(versions(t, own), func(v int64) bool { return slices.Contains(versions(t, pre), v) })
			if !slices.Equal(got.Platform, versions(t, plat)) || !slices.Equal(got.Service, newer) {
				t.Fatalf("Apply = %+v, want every platform version %v and of %s's own %v", got, versions(t, plat), svc, newer)
			}
			if again, err := migrations.Apply(ctx, oldOwner, svc, nil); err != nil || len(again.Platform)+len(again.Service) != 0 {
				t.Fatalf("second Apply = %+v, %v", again, err)
			}
			if !hasIndex(t, oldOwner, "outbox_aggregate") {
				t.Error("the adopted outbox lacks outbox_aggregate")
			}

			fresh, freshOwner := newDB(t, svc)
			if _, err := migrations.Apply(ctx, freshOwner, svc, nil); err != nil {
				t.Fatal(err)
			}
			want, have := schemaOf(t, fresh), schemaOf(t, old)
			if diff := diffLines(want, have); diff != "" {
				t.Errorf("the adopted database's schema differs from a fresh one's (- fresh, + adopted):\n%s", diff)
			}

			var rows int
			if err := oldOwner.InTx(ctx, sqlstore.PlatformScope(), func(tx *sqlstore.Tx) error {
				q := `SELECT (SELECT count(*) FROM outbox) + (SELECT count(*) FROM inbox) + (SELECT count(*) FROM idempotency_keys WHERE scope = '')`
				return tx.QueryRowContext(ctx, q).Scan(&rows)
			}); err != nil {
				t.Fatal(err)
			}
			if rows != 2 {
				t.Errorf("%d seeded rows after the upgrade, want 2", rows)
			}
			checkPlatformGrants(t, old)
			checkPlatformRLS(t, old)
		})
	}
}

func appliedVersions(t *testing.T, db *sqlstore.DB, table string) []int64 {
	t.Helper()
	rows, err := db.Query(`SELECT version_id FROM ` + table + ` WHERE is_applied AND version_id > 0 ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var v int64
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

func hasIndex(t *testing.T, db *sqlstore.DB, name string) bool {
	t.Helper()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM pg_indexes WHERE schemaname = 'public' AND indexname = $1`, name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 1
}

// schemaOf lists everything about a database's public schema that migrations decide, one line
// per fact, sorted: columns, constraints, indexes, policies, relations (owner, RLS flags, grants),
// functions (owner, grants, body), triggers and the versions each version table holds.
func schemaOf(t *testing.T, d *testenv.Database) []string {
	t.Helper()
	ctx := context.Background()
	db, err := sql.Open("pgx", d.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var out []string
	for _, q := range []string{
		`SELECT 'column ' || table_name || '.' || column_name || ' #' || ordinal_position || ' ' || data_type ||
			' null=' || is_nullable || ' default=' || coalesce(column_default, '') || ' identity=' || is_identity ||
			' ' || coalesce(identity_generation, '')
			FROM information_schema.columns WHERE table_schema = 'public'`,
		`SELECT 'constraint ' || conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid)
			FROM pg_constraint WHERE connamespace = 'public'::regnamespace`,
		`SELECT 'index ' || indexdef FROM pg_indexes WHERE schemaname = 'public'`,
		`SELECT 'policy ' || tablename || ' ' || policyname || ' ' || permissive || ' ' || roles::text || ' ' || cmd ||
			' using=' || coalesce(qual, '') || ' check=' || coalesce(with_check, '')
			FROM pg_policies WHERE schemaname = 'public'`,
		`SELECT 'relation ' || relname || ' kind=' || relkind::text || ' owner=' || relowner::regrole::text ||
			' rls=' || relrowsecurity || ' force=' || relforcerowsecurity || ' acl=' || coalesce(relacl::text, '')
			FROM pg_class WHERE relnamespace = 'public'::regnamespace`,
		`SELECT 'function ' || proname || '(' || pg_get_function_identity_arguments(oid) || ') owner=' ||
			proowner::regrole::text || ' acl=' || coalesce(proacl::text, '') || ' ' || pg_get_functiondef(oid)
			FROM pg_proc WHERE pronamespace = 'public'::regnamespace`,
		`SELECT 'trigger ' || pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal`,
	} {
		lines, err := testenv.QueryStrings(ctx, db, q)
		if err != nil {
			t.Fatalf("%v\n%s", err, q)
		}
		out = append(out, lines...)
	}
	tables, err := testenv.QueryStrings(ctx, db, `SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE 'spine_migrations_%'`)
	if err != nil {
		t.Fatal(err)
	}
	for _, table := range tables {
		vs, err := testenv.QueryStrings(ctx, db, `SELECT version_id::text || ':' || is_applied::text FROM `+table+` ORDER BY id`)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, "versions "+table+" "+strings.Join(vs, ","))
	}
	slices.Sort(out)
	return out
}

// diffLines returns the lines only in want (-) and only in have (+), or "".
func diffLines(want, have []string) string {
	var b strings.Builder
	for _, l := range want {
		if !slices.Contains(have, l) {
			b.WriteString("- " + l + "\n")
		}
	}
	for _, l := range have {
		if !slices.Contains(want, l) {
			b.WriteString("+ " + l + "\n")
		}
	}
	return b.String()
}

// checkPlatformGrants: the runtime role's privileges on the platform tables are exactly the
// documented ones, in every service database.
func checkPlatformGrants(t *testing.T, d *testenv.Database) {
	t.Helper()
	rt := d.OpenRuntime(t, sqlstore.PoolConfig{MaxOpen: 1})
	got, err := testenv.QueryStrings(context.Background(), rt, `SELECT table_name || ' ' || string_agg(privilege_type, ',' ORDER BY privilege_type)
		FROM information_schema.role_table_grants WHERE grantee = current_user AND table_name IN ('outbox', 'inbox', 'idempotency_keys')
		GROUP BY table_name ORDER BY table_name`)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"idempotency_keys DELETE,INSERT,SELECT", "inbox INSERT,SELECT", "outbox DELETE,INSERT,SELECT,UPDATE"}
	if !slices.Equal(got, want) {
		t.Errorf("%s: runtime role's platform grants %v, want %v", d.Service, got, want)
	}
	var exec bool
	if err := rt.QueryRow(`SELECT has_function_privilege('spine_tenant_visible(uuid)', 'EXECUTE')`).Scan(&exec); err != nil || !exec {
		t.Errorf("%s: runtime role cannot execute spine_tenant_visible: %v %v", d.Service, exec, err)
	}
	var public bool
	if err := rt.QueryRow(`SELECT has_function_privilege('public', 'spine_tenant_visible(uuid)', 'EXECUTE')`).Scan(&public); err != nil || public {
		t.Errorf("%s: PUBLIC may execute spine_tenant_visible: %v %v", d.Service, public, err)
	}
}

// checkPlatformRLS: the runtime role is confined to its tenant's rows in outbox and inbox (reads,
// writes for another tenant, moving a row to another tenant), and idempotency_keys is
// platform-level, keyed by (caller, key, scope).
func checkPlatformRLS(t *testing.T, d *testenv.Database) {
	t.Helper()
	ctx := context.Background()
	rt := d.OpenRuntime(t, sqlstore.PoolConfig{})
	a, b := tenancy.NewTenantID(), tenancy.NewTenantID()
	exec := func(sc sqlstore.Scope, q string, args ...any) error {
		return rt.InTx(ctx, sc, func(tx *sqlstore.Tx) error {
			_, err := tx.ExecContext(ctx, q, args...)
			return err
		})
	}
	const outboxRow = `INSERT INTO outbox (tenant_id, event_id, subject, event_type, envelope, created_at, next_attempt_at)
		VALUES ($1, gen_random_uuid(), 's', 'T', '{}', now(), now())`
	const inboxRow = `INSERT INTO inbox (tenant_id, consumer, event_id, event_type, received_at)
		VALUES ($1, 'c', gen_random_uuid(), 'T', now())`
	for _, id := range []tenancy.TenantID{a, b} {
		for _, q := range []string{outboxRow, inboxRow} {
			if err := exec(sqlstore.TenantScope(id), q, id.String()); err != nil {
				t.Fatalf("%s: writing a row of its own tenant: %v", d.Service, err)
			}
		}
	}
	for _, q := range []string{outboxRow, inboxRow} {
		if err := exec(sqlstore.TenantScope(a), q, b.String()); err == nil || !strings.Contains(err.Error(), "row-level security") {
			t.Errorf("%s: as A, writing B's row: err = %v, want a row-level security violation", d.Service, err)
		}
	}
	if err := exec(sqlstore.TenantScope(a), `UPDATE outbox SET tenant_id = $1`, b.String()); err == nil || !strings.Contains(err.Error(), "row-level security") {
		t.Errorf("%s: moving A's outbox row to B: err = %v, want a row-level security violation", d.Service, err)
	}
	if err := exec(sqlstore.TenantScope(a), `UPDATE inbox SET event_type = 'X'`); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("%s: updating the inbox: err = %v, want permission denied", d.Service, err)
	}
	for _, table := range []string{"outbox", "inbox"} {
		for sc, want := range map[string]struct {
			scope sqlstore.Scope
			ids   []string
		}{
			"A":     {sqlstore.TenantScope(a), []string{a.String()}},
			"zero":  {sqlstore.Scope{}, nil},
			"admin": {sqlstore.PlatformScope(), []string{a.String(), b.String()}},
		} {
			var ids []string
			if err := rt.InReadTx(ctx, want.scope, func(tx *sqlstore.Tx) error {
				var err error
				ids, err = testenv.QueryStrings(ctx, tx, `SELECT DISTINCT tenant_id::text FROM `+table+` ORDER BY 1`) // no WHERE on purpose
				return err
			}); err != nil {
				t.Fatal(err)
			}
			if sc == "admin" { // platform scope sees every tenant's rows, a seeded database's too
				ids = slices.DeleteFunc(ids, func(id string) bool { return id != a.String() && id != b.String() })
			}
			slices.Sort(want.ids)
			if !slices.Equal(ids, want.ids) {
				t.Errorf("%s: %s unfiltered in scope %s: %v, want %v", d.Service, table, sc, ids, want.ids)
			}
		}
	}

	const idem = `INSERT INTO idempotency_keys (caller, key, request_hash, status_code, response_body, created_at, scope)
		VALUES ('c', 'k', '\x01', 201, '{}', now(), $1)`
	if err := exec(sqlstore.TenantScope(a), idem, ""); err != nil {
		t.Fatalf("%s: recording an idempotency key: %v", d.Service, err)
	}
	if err := exec(sqlstore.TenantScope(b), idem, "POST /things"); err != nil {
		t.Errorf("%s: the same key in another scope: %v", d.Service, err)
	}
	if err := exec(sqlstore.PlatformScope(), idem, ""); err == nil || !strings.Contains(err.Error(), "idempotency_keys_pkey") {
		t.Errorf("%s: the same caller, key and scope again: err = %v, want a primary key violation", d.Service, err)
	}
	// The runtime role records a claimed key's response, and can change nothing else of it.
	if err := exec(sqlstore.TenantScope(b), `UPDATE idempotency_keys SET status_code = 201, response_body = '\x7b7d', headers = '{}' WHERE caller = 'c'`); err != nil {
		t.Errorf("%s: recording a key's response: %v", d.Service, err)
	}
	if err := exec(sqlstore.TenantScope(b), `UPDATE idempotency_keys SET request_hash = '\x00'`); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("%s: rewriting an idempotency record's request: err = %v, want permission denied", d.Service, err)
	}
	if err := exec(sqlstore.Scope{}, `DELETE FROM idempotency_keys WHERE caller = 'c'`); err != nil {
		t.Errorf("%s: deleting idempotency records (retention): %v", d.Service, err)
	}
}
