// Package tenancy holds the tenant identity every layer carries (TenantID), the in-process question
// "what state is this tenant in?" (Directory), and the write fence built on it.
//
// The tenants service owns the answer: it implements Directory over its own store and cache, and
// main.go wires it into every other service. No service reads the tenants database directly.
package tenancy

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
)

// TenantID identifies a tenant. It is a UUID (v7 for tenants created by Spine) in canonical
// lowercase form; the zero value means "no tenant".
type TenantID struct{ u uuid.UUID }

// ErrInvalidTenantID is returned by ParseTenantID for anything that is not a UUID.
var ErrInvalidTenantID = errors.New("tenancy: invalid tenant id")

// ParseTenantID parses s as a tenant id. Only the canonical 36-character form is accepted so that
// one tenant has one spelling in keys, paths and logs.
func ParseTenantID(s string) (TenantID, error) {
	if len(s) != 36 {
		return TenantID{}, ErrInvalidTenantID
	}
	u, err := uuid.Parse(s)
	if err != nil || u == uuid.Nil {
		return TenantID{}, ErrInvalidTenantID
	}
	return TenantID{u}, nil
}

// MustParseTenantID is ParseTenantID for constants in tests; it panics on bad input.
func MustParseTenantID(s string) TenantID {
	id, err := ParseTenantID(s)
	if err != nil {
		panic(fmt.Sprintf("tenancy: MustParseTenantID(%q): %v", s, err))
	}
	return id
}

// NewTenantID returns a fresh time-ordered (UUIDv7) tenant id.
func NewTenantID() TenantID { return TenantID{uuid.Must(uuid.NewV7())} }

// String returns the canonical lowercase form, or "" for the zero value.
func (t TenantID) String() string {
	if t.u == uuid.Nil {
		return ""
	}
	return t.u.String()
}

// IsZero reports whether t is the zero value.
func (t TenantID) IsZero() bool { return t.u == uuid.Nil }

// UUID returns the underlying UUID.
func (t TenantID) UUID() uuid.UUID { return t.u }

// MarshalText implements encoding.TextMarshaler.
func (t TenantID) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (t *TenantID) UnmarshalText(b []byte) error {
	id, err := ParseTenantID(string(b))
	if err != nil {
		return err
	}
	*t = id
	return nil
}

// Status is a tenant's lifecycle state.
type Status string

// The lifecycle: Provisioning → Active ⇄ Suspended → Decommissioned.
const (
	StatusProvisioning   Status = "Provisioning"
	StatusActive         Status = "Active"
	StatusSuspended      Status = "Suspended"
	StatusDecommissioned Status = "Decommissioned"
)

// Valid reports whether s is one of the defined states.
func (s Status) Valid() bool {
	switch s {
	case StatusProvisioning, StatusActive, StatusSuspended, StatusDecommissioned:
		return true
	}
	return false
}

// AcceptsWrites reports whether tenant-owned data may change in this state. Provisioning accepts
// writes so that provisioning steps and seeding can run.
func (s Status) AcceptsWrites() bool {
	return s == StatusActive || s == StatusProvisioning
}

// ErrTenantNotFound is returned by a Directory for a tenant it does not know.
var ErrTenantNotFound = errors.New("tenancy: tenant not found")

// ErrTenantSuspended is returned by the write fence for a tenant whose state refuses writes
// (Suspended or Decommissioned). The HTTP edge maps it to 403 tenant-suspended.
var ErrTenantSuspended = errors.New("tenancy: tenant does not accept writes")

// Directory answers the state of a tenant. Implementations are safe for concurrent use, may serve
// from a cache that is invalidated after the owning write commits, and never fail only because the
// cache is down. An unknown tenant yields ErrTenantNotFound.
type Directory interface {
	TenantStatus(ctx context.Context, id TenantID) (Status, error)
}

// Fence refuses writes for tenants that do not accept them. One fence serves HTTP handlers,
// Service Bus workers and timer work alike, so a suspended tenant is refused everywhere.
type Fence struct{ Dir Directory }

// CheckWrite returns nil when id's tenant accepts writes, ErrTenantSuspended (wrapped, with the
// state) when it does not, and the directory's error otherwise.
func (f Fence) CheckWrite(ctx context.Context, id TenantID) error {
	st, err := f.Dir.TenantStatus(ctx, id)
	if err != nil {
		return err
	}
	if !st.AcceptsWrites() {
		return fmt.Errorf("%w: tenant %s is %s", ErrTenantSuspended, id, st)
	}
	return nil
}
