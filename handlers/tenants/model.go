package tenants

import (
	"fmt"
	"net/mail"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"spine/shared/tenancy"
	"spine/shared/text"
)

// Slug is a tenant's globally unique, URL-safe handle: 3–63 characters of lowercase letters,
// digits and hyphens, starting and ending with a letter or digit. Immutable once Active.
type Slug string

var slugRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$`)

// ParseSlug validates s as a slug. It does not lowercase: "Contoso" is rejected, not rewritten,
// so a client never gets a slug it did not ask for.
func ParseSlug(s string) (Slug, error) {
	if !slugRE.MatchString(s) {
		return "", fmt.Errorf("%w: %q", ErrInvalidSlug, s)
	}
	return Slug(s), nil
}

// EditionCode names an edition of the billing catalog.
type EditionCode string

var editionRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// StepStatus is a provisioning step's state.
type StepStatus string

// Step states: a step is retried until it succeeds.
const (
	StepPending   StepStatus = "Pending"
	StepSucceeded StepStatus = "Succeeded"
	StepFailed    StepStatus = "Failed"
)

// Step is one ordered provisioning step of a tenant. LastError is a stable code, never a
// dependency's error text.
type Step struct {
	Seq       int
	Name      string
	Status    StepStatus
	Attempts  int
	LastError string
	UpdatedAt time.Time
}

// Tenant is the tenant registry's aggregate.
type Tenant struct {
	ID            tenancy.TenantID
	Name          string
	Slug          Slug
	Status        tenancy.Status
	EditionCode   EditionCode
	OwnerEmail    string
	Version       int64
	CreatedAt     time.Time
	UpdatedAt     time.Time
	ProvisionedAt *time.Time
}

// View is a tenant with its provisioning steps in order: what GET returns and the cache holds.
type View struct {
	Tenant Tenant
	Steps  []Step
}

// transitions lists the legal status moves; everything else is ErrIllegalTransition.
var transitions = map[tenancy.Status][]tenancy.Status{
	tenancy.StatusProvisioning: {tenancy.StatusActive, tenancy.StatusDecommissioned},
	tenancy.StatusActive:       {tenancy.StatusSuspended},
	tenancy.StatusSuspended:    {tenancy.StatusActive, tenancy.StatusDecommissioned},
}

// canMove reports whether from → to is a legal transition.
func canMove(from, to tenancy.Status) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// moveTo applies a status transition or returns ErrIllegalTransition naming both states.
func (t *Tenant) moveTo(to tenancy.Status, now time.Time) error {
	if !canMove(t.Status, to) {
		return fmt.Errorf("%w: %s → %s", ErrIllegalTransition, t.Status, to)
	}
	t.Status = to
	if to == tenancy.StatusActive && t.ProvisionedAt == nil {
		p := now
		t.ProvisionedAt = &p
	}
	return nil
}

func validName(s string) error {
	n := utf8.RuneCountInString(strings.TrimSpace(s))
	if n < 1 || n > 200 || n != utf8.RuneCountInString(s) {
		return fmt.Errorf("%w: name must be 1–200 characters without leading or trailing spaces", ErrInvalidInput)
	}
	if text.CheckLine(s) != nil {
		return fmt.Errorf("%w: name must be one line of text without control characters", ErrInvalidInput)
	}
	return nil
}

func validEmail(s string) error {
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || len(s) > 254 {
		return fmt.Errorf("%w: ownerEmail must be a plain e-mail address", ErrInvalidInput)
	}
	return nil
}

func validEdition(s string) error {
	if !editionRE.MatchString(s) {
		return fmt.Errorf("%w: editionCode must be 1–64 lowercase letters, digits, '.', '_' or '-'", ErrInvalidInput)
	}
	return nil
}
