package integrations

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"unicode/utf8"
)

// Schema is the subset of JSON Schema (draft 2020-12) the connectors' settings are declared in,
// validated by this package's own small, strict validator (no schema library: the subset is
// small, and a keyword outside it is refused when the schema is parsed, so a schema never means
// more than what is checked). The subset:
//
//   - type: "object", "string", "integer", "boolean" or "array" (one type, required);
//   - object: properties, required, and additionalProperties, which must be present and false
//     (settings never carry members the connector does not know);
//   - string: enum, pattern (RE2, Go's regexp syntax, unanchored as in JSON Schema), minLength,
//     maxLength (in characters), format "uri" (an absolute http or https URL with a host, no
//     user information, no fragment);
//   - integer: minimum, maximum;
//   - array: items, maxItems;
//   - title and description are annotations.
type Schema struct {
	Type                 string             `json:"type"`
	Title                string             `json:"title,omitempty"`
	Description          string             `json:"description,omitempty"`
	Properties           map[string]*Schema `json:"properties,omitempty"`
	Required             []string           `json:"required,omitempty"`
	AdditionalProperties *bool              `json:"additionalProperties,omitempty"`
	Enum                 []string           `json:"enum,omitempty"`
	Pattern              string             `json:"pattern,omitempty"`
	MinLength            *int               `json:"minLength,omitempty"`
	MaxLength            *int               `json:"maxLength,omitempty"`
	Format               string             `json:"format,omitempty"`
	Minimum              *int64             `json:"minimum,omitempty"`
	Maximum              *int64             `json:"maximum,omitempty"`
	Items                *Schema            `json:"items,omitempty"`
	MaxItems             *int               `json:"maxItems,omitempty"`

	re *regexp.Regexp
}

// ParseSchema reads a schema in the subset, refusing unknown keywords and inconsistent ones.
func ParseSchema(raw []byte) (*Schema, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var s Schema
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("integrations: schema: %w", err)
	}
	if err := s.compile("#"); err != nil {
		return nil, err
	}
	return &s, nil
}

// MustParseSchema is ParseSchema for the connectors' built-in schemas.
func MustParseSchema(raw string) *Schema {
	s, err := ParseSchema([]byte(raw))
	if err != nil {
		panic(err)
	}
	return s
}

func (s *Schema) compile(at string) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("integrations: schema %s: %s", at, fmt.Sprintf(format, args...))
	}
	switch s.Type {
	case "object":
		if s.AdditionalProperties == nil || *s.AdditionalProperties {
			return bad("an object must say additionalProperties: false")
		}
		for _, r := range s.Required {
			if s.Properties[r] == nil {
				return bad("required member %q is not a property", r)
			}
		}
		for _, k := range slices.Sorted(maps.Keys(s.Properties)) {
			if err := s.Properties[k].compile(at + "/properties/" + k); err != nil {
				return err
			}
		}
	case "string":
		if s.Pattern != "" {
			re, err := regexp.Compile(s.Pattern)
			if err != nil {
				return bad("pattern: %v", err)
			}
			s.re = re
		}
		if s.Format != "" && s.Format != "uri" {
			return bad("format %q is not supported (uri only)", s.Format)
		}
	case "array":
		if s.Items == nil {
			return bad("an array needs items")
		}
		if err := s.Items.compile(at + "/items"); err != nil {
			return err
		}
	case "integer", "boolean":
	default:
		return bad("type %q is not supported", s.Type)
	}
	if s.Type != "object" && (s.Properties != nil || s.Required != nil || s.AdditionalProperties != nil) {
		return bad("object keywords on a %s", s.Type)
	}
	if s.Type != "string" && (s.Enum != nil || s.Pattern != "" || s.MinLength != nil || s.MaxLength != nil || s.Format != "") {
		return bad("string keywords on a %s", s.Type)
	}
	if s.Type != "integer" && (s.Minimum != nil || s.Maximum != nil) {
		return bad("integer keywords on a %s", s.Type)
	}
	if s.Type != "array" && (s.Items != nil || s.MaxItems != nil) {
		return bad("array keywords on a %s", s.Type)
	}
	return nil
}

// Validate checks raw (a JSON document) against the schema; the error is a SettingsError
// (ErrInvalidSettings) naming the first member that fails, under the path root ("settings").
func (s *Schema) Validate(raw json.RawMessage, root string) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return &SettingsError{kind: ErrInvalidSettings, Path: root, Detail: "is not JSON"}
	}
	return s.validate(doc, root)
}

func (s *Schema) validate(v any, path string) error {
	fail := func(detail string) error { return &SettingsError{kind: ErrInvalidSettings, Path: path, Detail: detail} }
	switch s.Type {
	case "object":
		m, ok := v.(map[string]any)
		if !ok {
			return fail("must be an object")
		}
		for _, r := range s.Required {
			if _, ok := m[r]; !ok {
				return &SettingsError{kind: ErrInvalidSettings, Path: path + "." + r, Detail: "is required"}
			}
		}
		for _, k := range slices.Sorted(maps.Keys(m)) {
			p := s.Properties[k]
			if p == nil {
				return &SettingsError{kind: ErrInvalidSettings, Path: path + "." + k, Detail: "is not a setting of this connector type"}
			}
			if err := p.validate(m[k], path+"."+k); err != nil {
				return err
			}
		}
	case "string":
		str, ok := v.(string)
		if !ok {
			return fail("must be a string")
		}
		n := utf8.RuneCountInString(str)
		if s.MinLength != nil && n < *s.MinLength {
			return fail("must be at least " + strconv.Itoa(*s.MinLength) + " characters")
		}
		if s.MaxLength != nil && n > *s.MaxLength {
			return fail("must be at most " + strconv.Itoa(*s.MaxLength) + " characters")
		}
		if s.Enum != nil && !slices.Contains(s.Enum, str) {
			return fail("must be one of " + fmt.Sprint(s.Enum))
		}
		if s.re != nil && !s.re.MatchString(str) {
			return fail("does not match " + s.Pattern)
		}
		if s.Format == "uri" {
			if err := checkURI(str); err != nil {
				return fail(err.Error())
			}
		}
	case "integer":
		num, ok := v.(json.Number)
		if !ok {
			return fail("must be an integer")
		}
		i, err := strconv.ParseInt(num.String(), 10, 64)
		if err != nil {
			return fail("must be an integer")
		}
		if s.Minimum != nil && i < *s.Minimum {
			return fail("must be at least " + strconv.FormatInt(*s.Minimum, 10))
		}
		if s.Maximum != nil && i > *s.Maximum {
			return fail("must be at most " + strconv.FormatInt(*s.Maximum, 10))
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			return fail("must be true or false")
		}
	case "array":
		a, ok := v.([]any)
		if !ok {
			return fail("must be an array")
		}
		if s.MaxItems != nil && len(a) > *s.MaxItems {
			return fail("must have at most " + strconv.Itoa(*s.MaxItems) + " items")
		}
		for i, e := range a {
			if err := s.Items.validate(e, path+"["+strconv.Itoa(i)+"]"); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkURI is format "uri": an absolute http(s) URL with a host, without user information (a
// password never goes in a URL) or a fragment.
func checkURI(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return errors.New("must be a URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return errors.New("must be an http or https URL")
	case u.Host == "" || u.Hostname() == "":
		return errors.New("must name a host")
	case u.User != nil:
		return errors.New("must not carry user information (use the secret member)")
	case u.Fragment != "" || u.RawFragment != "":
		return errors.New("must not have a fragment")
	}
	return nil
}
