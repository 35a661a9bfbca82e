package tests

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	authzserver "spine/handlers/authz"
)

// Every scope an API route requires (auth.RequireScope, called directly or through a variable
// holding it, in handlers/ and shared/) is in the authorization server's scope catalog: a scope
// missing there could never be granted to a client, and its route never reached by a token of the
// server. Read from source, so no service package is imported by another.
func TestScopeCatalog_HoldsEveryScopeARouteRequires(t *testing.T) {
	catalog := authzserver.Catalog()
	required := requiredScopes(t)
	if len(required) < 10 {
		t.Fatalf("found only %d required scopes (%v): the source walk missed RequireScope calls", len(required), required)
	}
	for scope, where := range required {
		if !slices.Contains(catalog, authzserver.Scope(scope)) {
			t.Errorf("%s requires scope %q, which is not in handlers/authz's scope catalog", where, scope)
		}
	}
	if _, ok := required[authzserver.ScopeClientManage]; !ok {
		t.Errorf("the client admin API's scope %s was not found among the required ones", authzserver.ScopeClientManage)
	}
}

// pkgSource is one package's parsed non-test files and its string constants.
type pkgSource struct {
	files  []*ast.File
	consts map[string]string
}

// requiredScopes returns every scope passed to auth.RequireScope in handlers/ and shared/, with
// where it is required.
func requiredScopes(t *testing.T) map[string]string {
	t.Helper()
	fset := token.NewFileSet()
	pkgs := map[string]*pkgSource{} // by import path
	for _, root := range []string{"handlers", "shared"} {
		err := filepath.WalkDir(filepath.Join(repo, root), func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			f, err := parser.ParseFile(fset, path, nil, 0)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(repo, filepath.Dir(path))
			imp := "spine/" + filepath.ToSlash(rel)
			p := pkgs[imp]
			if p == nil {
				p = &pkgSource{consts: map[string]string{}}
				pkgs[imp] = p
			}
			p.files = append(p.files, f)
			for _, decl := range f.Decls {
				gd, ok := decl.(*ast.GenDecl)
				if !ok || gd.Tok != token.CONST {
					continue
				}
				for _, spec := range gd.Specs {
					vs := spec.(*ast.ValueSpec)
					for i, name := range vs.Names {
						if i < len(vs.Values) {
							if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
								p.consts[name.Name], _ = strconv.Unquote(lit.Value)
							}
						}
					}
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	out := map[string]string{}
	for imp, p := range pkgs {
		if imp == "spine/shared/auth" {
			continue // where RequireScope is defined
		}
		for _, f := range p.files {
			imports := map[string]string{} // local name → import path
			for _, is := range f.Imports {
				path, _ := strconv.Unquote(is.Path.Value)
				name := path[strings.LastIndex(path, "/")+1:]
				if is.Name != nil {
					name = is.Name.Name
				}
				imports[name] = path
			}
			isRequireScope := func(e ast.Expr) bool {
				sel, ok := e.(*ast.SelectorExpr)
				if !ok {
					return false
				}
				x, ok := sel.X.(*ast.Ident)
				return ok && sel.Sel.Name == "RequireScope" && imports[x.Name] == "spine/shared/auth"
			}
			// Variables that hold RequireScope itself (scope := auth.RequireScope).
			aliases := map[string]bool{}
			ast.Inspect(f, func(n ast.Node) bool {
				if as, ok := n.(*ast.AssignStmt); ok {
					for i, rhs := range as.Rhs {
						if isRequireScope(rhs) && i < len(as.Lhs) {
							if id, ok := as.Lhs[i].(*ast.Ident); ok {
								aliases[id.Name] = true
							}
						}
					}
				}
				return true
			})
			resolve := func(e ast.Expr) (string, bool) {
				switch v := e.(type) {
				case *ast.BasicLit:
					s, err := strconv.Unquote(v.Value)
					return s, err == nil
				case *ast.Ident:
					s, ok := p.consts[v.Name]
					return s, ok
				case *ast.SelectorExpr:
					if x, ok := v.X.(*ast.Ident); ok {
						if other := pkgs[imports[x.Name]]; other != nil {
							s, ok := other.consts[v.Sel.Name]
							return s, ok
						}
					}
				}
				return "", false
			}
			ast.Inspect(f, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				id, isIdent := call.Fun.(*ast.Ident)
				if !isRequireScope(call.Fun) && !(isIdent && aliases[id.Name]) {
					return true
				}
				where := fset.Position(call.Pos()).String()
				for _, arg := range call.Args {
					s, ok := resolve(arg)
					if !ok {
						t.Errorf("%s: cannot resolve the scope %s passed to RequireScope (a string constant of the package or a package it imports is expected)", where, types(arg))
						continue
					}
					out[s] = strings.TrimPrefix(where, repo+string(filepath.Separator))
				}
				return true
			})
		}
	}
	return out
}

// types names an expression's kind, for the message.
func types(e ast.Expr) string {
	switch v := e.(type) {
	case *ast.Ident:
		return v.Name
	case *ast.SelectorExpr:
		return types(v.X) + "." + v.Sel.Name
	}
	return "an expression"
}
