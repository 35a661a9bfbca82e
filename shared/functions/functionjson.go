package functions

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// FunctionJSONFile is the name of the file the host reads in each function folder.
const FunctionJSONFile = "function.json"

// binding is one entry of function.json's bindings; field order is the order written.
type binding struct {
	AuthLevel        AuthLevel `json:"authLevel,omitempty"`
	Type             string    `json:"type"`
	Direction        string    `json:"direction"`
	Name             string    `json:"name"`
	Methods          []string  `json:"methods,omitempty"`
	Route            string    `json:"route,omitempty"`
	Schedule         string    `json:"schedule,omitempty"`
	RunOnStartup     *bool     `json:"runOnStartup,omitempty"`
	TopicName        string    `json:"topicName,omitempty"`
	SubscriptionName string    `json:"subscriptionName,omitempty"`
	Connection       string    `json:"connection,omitempty"`
	Cardinality      string    `json:"cardinality,omitempty"`
	DataType         string    `json:"dataType,omitempty"`
}

// FunctionJSON renders fn's function.json: deterministic, two-space indented, with a trailing newline.
// An HTTP function gets exactly an httpTrigger in ("req", methods in lower case) and an http out
// ("res"), the only shape the host forwards unchanged; a timer function a timerTrigger named
// TimerBinding; a Service Bus function a serviceBusTrigger named ServiceBusBinding. fn is validated
// as Registry.Add would (except for name uniqueness).
func FunctionJSON(fn Function) ([]byte, error) {
	if err := validate(fn); err != nil {
		return nil, err
	}
	var bs []binding
	switch {
	case fn.HTTP != nil:
		methods := make([]string, len(fn.HTTP.Methods))
		for i, m := range fn.HTTP.Methods {
			methods[i] = strings.ToLower(m)
		}
		bs = []binding{
			{AuthLevel: fn.HTTP.AuthLevel, Type: "httpTrigger", Direction: "in", Name: httpInBinding, Methods: methods, Route: fn.HTTP.Route},
			{Type: "http", Direction: "out", Name: httpOutBinding},
		}
	case fn.Timer != nil:
		runOnStartup := fn.Timer.RunOnStartup
		bs = []binding{{Type: "timerTrigger", Direction: "in", Name: TimerBinding,
			Schedule: strings.TrimSpace(fn.Timer.Schedule), RunOnStartup: &runOnStartup}}
	case fn.ServiceBus != nil:
		b := binding{Type: "serviceBusTrigger", Direction: "in", Name: ServiceBusBinding,
			TopicName: fn.ServiceBus.Topic, SubscriptionName: fn.ServiceBus.Subscription, Connection: fn.ServiceBus.Connection}
		if fn.ServiceBus.Cardinality == CardinalityMany {
			// dataType string: each body arrives as its text. Without it the host binds a batch as
			// object[] and parses every body as JSON, so one body that is not JSON fails the batch
			// before the handler sees it.
			b.Cardinality, b.DataType = string(CardinalityMany), "string"
		}
		bs = []binding{b}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(struct {
		Bindings []binding `json:"bindings"`
	}{bs}); err != nil {
		return nil, fmt.Errorf("function %q: encode function.json: %w", fn.Name, err)
	}
	return buf.Bytes(), nil // Encode ends with a newline
}

// WriteDir writes dir/<Name>/function.json for every function of r (creating dir if needed, leaving
// files whose content is already right untouched) and removes every folder directly under dir that
// holds a function.json but names no registered function. Stale folders are removed before files are
// written, so a rename that differs only in case is safe on case-insensitive file systems. Other
// files and folders are left alone.
func WriteDir(dir string, r *Registry) error {
	fns := r.Functions()
	want := make(map[string][]byte, len(fns))
	for _, fn := range fns {
		b, err := FunctionJSON(fn)
		if err != nil {
			return err
		}
		want[fn.Name] = b
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	existing, err := functionDirs(dir)
	if err != nil {
		return err
	}
	for _, name := range existing {
		if _, ok := want[name]; !ok {
			if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
				return fmt.Errorf("remove stale function folder: %w", err)
			}
		}
	}
	for _, fn := range fns {
		path := filepath.Join(dir, fn.Name, FunctionJSONFile)
		if cur, err := os.ReadFile(path); err == nil && bytes.Equal(cur, want[fn.Name]) {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, want[fn.Name], 0o644); err != nil {
			return err
		}
	}
	return nil
}

// CheckError reports how a functions folder differs from the registry. Each list holds function
// names, sorted.
type CheckError struct {
	Dir string
	// Missing functions are registered but have no function.json.
	Missing []string
	// Stale folders hold a function.json but name no registered function.
	Stale []string
	// Differing function.json files do not match what FunctionJSON generates.
	Differing []string
}

// Error lists every difference and says how to fix them.
func (e *CheckError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s is out of date with the function registry (run `make functions` to regenerate):", e.Dir)
	for _, g := range []struct {
		what  string
		names []string
	}{{"missing", e.Missing}, {"stale", e.Stale}, {"differs", e.Differing}} {
		for _, n := range g.names {
			fmt.Fprintf(&b, "\n  %s: %s", g.what, filepath.Join(n, FunctionJSONFile))
		}
	}
	return b.String()
}

// CheckDir compares dir with what WriteDir would write. It returns nil when they agree, a *CheckError
// listing every missing, stale or differing function.json when they do not, and another error when
// dir cannot be read or a function cannot be rendered. A dir that does not exist is treated as empty.
func CheckDir(dir string, r *Registry) error {
	ce := &CheckError{Dir: dir}
	registered := map[string]bool{}
	for _, fn := range r.Functions() {
		registered[fn.Name] = true
		want, err := FunctionJSON(fn)
		if err != nil {
			return err
		}
		got, err := os.ReadFile(filepath.Join(dir, fn.Name, FunctionJSONFile))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			ce.Missing = append(ce.Missing, fn.Name)
		case err != nil:
			return err
		case !bytes.Equal(got, want):
			ce.Differing = append(ce.Differing, fn.Name)
		}
	}
	existing, err := functionDirs(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	for _, name := range existing {
		if !registered[name] {
			ce.Stale = append(ce.Stale, name)
		}
	}
	if len(ce.Missing)+len(ce.Stale)+len(ce.Differing) == 0 {
		return nil
	}
	return ce
}

// functionDirs lists, sorted, the folders directly under dir that contain a function.json.
func functionDirs(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, e.Name(), FunctionJSONFile)); err == nil {
			out = append(out, e.Name())
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	slices.Sort(out)
	return out, nil
}
