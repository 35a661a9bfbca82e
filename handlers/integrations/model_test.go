package integrations

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"testing"

	"spine/shared/contracts"
	"spine/shared/secrets"
)

// The type-level guarantee: the connection model — its row type, every JSON answer, every event
// — has no member able to hold a secret value. The only types that hold one are secretInput (the
// request's, on its way to the vault) and secrets.Secret (read from the vault for a call); no model
// type contains either, at any depth.
func TestModel_NoTypeCanHoldASecretValue(t *testing.T) {
	forbidden := []reflect.Type{reflect.TypeFor[secretInput](), reflect.TypeFor[secrets.Secret]()}
	models := []reflect.Type{
		reflect.TypeFor[Connection](), reflect.TypeFor[connectionJSON](), reflect.TypeFor[testJSON](),
		reflect.TypeFor[contracts.IntegrationData](), reflect.TypeFor[contracts.IntegrationTestedData](),
		reflect.TypeFor[contracts.IntegrationSyncRequestedData](), reflect.TypeFor[SecretRef](), reflect.TypeFor[secretRefJSON](),
	}
	for _, m := range models {
		if path, ok := holds(m, forbidden, m.Name(), map[reflect.Type]bool{}); ok {
			t.Errorf("%s holds a secret value at %s", m, path)
		}
	}
	// And the secret reference holds names only: its members are the vault, the name, the version.
	if n := reflect.TypeFor[SecretRef]().NumField(); n != 3 {
		t.Errorf("SecretRef has %d members", n)
	}
}

func holds(t reflect.Type, forbidden []reflect.Type, path string, seen map[reflect.Type]bool) (string, bool) {
	for _, f := range forbidden {
		if t == f {
			return path, true
		}
	}
	if seen[t] {
		return "", false
	}
	seen[t] = true
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Array, reflect.Map:
		return holds(t.Elem(), forbidden, path+"[]", seen)
	case reflect.Struct:
		for i := range t.NumField() {
			if p, ok := holds(t.Field(i).Type, forbidden, path+"."+t.Field(i).Name, seen); ok {
				return p, true
			}
		}
	case reflect.Interface:
		return path + " (an interface)", true
	}
	return "", false
}

// secretInput masks its value in every way of printing, logging or encoding it.
func TestSecretInput_MaskedInStringFormatLogsAndJSON(t *testing.T) {
	var s secretInput
	if err := json.Unmarshal([]byte(`"tok-visible-nowhere"`), &s); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("x", "secret", s, "ptr", &s)
	slog.New(slog.NewTextHandler(&logs, nil)).Info("x", "secret", s)
	j, _ := json.Marshal(struct{ S secretInput }{s})
	out := strings.Join([]string{s.String(), s.GoString(), fmt.Sprintf("%v %+v %#v %s %q %x", s, s, s, s, s, s),
		fmt.Sprint(s), fmt.Sprintf("%v", &s), logs.String(), string(j)}, "\n")
	if strings.Contains(out, "tok-visible-nowhere") {
		t.Errorf("the value shows:\n%s", out)
	}
	if s.value != "tok-visible-nowhere" {
		t.Error("the value was not read")
	}
}
