package flags

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
)

// Snapshot is what a tenant's flag set is compiled from; it is the value kept in Redis.
type Snapshot struct {
	Definitions     []Definition               `json:"definitions"`
	Overrides       map[string]Override        `json:"overrides,omitempty"`       // flag key → the tenant's override
	EditionDefaults map[string]json.RawMessage `json:"editionDefaults,omitempty"` // flag key → the edition's default value
	Edition         string                     `json:"edition,omitempty"`
}

// Set is a compiled flag set; safe for concurrent Evaluate calls, never modified after Compile.
type Set struct {
	flags   map[string]*compiled
	keys    []string
	skipped []string
}

// Skipped lists the overrides and edition defaults Compile left out, and why.
func (s *Set) Skipped() []string { return s.skipped }

type compiled struct {
	key      string
	disabled bool
	pinned   *outcome // the tenant override's variant
	def      outcome  // the default value (edition's or the default variant)
	rules    []compiledRule
}

type outcome struct {
	variant string
	value   json.RawMessage
	source  string
}

type compiledRule struct {
	when    []compiledCond
	variant *outcome
	split   []splitRange
	total   uint64
}

type splitRange struct {
	end uint64 // exclusive end of the variant's range in [0, total)
	out outcome
}

type compiledCond struct {
	attr   string
	op     Op
	values []any
	ver    version
}

// Validate checks a definition: the bounds (CheckBounds), key, type, variants of the type, default
// variant, rules. Its errors are *FieldError. Compile does not apply the bounds: they are a rule
// for writing a definition, and a stored one is never refused at evaluation.
func (d Definition) Validate() error {
	if err := CheckBounds(d); err != nil {
		return err
	}
	_, err := compileFlag(d, Override{}, nil)
	return err
}

// Compile builds a tenant's Set. A definition that does not validate, or two with one key, is
// ErrInvalidDefinition. An override naming a variant the definition no longer has, or an edition
// default not of the flag's type, is left out (the flag evaluates as without it) and listed in
// Set.Skipped: the definition changed under them, and one tenant's stale override must not take
// its whole flag set down. Overrides and edition defaults for keys without a definition are ignored.
func Compile(s Snapshot) (*Set, error) {
	set := &Set{flags: make(map[string]*compiled, len(s.Definitions))}
	for _, d := range s.Definitions {
		if _, err := compileFlag(d, Override{}, nil); err != nil {
			return nil, err
		}
		ov := s.Overrides[d.Key]
		if _, err := compileFlag(d, ov, nil); err != nil {
			set.skipped = append(set.skipped, fmt.Sprintf("override of %q: %v", d.Key, err))
			ov = Override{Disabled: ov.Disabled}
		}
		ed := s.EditionDefaults[d.Key]
		if ed != nil {
			if _, err := compileFlag(d, Override{}, ed); err != nil {
				set.skipped = append(set.skipped, fmt.Sprintf("edition default of %q: %v", d.Key, err))
				ed = nil
			}
		}
		c, err := compileFlag(d, ov, ed)
		if err != nil {
			return nil, err
		}
		if _, dup := set.flags[d.Key]; dup {
			return nil, fmt.Errorf("%w: duplicate key %q", ErrInvalidDefinition, d.Key)
		}
		set.flags[d.Key] = c
		set.keys = append(set.keys, d.Key)
	}
	slices.Sort(set.keys)
	return set, nil
}

// Keys returns the set's flag keys, sorted.
func (s *Set) Keys() []string { return s.keys }

// Len is the number of flags in the set.
func (s *Set) Len() int { return len(s.flags) }

// invalid is the *FieldError for member field of flag key.
func invalid(key, field, format string, args ...any) error {
	return &FieldError{Key: key, Field: field, Detail: fmt.Sprintf(format, args...)}
}

func compileFlag(d Definition, ov Override, editionDefault json.RawMessage) (*compiled, error) {
	if !ValidKey(d.Key) {
		return nil, invalid(d.Key, "key", "must be 1-128 characters of [A-Za-z0-9._-]")
	}
	switch d.Type {
	case Boolean, String, Number, Object:
	default:
		return nil, invalid(d.Key, "type", "must be one of boolean, string, number, object")
	}
	if len(d.Variants) == 0 {
		return nil, invalid(d.Key, "variants", "must hold at least one variant")
	}
	vars := make(map[string]json.RawMessage, len(d.Variants))
	for name, v := range d.Variants {
		if name == "" {
			return nil, invalid(d.Key, "variants", "names must not be empty")
		}
		cv, err := compact(v)
		if err != nil || !OfType(d.Type, cv) {
			return nil, invalid(d.Key, "variants."+name, "must be a %s value", d.Type)
		}
		vars[name] = cv
	}
	// variant resolves a variant name written at member field.
	variant := func(field, name string) (*outcome, error) {
		v, ok := vars[name]
		if !ok {
			return nil, invalid(d.Key, field, "names no variant of the flag (%q)", name)
		}
		return &outcome{variant: name, value: v, source: "definition"}, nil
	}
	defv, err := variant("defaultVariant", d.DefaultVariant)
	if err != nil {
		return nil, err
	}
	c := &compiled{key: d.Key, disabled: d.Disabled || ov.Disabled, def: *defv}
	if editionDefault != nil {
		ev, err := compact(editionDefault)
		if err != nil || !OfType(d.Type, ev) {
			return nil, invalid(d.Key, "editionDefault", "must be a %s value", d.Type)
		}
		c.def = outcome{value: ev, source: "edition"}
		for _, name := range sortedNames(vars) { // the variant carrying the same value, if any
			if bytes.Equal(vars[name], ev) {
				c.def.variant = name
				break
			}
		}
	}
	if ov.Variant != "" {
		p, err := variant("variant", ov.Variant)
		if err != nil {
			return nil, err
		}
		p.source = "override"
		c.pinned = p
	}
	for i, r := range d.Rules {
		cr, err := compileRule(d.Key, i, r, variant)
		if err != nil {
			return nil, err
		}
		c.rules = append(c.rules, cr)
	}
	return c, nil
}

func compileRule(key string, i int, r Rule, variant func(string, string) (*outcome, error)) (compiledRule, error) {
	var cr compiledRule
	at := fmt.Sprintf("rules[%d]", i)
	if (r.Variant == "") == (len(r.Split) == 0) {
		return cr, invalid(key, at, "must have exactly one of variant and split")
	}
	for j, cond := range r.When {
		cc, field, err := compileCond(cond)
		if err != nil {
			return cr, invalid(key, fmt.Sprintf("%s.when[%d]%s", at, j, field), "%v", err)
		}
		cr.when = append(cr.when, cc)
	}
	if r.Variant != "" {
		o, err := variant(at+".variant", r.Variant)
		if err != nil {
			return cr, err
		}
		o.source = "rule"
		cr.variant = o
		return cr, nil
	}
	for j, w := range r.Split {
		o, err := variant(fmt.Sprintf("%s.split[%d].variant", at, j), w.Variant)
		if err != nil {
			return cr, err
		}
		if w.Weight < 0 {
			return cr, invalid(key, fmt.Sprintf("%s.split[%d].weight", at, j), "must not be negative")
		}
		cr.total += uint64(w.Weight)
		o.source = "rule"
		cr.split = append(cr.split, splitRange{end: cr.total, out: *o})
	}
	if cr.total == 0 || cr.total > math.MaxInt32 {
		return cr, invalid(key, at+".split", "weights must sum to 1..%d", math.MaxInt32)
	}
	return cr, nil
}

// compileCond compiles a condition; an error names the condition's member at fault (".attribute").
func compileCond(c Condition) (compiledCond, string, error) {
	cc := compiledCond{attr: c.Attribute, op: c.Op}
	if c.Attribute == "" {
		return cc, ".attribute", fmt.Errorf("must not be empty")
	}
	if len(c.Values) == 0 {
		return cc, ".values", fmt.Errorf("must hold at least one value")
	}
	for k, v := range c.Values {
		at := fmt.Sprintf(".values[%d]", k)
		switch n := v.(type) {
		case string, bool, float64:
			cc.values = append(cc.values, v)
		case int:
			cc.values = append(cc.values, float64(n))
		case json.Number:
			f, err := n.Float64()
			if err != nil {
				return cc, at, fmt.Errorf("must be a number a 64-bit float holds")
			}
			cc.values = append(cc.values, f)
		default:
			return cc, at, fmt.Errorf("must be a string, number or boolean")
		}
	}
	switch c.Op {
	case OpEquals, OpNotEquals, OpIn, OpNotIn:
	case OpStartsWith, OpEndsWith:
		if _, ok := cc.values[0].(string); !ok {
			return cc, ".values[0]", fmt.Errorf("must be a string for %s", c.Op)
		}
	case OpSemverGte, OpSemverLt:
		s, _ := cc.values[0].(string)
		v, ok := parseVersion(s)
		if !ok {
			return cc, ".values[0]", fmt.Errorf("must be a version MAJOR.MINOR.PATCH for %s", c.Op)
		}
		cc.ver = v
	default:
		return cc, ".op", fmt.Errorf("must be one of equals, notEquals, in, notIn, startsWith, endsWith, semverGte, semverLt")
	}
	return cc, "", nil
}

// ValidKey reports whether k is a valid flag (or setting) key: 1-128 characters of [A-Za-z0-9._-].
func ValidKey(k string) bool {
	if len(k) == 0 || len(k) > 128 {
		return false
	}
	for i := 0; i < len(k); i++ {
		b := k[i]
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '.' || b == '_' || b == '-') {
			return false
		}
	}
	return true
}

func compact(v json.RawMessage) (json.RawMessage, error) {
	var b bytes.Buffer
	if err := json.Compact(&b, v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// OfType reports whether v is one JSON value of type t (a valid JSON document whose value is a
// boolean, string, number or object as t says).
func OfType(t Type, v json.RawMessage) bool {
	if len(v) == 0 || !json.Valid(v) {
		return false
	}
	v = bytes.TrimLeft(v, " \t\r\n")
	if len(v) == 0 {
		return false
	}
	switch t {
	case Boolean:
		return string(v) == "true" || string(v) == "false"
	case String:
		return v[0] == '"'
	case Number:
		return v[0] == '-' || v[0] >= '0' && v[0] <= '9'
	case Object:
		return v[0] == '{'
	}
	return false
}

func sortedNames(m map[string]json.RawMessage) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
