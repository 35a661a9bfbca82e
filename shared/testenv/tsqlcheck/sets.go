package tsqlcheck

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"reflect"
	"sort"
	"testing"
)

// CheckStatementSets checks a store whose Go is written once over per-engine statement sets,
// reporting every problem through t.Errorf. tsql and postgres are the SQL Server and the
// PostgreSQL set: values of one struct type (or pointers to them). file is the store file that
// sends them, read relative to the test's working directory (the package under test's folder).
//
// The struct's fields are found by reflection, so none can be left out, and are of three kinds:
//   - a statement (a field of type string), sent as it is;
//   - a fragment (a field of another string type, e.g. `type fragment string`), a piece the store
//     assembles statements from at run time. Its T-SQL is checked for PostgreSQL syntax here; the
//     assembled statements are the package's own test's to check, with [CheckStatement] and
//     [PostgresPlaceholders];
//   - a hook (a func field), an engine's tiny piece of Go (how a placeholder is spelt, say),
//     which must be set in both sets.
//
// For every statement:
//   - the T-SQL passes [CheckStatement] (uuidColumns as there), the PostgreSQL passes
//     [PostgresPlaceholders], neither is empty, and both take the same number N of parameters;
//   - file uses it, always as an argument of a call, directly (a selector such as s.q.name), and
//     every such call passes exactly N arguments after it, one by one (no spread argument list).
//
// And no string literal in file looks like SQL: the store's SQL lives in the sets.
func CheckStatementSets(t testing.TB, file string, tsql, postgres any, uuidColumns ...string) {
	t.Helper()
	if err := checkStatementSets(t.Errorf, file, tsql, postgres, uuidColumns); err != nil {
		t.Fatal(err)
	}
}

// checkStatementSets is CheckStatementSets reporting through errorf; it fails only when the sets
// are not two values of one struct type or the file cannot be parsed.
func checkStatementSets(errorf func(format string, args ...any), file string, tsql, postgres any, uuidColumns []string) error {
	ms, pg := reflect.Indirect(reflect.ValueOf(tsql)), reflect.Indirect(reflect.ValueOf(postgres))
	if ms.Kind() != reflect.Struct || ms.Type() != pg.Type() {
		return fmt.Errorf("tsqlcheck: the statement sets must be two values of one struct type, got %T and %T", tsql, postgres)
	}
	want := map[string]int{} // statement name → N
	for i := 0; i < ms.NumField(); i++ {
		f := ms.Type().Field(i)
		switch {
		case f.Type.Kind() == reflect.String && f.Type == reflect.TypeOf(""):
			msq, pgq := ms.Field(i).String(), pg.Field(i).String()
			if msq == "" || pgq == "" {
				errorf("statement %s is empty in one of the sets", f.Name)
				continue
			}
			n := CheckStatement(errorf, f.Name, msq, uuidColumns...)
			if pn := PostgresPlaceholders(errorf, f.Name, pgq); pn != n {
				errorf("statement %s takes %d parameters in T-SQL but %d in PostgreSQL", f.Name, n, pn)
			}
			want[f.Name] = n
		case f.Type.Kind() == reflect.String:
			CheckStatement(errorf, f.Name, ms.Field(i).String(), uuidColumns...)
		case f.Type.Kind() == reflect.Func:
			if ms.Field(i).IsNil() || pg.Field(i).IsNil() {
				errorf("hook %s is not set in one of the sets", f.Name)
			}
		default:
			errorf("field %s is %s: a statement set holds statements (string), fragments (another string type) and hooks (func) only", f.Name, f.Type)
		}
	}

	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, file, nil, 0)
	if err != nil {
		return err
	}
	used := map[string]int{}
	passed := map[*ast.SelectorExpr]bool{} // statement selectors that are call arguments or callees
	ast.Inspect(f, func(node ast.Node) bool {
		switch n := node.(type) {
		case *ast.BasicLit:
			if n.Kind == token.STRING && sqlInLine.MatchString(n.Value) {
				errorf("%s: inline SQL; add it to the statement sets so the check covers it", fset.Position(n.Pos()))
			}
		case *ast.CallExpr:
			if sel, ok := n.Fun.(*ast.SelectorExpr); ok {
				passed[sel] = true // a method that shares a statement's name
			}
			for i, arg := range n.Args {
				sel, ok := arg.(*ast.SelectorExpr)
				if !ok {
					continue
				}
				count, isStatement := want[sel.Sel.Name]
				if !isStatement {
					continue
				}
				passed[sel] = true
				used[sel.Sel.Name]++
				pos := fset.Position(n.Pos())
				if n.Ellipsis.IsValid() {
					errorf("%s: %s is passed with a spread argument list; pass arguments one by one so they can be counted", pos, sel.Sel.Name)
					continue
				}
				if got := len(n.Args) - i - 1; got != count {
					errorf("%s: %s has %d placeholders but the call passes %d arguments", pos, sel.Sel.Name, count, got)
				}
			}
		}
		return true
	})
	ast.Inspect(f, func(node ast.Node) bool {
		if sel, ok := node.(*ast.SelectorExpr); ok && !passed[sel] {
			if _, isStatement := want[sel.Sel.Name]; isStatement {
				errorf("%s: %s is used other than as a call's argument; pass it to the call directly so its arguments can be counted",
					fset.Position(sel.Pos()), sel.Sel.Name)
			}
		}
		return true
	})
	names := make([]string, 0, len(want))
	for name := range want {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if used[name] == 0 {
			errorf("statement %s is never sent by %s", name, file)
		}
	}
	return nil
}
