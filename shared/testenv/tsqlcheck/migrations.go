package tsqlcheck

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/pressly/goose/v3"
)

// Batch is one statement goose sends to SQL Server while it applies a migration: one ExecContext
// call, which SQL Server runs as one batch.
type Batch struct {
	File string // the migration file's name
	Up   bool   // from its Up section, else from its Down section
	SQL  string
}

// Batches runs every SQL Server migration in fsys, Up and then Down, through goose against a
// recording database/sql driver (no server) and returns the batches goose sends, file by file in
// version order. This is goose's own parsing: how it splits a file into statements (at a
// semicolon that ends a line, except within -- +goose StatementBegin/StatementEnd) is exactly
// how the batches reach the server.
func Batches(fsys fs.FS) ([]Batch, error) {
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var out []Batch
	for _, name := range names {
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		rec := &recorder{}
		db := sql.OpenDB(rec)
		p, err := goose.NewProvider(goose.DialectMSSQL, db, fstest.MapFS{name: {Data: data}},
			goose.WithDisableVersioning(true), goose.WithDisableGlobalRegistry(true),
			goose.WithSlog(slog.New(slog.DiscardHandler)))
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		for _, up := range []bool{true, false} {
			rec.reset()
			if up {
				_, err = p.Up(context.Background())
			} else {
				_, err = p.DownTo(context.Background(), 0)
			}
			if err != nil {
				db.Close()
				return nil, fmt.Errorf("%s: goose: %w", name, err)
			}
			for _, q := range rec.taken() {
				out = append(out, Batch{File: name, Up: up, SQL: q})
			}
		}
		db.Close()
	}
	return out, nil
}

// CheckMigrations checks, without a server, the SQL Server migrations in fsys (a service's or the
// platform's folder for the sqlserver dialect) for what would otherwise fail only on a real SQL
// Server, reporting each problem through t.Errorf (see CheckBatch for the rules).
func CheckMigrations(t testing.TB, fsys fs.FS) {
	t.Helper()
	if err := checkMigrations(t.Errorf, fsys); err != nil {
		t.Fatal(err)
	}
}

func checkMigrations(errorf func(format string, args ...any), fsys fs.FS) error {
	batches, err := Batches(fsys)
	if err != nil {
		return err
	}
	for _, b := range batches {
		dir := "Down"
		if b.Up {
			dir = "Up"
		}
		CheckBatch(errorf, b.File+" ("+dir+")", b.SQL)
	}
	return nil
}

// createTrigger is a batch that creates a trigger, where inserted and deleted are pseudo-tables.
var createTrigger = regexp.MustCompile(`(?i)^\s*(CREATE|ALTER)\s+(OR\s+ALTER\s+)?TRIGGER\b`)

var (
	// Statements SQL Server accepts only as the first statement of a batch. CREATE SECURITY
	// POLICY is held to the same rule here, a batch of its own being always safe.
	firstInBatch = regexp.MustCompile(`(?i)\b(CREATE\s+(?:OR\s+ALTER\s+)?(?:SCHEMA|FUNCTION|PROCEDURE|PROC|VIEW|TRIGGER)|ALTER\s+(?:FUNCTION|PROCEDURE|PROC|VIEW|TRIGGER)|CREATE\s+SECURITY\s+POLICY)\b`)
	// A string literal run as a batch of its own: EXEC ('...') / EXEC (N'...').
	execLiteral = regexp.MustCompile(`(?i)\bEXEC(?:UTE)?\s*\(\s*N?'(\d+)'\s*\)`)
	systemVar   = regexp.MustCompile(`@@\w+`)
	routineHead = regexp.MustCompile(`(?is)^\s*(?:CREATE\s+(?:OR\s+ALTER\s+)?|ALTER\s+)(?:FUNCTION|PROCEDURE|PROC)\b(.*?)\b(?:RETURNS|AS)\b`)
	paramDecl   = regexp.MustCompile(`(?i)(?:^|[(,\s])\s*(@\w+)\s+[a-z]`)
	ddlPgIsms   = map[string]*regexp.Regexp{
		"$$ body":                  regexp.MustCompile(`\$\$`),
		":: cast":                  regexp.MustCompile(`::`),
		"CREATE ... IF NOT EXISTS": regexp.MustCompile(`(?i)\bCREATE\s+(?:UNIQUE\s+)?(?:TABLE|INDEX|SCHEMA)\s+IF\s+NOT\s+EXISTS\b`),
		"CREATE OR REPLACE":        regexp.MustCompile(`(?i)\bCREATE\s+OR\s+REPLACE\b`),
		"PostgreSQL type":          regexp.MustCompile(`(?i)\b(timestamptz|jsonb|bytea|bigserial|serial|uuid|boolean|text)\b`),
		"identity column syntax":   regexp.MustCompile(`(?i)\bGENERATED\s+(?:ALWAYS|BY\s+DEFAULT)\s+AS\s+IDENTITY\b`),
		"PostgreSQL RLS":           regexp.MustCompile(`(?i)\b(ROW\s+LEVEL\s+SECURITY|CREATE\s+POLICY)\b`),
		"ON CONFLICT":              regexp.MustCompile(`(?i)\bON\s+CONFLICT\b`),
		"RETURNING":                regexp.MustCompile(`(?i)\bRETURNING\b`),
		"|| concatenation":         regexp.MustCompile(`\|\|`),
		"now()":                    regexp.MustCompile(`(?i)\bnow\s*\(`),
		"boolean literal":          regexp.MustCompile(`(?i)\b(true|false)\b`),
		"unbracketed key":          regexp.MustCompile(`(?i)(^|[^\[\w.])key\b`), // KEY is reserved in T-SQL
	}
	keyConstraint = regexp.MustCompile(`(?i)\b(PRIMARY|FOREIGN)\s+KEY\b`)
	// Where a table (or a policy's target) is named: each must be schema-qualified.
	tableNames = []*regexp.Regexp{
		regexp.MustCompile(`(?i)\b(?:CREATE|ALTER|DROP|TRUNCATE)\s+TABLE\s+([^\s(;]+)`),
		regexp.MustCompile(`(?i)\bINDEX\s+\S+\s+ON\s+([^\s(;]+)`),
		regexp.MustCompile(`(?i)\bGRANT\s[^;]*?\bON\s+([^\s(;]+)`),
		regexp.MustCompile(`(?i)\bPREDICATE\s[^,;]*?\bON\s+([^\s(,;]+)`),
		// Not @from, @into: a routine's parameters may be named like keywords.
		regexp.MustCompile(`(?i)(?:^|[^@\w])(?:REFERENCES|FROM|JOIN|INTO)\s+([^\s(,;]+)`),
	}
	beginEnd = regexp.MustCompile(`(?i)\b(BEGIN|CASE|END)\b`)
)

// CheckBatch checks one batch goose sends to SQL Server, reporting each problem through errorf
// under where:
//   - a statement that must begin its batch (CREATE SCHEMA, FUNCTION, PROCEDURE, VIEW, TRIGGER,
//     SECURITY POLICY; ALTER FUNCTION, ...) begins it: give it a StatementBegin/StatementEnd block
//     of its own, or run it through EXEC (N'...'), which makes it a batch of its own;
//   - every @variable it uses is declared in it (a DECLARE, or a routine's parameter): goose sends
//     each statement outside a StatementBegin/StatementEnd block as a batch of its own, and a
//     variable lives for one batch;
//   - no PostgreSQL syntax or types; tables are schema-qualified;
//   - no {{placeholder}} is left; parentheses, quotes and BEGIN/CASE … END balance;
//
// and checks each string literal run through EXEC (...) as a batch of its own, by the same rules.
// Comments and the contents of string literals are ignored otherwise.
func CheckBatch(errorf func(format string, args ...any), where, batch string) {
	code, lits, ok := splitLiterals(batch)
	if !ok {
		errorf("%s: unbalanced quotes or an unterminated comment in batch:\n%s", where, batch)
		return
	}
	trimmed := strings.TrimSpace(code)
	for _, loc := range firstInBatch.FindAllStringIndex(trimmed, -1) {
		if loc[0] != 0 {
			errorf("%s: %s must begin its batch: give it a -- +goose StatementBegin/StatementEnd block of its own, "+
				"or run it through EXEC (N'...'):\n%s", where, strings.ToUpper(strings.Join(strings.Fields(trimmed[loc[0]:loc[1]]), " ")), batch)
		}
	}
	vars := map[string]bool{}
	for _, decl := range declare.FindAllString(code, -1) {
		for _, m := range declared.FindAllStringSubmatch(decl, -1) {
			vars[strings.ToLower(m[1])] = true
		}
	}
	if m := routineHead.FindStringSubmatch(trimmed); m != nil {
		for _, p := range paramDecl.FindAllStringSubmatch(m[1], -1) {
			vars[strings.ToLower(p[1])] = true
		}
	}
	for _, v := range variable.FindAllString(systemVar.ReplaceAllString(code, ""), -1) {
		if !vars[strings.ToLower(v)] {
			errorf("%s: %s is not declared in this batch (a variable lives for one batch; keep its DECLARE and "+
				"its uses in one StatementBegin/StatementEnd block):\n%s", where, v, batch)
			vars[strings.ToLower(v)] = true // once per batch
		}
	}
	for what, re := range ddlPgIsms {
		src := code
		if what == "unbracketed key" {
			src = keyConstraint.ReplaceAllString(code, "")
		}
		if m := re.FindString(src); m != "" {
			errorf("%s: PostgreSQL syntax or a T-SQL error (%s: %q):\n%s", where, what, strings.TrimSpace(m), batch)
		}
	}
	isTrigger := createTrigger.MatchString(trimmed)
	for _, re := range tableNames {
		for _, m := range re.FindAllStringSubmatch(code, -1) {
			name := m[1]
			// a trigger's pseudo-tables have no schema
			if n := strings.ToLower(name); isTrigger && (n == "inserted" || n == "deleted") {
				continue
			}
			if !strings.Contains(name, ".") && !strings.HasPrefix(name, "@") {
				errorf("%s: %s is not schema-qualified (dbo., rls., sys.)", where, name)
			}
		}
	}
	if strings.Contains(batch, "{{") {
		errorf("%s: a {{placeholder}} is left in the batch", where)
	}
	if strings.Count(code, "(") != strings.Count(code, ")") {
		errorf("%s: unbalanced parentheses:\n%s", where, batch)
	}
	depth := 0
	for _, m := range beginEnd.FindAllString(code, -1) {
		if strings.EqualFold(m, "END") {
			depth--
		} else {
			depth++
		}
	}
	if depth != 0 {
		errorf("%s: BEGIN/CASE and END do not balance:\n%s", where, batch)
	}
	for _, m := range execLiteral.FindAllStringSubmatch(code, -1) {
		var i int
		fmt.Sscan(m[1], &i)
		CheckBatch(errorf, where+" EXEC'd", lits[i])
	}
}

// splitLiterals returns batch with comments removed and every string literal replaced by '<n>',
// n indexing lits, which holds the literals' values (quotes undoubled). ok is false when a
// literal or block comment does not end.
func splitLiterals(batch string) (code string, lits []string, ok bool) {
	var b strings.Builder
	for i := 0; i < len(batch); {
		switch {
		case strings.HasPrefix(batch[i:], "--"):
			end := strings.IndexByte(batch[i:], '\n')
			if end < 0 {
				return b.String(), lits, true
			}
			i += end
		case strings.HasPrefix(batch[i:], "/*"):
			end := strings.Index(batch[i+2:], "*/")
			if end < 0 {
				return "", nil, false
			}
			b.WriteByte(' ')
			i += 2 + end + 2
		case batch[i] == '[':
			end := strings.IndexByte(batch[i:], ']')
			if end < 0 {
				return "", nil, false
			}
			b.WriteString(batch[i : i+end+1])
			i += end + 1
		case batch[i] == '\'':
			var lit strings.Builder
			j := i + 1
			for {
				if j >= len(batch) {
					return "", nil, false
				}
				if batch[j] == '\'' {
					if j+1 < len(batch) && batch[j+1] == '\'' {
						lit.WriteByte('\'')
						j += 2
						continue
					}
					break
				}
				lit.WriteByte(batch[j])
				j++
			}
			fmt.Fprintf(&b, "'%d'", len(lits))
			lits = append(lits, lit.String())
			i = j + 1
		default:
			b.WriteByte(batch[i])
			i++
		}
	}
	return b.String(), lits, true
}

// recorder is a database/sql driver that records every statement executed and answers every
// query with no rows: enough for goose with versioning off.
type recorder struct {
	mu    sync.Mutex
	stmts []string
}

func (r *recorder) reset() { r.mu.Lock(); r.stmts = nil; r.mu.Unlock() }
func (r *recorder) taken() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.stmts...)
}

func (r *recorder) Connect(context.Context) (driver.Conn, error) { return recConn{r}, nil }
func (r *recorder) Driver() driver.Driver                        { return recDriver{r} }

type recDriver struct{ r *recorder }

func (d recDriver) Open(string) (driver.Conn, error) { return recConn(d), nil }

type recConn struct{ r *recorder }

func (c recConn) Prepare(string) (driver.Stmt, error) {
	return nil, fmt.Errorf("tsqlcheck: prepared statements are not recorded")
}
func (c recConn) Close() error              { return nil }
func (c recConn) Begin() (driver.Tx, error) { return recTx{}, nil }
func (c recConn) BeginTx(context.Context, driver.TxOptions) (driver.Tx, error) {
	return recTx{}, nil
}

func (c recConn) ExecContext(_ context.Context, query string, _ []driver.NamedValue) (driver.Result, error) {
	c.r.mu.Lock()
	c.r.stmts = append(c.r.stmts, query)
	c.r.mu.Unlock()
	return driver.RowsAffected(0), nil
}

func (c recConn) QueryContext(context.Context, string, []driver.NamedValue) (driver.Rows, error) {
	return noRows{}, nil
}

type recTx struct{}

func (recTx) Commit() error   { return nil }
func (recTx) Rollback() error { return nil }

type noRows struct{}

func (noRows) Columns() []string         { return nil }
func (noRows) Close() error              { return nil }
func (noRows) Next([]driver.Value) error { return io.EOF }
