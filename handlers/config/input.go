package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"spine/shared/httpx"
	"spine/shared/problem"
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
	// maxBodyDepth bounds how deeply a request body nests as a whole (a definition's rules hold
	// condition values, which no other bound reaches).
	maxBodyDepth = 64
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

// decodeBody is httpx.DecodeJSON — JSON media type, no unknown members, one value, every string
// passing the shared text rules — plus what encoding/json does not enforce: member names match
// the resource's exactly ({"TYPE": …} is unknown-field, not "type"), and the body nests at most
// maxBodyDepth levels.
func decodeBody(c echo.Context, v any) error {
	r := c.Request()
	var raw bytes.Buffer
	if r.Body != nil {
		r.Body = struct {
			io.Reader
			io.Closer
		}{io.TeeReader(r.Body, &raw), r.Body}
	}
	if err := httpx.DecodeJSON(c, v); err != nil {
		return err
	}
	if member, deep := tooDeep(raw.Bytes(), maxBodyDepth); deep {
		d := fmt.Sprintf("may nest arrays and objects at most %d levels deep", maxBodyDepth)
		return problem.Newf(http.StatusBadRequest, "invalid-input", "%s %s.", member, d).
			WithFields(problem.FieldError{Field: member, Detail: d})
	}
	var doc any
	dec := json.NewDecoder(bytes.NewReader(raw.Bytes()))
	dec.UseNumber() // numbers as sent: a float64's range is CheckValue's to judge, naming the member
	if err := dec.Decode(&doc); err != nil {
		return problem.New(http.StatusBadRequest, "invalid-json", "The body is not valid JSON for this resource.")
	}
	if field := inexactMember(doc, reflect.TypeOf(v), ""); field != "" {
		return problem.Newf(http.StatusBadRequest, "unknown-field", "Member %q is not part of this resource.", field).
			WithFields(problem.FieldError{Field: field, Detail: "unknown member (names are case-sensitive)"})
	}
	return nil
}

// tooDeep reports whether the well-formed JSON text j (an object) nests more than limit levels,
// and under which of its members ("body" when that cannot be told).
func tooDeep(j []byte, limit int) (member string, deep bool) {
	depth, inString, escaped, start := 0, false, false, -1
	for i, b := range j {
		switch {
		case escaped:
			escaped = false
		case inString:
			escaped = b == '\\'
			if b == '"' {
				inString = false
				if depth == 1 && start >= 0 && member == "" {
					member = string(j[start+1 : i]) // the top-level member name being read
				}
			}
		case b == '"':
			inString = true
			if depth == 1 {
				start = i
			}
		case b == ',' && depth == 1:
			member, start = "", -1
		case b == '[' || b == '{':
			if depth++; depth > limit {
				if member == "" {
					member = "body"
				}
				return member, true
			}
		case b == ']' || b == '}':
			depth--
		}
	}
	return "", false
}

var rawMessageType = reflect.TypeFor[json.RawMessage]()

// inexactMember returns the path of the first member of doc (the body as generic JSON) whose name
// is not exactly one of t's json names, where t is the Go type it decoded into ("" if none).
// Maps' keys are data, not member names; json.RawMessage and interface values are free-form.
func inexactMember(doc any, t reflect.Type, path string) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := doc.(map[string]any)
		if !ok {
			return ""
		}
		names := memberTypes(t)
		for k, sub := range m {
			ft, ok := names[k]
			if !ok {
				return joinPath(path, k)
			}
			if p := inexactMember(sub, ft, joinPath(path, k)); p != "" {
				return p
			}
		}
	case reflect.Slice, reflect.Array:
		if t == rawMessageType {
			return ""
		}
		a, ok := doc.([]any)
		if !ok {
			return ""
		}
		for i, e := range a {
			if p := inexactMember(e, t.Elem(), path+"["+strconv.Itoa(i)+"]"); p != "" {
				return p
			}
		}
	case reflect.Map:
		m, ok := doc.(map[string]any)
		if !ok {
			return ""
		}
		for k, e := range m {
			if p := inexactMember(e, t.Elem(), joinPath(path, k)); p != "" {
				return p
			}
		}
	}
	return ""
}

// memberTypes maps a struct's JSON member names (encoding/json's rules: the tag's name, else the
// field's; embedded structs without a name are flattened) to their Go types.
func memberTypes(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		ft := f.Type
		if name == "" && f.Anonymous {
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range memberTypes(ft) {
					if _, dup := out[k]; !dup {
						out[k] = v
					}
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}
