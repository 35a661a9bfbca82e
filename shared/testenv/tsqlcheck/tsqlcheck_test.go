package tsqlcheck

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// collect returns an errorf that appends to *complaints.
func collect(complaints *[]string) func(format string, args ...any) {
	return func(format string, args ...any) { *complaints = append(*complaints, fmt.Sprintf(format, args...)) }
}

// TestSQLServerQueries_CheckerCatchesMistakes proves the checker is not vacuous.
func TestSQLServerQueries_CheckerCatchesMistakes(t *testing.T) {
	for name, q := range map[string]string{
		"gap":                  `SELECT seq FROM dbo.audit_entries WHERE tenant_id = @p1 AND seq > @p3`,
		"pg syntax":            `SELECT seq FROM dbo.audit_entries WHERE tenant_id = $1 LIMIT 1`,
		"unqualified":          `SELECT seq FROM audit_entries WHERE tenant_id = @p1`,
		"unqualified function": `SELECT seq FROM things(@p1)`,
		"raw uuid":             `SELECT entry_id FROM dbo.audit_entries WHERE tenant_id = @p1`,
		"undeclared":           `SELECT seq FROM dbo.audit_entries WHERE tenant_id = @tenant`,
	} {
		var complaints []string
		CheckStatement(collect(&complaints), name, q, "tenant_id", "entry_id")
		if len(complaints) == 0 {
			t.Errorf("%s: the checker accepted %s", name, q)
		}
	}
}

// statementSet is a store's statement set as CheckStatementSets expects one.
type statementSet struct {
	get, lock, insertAll string
	cond                 fragment
	param                func(int) string
}

type fragment string

// The file-level half finds each of its mistakes in the sets and in testdata/sets_bad.go, and
// nothing in good sets sent by testdata/sets_good.go, whose statements use what the checker must
// allow: canonical-text uniqueidentifiers, a bracketed [key], declared variables and
// sp_getapplock's parameters, OPENJSON, fragments and hooks.
func TestCheckStatementSets_CatchesMistakesAndOnlyThem(t *testing.T) {
	type badSet struct {
		one, two, unused, empty string
		param                   func(int) string
		bad                     int
	}
	ms := badSet{
		one:    `SELECT name FROM dbo.things WHERE thing_id = @p1 AND kind = @p2`,
		two:    `SELECT name FROM dbo.things WHERE kind = @p1`,
		unused: `SELECT name FROM dbo.things`,
		param:  func(n int) string { return "@p" + strconv.Itoa(n) },
		bad:    1,
	}
	pg := badSet{
		one:    `SELECT name FROM things WHERE thing_id = $1 AND kind = $2`,
		two:    `SELECT name FROM things WHERE kind = $1 AND x = $2`,
		unused: `SELECT name FROM things`,
		empty:  `SELECT 1`,
	}
	var complaints []string
	if err := checkStatementSets(collect(&complaints), "testdata/sets_bad.go", ms, &pg, []string{"thing_id"}); err != nil {
		t.Fatal(err)
	}
	all := strings.Join(complaints, "\n")
	for _, want := range []string{
		"one has 2 placeholders but the call passes 1 arguments",
		"one is passed with a spread argument list",
		"sets_bad.go:10:10: inline SQL",
		"sets_bad.go:11:7: two is used other than as a call's argument",
		"statement two takes 1 parameters in T-SQL but 2 in PostgreSQL",
		"statement unused is never sent by testdata/sets_bad.go",
		"statement empty is empty in one of the sets",
		"hook param is not set in one of the sets",
		"field bad is int",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("no complaint %q among:\n%s", want, all)
		}
	}

	complaints = nil
	good := func(ms bool) statementSet {
		if ms {
			return statementSet{
				get: `SELECT LOWER(CONVERT(char(36), thing_id)), name FROM dbo.things WHERE thing_id = @p1 AND [key] = @p2`,
				lock: `DECLARE @result int;
		EXEC @result = sp_getapplock @Resource = @p1, @LockMode = 'Exclusive', @LockOwner = 'Transaction', @LockTimeout = -1;
		SELECT @result`,
				insertAll: `INSERT INTO dbo.things (thing_id, name) SELECT @p1, j.name FROM OPENJSON(@p2) WITH (name nvarchar(100) '$.name') AS j`,
				cond:      `(name = {p} AND DATALENGTH(name) = DATALENGTH({p}))`,
				param:     func(n int) string { return "@p" + strconv.Itoa(n) },
			}
		}
		return statementSet{
			get:       `SELECT thing_id::text, name FROM things WHERE thing_id = $1 AND key = $2`,
			lock:      `SELECT pg_advisory_xact_lock(hashtext($1))`,
			insertAll: `INSERT INTO things (thing_id, name) SELECT $1, j.name FROM json_to_recordset($2::json) AS j(name text)`,
			cond:      `name = {p}`,
			param:     func(n int) string { return "$" + strconv.Itoa(n) },
		}
	}
	if err := checkStatementSets(collect(&complaints), "testdata/sets_good.go", good(true), good(false), []string{"thing_id"}); err != nil {
		t.Fatal(err)
	}
	if len(complaints) != 0 {
		t.Errorf("complaints about a correct store:\n%s", strings.Join(complaints, "\n"))
	}

	if err := checkStatementSets(collect(&complaints), "testdata/sets_good.go", good(true), ms, nil); err == nil {
		t.Error("sets of two types are not an error")
	}
	if err := checkStatementSets(collect(&complaints), "testdata/no_such_file.go", good(true), good(false), nil); err == nil {
		t.Error("a missing store file is not an error")
	}
}

func TestPostgresPlaceholders(t *testing.T) {
	var complaints []string
	if n := PostgresPlaceholders(collect(&complaints), "q", `UPDATE things SET name = $2 WHERE id = $1 AND $2 <> ''`); n != 2 || len(complaints) != 0 {
		t.Fatalf("N = %d, complaints %v; want 2 and none", n, complaints)
	}
	for name, q := range map[string]string{
		"gap":  `SELECT name FROM things WHERE id = $1 AND kind = $3`,
		"zero": `SELECT name FROM things WHERE id = $0`,
		"tsql": `SELECT name FROM things WHERE id = @p1`,
	} {
		complaints = nil
		PostgresPlaceholders(collect(&complaints), name, q)
		if len(complaints) == 0 {
			t.Errorf("%s: the checker accepted %s", name, q)
		}
	}
}

func TestCheckStatement_CountsPlaceholders(t *testing.T) {
	var complaints []string
	n := CheckStatement(collect(&complaints), "q", `UPDATE dbo.things SET name = @p2, kind = @p3 WHERE thing_id = @p1 AND @p2 <> N''`)
	if n != 3 || len(complaints) != 0 {
		t.Fatalf("N = %d, complaints %v; want 3 and none", n, complaints)
	}
}
