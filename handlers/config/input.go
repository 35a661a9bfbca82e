package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
)

// The bounds of a JSON value the service stores and passes on (a flag variant, a setting's value
// or default, an evaluation context): below the 64 levels the audit trail accepts in an event's
// data, so a SettingChanged event carrying a value is always recorded, and small enough for every
// tenant's compiled flag set in Redis.
const (
	// MaxValueDepth bounds how deeply a value's arrays and objects nest.
	MaxValueDepth = 32
	// MaxValueBytes bounds a value's compacted JSON.
	MaxValueBytes = 32 << 10
	// MaxVariantName bounds a variant's name (what an override pins, stored as such).
	MaxVariantName = 128
	// MaxDescription bounds a flag definition's description.
	MaxDescription = 1000
)

// ErrInvalidInput: a value breaks the input rules every service shares (nesting, size, a number
// no float64 holds). Errors wrapping it are *InputError, naming the member.
var ErrInvalidInput = errors.New("config: invalid input")

// InputError is ErrInvalidInput for one member of a body: Field is its JSON path ("value",
// "variants.on"), Detail says what is wrong with it.
type InputError struct{ Field, Detail string }

func (e *InputError) Error() string {
	return fmt.Sprintf("%v: %s %s", ErrInvalidInput, e.Field, e.Detail)
}

// Is makes errors.Is(err, ErrInvalidInput) hold.
func (e *InputError) Is(target error) bool { return target == ErrInvalidInput }

// CheckValue applies the bounds above to a JSON value (valid JSON, as decoded from a body): at most
// MaxValueDepth levels, at most MaxValueBytes compacted, and every number a finite float64 (what
// the OpenFeature SDKs and JSON readers decode numbers to; 1e400 would be +Inf to them). field
// names the member in the error.
func CheckValue(field string, v json.RawMessage) error {
	if len(bytes.TrimSpace(v)) == 0 {
		return nil // absent: whether that is allowed is the caller's rule (a type check refuses it)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, v); err != nil {
		return &InputError{field, "must be JSON"}
	}
	c := buf.Bytes()
	if len(c) > MaxValueBytes {
		return &InputError{field, fmt.Sprintf("must be at most %d bytes of JSON", MaxValueBytes)}
	}
	depth, inString, escaped := 0, false, false
	for i := 0; i < len(c); i++ {
		b := c[i]
		switch {
		case escaped:
			escaped = false
		case inString:
			escaped = b == '\\'
			inString = b != '"'
		case b == '"':
			inString = true
		case b == '[' || b == '{':
			if depth++; depth > MaxValueDepth {
				return &InputError{field, fmt.Sprintf("may nest arrays and objects at most %d levels deep", MaxValueDepth)}
			}
		case b == ']' || b == '}':
			depth--
		case b == '-' || b >= '0' && b <= '9': // a number (compacted: it ends at , ] or })
			j := i
			for j < len(c) && c[j] != ',' && c[j] != ']' && c[j] != '}' {
				j++
			}
			if f, err := strconv.ParseFloat(string(c[i:j]), 64); err != nil && math.IsInf(f, 0) {
				return &InputError{field, "holds a number beyond the range of a 64-bit float"}
			}
			i = j - 1
		}
	}
	return nil
}
