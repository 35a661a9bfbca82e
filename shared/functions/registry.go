// Package functions implements Spine's side of the Azure Functions custom-handler protocol
// (DESIGN.md §3): the registry in which each owning service declares its functions, the generation
// and checking of functions/<Name>/function.json, the decoding of the host's invocation requests
// (POST /<FunctionName> with {"Data":…,"Metadata":…}) and the encoding of the handler's answer, the
// echo wiring that serves those invocations, and the standalone-mode pieces that play the host's part
// when no host runs: an in-process invoker and a timer scheduler.
//
// Forwarded HTTP functions (an httpTrigger in and an http out, with enableProxyingHttpRequest) are
// only declared here so their function.json is generated; the host forwards the original request and
// echo's own routes serve it. Timer and Service Bus functions are served by Mount.
package functions

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/robfig/cron/v3"
)

// AuthLevel is an httpTrigger's authLevel: which Functions key, if any, the host demands before it
// forwards a request.
type AuthLevel string

// The authorization levels the host knows.
const (
	AuthAnonymous AuthLevel = "anonymous"
	AuthFunction  AuthLevel = "function"
	AuthAdmin     AuthLevel = "admin"
)

// Binding names used in generated function.json files and in the invocation's Data and Metadata.
const (
	// TimerBinding is the name of a timer function's trigger binding, the key of its Data.
	TimerBinding = "timer"
	// ServiceBusBinding is the name of a Service Bus function's trigger binding, the key of its Data.
	ServiceBusBinding = "message"

	httpInBinding  = "req"
	httpOutBinding = "res"
)

// Trigger kinds as returned by Function.Kind and written in logs.
const (
	KindHTTP       = "http"
	KindTimer      = "timer"
	KindServiceBus = "serviceBus"
)

// HTTPTrigger declares a forwarded HTTP function. The host forwards matching requests, unchanged, to
// the handler at their original path (/api/<Route>), where echo's routes serve them.
type HTTPTrigger struct {
	// Route is the route template under the host's route prefix, without a leading slash,
	// typically a catch-all such as "tenants/{*rest}".
	Route string
	// Methods lists the HTTP methods the host forwards (case-insensitive, at least one).
	Methods []string
	// AuthLevel is required; Spine's APIs authenticate tokens themselves and use AuthAnonymous.
	AuthLevel AuthLevel
}

// TimerTrigger declares a timer function.
type TimerTrigger struct {
	// Schedule is a six-field NCRONTAB expression: {second} {minute} {hour} {day} {month} {day-of-week},
	// evaluated in UTC. Time-zone prefixes (TZ=, CRON_TZ=) and descriptors (@every) are refused.
	Schedule string
	// RunOnStartup also runs the function once when the host (or the standalone Scheduler) starts.
	RunOnStartup bool
}

// ServiceBusTrigger declares a function triggered by messages of a topic subscription.
type ServiceBusTrigger struct {
	Topic        string
	Subscription string
	// Connection is the app setting name prefix the host resolves the namespace from
	// (e.g. "ServiceBusConnection" → ServiceBusConnection__fullyQualifiedNamespace).
	Connection string
	// EventTypes are the event types the subscription's filter lets through (nil: every type). In
	// Azure the subscription's SQL filter on the eventType property does this (infra/); locally the
	// in-process transport applies it. It is not part of function.json.
	EventTypes []string
	// Cardinality is CardinalityOne (the zero value: one message per invocation) or
	// CardinalityMany: the host hands the function a batch of messages per invocation
	// (function.json "cardinality": "many", "dataType": "string"; the batch's shape is
	// Invocation.Payloads' and ServiceBusBatch's), and settles the batch as a whole: a non-2xx
	// answer abandons every message of it. The in-process transport delivers batches the same way.
	Cardinality Cardinality
}

// Cardinality is how many messages a Service Bus-triggered invocation carries.
type Cardinality string

// The cardinalities of a Service Bus trigger.
const (
	CardinalityOne  Cardinality = ""
	CardinalityMany Cardinality = "many"
)

// InvocationHandler runs one invocation of a timer or Service Bus function. A non-nil error fails the
// invocation: Mount returns it to echo, whose problem handler answers non-2xx, and the host (or the
// standalone transport) treats the invocation as failed (Service Bus retries, then dead-letters).
// The context carries the invocation (FromContext) and is cancelled if the host's request goes away.
type InvocationHandler func(ctx context.Context, inv *Invocation) (*Result, error)

// Function declares one Azure Function. Exactly one of HTTP, Timer and ServiceBus is set.
type Function struct {
	// Name is the function's name: PascalCase ASCII letters and digits, at most 128 characters,
	// unique in the registry regardless of case. It names the functions/<Name> folder and, for timer and
	// Service Bus functions, the path the host posts invocations to (POST /<Name>).
	Name       string
	HTTP       *HTTPTrigger
	Timer      *TimerTrigger
	ServiceBus *ServiceBusTrigger
	// Handler serves timer and Service Bus invocations and is required for them; it must be nil for
	// HTTP functions, which echo routes serve.
	Handler InvocationHandler
	// MaxBodyBytes bounds the invocation request body Mount accepts; 0 means DefaultMaxBodyBytes.
	// It is not part of function.json.
	MaxBodyBytes int64
}

// Kind returns KindHTTP, KindTimer or KindServiceBus according to the trigger that is set, or "" if none is.
func (f Function) Kind() string {
	switch {
	case f.HTTP != nil:
		return KindHTTP
	case f.Timer != nil:
		return KindTimer
	case f.ServiceBus != nil:
		return KindServiceBus
	}
	return ""
}

// clone copies f's trigger structs so the registry never shares mutable state with its callers.
func (f Function) clone() Function {
	if f.HTTP != nil {
		h := *f.HTTP
		h.Methods = slices.Clone(h.Methods)
		f.HTTP = &h
	}
	if f.Timer != nil {
		t := *f.Timer
		f.Timer = &t
	}
	if f.ServiceBus != nil {
		s := *f.ServiceBus
		f.ServiceBus = &s
	}
	return f
}

// Registry holds the declared functions. The zero value is an empty registry ready to use. It is safe
// for concurrent use; services add their functions at start-up, before the registry is mounted,
// scheduled or written out (Mount, Scheduler.Run and WriteDir read it once, when called).
type Registry struct {
	mu  sync.RWMutex
	fns map[string]Function // by exact name
}

// Add validates fns and adds them all, or, if any is invalid or any name is already taken (compared
// case-insensitively, within fns too), adds none and returns an error naming every problem.
//
// Validation: the name's syntax and uniqueness; exactly one trigger; an HTTP trigger's non-empty
// route without a leading slash, at least one valid method without duplicates, and a known auth
// level; a timer's schedule parses as six-field NCRONTAB and fires at least once; a Service Bus
// trigger's non-empty topic, subscription and connection; a handler for timer and Service Bus
// functions and none for HTTP ones; a non-negative MaxBodyBytes.
func (r *Registry) Add(fns ...Function) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	taken := make(map[string]string, len(r.fns)+len(fns))
	for name := range r.fns {
		taken[strings.ToLower(name)] = name
	}
	var errs []error
	for _, fn := range fns {
		if err := validate(fn); err != nil {
			errs = append(errs, err)
			continue
		}
		if prev, ok := taken[strings.ToLower(fn.Name)]; ok {
			errs = append(errs, fmt.Errorf("function %q: name already registered as %q", fn.Name, prev))
			continue
		}
		taken[strings.ToLower(fn.Name)] = fn.Name
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if r.fns == nil {
		r.fns = make(map[string]Function, len(fns))
	}
	for _, fn := range fns {
		r.fns[fn.Name] = fn.clone()
	}
	return nil
}

// Functions returns copies of the registered functions, sorted by name.
func (r *Registry) Functions() []Function {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]Function, 0, len(r.fns))
	for _, fn := range r.fns {
		out = append(out, fn.clone())
	}
	slices.SortFunc(out, func(a, b Function) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Lookup returns a copy of the function registered under exactly name.
func (r *Registry) Lookup(name string) (Function, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	fn, ok := r.fns[name]
	if !ok {
		return Function{}, false
	}
	return fn.clone(), true
}

var (
	nameRE       = regexp.MustCompile(`^[A-Z][A-Za-z0-9]{0,127}$`)
	connectionRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)
	httpMethods  = []string{"get", "post", "put", "patch", "delete", "head", "options", "trace"}
	authLevels   = []AuthLevel{AuthAnonymous, AuthFunction, AuthAdmin}

	// cronParser parses six-field NCRONTAB schedules.
	cronParser = cron.NewParser(cron.Second | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow)
	// scheduleProbe is the fixed instant from which Add checks that a schedule fires at all
	// (a leap year, so "29 2" schedules pass).
	scheduleProbe = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
)

// parseSchedule parses a six-field NCRONTAB schedule evaluated in UTC.
func parseSchedule(spec string) (cron.Schedule, error) {
	trimmed := strings.TrimSpace(spec)
	if strings.HasPrefix(trimmed, "TZ=") || strings.HasPrefix(trimmed, "CRON_TZ=") {
		return nil, errors.New("time-zone prefixes are not NCRONTAB; schedules run in UTC")
	}
	s, err := cronParser.Parse(trimmed)
	if err != nil {
		return nil, err
	}
	spec6, ok := s.(*cron.SpecSchedule)
	if !ok {
		return nil, fmt.Errorf("unsupported schedule %q", spec)
	}
	spec6.Location = time.UTC
	if spec6.Next(scheduleProbe).IsZero() {
		return nil, errors.New("schedule never fires")
	}
	return spec6, nil
}

func validate(fn Function) error {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("function %q: %s", fn.Name, fmt.Sprintf(format, args...))
	}
	if !nameRE.MatchString(fn.Name) {
		return fail("name must be PascalCase ASCII letters and digits, at most 128 characters")
	}
	if fn.MaxBodyBytes < 0 {
		return fail("MaxBodyBytes must not be negative")
	}
	triggers := 0
	for _, set := range []bool{fn.HTTP != nil, fn.Timer != nil, fn.ServiceBus != nil} {
		if set {
			triggers++
		}
	}
	if triggers != 1 {
		return fail("exactly one of HTTP, Timer and ServiceBus must be set, got %d", triggers)
	}
	switch {
	case fn.HTTP != nil:
		h := fn.HTTP
		if fn.Handler != nil {
			return fail("HTTP functions are served by echo routes; Handler must be nil")
		}
		if strings.TrimSpace(h.Route) == "" {
			return fail("HTTP route is empty")
		}
		if strings.HasPrefix(h.Route, "/") {
			return fail("HTTP route %q must not start with '/'; the host adds its route prefix", h.Route)
		}
		if p, reserved := reservedRoutePrefix(h.Route); reserved {
			return fail("HTTP route %q starts with %q, which the Functions host reserves for its built-in routes (it refuses to load such a function)", h.Route, p)
		}
		if len(h.Methods) == 0 {
			return fail("HTTP trigger needs at least one method")
		}
		seen := map[string]bool{}
		for _, m := range h.Methods {
			lm := strings.ToLower(m)
			if !slices.Contains(httpMethods, lm) {
				return fail("HTTP method %q is not one of %s", m, strings.Join(httpMethods, ", "))
			}
			if seen[lm] {
				return fail("HTTP method %q is listed twice", m)
			}
			seen[lm] = true
		}
		if !slices.Contains(authLevels, h.AuthLevel) {
			return fail("HTTP auth level %q is not anonymous, function or admin", h.AuthLevel)
		}
	case fn.Timer != nil:
		if fn.Handler == nil {
			return fail("timer functions need a Handler")
		}
		if _, err := parseSchedule(fn.Timer.Schedule); err != nil {
			return fail("timer schedule %q is not six-field NCRONTAB: %v", fn.Timer.Schedule, err)
		}
	case fn.ServiceBus != nil:
		sb := fn.ServiceBus
		if fn.Handler == nil {
			return fail("Service Bus functions need a Handler")
		}
		for _, f := range []struct{ name, v string }{{"topic", sb.Topic}, {"subscription", sb.Subscription}} {
			if strings.TrimSpace(f.v) == "" || strings.ContainsAny(f.v, " \t\r\n") {
				return fail("Service Bus %s %q is empty or contains white space", f.name, f.v)
			}
		}
		if !connectionRE.MatchString(sb.Connection) {
			return fail("Service Bus connection %q is not an app setting name prefix", sb.Connection)
		}
		if sb.Cardinality != CardinalityOne && sb.Cardinality != CardinalityMany {
			return fail("Service Bus cardinality %q is neither one nor many", sb.Cardinality)
		}
	}
	return nil
}

// reservedRoutePrefixes are the route beginnings the Functions host keeps for itself, whatever the
// route prefix: it refuses a function whose route starts with one ("The specified route conflicts
// with one or more built in routes"), compared without case and after trimming '/'.
var reservedRoutePrefixes = []string{"admin", "runtime"}

func reservedRoutePrefix(route string) (string, bool) {
	r := strings.ToLower(strings.Trim(route, "/"))
	for _, p := range reservedRoutePrefixes {
		if strings.HasPrefix(r, p) {
			return p, true
		}
	}
	return "", false
}
