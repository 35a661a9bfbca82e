// Package text is the one check every service applies to text that arrives from outside (JSON
// members, query parameters, headers, event fields) before it can reach a store.
//
// PostgreSQL cannot hold NUL in text or jsonb (SQLSTATE 22021 / 22P05), SQL Server and JSON
// readers mangle other control characters, and invalid UTF-8 cannot be stored faithfully anywhere,
// so such text is refused at the edge with a clear 400 rather than failing in the store with a 500.
package text

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Errors of the checks. Both wrap ErrInvalid.
var (
	// ErrInvalid is what every refusal of this package wraps.
	ErrInvalid = errors.New("invalid text")
	// ErrControl: the text holds a control character it may not hold.
	ErrControl = errors.New("control character")
	// ErrUTF8: the text is not valid UTF-8.
	ErrUTF8 = errors.New("not UTF-8")
)

// Check accepts valid UTF-8 without control characters other than tab, line feed and carriage
// return: free text such as a reason or a description may span lines.
func Check(s string) error { return check(s, true) }

// CheckLine accepts valid UTF-8 without any control character, nor the line and paragraph
// separators U+2028 and U+2029: names, ids, codes and headers.
func CheckLine(s string) error { return check(s, false) }

func check(s string, multiline bool) error {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f {
				if !multiline || (c != '\t' && c != '\n' && c != '\r') {
					return errors.Join(ErrInvalid, ErrControl)
				}
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			return errors.Join(ErrInvalid, ErrUTF8)
		}
		if r >= 0x80 && r <= 0x9f { // C1 controls
			return errors.Join(ErrInvalid, ErrControl)
		}
		if !multiline && (r == '\u2028' || r == '\u2029') { // line and paragraph separators break a line too
			return errors.Join(ErrInvalid, ErrControl)
		}
		i += n
	}
	return nil
}

// Describe says in words what Check or CheckLine refused, for a problem's field detail.
func Describe(err error) string {
	if errors.Is(err, ErrUTF8) {
		return "must be UTF-8 text"
	}
	return "must not contain control characters"
}

var rawMessageType = reflect.TypeOf(json.RawMessage(nil))

// Walk applies Check to every string reachable from v (a decoded request body: structs, pointers,
// slices, arrays, maps and their keys, interfaces, and the string members of json.RawMessage
// values) and returns the JSON path of the first one refused ("name", "actor.id", "items[2]",
// "payload"), or a nil error when every string passes. Struct members are named by their json
// tag. Its cost is one pass over what the body decoded to.
func Walk(v any) (path string, err error) {
	return walk(reflect.ValueOf(v), "")
}

func walk(v reflect.Value, path string) (string, error) {
	if !v.IsValid() {
		return "", nil
	}
	if v.Type() == rawMessageType {
		return walkRaw(v.Bytes(), path)
	}
	switch v.Kind() {
	case reflect.String:
		if err := Check(v.String()); err != nil {
			return path, err
		}
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			return walk(v.Elem(), path)
		}
	case reflect.Struct:
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			p := name
			if f.Anonymous && f.Tag.Get("json") == "" {
				p = path // embedded members are promoted
			} else if path != "" {
				p = path + "." + name
			}
			if bad, err := walk(v.Field(i), p); err != nil {
				return bad, err
			}
		}
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Uint8 {
			return "", nil // []byte decodes from base64: bytes, not text
		}
		for i := 0; i < v.Len(); i++ {
			if bad, err := walk(v.Index(i), path+"["+strconv.Itoa(i)+"]"); err != nil {
				return bad, err
			}
		}
	case reflect.Map:
		it := v.MapRange()
		for it.Next() {
			k := it.Key()
			p := join(path, keyString(k))
			if k.Kind() == reflect.String {
				if err := Check(k.String()); err != nil {
					return p, err
				}
			}
			if bad, err := walk(it.Value(), p); err != nil {
				return bad, err
			}
		}
	}
	return "", nil
}

func keyString(k reflect.Value) string {
	if k.Kind() == reflect.String {
		return k.String()
	}
	return "?"
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// walkRaw checks the member names and string values of a raw JSON value, read as sent (CheckJSON),
// and names the member that holds it. Malformed JSON is not this check's business (the decoder
// that produced it, or the member's own validation, refuses it).
func walkRaw(raw []byte, path string) (string, error) {
	if bytes.IndexByte(raw, '\\') < 0 {
		// No escapes: the bytes are the text. (Literal C0 controls are malformed JSON, but DEL,
		// C1 controls and bytes that are not UTF-8 can stand in a JSON string as they are.)
		if err := Check(string(raw)); err != nil {
			return path, err
		}
		return "", nil
	}
	if _, err := CheckJSON(raw, path); err != nil {
		return path, err
	}
	return "", nil
}
