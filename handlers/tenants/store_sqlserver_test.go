package tenants

import (
	"context"
	"database/sql"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"spine/migrations"
	"spine/shared/sqlstore"
)

// The SQL Server store runs against a real server only when one is named: SPINE_TEST_SQLSERVER_URL
// is the runtime user's (tenants_app) DSN, SPINE_TEST_SQLSERVER_OWNER_URL the owner's, used to
// apply the migrations and to empty the tables before each conformance subtest (the runtime user
// may not delete tenants). Without a server the store is checked by TestSQLServerQueries only.
const (
	envSQLServerURL      = "SPINE_TEST_SQLSERVER_URL"
	envSQLServerOwnerURL = "SPINE_TEST_SQLSERVER_OWNER_URL"
)

var sqlServerMigrate struct {
	once sync.Once
	err  error
}

// openSQLServer returns the runtime and owner pools of the SQL Server test database, migrated,
// or skips the test when there is no server.
func openSQLServer(t *testing.T) (runtime, owner *sqlstore.DB) {
	t.Helper()
	runtimeURL := os.Getenv(envSQLServerURL)
	if runtimeURL == "" {
		t.Skip("SPINE_TEST_SQLSERVER_URL not set: no SQL Server on this machine; the SQL Server store is compile-checked and reviewed only")
	}
	ownerURL := os.Getenv(envSQLServerOwnerURL)
	if ownerURL == "" {
		t.Fatalf("%s is set but %s is not: the suite needs the owner to empty the tables between subtests",
			envSQLServerURL, envSQLServerOwnerURL)
	}
	ctx := context.Background()
	var err error
	owner, err = sqlstore.Open(ctx, sqlstore.SQLServer, ownerURL, sqlstore.PoolConfig{MaxOpen: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = owner.Close() })
	sqlServerMigrate.once.Do(func() {
		fsys, err := migrations.For("tenants", "sqlserver")
		if err != nil {
			sqlServerMigrate.err = err
			return
		}
		_, sqlServerMigrate.err = sqlstore.Migrate(ctx, owner, "tenants", fsys, nil)
	})
	if sqlServerMigrate.err != nil {
		t.Fatal(sqlServerMigrate.err)
	}
	runtime, err = sqlstore.Open(ctx, sqlstore.SQLServer, runtimeURL, sqlstore.PoolConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = runtime.Close() })
	return runtime, owner
}

// emptySQLServer deletes every row as the owner. The security policy binds the owner too, so the
// batch switches platform scope on for its own connection (one batch, one connection) and off again.
func emptySQLServer(t *testing.T, owner *sqlstore.DB) {
	t.Helper()
	_, err := owner.ExecContext(context.Background(), `
		EXEC sp_set_session_context @key = N'platform', @value = N'on';
		DELETE FROM dbo.tenant_provisioning_steps;
		DELETE FROM dbo.tenants;
		DELETE FROM dbo.outbox;
		DELETE FROM dbo.idempotency_keys;
		EXEC sp_set_session_context @key = N'platform', @value = N'off';`)
	if err != nil {
		t.Fatal(err)
	}
}

func TestSQLServerStore_Conformance(t *testing.T) {
	runtime, owner := openSQLServer(t)
	runStoreConformance(t, func(t *testing.T) Store {
		emptySQLServer(t, owner)
		return NewSQLServerStore(runtime)
	})
}

// The security policy confines the runtime user as PostgreSQL's row-level security does: a query
// without a tenant filter sees and changes only the current tenant's rows, a row for another
// tenant cannot be written, and the policy cannot be switched off.
func TestSQLServerRLS_RuntimeUserIsConfined(t *testing.T) {
	db, owner := openSQLServer(t)
	emptySQLServer(t, owner)
	a, b := seedTwo(t, NewSQLServerStore(db))
	ctx := context.Background()
	sa := sqlstore.TenantScope(a.ID)
	for _, table := range []string{"dbo.tenants", "dbo.tenant_provisioning_steps", "dbo.outbox"} {
		var ids []string
		err := db.InReadTx(ctx, sa, func(tx *sql.Tx) error {
			rows, err := tx.QueryContext(ctx, `SELECT LOWER(CONVERT(char(36), tenant_id)) FROM `+table) // no WHERE on purpose
			if err != nil {
				return err
			}
			ids, err = scanStrings(rows)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(ids) != 1 || ids[0] != a.ID.String() {
			t.Errorf("%s without a filter as A: %v, want only %s", table, ids, a.ID)
		}
	}
	var n int64
	err := db.InTx(ctx, sa, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE dbo.tenants SET name = N'pwned'`)
		if err == nil {
			n, _ = res.RowsAffected()
		}
		return err
	})
	if err != nil || n != 1 {
		t.Fatalf("unfiltered UPDATE as A touched %d rows (err %v), want 1", n, err)
	}
	err = db.InTx(ctx, sa, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO dbo.tenant_provisioning_steps (tenant_id, seq, name, status, updated_at)
			VALUES (@p1, 9, 'x', 'Pending', SYSUTCDATETIME())`, b.ID.String())
		return err
	})
	if !errors.Is(err, sqlstore.ErrPermission) {
		t.Fatalf("inserting a row for B as A: err = %v, want the block predicate's refusal", err)
	}
	for _, q := range []string{
		`ALTER SECURITY POLICY rls.tenant_isolation WITH (STATE = OFF)`,
		`DROP SECURITY POLICY rls.tenant_isolation`,
		`DELETE FROM dbo.tenants`,
	} {
		err := db.InTx(ctx, sa, func(tx *sql.Tx) error { _, err := tx.ExecContext(ctx, q); return err })
		if err == nil {
			t.Errorf("%s succeeded for the runtime user", q)
		}
	}
}

func scanStrings(rows *sql.Rows) ([]string, error) {
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// msQueries is every statement store_sqlserver.go sends; TestSQLServerQueries checks that the
// list matches the file's msq* constants.
var msQueries = map[string]string{
	"msqInsertIdempotency": msqInsertIdempotency,
	"msqInsertTenant":      msqInsertTenant,
	"msqInsertStep":        msqInsertStep,
	"msqTenantByID":        msqTenantByID,
	"msqTenantBySlug":      msqTenantBySlug,
	"msqSteps":             msqSteps,
	"msqList":              msqList,
	"msqLockTenant":        msqLockTenant,
	"msqUpdateTenant":      msqUpdateTenant,
	"msqBumpTenant":        msqBumpTenant,
	"msqUpdateStep":        msqUpdateStep,
	"msqRetryDue":          msqRetryDue,
	"msqIdempotency":       msqIdempotency,
}

var (
	msPlaceholder = regexp.MustCompile(`@\w+`)
	msPGisms      = map[string]*regexp.Regexp{
		"$n placeholder":   regexp.MustCompile(`\$\d`),
		":: cast":          regexp.MustCompile(`::`),
		"LIMIT":            regexp.MustCompile(`(?i)\bLIMIT\b`),
		"ON CONFLICT":      regexp.MustCompile(`(?i)\bON\s+CONFLICT\b`),
		"RETURNING":        regexp.MustCompile(`(?i)\bRETURNING\b`),
		"FOR UPDATE":       regexp.MustCompile(`(?i)\bFOR\s+UPDATE\b`),
		"ILIKE":            regexp.MustCompile(`(?i)\bILIKE\b`),
		"now()":            regexp.MustCompile(`(?i)\bnow\s*\(`),
		"boolean literal":  regexp.MustCompile(`(?i)\b(true|false)\b`),
		"|| concatenation": regexp.MustCompile(`\|\|`),
		"unbracketed key":  regexp.MustCompile(`(?i)(^|[^\[\w.])key\b`), // KEY is reserved in T-SQL
	}
	msTableRef  = regexp.MustCompile(`(?i)\b(FROM|INTO|UPDATE|JOIN)\s+([^\s(]+)`)
	msSelect    = regexp.MustCompile(`(?i)\bSELECT\b`)
	msFrom      = regexp.MustCompile(`(?i)\bFROM\b`)
	msTenantID  = regexp.MustCompile(`\btenant_id\b`)
	msSQLInLine = regexp.MustCompile(`\b(SELECT|INSERT|UPDATE|DELETE|MERGE)\b`)
)

// TestSQLServerQueries checks, without a server, what would otherwise only fail at run time:
// every statement's placeholders are @p1..@pN without gaps, every call passes exactly N arguments
// after the statement, no PostgreSQL syntax crept in, tables are schema-qualified, ids are never
// selected as raw uniqueidentifiers, and no SQL is written inline outside the msq* constants.
func TestSQLServerQueries(t *testing.T) {
	want := map[string]int{} // statement name → N
	for name, q := range msQueries {
		want[name] = checkTSQL(t, name, q)
	}

	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "store_sqlserver.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	declared := map[string]bool{}
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			ast.Inspect(d, func(n ast.Node) bool { checkNoInlineSQL(t, fset, n); return true })
			continue
		}
		for _, spec := range gd.Specs {
			for _, id := range spec.(*ast.ValueSpec).Names {
				if strings.HasPrefix(id.Name, "msq") {
					declared[id.Name] = true
					if _, ok := msQueries[id.Name]; !ok {
						t.Errorf("%s is declared in store_sqlserver.go but missing from msQueries", id.Name)
					}
				}
			}
		}
	}
	for name := range msQueries {
		if !declared[name] {
			t.Errorf("msQueries lists %s, which store_sqlserver.go no longer declares", name)
		}
	}

	used := map[string]int{}
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		for i, arg := range call.Args {
			id, ok := arg.(*ast.Ident)
			if !ok {
				continue
			}
			n, isQuery := want[id.Name]
			if !isQuery {
				continue
			}
			used[id.Name]++
			pos := fset.Position(call.Pos())
			if call.Ellipsis.IsValid() {
				t.Errorf("%s: %s is called with a spread argument list; pass arguments one by one so they can be counted", pos, id.Name)
				continue
			}
			if got := len(call.Args) - i - 1; got != n {
				t.Errorf("%s: %s has %d placeholders but the call passes %d arguments", pos, id.Name, n, got)
			}
		}
		return true
	})
	for name := range msQueries {
		if used[name] == 0 {
			t.Errorf("%s is never used", name)
		}
	}
}

// checkTSQL checks one statement and returns its placeholder count.
func checkTSQL(t *testing.T, name, q string) int {
	t.Helper()
	seen := map[int]bool{}
	for _, p := range msPlaceholder.FindAllString(q, -1) {
		n, err := strconv.Atoi(strings.TrimPrefix(p, "@p"))
		if !strings.HasPrefix(p, "@p") || err != nil || n < 1 {
			t.Errorf("%s: %s is not a go-mssqldb positional parameter (@p1, @p2, ...)", name, p)
			continue
		}
		seen[n] = true
	}
	nums := make([]int, 0, len(seen))
	for n := range seen {
		nums = append(nums, n)
	}
	sort.Ints(nums)
	for i, n := range nums {
		if n != i+1 {
			t.Errorf("%s: placeholders %v are not contiguous from @p1", name, nums)
			break
		}
	}
	for what, re := range msPGisms {
		if re.MatchString(q) {
			t.Errorf("%s: PostgreSQL-ism or T-SQL error (%s): %s", name, what, q)
		}
	}
	for _, m := range msTableRef.FindAllStringSubmatch(q, -1) {
		if !strings.HasPrefix(m[2], "dbo.") {
			t.Errorf("%s: %s %s is not schema-qualified (dbo.)", name, m[1], m[2])
		}
	}
	for _, loc := range msSelect.FindAllStringIndex(q, -1) {
		list := q[loc[1]:]
		if end := msFrom.FindStringIndex(list); end != nil {
			list = list[:end[0]]
		}
		if msTenantID.MatchString(list) {
			t.Errorf("%s: selects tenant_id raw (go-mssqldb returns mixed-endian bytes); select tenant_key", name)
		}
	}
	if strings.Count(q, "(") != strings.Count(q, ")") {
		t.Errorf("%s: unbalanced parentheses", name)
	}
	if strings.Count(q, "'")%2 != 0 {
		t.Errorf("%s: unbalanced quotes", name)
	}
	return len(nums)
}

// checkNoInlineSQL flags string literals outside const declarations that look like SQL.
func checkNoInlineSQL(t *testing.T, fset *token.FileSet, n ast.Node) {
	t.Helper()
	lit, ok := n.(*ast.BasicLit)
	if ok && lit.Kind == token.STRING && msSQLInLine.MatchString(lit.Value) {
		t.Errorf("%s: inline SQL; declare it as an msq* constant so TestSQLServerQueries checks it", fset.Position(lit.Pos()))
	}
}
