package flags

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"testing"
)

func raw(s string) json.RawMessage { return json.RawMessage(s) }

func boolFlag(key string, rules ...Rule) Definition {
	return Definition{Key: key, Type: Boolean, Variants: map[string]json.RawMessage{"on": raw("true"), "off": raw("false")}, DefaultVariant: "off", Rules: rules}
}

func mustCompile(t testing.TB, s Snapshot) *Set {
	t.Helper()
	set, err := Compile(s)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return set
}

func TestEvaluate_ReasonsAndValues(t *testing.T) {
	defs := []Definition{
		boolFlag("static"),
		{Key: "color", Type: String, Variants: map[string]json.RawMessage{"red": raw(`"red"`), "blue": raw(`"blue"`)}, DefaultVariant: "red",
			Rules: []Rule{{When: []Condition{{Attribute: "email", Op: OpEndsWith, Values: []any{"@example.com"}}}, Variant: "blue"}}},
		{Key: "limit", Type: Number, Variants: map[string]json.RawMessage{"low": raw("10"), "high": raw("100")}, DefaultVariant: "low",
			Rules: []Rule{{When: []Condition{{Attribute: "plan", Op: OpIn, Values: []any{"gold", "platinum"}}}, Variant: "high"}}},
		{Key: "theme", Type: Object, Variants: map[string]json.RawMessage{"dark": raw(`{"bg": "#000"}`), "light": raw(`{"bg":"#fff"}`)}, DefaultVariant: "light"},
		boolFlag("killed", Rule{Variant: "on"}),
		boolFlag("tenant-killed", Rule{Variant: "on"}),
		boolFlag("pinned", Rule{Variant: "off"}),
		boolFlag("edition", Rule{When: []Condition{{Attribute: "beta", Op: OpEquals, Values: []any{true}}}, Variant: "off"}),
		boolFlag("app-version", Rule{When: []Condition{{Attribute: "version", Op: OpSemverGte, Values: []any{"2.1.0"}}}, Variant: "on"}),
		boolFlag("rollout", Rule{Split: []Weight{{"on", 50}, {"off", 50}}}),
	}
	defs[4].Disabled = true
	set := mustCompile(t, Snapshot{
		Definitions:     defs,
		Overrides:       map[string]Override{"tenant-killed": {Disabled: true}, "pinned": {Variant: "on"}},
		EditionDefaults: map[string]json.RawMessage{"edition": raw("true"), "killed": raw("true")},
	})
	for _, tc := range []struct {
		key     string
		ctx     Context
		value   string
		variant string
		reason  Reason
	}{
		{"static", nil, "false", "off", ReasonStatic},
		{"color", Context{"email": "a@example.com"}, `"blue"`, "blue", ReasonTargetingMatch},
		{"color", Context{"email": "a@other.org"}, `"red"`, "red", ReasonDefault},
		{"color", Context{}, `"red"`, "red", ReasonDefault},
		{"limit", Context{"plan": "gold"}, "100", "high", ReasonTargetingMatch},
		{"limit", Context{"plan": "free"}, "10", "low", ReasonDefault},
		{"theme", nil, `{"bg":"#fff"}`, "light", ReasonStatic},
		{"killed", Context{"targetingKey": "u1"}, "true", "on", ReasonDisabled}, // the edition default, disabled
		{"tenant-killed", nil, "false", "off", ReasonDisabled},
		{"pinned", nil, "true", "on", ReasonStatic},
		{"edition", Context{"beta": false}, "true", "on", ReasonDefault},
		{"edition", Context{"beta": true}, "false", "off", ReasonTargetingMatch},
		{"app-version", Context{"version": "2.1.0"}, "true", "on", ReasonTargetingMatch},
		{"app-version", Context{"version": "v2.10.3"}, "true", "on", ReasonTargetingMatch},
		{"app-version", Context{"version": "2.1.0-rc.1"}, "false", "off", ReasonDefault},
		{"app-version", Context{"version": "2.0.9"}, "false", "off", ReasonDefault},
		{"app-version", Context{"version": "not-a-version"}, "false", "off", ReasonDefault},
	} {
		t.Run(fmt.Sprintf("%s/%v", tc.key, tc.ctx), func(t *testing.T) {
			r, err := set.Evaluate(tc.key, tc.ctx)
			if err != nil {
				t.Fatalf("Evaluate: %v", err)
			}
			if string(r.Value) != tc.value || r.Variant != tc.variant || r.Reason != tc.reason || r.Key != tc.key {
				t.Fatalf("got %s %q %s, want %s %q %s", r.Value, r.Variant, r.Reason, tc.value, tc.variant, tc.reason)
			}
		})
	}
}

func TestEvaluate_Errors(t *testing.T) {
	set := mustCompile(t, Snapshot{Definitions: []Definition{boolFlag("rollout", Rule{Split: []Weight{{"on", 1}, {"off", 1}}})}})
	for _, tc := range []struct {
		name string
		key  string
		ctx  Context
		want error
	}{
		{"unknown flag", "nope", Context{"targetingKey": "u"}, ErrFlagNotFound},
		{"split without targeting key", "rollout", Context{}, ErrTargetingKeyMissing},
		{"split with null targeting key", "rollout", Context{"targetingKey": nil}, ErrTargetingKeyMissing},
		{"targeting key not a string", "rollout", Context{"targetingKey": 42.0}, ErrInvalidContext},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := set.Evaluate(tc.key, tc.ctx); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestEvaluate_Conditions(t *testing.T) {
	for _, tc := range []struct {
		cond Condition
		ctx  Context
		want bool
	}{
		{Condition{"country", OpEquals, []any{"CH"}}, Context{"country": "CH"}, true},
		{Condition{"country", OpEquals, []any{"CH"}}, Context{"country": "ch"}, false},
		{Condition{"age", OpEquals, []any{30}}, Context{"age": 30.0}, true},
		{Condition{"age", OpEquals, []any{"30"}}, Context{"age": 30.0}, false}, // no coercion
		{Condition{"country", OpNotEquals, []any{"CH"}}, Context{"country": "DE"}, true},
		{Condition{"country", OpNotEquals, []any{"CH"}}, Context{}, false}, // absent never holds
		{Condition{"country", OpIn, []any{"CH", "DE"}}, Context{"country": "DE"}, true},
		{Condition{"country", OpNotIn, []any{"CH", "DE"}}, Context{"country": "DE"}, false},
		{Condition{"country", OpNotIn, []any{"CH", "DE"}}, Context{"country": "FR"}, true},
		{Condition{"targetingKey", OpStartsWith, []any{"user-"}}, Context{"targetingKey": "user-1"}, true},
		{Condition{"name", OpStartsWith, []any{"user-"}}, Context{"name": 1.0}, false},
		{Condition{"v", OpSemverLt, []any{"1.2.3"}}, Context{"v": "1.2.3-alpha"}, true},
		{Condition{"v", OpSemverLt, []any{"1.2.3"}}, Context{"v": "1.2.3"}, false},
		{Condition{"v", OpSemverGte, []any{"1.2.3"}}, Context{"v": "1.2.3+build.7"}, true},
	} {
		t.Run(fmt.Sprintf("%s %s %v on %v", tc.cond.Attribute, tc.cond.Op, tc.cond.Values, tc.ctx), func(t *testing.T) {
			set := mustCompile(t, Snapshot{Definitions: []Definition{boolFlag("f", Rule{When: []Condition{tc.cond}, Variant: "on"})}})
			r, err := set.Evaluate("f", tc.ctx)
			if err != nil {
				t.Fatal(err)
			}
			if got := r.Reason == ReasonTargetingMatch; got != tc.want {
				t.Fatalf("matched = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestCompile_RejectsInvalidDefinitions(t *testing.T) {
	ok := boolFlag("f")
	for name, mut := range map[string]func(*Snapshot){
		"bad key":                   func(s *Snapshot) { s.Definitions[0].Key = "has space" },
		"bad type":                  func(s *Snapshot) { s.Definitions[0].Type = "int" },
		"variant of wrong type":     func(s *Snapshot) { s.Definitions[0].Variants["on"] = raw(`"yes"`) },
		"unknown default variant":   func(s *Snapshot) { s.Definitions[0].DefaultVariant = "maybe" },
		"rule with unknown variant": func(s *Snapshot) { s.Definitions[0].Rules = []Rule{{Variant: "maybe"}} },
		"rule with variant and split": func(s *Snapshot) {
			s.Definitions[0].Rules = []Rule{{Variant: "on", Split: []Weight{{"on", 1}}}}
		},
		"split of zero weight": func(s *Snapshot) { s.Definitions[0].Rules = []Rule{{Split: []Weight{{"on", 0}}}} },
		"negative weight":      func(s *Snapshot) { s.Definitions[0].Rules = []Rule{{Split: []Weight{{"on", 2}, {"off", -1}}}} },
		"weights over int32": func(s *Snapshot) {
			s.Definitions[0].Rules = []Rule{{Split: []Weight{{"on", math.MaxInt32}, {"off", 1}}}}
		},
		"unknown op": func(s *Snapshot) {
			s.Definitions[0].Rules = []Rule{{When: []Condition{{"a", "regex", []any{"x"}}}, Variant: "on"}}
		},
		"semver not a version": func(s *Snapshot) {
			s.Definitions[0].Rules = []Rule{{When: []Condition{{"a", OpSemverGte, []any{"1.2"}}}, Variant: "on"}}
		},
		"object condition": func(s *Snapshot) {
			s.Definitions[0].Rules = []Rule{{When: []Condition{{"a", OpEquals, []any{map[string]any{}}}}, Variant: "on"}}
		},
		"duplicate key": func(s *Snapshot) { s.Definitions = append(s.Definitions, boolFlag("f")) },
	} {
		t.Run(name, func(t *testing.T) {
			d := ok
			d.Variants = map[string]json.RawMessage{"on": raw("true"), "off": raw("false")}
			s := Snapshot{Definitions: []Definition{d}}
			mut(&s)
			if _, err := Compile(s); !errors.Is(err, ErrInvalidDefinition) {
				t.Fatalf("err = %v, want ErrInvalidDefinition", err)
			}
		})
	}
}

// The bucketing value is flagKey+targetingKey and bucket = hash × total >> 32: with flag "hel"
// and key "lo" the hash is MurmurHash3("hello") = 0x248bfa47, so bucket = 613153351×100>>32 = 14.
func TestEvaluate_Split_UsesFlagdBucketing(t *testing.T) {
	for _, tc := range []struct {
		first int32
		want  string
	}{{14, "b"}, {15, "a"}} {
		def := Definition{Key: "hel", Type: String, Variants: map[string]json.RawMessage{"a": raw(`"a"`), "b": raw(`"b"`)}, DefaultVariant: "a",
			Rules: []Rule{{Split: []Weight{{"a", tc.first}, {"b", 100 - tc.first}}}}}
		set := mustCompile(t, Snapshot{Definitions: []Definition{def}})
		r, err := set.Evaluate("hel", Context{"targetingKey": "lo"})
		if err != nil {
			t.Fatal(err)
		}
		if r.Variant != tc.want || r.Reason != ReasonSplit {
			t.Fatalf("weights %d/%d: got %q %s, want %q SPLIT", tc.first, 100-tc.first, r.Variant, r.Reason, tc.want)
		}
	}
}

func TestEvaluate_Split_10000KeysWithin2PercentOfWeights(t *testing.T) {
	weights := []Weight{{"a", 10}, {"b", 30}, {"c", 60}}
	def := Definition{Key: "new-checkout", Type: String, DefaultVariant: "a",
		Variants: map[string]json.RawMessage{"a": raw(`"a"`), "b": raw(`"b"`), "c": raw(`"c"`)},
		Rules:    []Rule{{Split: weights}}}
	set := mustCompile(t, Snapshot{Definitions: []Definition{def}})
	const n = 10000
	counts := map[string]int{}
	for i := range n {
		tk := fmt.Sprintf("user-%d", i)
		r, err := set.Evaluate("new-checkout", Context{"targetingKey": tk})
		if err != nil {
			t.Fatal(err)
		}
		again, _ := set.Evaluate("new-checkout", Context{"targetingKey": tk})
		if again.Variant != r.Variant {
			t.Fatalf("%s: not sticky (%s then %s)", tk, r.Variant, again.Variant)
		}
		counts[r.Variant]++
	}
	for _, w := range weights {
		got := float64(counts[w.Variant]) / n * 100
		if math.Abs(got-float64(w.Weight)) > 2 {
			t.Errorf("variant %s: %.2f %% of keys, want %d %% ± 2", w.Variant, got, w.Weight)
		}
	}
}

// A stale override (its variant removed from the definition) or an edition default of the wrong
// type is left out, listed in Skipped, and the flag evaluates as without it.
func TestCompile_SkipsStaleOverrideAndMistypedEditionDefault(t *testing.T) {
	set := mustCompile(t, Snapshot{
		Definitions:     []Definition{boolFlag("a"), boolFlag("b")},
		Overrides:       map[string]Override{"a": {Variant: "gone", Disabled: true}},
		EditionDefaults: map[string]json.RawMessage{"b": raw(`"yes"`)},
	})
	if len(set.Skipped()) != 2 {
		t.Fatalf("Skipped = %v, want the override and the edition default", set.Skipped())
	}
	if r, _ := set.Evaluate("a", nil); r.Reason != ReasonDisabled || string(r.Value) != "false" {
		t.Errorf("a: %+v, want the kill switch kept, the default value", r)
	}
	if r, _ := set.Evaluate("b", nil); r.Reason != ReasonStatic || string(r.Value) != "false" {
		t.Errorf("b: %+v, want the definition's default", r)
	}
}

func TestSnapshot_RoundTripsThroughJSON(t *testing.T) {
	s := Snapshot{Definitions: []Definition{boolFlag("f", Rule{When: []Condition{{"n", OpEquals, []any{3}}}, Variant: "on"})}}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var back Snapshot
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	set := mustCompile(t, back)
	r, _ := set.Evaluate("f", Context{"n": 3.0})
	if r.Reason != ReasonTargetingMatch {
		t.Fatalf("reason = %s after a JSON round trip, want TARGETING_MATCH", r.Reason)
	}
}

var sink Result

// Anchor: flagd in-process evaluation 2.2 µs/op.
func BenchmarkEvaluate_SplitAfterTargeting(b *testing.B) {
	def := Definition{Key: "new-checkout", Type: String, DefaultVariant: "a",
		Variants: map[string]json.RawMessage{"a": raw(`"a"`), "b": raw(`"b"`)},
		Rules: []Rule{
			{When: []Condition{{"email", OpEndsWith, []any{"@internal.example"}}}, Variant: "b"},
			{Split: []Weight{{"a", 50}, {"b", 50}}},
		}}
	set := mustCompile(b, Snapshot{Definitions: []Definition{def}})
	ctx := Context{"targetingKey": "user-123456", "email": "someone@example.com"}
	b.ReportAllocs()
	for b.Loop() {
		sink, _ = set.Evaluate("new-checkout", ctx)
	}
}
