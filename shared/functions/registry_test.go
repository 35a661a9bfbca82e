package functions

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func nopHandler(context.Context, *Invocation) (*Result, error) { return nil, nil }

func httpFn() Function {
	return Function{Name: "TenantsApi", HTTP: &HTTPTrigger{Route: "tenants/{*rest}", Methods: []string{"GET", "post"}, AuthLevel: AuthAnonymous}}
}

func timerFn() Function {
	return Function{Name: "OutboxDrain", Timer: &TimerTrigger{Schedule: "0 */5 * * * *"}, Handler: nopHandler}
}

func sbFn() Function {
	return Function{Name: "AuditOnEvent", ServiceBus: &ServiceBusTrigger{Topic: "tenants", Subscription: "audit", Connection: "ServiceBusConnection"}, Handler: nopHandler}
}

func TestRegistryValidation(t *testing.T) {
	tests := []struct {
		name    string
		fn      func() Function
		wantErr string // substring; "" means valid
	}{
		{"http ok", httpFn, ""},
		{"timer ok", timerFn, ""},
		{"service bus ok", sbFn, ""},
		{"all http methods and auth levels", func() Function {
			f := httpFn()
			f.HTTP.Methods = []string{"get", "post", "put", "patch", "delete", "head", "options", "trace"}
			f.HTTP.AuthLevel = AuthAdmin
			return f
		}, ""},
		{"timer with day names and run on startup", func() Function {
			f := timerFn()
			f.Timer = &TimerTrigger{Schedule: "0 30 9 * * MON-FRI", RunOnStartup: true}
			return f
		}, ""},
		{"leap day schedule", func() Function { f := timerFn(); f.Timer.Schedule = "0 0 0 29 2 *"; return f }, ""},
		{"empty name", func() Function { f := timerFn(); f.Name = ""; return f }, "PascalCase"},
		{"lower-case name", func() Function { f := timerFn(); f.Name = "outboxDrain"; return f }, "PascalCase"},
		{"name with dash", func() Function { f := timerFn(); f.Name = "Outbox-Drain"; return f }, "PascalCase"},
		{"name too long", func() Function { f := timerFn(); f.Name = "A" + strings.Repeat("b", 128); return f }, "PascalCase"},
		{"no trigger", func() Function { return Function{Name: "Nothing", Handler: nopHandler} }, "exactly one"},
		{"two triggers", func() Function { f := timerFn(); f.ServiceBus = sbFn().ServiceBus; return f }, "exactly one"},
		{"http with handler", func() Function { f := httpFn(); f.Handler = nopHandler; return f }, "Handler must be nil"},
		{"http empty route", func() Function { f := httpFn(); f.HTTP.Route = " "; return f }, "route is empty"},
		{"http leading slash", func() Function { f := httpFn(); f.HTTP.Route = "/tenants"; return f }, "must not start"},
		{"http route reserved: admin", func() Function { f := httpFn(); f.HTTP.Route = "admin/{*rest}"; return f }, "reserves"},
		{"http route reserved: Admin without case", func() Function { f := httpFn(); f.HTTP.Route = "Admin"; return f }, "reserves"},
		{"http route reserved: administration", func() Function { f := httpFn(); f.HTTP.Route = "administration/{*rest}"; return f }, "reserves"},
		{"http route reserved: runtime", func() Function { f := httpFn(); f.HTTP.Route = "runtime/webhooks"; return f }, "reserves"},
		{"http route not reserved: ops", func() Function { f := httpFn(); f.HTTP.Route = "ops/{*rest}"; return f }, ""},
		{"http route not reserved: admin later", func() Function { f := httpFn(); f.HTTP.Route = "tenants/admin"; return f }, ""},
		{"http no methods", func() Function { f := httpFn(); f.HTTP.Methods = nil; return f }, "at least one method"},
		{"http bad method", func() Function { f := httpFn(); f.HTTP.Methods = []string{"get", "fetch"}; return f }, `"fetch"`},
		{"http duplicate method", func() Function { f := httpFn(); f.HTTP.Methods = []string{"get", "GET"}; return f }, "twice"},
		{"http no auth level", func() Function { f := httpFn(); f.HTTP.AuthLevel = ""; return f }, "auth level"},
		{"http bad auth level", func() Function { f := httpFn(); f.HTTP.AuthLevel = "user"; return f }, "auth level"},
		{"timer without handler", func() Function { f := timerFn(); f.Handler = nil; return f }, "need a Handler"},
		{"timer five fields", func() Function { f := timerFn(); f.Timer.Schedule = "*/5 * * * *"; return f }, "NCRONTAB"},
		{"timer seven fields", func() Function { f := timerFn(); f.Timer.Schedule = "0 0 0 * * * 2026"; return f }, "NCRONTAB"},
		{"timer garbage", func() Function { f := timerFn(); f.Timer.Schedule = "every five minutes"; return f }, "NCRONTAB"},
		{"timer empty", func() Function { f := timerFn(); f.Timer.Schedule = ""; return f }, "NCRONTAB"},
		{"timer out of range", func() Function { f := timerFn(); f.Timer.Schedule = "61 * * * * *"; return f }, "NCRONTAB"},
		{"timer descriptor", func() Function { f := timerFn(); f.Timer.Schedule = "@every 5s"; return f }, "NCRONTAB"},
		{"timer time zone", func() Function { f := timerFn(); f.Timer.Schedule = "TZ=Europe/Paris 0 0 0 * * *"; return f }, "UTC"},
		{"timer time zone without fields", func() Function { f := timerFn(); f.Timer.Schedule = "TZ=UTC"; return f }, "UTC"},
		{"timer never fires", func() Function { f := timerFn(); f.Timer.Schedule = "0 0 0 30 2 *"; return f }, "never fires"},
		{"service bus without handler", func() Function { f := sbFn(); f.Handler = nil; return f }, "need a Handler"},
		{"service bus no topic", func() Function { f := sbFn(); f.ServiceBus.Topic = ""; return f }, "topic"},
		{"service bus no subscription", func() Function { f := sbFn(); f.ServiceBus.Subscription = "  "; return f }, "subscription"},
		{"service bus no connection", func() Function { f := sbFn(); f.ServiceBus.Connection = ""; return f }, "connection"},
		{"service bus connection with spaces", func() Function { f := sbFn(); f.ServiceBus.Connection = "Service Bus"; return f }, "connection"},
		{"negative body limit", func() Function { f := sbFn(); f.MaxBodyBytes = -1; return f }, "MaxBodyBytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r Registry
			err := r.Add(tt.fn())
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Add: %v", err)
				}
				if len(r.Functions()) != 1 {
					t.Fatalf("Functions() = %v", r.Functions())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Add error = %v, want one containing %q", err, tt.wantErr)
			}
			if len(r.Functions()) != 0 {
				t.Fatal("an invalid function was registered")
			}
		})
	}
}

func TestRegistryUniquenessOrderAndIsolation(t *testing.T) {
	var r Registry
	if err := r.Add(timerFn(), sbFn()); err != nil {
		t.Fatal(err)
	}
	// A clash (even in case only) rejects the whole batch.
	clash := sbFn()
	clash.Name = "OUTBOXDRAIN"
	err := r.Add(httpFn(), clash)
	if err == nil || !strings.Contains(err.Error(), "already registered") {
		t.Fatalf("Add with a clashing name = %v", err)
	}
	if _, ok := r.Lookup("TenantsApi"); ok {
		t.Fatal("a batch with an invalid function was partly added")
	}
	// Duplicates within one batch are caught too.
	if err := r.Add(httpFn(), httpFn()); err == nil {
		t.Fatal("duplicate names in one batch were accepted")
	}
	// Every problem of a batch is reported.
	bad1, bad2 := timerFn(), sbFn()
	bad1.Name, bad2.Name = "x", "y"
	if err := r.Add(bad1, bad2); err == nil || !strings.Contains(err.Error(), `"x"`) || !strings.Contains(err.Error(), `"y"`) {
		t.Fatalf("Add of two invalid functions = %v, want both named", err)
	}
	if err := r.Add(httpFn()); err != nil {
		t.Fatal(err)
	}

	names := []string{}
	for _, fn := range r.Functions() {
		names = append(names, fn.Name)
	}
	if want := []string{"AuditOnEvent", "OutboxDrain", "TenantsApi"}; !slices.Equal(names, want) {
		t.Fatalf("Functions() names = %v, want %v", names, want)
	}

	if _, ok := r.Lookup("outboxdrain"); ok {
		t.Fatal("Lookup is exact; it must not match another case")
	}
	fn, ok := r.Lookup("TenantsApi")
	if !ok || fn.Kind() != KindHTTP {
		t.Fatalf("Lookup = %+v, %v", fn, ok)
	}
	// Mutating what the registry returned must not change the registry.
	fn.HTTP.Methods[0] = "delete"
	fn.HTTP.Route = "other"
	again, _ := r.Lookup("TenantsApi")
	if again.HTTP.Route != "tenants/{*rest}" || again.HTTP.Methods[0] != "GET" {
		t.Fatalf("registry state changed through a returned copy: %+v", again.HTTP)
	}
	// Nor must mutating what was passed in.
	in := timerFn()
	in.Name = "Other"
	if err := r.Add(in); err != nil {
		t.Fatal(err)
	}
	in.Timer.Schedule = "bogus"
	if got, _ := r.Lookup("Other"); got.Timer.Schedule != "0 */5 * * * *" {
		t.Fatalf("registry shares the caller's trigger: %q", got.Timer.Schedule)
	}
	if sbFn().Kind() != KindServiceBus || timerFn().Kind() != KindTimer || (Function{}).Kind() != "" {
		t.Fatal("Kind is wrong")
	}
}

func TestFunctionJSONGolden(t *testing.T) {
	compact := map[string]string{
		"TenantsApi":   `{"bindings":[{"authLevel":"anonymous","type":"httpTrigger","direction":"in","name":"req","methods":["get","post"],"route":"tenants/{*rest}"},{"type":"http","direction":"out","name":"res"}]}`,
		"OutboxDrain":  `{"bindings":[{"type":"timerTrigger","direction":"in","name":"timer","schedule":"0 */5 * * * *","runOnStartup":false}]}`,
		"AuditOnEvent": `{"bindings":[{"type":"serviceBusTrigger","direction":"in","name":"message","topicName":"tenants","subscriptionName":"audit","connection":"ServiceBusConnection"}]}`,
	}
	for _, fn := range []Function{httpFn(), timerFn(), sbFn()} {
		t.Run(fn.Name, func(t *testing.T) {
			got, err := FunctionJSON(fn)
			if err != nil {
				t.Fatal(err)
			}
			want := readTestdata(t, filepath.Join("functionjson", fn.Name+".json"))
			if !bytes.Equal(got, want) {
				t.Fatalf("FunctionJSON\n got:\n%s\nwant:\n%s", got, want)
			}
			var buf bytes.Buffer
			if err := json.Compact(&buf, got); err != nil {
				t.Fatal(err)
			}
			if buf.String() != compact[fn.Name] {
				t.Fatalf("compact FunctionJSON\n got %s\nwant %s", buf.String(), compact[fn.Name])
			}
			again, _ := FunctionJSON(fn)
			if !bytes.Equal(got, again) {
				t.Fatal("FunctionJSON is not deterministic")
			}
		})
	}
	t.Run("run on startup", func(t *testing.T) {
		fn := timerFn()
		fn.Timer.RunOnStartup = true
		got, err := FunctionJSON(fn)
		if err != nil || !bytes.Contains(got, []byte(`"runOnStartup": true`)) {
			t.Fatalf("FunctionJSON = %s, %v", got, err)
		}
	})
	t.Run("invalid", func(t *testing.T) {
		fn := timerFn()
		fn.Timer.Schedule = "nope"
		if _, err := FunctionJSON(fn); err == nil {
			t.Fatal("FunctionJSON rendered an invalid function")
		}
	})
}

func TestWriteDirAndCheckDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "functions")
	var r Registry
	if err := r.Add(httpFn(), timerFn(), sbFn()); err != nil {
		t.Fatal(err)
	}

	// Nothing written yet: everything is missing.
	var ce *CheckError
	if err := CheckDir(dir, &r); !errors.As(err, &ce) || len(ce.Missing) != 3 || len(ce.Stale)+len(ce.Differing) != 0 {
		t.Fatalf("CheckDir of an absent dir = %v", err)
	}

	// A stale function folder, an unrelated folder and an unrelated file.
	mustWrite(t, filepath.Join(dir, "OldFunction", FunctionJSONFile), "{}\n")
	mustWrite(t, filepath.Join(dir, "OldFunction", "notes.txt"), "x")
	mustWrite(t, filepath.Join(dir, "shared", "readme.md"), "keep me")
	mustWrite(t, filepath.Join(dir, "host.json"), "{}")

	if err := WriteDir(dir, &r); err != nil {
		t.Fatal(err)
	}
	if err := CheckDir(dir, &r); err != nil {
		t.Fatalf("CheckDir after WriteDir: %v", err)
	}
	for _, fn := range r.Functions() {
		got := readFile(t, filepath.Join(dir, fn.Name, FunctionJSONFile))
		if want := readTestdata(t, filepath.Join("functionjson", fn.Name+".json")); got != string(want) {
			t.Fatalf("%s/function.json = %s", fn.Name, got)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "OldFunction")); !os.IsNotExist(err) {
		t.Fatalf("stale folder not removed: %v", err)
	}
	if readFile(t, filepath.Join(dir, "shared", "readme.md")) != "keep me" || readFile(t, filepath.Join(dir, "host.json")) != "{}" {
		t.Fatal("WriteDir touched files that are not function folders")
	}

	// Drift of every kind is reported at once.
	mustWrite(t, filepath.Join(dir, "OutboxDrain", FunctionJSONFile), `{"bindings":[]}`)
	if err := os.RemoveAll(filepath.Join(dir, "AuditOnEvent")); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, filepath.Join(dir, "Gone", FunctionJSONFile), "{}")
	err := CheckDir(dir, &r)
	if !errors.As(err, &ce) {
		t.Fatalf("CheckDir = %v, want a *CheckError", err)
	}
	if !slices.Equal(ce.Missing, []string{"AuditOnEvent"}) || !slices.Equal(ce.Stale, []string{"Gone"}) || !slices.Equal(ce.Differing, []string{"OutboxDrain"}) {
		t.Fatalf("CheckError = %+v", ce)
	}
	msg := err.Error()
	for _, s := range []string{"make functions", "missing: AuditOnEvent", "stale: Gone", "differs: OutboxDrain"} {
		if !strings.Contains(msg, s) {
			t.Fatalf("CheckDir message %q lacks %q", msg, s)
		}
	}

	// WriteDir repairs all of it.
	if err := WriteDir(dir, &r); err != nil {
		t.Fatal(err)
	}
	if err := CheckDir(dir, &r); err != nil {
		t.Fatalf("CheckDir after repair: %v", err)
	}

	// An empty registry against an empty dir agrees; against a function folder it is stale.
	var empty Registry
	if err := CheckDir(filepath.Join(t.TempDir(), "none"), &empty); err != nil {
		t.Fatalf("CheckDir(empty) = %v", err)
	}
	if err := CheckDir(dir, &empty); !errors.As(err, &ce) || len(ce.Stale) != 3 {
		t.Fatalf("CheckDir(empty registry) = %v", err)
	}
}

func mustWrite(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
