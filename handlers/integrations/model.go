package integrations

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"reflect"
	"time"

	"spine/shared/text"
)

// service is the service's name: its database, topic and cache keys.
const service = "integrations"

// Status is a connection's health: Untested until its check or a sync ran, then Healthy or
// Failing; Disabled while a caller switched it off (no check, no sync).
type Status string

// The statuses.
const (
	StatusUntested Status = "Untested"
	StatusHealthy  Status = "Healthy"
	StatusFailing  Status = "Failing"
	StatusDisabled Status = "Disabled"
)

// SecretRef is where a connection's secret lives: the vault's URL, the secret's name
// (integration-<tenant>-<id>) and the version in use. It is a reference only; the value is read
// from Key Vault when a check or a sync needs it and is never held by the model.
type SecretRef struct {
	Vault, Name, Version string
}

// Connection is a tenant's connection to an outside system, as stored. It has no member able to
// hold a secret value: the secret is a SecretRef, and Settings are the connector's non-secret
// settings, refused on the way in when they look like a secret (CheckSettings).
type Connection struct {
	ID       string
	Type     string
	Name     string
	Settings json.RawMessage
	Secret   SecretRef
	Status   Status
	// LastTestedAt and LastSyncAt are nil until the first check or sync.
	LastTestedAt, LastSyncAt *time.Time
	// LastErrorClass is the class of the last check's or sync's failure ("" after a success).
	LastErrorClass string
	Version        int64
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// secretName is the Key Vault name of a connection's secret.
func secretName(tenant, id string) string { return "integration-" + tenant + "-" + id }

// secretInput is a secret value a caller sends once (create, rotate), on its way to Key Vault. It
// is the only type in the package that holds a secret value, used in the two request bodies only
// and handed straight to the vault; every way of printing, logging or encoding it masks the value.
type secretInput struct{ value string }

// maxSecretBytes is Key Vault's limit on a secret's value (25 KiB).
const maxSecretBytes = 25600

const masked = "***"

// UnmarshalJSON reads a JSON string.
func (s *secretInput) UnmarshalJSON(b []byte) error {
	var v string
	if err := json.Unmarshal(b, &v); err != nil {
		// A type error names the member at the edge like any other (never the value).
		return &json.UnmarshalTypeError{Value: jsonKind(b), Type: reflect.TypeFor[string]()}
	}
	s.value = v
	return nil
}

// String masks the value.
func (s secretInput) String() string { return masked }

// GoString masks the value (%#v).
func (s secretInput) GoString() string { return masked }

// Format makes every fmt verb print the mask.
func (s secretInput) Format(f fmt.State, _ rune) { fmt.Fprint(f, masked) }

// LogValue implements slog.LogValuer: the mask.
func (s secretInput) LogValue() slog.Value { return slog.StringValue(masked) }

// MarshalJSON writes the mask.
func (s secretInput) MarshalJSON() ([]byte, error) { return json.Marshal(masked) }

// check validates the value: present, at most Key Vault's 25 KiB, text by the shared input rules
// (line breaks and tabs allowed — a PEM key has them —, no NUL or other control character).
func (s secretInput) check() error {
	switch {
	case s.value == "":
		return invalidInput("secret", "is required")
	case len(s.value) > maxSecretBytes:
		return invalidInput("secret", "is longer than 25600 bytes")
	case text.Check(s.value) != nil:
		return invalidInput("secret", "must be text without control characters other than line breaks and tabs")
	}
	return nil
}

// jsonKind names the kind of a JSON value for a type error.
func jsonKind(b []byte) string {
	switch t := bytes.TrimLeft(b, " \t\r\n"); {
	case len(t) == 0:
		return "value"
	case t[0] == '{':
		return "object"
	case t[0] == '[':
		return "array"
	case t[0] == 't' || t[0] == 'f':
		return "bool"
	case t[0] == 'n':
		return "null"
	default:
		return "number"
	}
}
