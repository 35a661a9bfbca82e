package ids

import (
	"strings"
	"testing"
)

func TestParse_OnlyTheCanonicalSpellingOfANonNilUUID(t *testing.T) {
	id := New()
	for s, want := range map[string]bool{
		id:                                     true,
		strings.ToUpper(id):                    false,
		"{" + id + "}":                         false,
		strings.ReplaceAll(id, "-", ""):        false,
		"00000000-0000-0000-0000-000000000000": false,
		"":                                     false,
		id[:35] + "g":                          false,
	} {
		if got, ok := Parse(s); ok != want || (ok && got != s) {
			t.Errorf("Parse(%q) = %q, %v; want ok %v", s, got, ok, want)
		}
	}
}

func TestNew_TimeOrdered(t *testing.T) {
	a, b := New(), New()
	if _, ok := Parse(a); !ok || a[14] != '7' {
		t.Fatalf("New() = %q: not a canonical UUIDv7", a)
	}
	if b < a {
		t.Fatalf("New() not ordered: %q then %q", a, b)
	}
}
