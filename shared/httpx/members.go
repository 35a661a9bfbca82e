package httpx

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"

	"spine/shared/problem"
)

// MaxBodyDepth bounds how deeply arrays and objects nest in each member of a body DecodeJSON
// reads (the body's own object is not counted: {"payload": [[1]]} nests 2 levels): far below the
// 10,000 levels encoding/json allows, and exactly what the audit trail accepts in a payload and in
// an event's data, so a member a service passes on whole is never too deep for them.
const MaxBodyDepth = 64

// checkBody applies to a body v was decoded from what encoding/json does not enforce: at most
// MaxBodyDepth levels of nesting in a member (400 invalid-input naming the member), no object
// holding one member name twice, at any depth and whatever v's type (encoding/json keeps the last:
// 400 duplicate-member naming it), and member names
// that match v's exactly (encoding/json matches them case-insensitively: {"Name": …} would fill
// "name"; here it is 400 unknown-field, as any other member v does not have).
func checkBody(body []byte, v any) error {
	if member, deep := tooDeep(body, MaxBodyDepth+1); deep { // +1: the body's own object or array
		d := fmt.Sprintf("may nest arrays and objects at most %d levels deep", MaxBodyDepth)
		return problem.Newf(http.StatusBadRequest, "invalid-input", "%s %s.", member, d).
			WithFields(problem.FieldError{Field: member, Detail: d})
	}
	if member, dup := DuplicateMember(body); dup {
		return problem.Newf(http.StatusBadRequest, "duplicate-member", "Member %q appears more than once.", member).
			WithFields(problem.FieldError{Field: member, Detail: "appears more than once in its object"})
	}
	t := reflect.TypeOf(v)
	if t == nil || freeForm(t) {
		return nil
	}
	var doc any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber() // only the shape matters here: no number is converted
	if err := dec.Decode(&doc); err != nil {
		return problem.New(http.StatusBadRequest, "invalid-json", "The body is not valid JSON for this resource.")
	}
	if field := inexactMember(doc, t, ""); field != "" {
		return problem.Newf(http.StatusBadRequest, "unknown-field", "Member %q is not part of this resource.", field).
			WithFields(problem.FieldError{Field: field, Detail: "unknown member (names are case-sensitive)"})
	}
	return nil
}

// tooDeep reports whether the well-formed JSON text j nests more than limit levels, and under
// which of its top-level members ("body" when that cannot be told).
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

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// freeForm: values of t decode by their own rules (json.RawMessage, time.Time, any type with an
// UnmarshalJSON or UnmarshalText) or hold any JSON (an interface): their member names are data.
func freeForm(t reflect.Type) bool {
	if t.Kind() == reflect.Interface {
		return true
	}
	return t.Implements(jsonUnmarshaler) || reflect.PointerTo(t).Implements(jsonUnmarshaler) ||
		t.Implements(textUnmarshaler) || reflect.PointerTo(t).Implements(textUnmarshaler)
}

// inexactMember returns the path of the first member of doc (the body as generic JSON) whose name
// is not exactly one of t's JSON names, where t is the Go type it decoded into ("" if none). Maps'
// keys are data, not member names.
func inexactMember(doc any, t reflect.Type, path string) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if freeForm(t) {
		return ""
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

// memberTypeCache holds memberTypes by struct type (a type's members never change).
var memberTypeCache sync.Map // reflect.Type → map[string]reflect.Type

// memberTypes maps a struct's JSON member names (encoding/json's rules: the tag's name, else the
// field's; embedded structs without a name are flattened, the shallower name winning) to their
// Go types.
func memberTypes(t reflect.Type) map[string]reflect.Type {
	if m, ok := memberTypeCache.Load(t); ok {
		return m.(map[string]reflect.Type)
	}
	out := map[string]reflect.Type{}
	var embedded []reflect.Type
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if name == "" && f.Anonymous {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				embedded = append(embedded, ft)
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
	for _, et := range embedded {
		for k, v := range memberTypes(et) {
			if _, dup := out[k]; !dup {
				out[k] = v
			}
		}
	}
	memberTypeCache.Store(t, out)
	return out
}

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// DuplicateMember reports whether the JSON text j (well formed, nesting bounded by the caller) has
// an object holding one member name twice (names compared as decoded: "a" and "\u0061" are one),
// and that member's path ("rules[0].when[1].op"). Malformed JSON is not reported: the decoder
// refuses it.
func DuplicateMember(j []byte) (path string, dup bool) {
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.UseNumber()
	type frame struct {
		names map[string]struct{} // nil: an array
		path  string
		index int    // an array's next element
		key   string // an object's member being read ("" before its name)
		named bool   // the object's next token is a value (its name was read)
	}
	var stack []*frame
	// at is the path of the value about to be read in the innermost container.
	at := func() string {
		if len(stack) == 0 {
			return ""
		}
		f := stack[len(stack)-1]
		if f.names == nil {
			return f.path + "[" + strconv.Itoa(f.index) + "]"
		}
		return joinPath(f.path, f.key)
	}
	// valueDone records that the innermost container read one value.
	valueDone := func() {
		if len(stack) == 0 {
			return
		}
		f := stack[len(stack)-1]
		if f.names == nil {
			f.index++
		} else {
			f.named = false
		}
	}
	for {
		tok, err := dec.Token()
		if err != nil {
			return "", false
		}
		if len(stack) > 0 {
			if f := stack[len(stack)-1]; f.names != nil && !f.named {
				if d, ok := tok.(json.Delim); ok && d == '}' {
					stack = stack[:len(stack)-1]
					valueDone()
					continue
				}
				name, _ := tok.(string)
				f.key = name
				if _, seen := f.names[name]; seen {
					return joinPath(f.path, name), true
				}
				f.names[name] = struct{}{}
				f.named = true
				continue
			}
		}
		switch d, _ := tok.(json.Delim); d {
		case '{':
			stack = append(stack, &frame{names: map[string]struct{}{}, path: at()})
		case '[':
			stack = append(stack, &frame{path: at()})
		case ']':
			stack = stack[:len(stack)-1]
			valueDone()
		default:
			valueDone()
		}
		if len(stack) == 0 && !dec.More() {
			return "", false
		}
	}
}

// typeErrorAt returns err with a *json.UnmarshalTypeError's Field rewritten as the JSON path of
// the value at fault in body ("rules[0].split[1].weight"): encoding/json names it by the Go path
// (an embedded struct's Go name included, no array index). Other errors are returned as they are.
func typeErrorAt(body []byte, v any, err error) error {
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) || te.Field == "" || v == nil {
		return err
	}
	var doc any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if dec.Decode(&doc) != nil {
		return err
	}
	if path := misfit(doc, reflect.TypeOf(v), ""); path != "" {
		cp := *te
		cp.Field = path
		return &cp
	}
	return err
}

// misfit returns the path of the first value of doc (in member-name order) that does not decode
// into its Go type in t, "" if none is found.
func misfit(doc any, t reflect.Type, path string) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if doc == nil || freeForm(t) {
		return ""
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := doc.(map[string]any)
		if !ok {
			return orRoot(path)
		}
		names := memberTypes(t)
		for _, k := range sortedKeys(m) {
			if ft, ok := names[k]; ok {
				if p := misfit(m[k], ft, joinPath(path, k)); p != "" {
					return p
				}
			}
		}
	case reflect.Map:
		m, ok := doc.(map[string]any)
		if !ok {
			return orRoot(path)
		}
		for _, k := range sortedKeys(m) {
			if p := misfit(m[k], t.Elem(), joinPath(path, k)); p != "" {
				return p
			}
		}
	case reflect.Slice, reflect.Array:
		a, ok := doc.([]any)
		if !ok {
			if _, isStr := doc.(string); isStr && t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8 {
				return "" // []byte decodes from base64 text
			}
			return orRoot(path)
		}
		for i, e := range a {
			if p := misfit(e, t.Elem(), path+"["+strconv.Itoa(i)+"]"); p != "" {
				return p
			}
		}
	case reflect.String:
		if _, ok := doc.(string); !ok {
			return orRoot(path)
		}
	case reflect.Bool:
		if _, ok := doc.(bool); !ok {
			return orRoot(path)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := doc.(json.Number)
		if !ok {
			return orRoot(path)
		}
		if _, err := strconv.ParseInt(string(n), 10, t.Bits()); err != nil {
			return orRoot(path)
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		n, ok := doc.(json.Number)
		if !ok {
			return orRoot(path)
		}
		if _, err := strconv.ParseUint(string(n), 10, t.Bits()); err != nil {
			return orRoot(path)
		}
	case reflect.Float32, reflect.Float64:
		n, ok := doc.(json.Number)
		if !ok {
			return orRoot(path)
		}
		if _, err := strconv.ParseFloat(string(n), t.Bits()); err != nil {
			return orRoot(path)
		}
	}
	return ""
}

func orRoot(path string) string {
	if path == "" {
		return "body"
	}
	return path
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
