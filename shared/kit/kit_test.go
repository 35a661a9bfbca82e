package kit

import (
	"strings"
	"testing"
)

func TestCheck_RefusesMalformedModuleLists(t *testing.T) {
	ok := func(name string, types ...string) Module {
		return Module{Name: name, Publishes: types, Declare: nopService{}, New: nil}
	}
	withNew := func(m Module) Module { m.New = newNop; return m }
	for _, tc := range []struct {
		name    string
		modules []Module
		want    string
	}{
		{"valid", []Module{withNew(ok("tenants", "A")), withNew(ok("audit", "B"))}, ""},
		{"bad name", []Module{withNew(ok("Tenants"))}, "lowercase"},
		{"platform", []Module{withNew(ok("platform"))}, "platform schema"},
		{"twice", []Module{withNew(ok("audit")), withNew(ok("audit"))}, "twice"},
		{"no New", []Module{ok("audit")}, "needs Declare and New"},
		{"type published twice", []Module{withNew(ok("tenants", "A")), withNew(ok("audit", "A"))}, "published by both"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Check(tc.modules)
			if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("Check = %v, want %q", err, tc.want)
			}
		})
	}
}
