package httpx

import (
	"bytes"
	"encoding"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
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
// MaxBodyDepth levels of nesting in a member (400 invalid-input naming the member), and member names
// that match v's exactly (encoding/json matches them case-insensitively: {"Name": …} would fill
// "name"; here it is 400 unknown-field, as any other member v does not have).
func checkBody(body []byte, v any) error {
	if member, deep := tooDeep(body, MaxBodyDepth+1); deep { // +1: the body's own object or array
		d := fmt.Sprintf("may nest arrays and objects at most %d levels deep", MaxBodyDepth)
		return problem.Newf(http.StatusBadRequest, "invalid-input", "%s %s.", member, d).
			WithFields(problem.FieldError{Field: member, Detail: d})
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
