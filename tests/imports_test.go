package tests

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// No package under handlers/ imports another service's package, and shared/ imports no service:
// data crosses services only through an API, an event, or an interface declared in shared/.
func TestImportRule_ServicesAreIsolated(t *testing.T) {
	const module = "spine/"
	services, err := os.ReadDir(filepath.Join(repo, "handlers"))
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	err = filepath.WalkDir(repo, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(repo, path)
		if d.IsDir() && (rel == "infra" || rel == "node_modules" || strings.HasPrefix(d.Name(), ".")) && rel != "." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		parts := strings.Split(filepath.ToSlash(rel), "/")
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		checked++
		for _, imp := range f.Imports {
			p := strings.Trim(imp.Path.Value, `"`)
			if !strings.HasPrefix(p, module+"handlers/") {
				continue
			}
			target := strings.Split(strings.TrimPrefix(p, module+"handlers/"), "/")[0]
			switch {
			case parts[0] == "handlers" && len(parts) > 2 && parts[1] != target:
				t.Errorf("%s (service %s) imports %s (service %s)", rel, parts[1], p, target)
			case parts[0] == "shared":
				t.Errorf("%s (shared) imports the service package %s", rel, p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(services) == 0 || checked < 10 {
		t.Fatalf("checked %d files in %d services: the walk found nothing to check", checked, len(services))
	}
}
