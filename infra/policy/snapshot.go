// Package policy checks the resources a stack registers against the rules the
// platform promises: private networking, encryption and TLS, WORM retention of
// the audit archive, lifecycle rules, one database and topic per service,
// event-type filters, least-privilege role assignments, no secrets in stack
// outputs, tags and pinned provider versions.
//
// The checks read a Snapshot: every registered resource with its type token,
// logical name, provider ID and input properties, and the stack outputs. The
// tests take snapshots with pulumi.WithMocks; the expectations come from the
// stack's configuration, not from the program's code.
package policy

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Secret wraps a value that was registered as a Pulumi secret.
type Secret struct{ Value any }

// Resource is one registered resource.
type Resource struct {
	// Type is the type token ("azure-native:storage:StorageAccount").
	Type string
	// Name is the Pulumi logical name.
	Name string
	// ID is the provider ID the resource got.
	ID string
	// Inputs are the registered input properties; secrets are wrapped in Secret.
	Inputs map[string]any
	// Outputs are the resource's output properties.
	Outputs map[string]any
	// Version is the provider plugin version the resource was registered with.
	Version string
	// Protect reports whether the resource is protected from deletion.
	Protect bool
}

// Output is one stack output.
type Output struct {
	Value  any
	Secret bool
}

// Snapshot is everything a stack registered.
type Snapshot struct {
	Stack     string
	Resources []Resource
	Outputs   map[string]Output
}

// OfType returns the resources of a type, in registration order.
func (s *Snapshot) OfType(token string) []Resource {
	var out []Resource
	for _, r := range s.Resources {
		if r.Type == token {
			out = append(out, r)
		}
	}
	return out
}

// ByID returns the resource with a provider ID.
func (s *Snapshot) ByID(id string) (Resource, bool) {
	for _, r := range s.Resources {
		if r.ID == id {
			return r, true
		}
	}
	return Resource{}, false
}

// Clone returns a deep copy, for fixtures that break one rule on purpose.
func (s *Snapshot) Clone() *Snapshot {
	c := &Snapshot{Stack: s.Stack, Outputs: map[string]Output{}}
	for k, v := range s.Outputs {
		c.Outputs[k] = Output{Value: deepCopy(v.Value), Secret: v.Secret}
	}
	for _, r := range s.Resources {
		r.Inputs = deepCopy(r.Inputs).(map[string]any)
		r.Outputs = deepCopy(r.Outputs).(map[string]any)
		c.Resources = append(c.Resources, r)
	}
	return c
}

func deepCopy(v any) any {
	switch t := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(t))
		for k, e := range t {
			m[k] = deepCopy(e)
		}
		return m
	case []any:
		a := make([]any, len(t))
		for i, e := range t {
			a[i] = deepCopy(e)
		}
		return a
	case Secret:
		return Secret{Value: deepCopy(t.Value)}
	}
	return v
}

// lookup walks a dotted path ("encryption.services.blob.enabled") through
// objects, unwrapping secrets on the way.
func lookup(m map[string]any, path string) any {
	var cur any = m
	for _, part := range strings.Split(path, ".") {
		if s, ok := cur.(Secret); ok {
			cur = s.Value
		}
		obj, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = obj[part]
	}
	if s, ok := cur.(Secret); ok {
		return s.Value
	}
	return cur
}

// In returns an input property by dotted path (secrets unwrapped).
func (r Resource) In(path string) any { return lookup(r.Inputs, path) }

// Out returns an output property by dotted path (secrets unwrapped).
func (r Resource) Out(path string) any { return lookup(r.Outputs, path) }

// Str returns a string input property, or "".
func (r Resource) Str(path string) string {
	s, _ := r.In(path).(string)
	return s
}

// InputIsSecret reports whether the input property at path was registered as a
// secret (or sits inside one).
func (r Resource) InputIsSecret(path string) bool {
	var cur any = r.Inputs
	for _, part := range strings.Split(path, ".") {
		if _, ok := cur.(Secret); ok {
			return true
		}
		obj, ok := cur.(map[string]any)
		if !ok {
			return false
		}
		cur = obj[part]
	}
	_, ok := cur.(Secret)
	return ok
}

// String names the resource in messages.
func (r Resource) String() string { return fmt.Sprintf("%s %q", r.Type, r.Name) }

// mustEqual compares an input property with a wanted value.
func (r Resource) mustEqual(path string, want any) error {
	got := r.In(path)
	if f, ok := got.(float64); ok {
		if w, ok := want.(int); ok && f == float64(w) {
			return nil
		}
	}
	if got == want {
		return nil
	}
	return fmt.Errorf("%s: %s = %s, want %s", r, path, show(got), show(want))
}

func show(v any) string {
	if v == nil {
		return "<unset>"
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// strList returns a list input property of strings.
func (r Resource) strList(path string) []string {
	var out []string
	items, _ := r.In(path).([]any)
	for _, it := range items {
		if s, ok := it.(string); ok {
			out = append(out, s)
		}
	}
	return out
}
