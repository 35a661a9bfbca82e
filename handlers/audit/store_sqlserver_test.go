package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
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
// is the runtime user's (audit_app) DSN, SPINE_TEST_SQLSERVER_OWNER_URL the owner's, used to apply
// the migrations. The entries table is an append-only ledger table, so nothing is emptied between
// subtests: each uses fresh tenants. Without a server the store is checked by TestSQLServerQueries.
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
	runtimeURL, ownerURL := os.Getenv(envSQLServerURL), os.Getenv(envSQLServerOwnerURL)
	if runtimeURL == "" || ownerURL == "" {
		t.Skip("SPINE_TEST_SQLSERVER_URL and SPINE_TEST_SQLSERVER_OWNER_URL not set: no SQL Server on this machine; " +
			"the SQL Server store is checked by TestSQLServerQueries and review only")
	}
	ctx := context.Background()
	var err error
	owner, err = sqlstore.Open(ctx, sqlstore.SQLServer, ownerURL, sqlstore.PoolConfig{MaxOpen: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = owner.Close() })
	sqlServerMigrate.once.Do(func() {
		fsys, err := migrations.For("audit", "sqlserver")
		if err != nil {
			sqlServerMigrate.err = err
			return
		}
		_, sqlServerMigrate.err = sqlstore.Migrate(ctx, owner, "audit", fsys, nil)
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

func TestSQLServerStore_Conformance(t *testing.T) {
	runtime, _ := openSQLServer(t)
	runStoreConformance(t, func(t *testing.T) Store { return NewSQLServerStore(runtime) })
}

// The ledger table refuses UPDATE and DELETE for everyone, db_owner included; the runtime user
// lacks the privilege in the first place; the security policy confines it to its tenant.
func TestSQLServerAppendOnly_LedgerRefusesChangesForRuntimeAndOwner(t *testing.T) {
	runtime, owner := openSQLServer(t)
	a, b, _ := seedTwo(t, NewSQLServerStore(runtime))
	for _, q := range []string{`UPDATE dbo.audit_entries SET action = N'rewritten'`, `DELETE FROM dbo.audit_entries`} {
		if _, err := execIn(runtime, sqlstore.TenantScope(a), q); !errors.Is(err, sqlstore.ErrPermission) {
			t.Errorf("%s as the runtime user: err = %v, want permission denied", q, err)
		}
		if _, err := execIn(owner, sqlstore.PlatformScope(), q); err == nil {
			t.Errorf("%s as the owner succeeded on an append-only ledger table", q)
		}
	}
	if _, err := execIn(owner, sqlstore.PlatformScope(), `TRUNCATE TABLE dbo.audit_entries`); err == nil {
		t.Error("TRUNCATE as the owner succeeded on an append-only ledger table")
	}
	var ids []string
	err := runtime.InReadTx(context.Background(), sqlstore.TenantScope(a), func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(context.Background(), `SELECT DISTINCT LOWER(CONVERT(char(36), tenant_id)) FROM dbo.audit_entries`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				return err
			}
			ids = append(ids, s)
		}
		return rows.Err()
	})
	if err != nil || len(ids) != 1 || ids[0] != a.String() {
		t.Fatalf("entries visible to A without a filter: %v, %v", ids, err)
	}
	if _, err := execIn(runtime, sqlstore.TenantScope(a), `INSERT INTO dbo.inbox (tenant_id, consumer, event_id, event_type, received_at)
		VALUES (@p1, 'x', NEWID(), 'T', SYSUTCDATETIME())`, b.String()); !errors.Is(err, sqlstore.ErrPermission) {
		t.Fatalf("inserting an inbox row for B as A: err = %v, want the block predicate's refusal", err)
	}
}

// msQueries is every statement store_sqlserver.go sends; TestSQLServerQueries checks that the
// list matches the file's msq* constants.
var msQueries = map[string]string{
	"msqLockTenant":  msqLockTenant,
	"msqLastLink":    msqLastLink,
	"msqInsertEntry": msqInsertEntry,
	"msqGetEntry":    msqGetEntry,
	"msqQuery":       msqQuery,
	"msqSeqRange":    msqSeqRange,
	"msqRange":       msqRange,
}

var (
	msVariable = regexp.MustCompile(`@\w+`)
	msDeclare  = regexp.MustCompile(`(?is)\bDECLARE\s+[^;]*;`)
	msDeclared = regexp.MustCompile(`(?i)(?:DECLARE\s+|,\s*)(@\w+)\s+[a-z]`)
	// The named parameters of the system procedures the statements call.
	msProcParams = map[string]bool{"@Resource": true, "@LockMode": true, "@LockOwner": true, "@LockTimeout": true}
	msPGisms     = map[string]*regexp.Regexp{
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
		"advisory lock":    regexp.MustCompile(`(?i)pg_advisory`),
		"json cast":        regexp.MustCompile(`(?i)::json`),
		"unbracketed key":  regexp.MustCompile(`(?i)(^|[^\[\w.])key\b`), // KEY is reserved in T-SQL
	}
	msTableRef    = regexp.MustCompile(`(?i)\b(FROM|INTO|UPDATE|JOIN)\s+([^\s(]+)`)
	msSelect      = regexp.MustCompile(`(?i)\bSELECT\b`)
	msFrom        = regexp.MustCompile(`(?i)\bFROM\b`)
	msUUIDText    = regexp.MustCompile(`(?i)LOWER\(CONVERT\(char\(36\),\s*\w+\)\)`)
	msUUIDColumns = regexp.MustCompile(`\b(tenant_id|entry_id|source_event_id)\b`)
	msSQLInLine   = regexp.MustCompile(`\b(SELECT|INSERT|UPDATE|DELETE|MERGE|EXEC)\b`)
)

// TestSQLServerQueries checks, without a server, what would otherwise only fail at run time:
// every statement's placeholders are @p1..@pN without gaps (other @names must be declared
// variables or a system procedure's parameters), every call passes exactly N arguments after the
// statement, no PostgreSQL syntax crept in, tables are schema-qualified, uniqueidentifier columns
// are only ever selected as canonical text, and no SQL is written inline outside the constants.
func TestSQLServerQueries(t *testing.T) {
	want := map[string]int{} // statement name → N
	for name, q := range msQueries {
		want[name] = checkTSQL(t.Errorf, name, q)
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

// TestSQLServerQueries_CheckerCatchesMistakes proves the checker is not vacuous.
func TestSQLServerQueries_CheckerCatchesMistakes(t *testing.T) {
	for name, q := range map[string]string{
		"gap":         `SELECT seq FROM dbo.audit_entries WHERE tenant_id = @p1 AND seq > @p3`,
		"pg syntax":   `SELECT seq FROM dbo.audit_entries WHERE tenant_id = $1 LIMIT 1`,
		"unqualified": `SELECT seq FROM audit_entries WHERE tenant_id = @p1`,
		"raw uuid":    `SELECT entry_id FROM dbo.audit_entries WHERE tenant_id = @p1`,
		"undeclared":  `SELECT seq FROM dbo.audit_entries WHERE tenant_id = @tenant`,
	} {
		var complaints []string
		checkTSQL(func(format string, args ...any) { complaints = append(complaints, fmt.Sprintf(format, args...)) }, name, q)
		if len(complaints) == 0 {
			t.Errorf("%s: the checker accepted %s", name, q)
		}
	}
}

// checkTSQL checks one statement, reporting each problem through errorf, and returns its
// placeholder count. Variables count as declared only inside a DECLARE statement.
func checkTSQL(errorf func(format string, args ...any), name, q string) int {
	vars := map[string]bool{}
	for _, decl := range msDeclare.FindAllString(q, -1) {
		for _, m := range msDeclared.FindAllStringSubmatch(decl, -1) {
			vars[m[1]] = true
		}
	}
	seen := map[int]bool{}
	for _, p := range msVariable.FindAllString(q, -1) {
		if vars[p] || msProcParams[p] {
			continue
		}
		n, err := strconv.Atoi(strings.TrimPrefix(p, "@p"))
		if !strings.HasPrefix(p, "@p") || err != nil || n < 1 {
			errorf("%s: %s is neither a go-mssqldb positional parameter (@p1, @p2, ...) nor a declared variable", name, p)
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
			errorf("%s: placeholders %v are not contiguous from @p1", name, nums)
			break
		}
	}
	for what, re := range msPGisms {
		if re.MatchString(q) {
			errorf("%s: PostgreSQL-ism or T-SQL error (%s): %s", name, what, q)
		}
	}
	for _, m := range msTableRef.FindAllStringSubmatch(q, -1) {
		if !strings.HasPrefix(m[2], "dbo.") {
			errorf("%s: %s %s is not schema-qualified (dbo.)", name, m[1], m[2])
		}
	}
	for _, loc := range msSelect.FindAllStringIndex(q, -1) {
		list := q[loc[1]:]
		if end := msFrom.FindStringIndex(list); end != nil {
			list = list[:end[0]]
		}
		if msUUIDColumns.MatchString(msUUIDText.ReplaceAllString(list, "")) {
			errorf("%s: selects a uniqueidentifier raw (go-mssqldb returns mixed-endian bytes); select LOWER(CONVERT(char(36), col))", name)
		}
	}
	if strings.Count(q, "(") != strings.Count(q, ")") {
		errorf("%s: unbalanced parentheses", name)
	}
	if strings.Count(q, "'")%2 != 0 {
		errorf("%s: unbalanced quotes", name)
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

// TestSQLServerMigration_Shape reads the SQL Server migration (which cannot run here) for the
// properties the store and the issue rely on: the ledger clause, the grants, a goose batch of
// its own for each statement that must stand alone, and the filtered unique index.
func TestSQLServerMigration_Shape(t *testing.T) {
	fsys, err := migrations.For("audit", "sqlserver")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := fsys.(interface{ ReadFile(string) ([]byte, error) }).ReadFile("00001_audit.sql")
	if err != nil {
		t.Fatal(err)
	}
	src := string(raw)
	up, down, ok := strings.Cut(src, "-- +goose Down")
	if !ok {
		t.Fatal("no -- +goose Down section")
	}
	for _, want := range []string{
		"WITH (LEDGER = ON (APPEND_ONLY = ON));",
		"GRANT SELECT, INSERT ON dbo.audit_entries TO audit_app;",
		"GRANT SELECT, INSERT ON dbo.inbox TO audit_app;",
		"CREATE UNIQUE INDEX " + sourceEventConstraint + " ON dbo.audit_entries (tenant_id, source_event_id)\n    WHERE source_event_id IS NOT NULL;",
		"ISJSON(payload, VALUE) = 1",
	} {
		if !strings.Contains(up, want) {
			t.Errorf("Up lacks %q", want)
		}
	}
	if regexp.MustCompile(`(?i)GRANT[^;]*(UPDATE|DELETE)[^;]*dbo\.audit_entries`).MatchString(up) {
		t.Error("audit_app must not be granted UPDATE or DELETE on dbo.audit_entries")
	}
	// CREATE SCHEMA, CREATE FUNCTION and CREATE SECURITY POLICY must each be their own batch.
	blocks := regexp.MustCompile(`(?s)-- \+goose StatementBegin\n(.*?)-- \+goose StatementEnd`).FindAllStringSubmatch(up, -1)
	alone := map[string]bool{}
	for _, b := range blocks {
		body := strings.TrimSpace(b[1])
		for _, stmt := range []string{"CREATE SCHEMA", "CREATE FUNCTION", "CREATE SECURITY POLICY"} {
			if strings.HasPrefix(body, stmt) {
				alone[stmt] = true
				if strings.Count(strings.TrimSuffix(body, ";"), ";") > 0 {
					t.Errorf("the %s block holds more than one statement", stmt)
				}
			}
		}
	}
	outside := regexp.MustCompile(`(?s)-- \+goose StatementBegin\n.*?-- \+goose StatementEnd`).ReplaceAllString(up, "")
	for _, stmt := range []string{"CREATE SCHEMA", "CREATE FUNCTION", "CREATE SECURITY POLICY"} {
		if !alone[stmt] || strings.Contains(outside, stmt) {
			t.Errorf("%s must stand alone in a StatementBegin/StatementEnd block", stmt)
		}
	}
	for _, want := range []string{"DROP SECURITY POLICY rls.tenant_isolation;", "DROP TABLE dbo.audit_entries;", "DROP SCHEMA rls;"} {
		if !strings.Contains(down, want) {
			t.Errorf("Down lacks %q", want)
		}
	}
}
