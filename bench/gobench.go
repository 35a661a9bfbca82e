package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// goBenchPackages are the packages whose Go benchmarks the bench runs: the invocation decoder, the
// JWT check, the cache path, and any other package of the module that declares a benchmark (the
// audit hash chain, once it has one).
func goBenchPackages(root string) []string {
	pkgs := []string{"./shared/auth", "./shared/functions", "./shared/cache"}
	seen := map[string]bool{}
	for _, p := range pkgs {
		seen[p] = true
	}
	for _, dir := range []string{"handlers", "shared"} {
		_ = filepath.WalkDir(filepath.Join(root, dir), func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, "_test.go") {
				return nil
			}
			pkg := "./" + filepath.ToSlash(must(filepath.Rel(root, filepath.Dir(path))))
			if seen[pkg] {
				return nil
			}
			if b, err := os.ReadFile(path); err == nil && strings.Contains(string(b), "\nfunc Benchmark") {
				seen[pkg] = true
				pkgs = append(pkgs, pkg)
			}
			return nil
		})
	}
	return pkgs
}

func must[T any](v T, _ error) T { return v }

var (
	goBenchPkgRe  = regexp.MustCompile(`^pkg: (\S+)`)
	goBenchLineRe = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+\d+\s+([0-9.]+) ns/op(.*)$`)
	goBenchBytes  = regexp.MustCompile(`([0-9.]+) B/op`)
	goBenchAllocs = regexp.MustCompile(`([0-9.]+) allocs/op`)
)

// parseGoBench reads `go test -bench -benchmem` output: each result line with its package.
func parseGoBench(out string) []goBench {
	var res []goBench
	pkg := ""
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if m := goBenchPkgRe.FindStringSubmatch(line); m != nil {
			pkg = m[1]
			continue
		}
		m := goBenchLineRe.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		ns, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			continue
		}
		g := goBench{Package: pkg, Name: m[1], NsPerOp: ns}
		if b := goBenchBytes.FindStringSubmatch(m[3]); b != nil {
			v, _ := strconv.ParseFloat(b[1], 64)
			g.BytesPerOp = &v
		}
		if a := goBenchAllocs.FindStringSubmatch(m[3]); a != nil {
			v, _ := strconv.ParseFloat(a[1], 64)
			g.AllocsPerOp = &v
		}
		res = append(res, g)
	}
	return res
}

// runGoBenchmarks runs `go test -bench . -benchmem` on goBenchPackages over every CPU (smoke: 100
// iterations each) and records the results; the shared/auth Verify ones give the token line.
func (b *bench) runGoBenchmarks(ctx context.Context) error {
	args := []string{"test", "-run=^$", "-bench=.", "-benchmem", "-count=1"}
	if b.opt.smoke {
		args = append(args, "-benchtime=100x")
	}
	args = append(args, goBenchPackages(b.root)...)
	cpus := ""
	if b.pin.server != "" {
		cpus = fmt.Sprintf("0-%d", numCPU()-1) // undo the harness's own pinning
	}
	cmd := b.tools.command(ctx, cpus, "go", args...)
	cmd.Dir = b.root
	cmd.Env = environ(b.stack.env) // packages whose TestMain needs the stack get the bench's
	out, err := cmd.CombinedOutput()
	_ = os.WriteFile(filepath.Join(b.out, "gobench.txt"), out, 0o644)
	if err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, tail(string(out), 30))
	}
	b.res.GoBench = parseGoBench(string(out))
	if len(b.res.GoBench) == 0 {
		return fmt.Errorf("go test -bench printed no benchmark result\n%s", tail(string(out), 30))
	}
	return nil
}
