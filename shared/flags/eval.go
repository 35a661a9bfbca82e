package flags

import (
	"strconv"
	"strings"
)

// Evaluate evaluates the flag key for ctx (see the package documentation for the order).
// Errors: ErrFlagNotFound, ErrInvalidContext (targetingKey not a string), ErrTargetingKeyMissing
// (a split reached without a targetingKey).
func (s *Set) Evaluate(key string, ctx Context) (Result, error) {
	c, ok := s.flags[key]
	if !ok {
		return Result{Key: key}, ErrFlagNotFound
	}
	tk, hasTK := ctx[TargetingKeyAttribute]
	tks, isString := tk.(string)
	if hasTK && tk != nil && !isString {
		return Result{Key: key}, ErrInvalidContext
	}
	if c.disabled {
		return result(key, c.def, ReasonDisabled), nil
	}
	if c.pinned != nil {
		return result(key, *c.pinned, ReasonStatic), nil
	}
	for i := range c.rules {
		r := &c.rules[i]
		if !r.matches(ctx) {
			continue
		}
		if r.variant != nil {
			return result(key, *r.variant, ReasonTargetingMatch), nil
		}
		if !isString {
			return Result{Key: key}, ErrTargetingKeyMissing
		}
		return result(key, r.pick(bucketHash(key, tks)), ReasonSplit), nil
	}
	if len(c.rules) == 0 {
		return result(key, c.def, ReasonStatic), nil
	}
	return result(key, c.def, ReasonDefault), nil
}

func result(key string, o outcome, r Reason) Result {
	return Result{Key: key, Value: o.value, Variant: o.variant, Reason: r, Source: o.source}
}

// bucketHash is flagd's bucketing value hash: MurmurHash3 x86_32 of flagKey+targetingKey.
func bucketHash(flagKey, targetingKey string) uint32 {
	if len(flagKey)+len(targetingKey) <= 128 { // avoid the concatenation's allocation
		var buf [128]byte
		n := copy(buf[:], flagKey)
		n += copy(buf[n:], targetingKey)
		return murmur3Sum32(buf[:n])
	}
	return murmur3Sum32(flagKey + targetingKey)
}

// pick maps a hash to the split's variant: bucket = hash × total >> 32 (flagd's distributeValue).
func (r *compiledRule) pick(hash uint32) outcome {
	bucket := (uint64(hash) * r.total) >> 32
	for _, s := range r.split {
		if bucket < s.end {
			return s.out
		}
	}
	return r.split[len(r.split)-1].out // unreachable: bucket < total
}

func (r *compiledRule) matches(ctx Context) bool {
	for i := range r.when {
		if !r.when[i].holds(ctx) {
			return false
		}
	}
	return true
}

func (c *compiledCond) holds(ctx Context) bool {
	v, ok := ctx[c.attr]
	if !ok || v == nil {
		return false
	}
	switch c.op {
	case OpEquals:
		return scalarEqual(v, c.values[0])
	case OpNotEquals:
		return !scalarEqual(v, c.values[0])
	case OpIn, OpNotIn:
		in := false
		for _, w := range c.values {
			if scalarEqual(v, w) {
				in = true
				break
			}
		}
		return in == (c.op == OpIn)
	case OpStartsWith:
		s, ok := v.(string)
		return ok && strings.HasPrefix(s, c.values[0].(string))
	case OpEndsWith:
		s, ok := v.(string)
		return ok && strings.HasSuffix(s, c.values[0].(string))
	case OpSemverGte, OpSemverLt:
		s, ok := v.(string)
		if !ok {
			return false
		}
		got, ok := parseVersion(s)
		if !ok {
			return false
		}
		cmp := got.compare(c.ver)
		if c.op == OpSemverGte {
			return cmp >= 0
		}
		return cmp < 0
	}
	return false
}

// scalarEqual compares a context value with a rule value: same JSON kind and equal; numbers as float64.
func scalarEqual(v, w any) bool {
	switch a := v.(type) {
	case string:
		b, ok := w.(string)
		return ok && a == b
	case bool:
		b, ok := w.(bool)
		return ok && a == b
	case float64:
		b, ok := w.(float64)
		return ok && a == b
	case int:
		b, ok := w.(float64)
		return ok && float64(a) == b
	}
	return false
}

// version is a semantic version; a pre-release sorts before its release (pre-release
// identifiers themselves compare as plain strings — a documented simplification).
type version struct {
	major, minor, patch int
	pre                 string
}

func parseVersion(s string) (version, bool) {
	s = strings.TrimPrefix(s, "v")
	if i := strings.IndexByte(s, '+'); i >= 0 { // build metadata never counts
		s = s[:i]
	}
	var v version
	if i := strings.IndexByte(s, '-'); i >= 0 {
		v.pre, s = s[i+1:], s[:i]
		if v.pre == "" {
			return v, false
		}
	}
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return v, false
	}
	nums := [3]*int{&v.major, &v.minor, &v.patch}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || p == "" || p[0] == '+' {
			return v, false
		}
		*nums[i] = n
	}
	return v, true
}

func (v version) compare(w version) int {
	for _, d := range [3]int{v.major - w.major, v.minor - w.minor, v.patch - w.patch} {
		if d != 0 {
			if d < 0 {
				return -1
			}
			return 1
		}
	}
	switch {
	case v.pre == w.pre:
		return 0
	case v.pre == "":
		return 1
	case w.pre == "":
		return -1
	case v.pre < w.pre:
		return -1
	}
	return 1
}
