// Package flags is Spine's feature-flag evaluator: pure, in process, no I/O. A flag set is
// compiled once per tenant (Compile: the platform definitions, the tenant's overrides and its
// edition's defaults) and evaluated many times (Set.Evaluate), concurrently and without locks.
//
// # Evaluation order
//
//  1. Kill switch: the definition or the tenant's override is disabled → the flag's default value
//     (edition default, else the default variant), reason DISABLED.
//  2. Tenant override pinning a variant → that variant, reason STATIC.
//  3. Targeting rules in order; the first whose conditions all hold decides: a variant → reason
//     TARGETING_MATCH; a split → the variant picked by flagd's fractional bucketing, reason SPLIT.
//  4. Otherwise the default value: the tenant's edition default if its edition has one for this
//     key, else the definition's default variant; reason STATIC when the flag has no rules,
//     DEFAULT when it has rules and none matched.
//
// # Rule language
//
// A rule is {"when":[conditions], "variant":"v"} or {"when":[...], "split":[{"variant":"a","weight":1},…]}.
// A condition is {"attribute":"<context attribute>","op":"<op>","values":[…]} and holds when the
// context has the attribute and:
//
//	equals      the attribute equals values[0] (strings, numbers, booleans; no coercion)
//	notEquals   it does not equal values[0] (an absent attribute does not hold)
//	in          it equals one of values
//	notIn       it equals none of values
//	startsWith  it is a string starting with values[0] (a string)
//	endsWith    it is a string ending with values[0] (a string)
//	semverGte   it is a version "[v]MAJOR.MINOR.PATCH[-pre]" ≥ values[0]
//	semverLt    it is a version < values[0]
//
// "targetingKey" is an attribute like the others. An empty "when" always holds.
//
// # Percentage rollout
//
// Exactly flagd's fractional operator (core/pkg/evaluator/fractional.go): the bucketing value is
// flagKey+targetingKey, hashed with MurmurHash3 x86_32 (seed 0); bucket = hash × totalWeight >> 32;
// the variants' weights are consecutive ranges of [0, totalWeight) in the rule's order. A split
// reached without a string targetingKey is ErrTargetingKeyMissing.
package flags

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Type is a flag's value type.
type Type string

// The flag types; a variant's JSON value must be of its flag's type.
const (
	Boolean Type = "boolean"
	String  Type = "string"
	Number  Type = "number"
	Object  Type = "object"
)

// Reason says why an evaluation produced its value (OpenFeature's resolution reasons).
type Reason string

// The reasons Evaluate returns.
const (
	ReasonStatic         Reason = "STATIC"
	ReasonTargetingMatch Reason = "TARGETING_MATCH"
	ReasonDefault        Reason = "DEFAULT"
	ReasonSplit          Reason = "SPLIT"
	ReasonDisabled       Reason = "DISABLED"
)

// Op is a condition operator (see the package documentation).
type Op string

// The condition operators.
const (
	OpEquals     Op = "equals"
	OpNotEquals  Op = "notEquals"
	OpIn         Op = "in"
	OpNotIn      Op = "notIn"
	OpStartsWith Op = "startsWith"
	OpEndsWith   Op = "endsWith"
	OpSemverGte  Op = "semverGte"
	OpSemverLt   Op = "semverLt"
)

// TargetingKeyAttribute is the context attribute percentage rollouts bucket on.
const TargetingKeyAttribute = "targetingKey"

// Errors of Validate, Compile and Evaluate.
var (
	// ErrInvalidDefinition: a definition, rule or override that cannot be compiled; wrapped with the reason.
	ErrInvalidDefinition = errors.New("flags: invalid flag definition")
	// ErrFlagNotFound: no flag with the key in the set.
	ErrFlagNotFound = errors.New("flags: flag not found")
	// ErrTargetingKeyMissing: a split was reached and the context has no string targetingKey.
	ErrTargetingKeyMissing = errors.New("flags: targeting key missing")
	// ErrInvalidContext: the context's targetingKey is present but not a string.
	ErrInvalidContext = errors.New("flags: invalid evaluation context")
)

// FieldError is ErrInvalidDefinition for one member of a definition: Field is the member's JSON
// path in the definition ("type", "variants.on", "rules[0].split[1].weight"), Detail says what is
// wrong with it in words a client can act on. Key is the flag's key.
type FieldError struct{ Key, Field, Detail string }

func (e *FieldError) Error() string {
	return fmt.Sprintf("%v: %q: %s %s", ErrInvalidDefinition, e.Key, e.Field, e.Detail)
}

// Is makes errors.Is(err, ErrInvalidDefinition) hold.
func (e *FieldError) Is(target error) bool { return target == ErrInvalidDefinition }

// The bounds Validate applies to a definition: what one flag may cost each evaluation and every
// instance's memory (the compiled set is held per tenant in each instance).
const (
	// MaxVariants bounds a definition's variants.
	MaxVariants = 100
	// MaxRules bounds a definition's targeting rules.
	MaxRules = 100
	// MaxConditions bounds one rule's conditions ("when").
	MaxConditions = 20
	// MaxConditionValues bounds one condition's values.
	MaxConditionValues = 1000
	// MaxSplit bounds one rule's split entries; each weight is 0..2^31-1 and their sum 1..2^31-1.
	MaxSplit = 100
)

// CheckBounds applies the bounds above to d (a *FieldError naming the member, or nil).
func CheckBounds(d Definition) error {
	if len(d.Variants) > MaxVariants {
		return &FieldError{d.Key, "variants", fmt.Sprintf("may hold at most %d variants", MaxVariants)}
	}
	if len(d.Rules) > MaxRules {
		return &FieldError{d.Key, "rules", fmt.Sprintf("may hold at most %d rules", MaxRules)}
	}
	for i, r := range d.Rules {
		if len(r.When) > MaxConditions {
			return &FieldError{d.Key, fmt.Sprintf("rules[%d].when", i), fmt.Sprintf("may hold at most %d conditions", MaxConditions)}
		}
		for j, c := range r.When {
			if len(c.Values) > MaxConditionValues {
				return &FieldError{d.Key, fmt.Sprintf("rules[%d].when[%d].values", i, j), fmt.Sprintf("may hold at most %d values", MaxConditionValues)}
			}
		}
		if len(r.Split) > MaxSplit {
			return &FieldError{d.Key, fmt.Sprintf("rules[%d].split", i), fmt.Sprintf("may hold at most %d entries", MaxSplit)}
		}
	}
	return nil
}

// Definition is a flag's platform-level definition.
type Definition struct {
	Key            string                     `json:"key"`
	Type           Type                       `json:"type"`
	Description    string                     `json:"description,omitempty"`
	Variants       map[string]json.RawMessage `json:"variants"`
	DefaultVariant string                     `json:"defaultVariant"`
	Rules          []Rule                     `json:"rules,omitempty"`
	// Disabled is the platform kill switch: every tenant gets the default value, reason DISABLED.
	Disabled bool `json:"disabled,omitempty"`
}

// Rule is one targeting rule: when every condition holds, Variant (TARGETING_MATCH) or the
// Split's pick (SPLIT). Exactly one of Variant and Split is set.
type Rule struct {
	When    []Condition `json:"when,omitempty"`
	Variant string      `json:"variant,omitempty"`
	Split   []Weight    `json:"split,omitempty"`
}

// Weight is one variant's share of a split.
type Weight struct {
	Variant string `json:"variant"`
	Weight  int32  `json:"weight"`
}

// Condition tests one context attribute (see the package documentation).
type Condition struct {
	Attribute string `json:"attribute"`
	Op        Op     `json:"op"`
	Values    []any  `json:"values"`
}

// Override is one tenant's override of a flag: Variant pins the tenant to a variant (STATIC);
// Disabled is the tenant's kill switch. Both empty is no override.
type Override struct {
	Variant  string `json:"variant,omitempty"`
	Disabled bool   `json:"disabled,omitempty"`
}

// Context is an evaluation context: attribute → JSON value (string, float64, bool, nil, or nested).
type Context map[string]any

// Result is one evaluation.
type Result struct {
	Key     string
	Value   json.RawMessage
	Variant string // "" when the value is an edition default matching no variant
	Reason  Reason
	// Source is where the value came from: "definition", "override", "edition", "rule".
	Source string
}
