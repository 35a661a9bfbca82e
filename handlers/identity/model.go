package identity

import (
	"fmt"
	"net/mail"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"spine/shared/ids"
	"spine/shared/tenancy"
)

// The identity model's typed values are parsed at the edge (routes.go, the consumer): past it, a
// UserID is a canonical id, an Email a plain address, a RoleCode a valid code.

// UserID identifies a user within its tenant: a UUID (v7 for users Spine creates) in canonical
// lowercase form. It is also the token subject (sub) the authorization server issues for the
// user, so a token's caller and an identity user are the same id.
type UserID string

// RoleID identifies a role within its tenant (canonical UUID text).
type RoleID string

// InvitationID identifies an invitation within its tenant (canonical UUID text).
type InvitationID string

// ParseUserID parses a user id; anything else is ErrInvalidID.
func ParseUserID(s string) (UserID, error) {
	id, ok := ids.Parse(s)
	if !ok {
		return "", ErrInvalidID
	}
	return UserID(id), nil
}

// ParseRoleID parses a role id; anything else is ErrInvalidID.
func ParseRoleID(s string) (RoleID, error) {
	id, ok := ids.Parse(s)
	if !ok {
		return "", ErrInvalidID
	}
	return RoleID(id), nil
}

// ParseInvitationID parses an invitation id; anything else is ErrInvalidID.
func ParseInvitationID(s string) (InvitationID, error) {
	id, ok := ids.Parse(s)
	if !ok {
		return "", ErrInvalidID
	}
	return InvitationID(id), nil
}

// Email is a user's e-mail address as given (displayed as given). Uniqueness within a tenant is
// decided on Key, its lowercase form: "Ana@Example.com" and "ana@example.com" are one user, who
// keeps the spelling of the first invitation.
type Email string

// ParseEmail accepts a plain address (no display name, no comments) of at most 254 bytes, as
// net/mail parses it, the rule tenants applies to a tenant's owner e-mail.
func ParseEmail(s string) (Email, error) {
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || len(s) > 254 {
		return "", invalid("email must be a plain e-mail address of at most 254 bytes")
	}
	return Email(s), nil
}

// Key is the address in lowercase: the key of the per-tenant uniqueness.
func (e Email) Key() string { return strings.ToLower(string(e)) }

// RoleCode is a role's code, unique within its tenant: 2–63 lowercase letters, digits or
// hyphens, starting with a letter.
type RoleCode string

var roleCodeRE = regexp.MustCompile(`^[a-z][a-z0-9-]{1,62}$`)

// ParseRoleCode parses a role code.
func ParseRoleCode(s string) (RoleCode, error) {
	if !roleCodeRE.MatchString(s) {
		return "", invalid("code must be 2–63 lowercase letters, digits or '-', starting with a letter")
	}
	return RoleCode(s), nil
}

// PermissionCode is a catalog permission's code: dot-separated lowercase words ("user.invite").
type PermissionCode string

var permissionCodeRE = regexp.MustCompile(`^[a-z][a-z0-9-]*(\.[a-z][a-z0-9-]*)+$`)

// ParsePermissionCode checks the shape of a permission code (whether the catalog has it is the
// store's question).
func ParsePermissionCode(s string) (PermissionCode, error) {
	if len(s) > 64 || !permissionCodeRE.MatchString(s) {
		return "", fmt.Errorf("%w: %q", ErrUnknownPermission, s)
	}
	return PermissionCode(s), nil
}

// The system roles every tenant gets when it is provisioned. They cannot be changed or deleted
// through the API, and their codes cannot be taken by a tenant's own roles.
const (
	// RoleTenantAdmin holds every catalog permission; the tenant's owner is invited with it.
	RoleTenantAdmin RoleCode = "tenant-admin"
	// RoleMember may read the tenant, its users and its roles.
	RoleMember RoleCode = "member"
)

// memberPermissions are the permissions of the member system role.
var memberPermissions = []PermissionCode{"role.read", "tenant.read", "user.read"}

// systemRole reports whether code is one of the system roles' codes.
func systemRole(code RoleCode) bool { return code == RoleTenantAdmin || code == RoleMember }

// UserStatus is a user's lifecycle state: Invited → Active ⇄ Disabled.
type UserStatus string

// The user lifecycle.
const (
	StatusInvited  UserStatus = "Invited"
	StatusActive   UserStatus = "Active"
	StatusDisabled UserStatus = "Disabled"
)

// Valid reports whether s is one of the defined states.
func (s UserStatus) Valid() bool {
	return s == StatusInvited || s == StatusActive || s == StatusDisabled
}

// User is a tenant's user.
type User struct {
	ID          UserID
	Tenant      tenancy.TenantID
	Email       Email
	DisplayName string
	Status      UserStatus
	Version     int64
	CreatedAt   time.Time
	UpdatedAt   time.Time
	ActivatedAt *time.Time
	LastLoginAt *time.Time
	// Roles are the ids of the roles assigned to the user, sorted; filled by single-user reads.
	Roles []RoleID
}

// Invitation is an invitation of a user. Only the SHA-256 of its token's secret is kept.
type Invitation struct {
	ID         InvitationID
	Tenant     tenancy.TenantID
	User       UserID
	TokenHash  []byte
	InvitedBy  string
	CreatedAt  time.Time
	ExpiresAt  time.Time
	AcceptedAt *time.Time
	RevokedAt  *time.Time
}

// Pending reports whether the invitation can still be accepted at now.
func (i Invitation) Pending(now time.Time) bool {
	return i.AcceptedAt == nil && i.RevokedAt == nil && now.Before(i.ExpiresAt)
}

// Role is a tenant's role with its permissions.
type Role struct {
	ID          RoleID
	Tenant      tenancy.TenantID
	Code        RoleCode
	Name        string
	IsSystem    bool
	Version     int64
	CreatedAt   time.Time
	UpdatedAt   time.Time
	Permissions []PermissionCode
}

// Permission is an entry of the platform-level permission catalog.
type Permission struct {
	Code     PermissionCode `json:"code"`
	Name     string         `json:"name"`
	Category string         `json:"category"`
}

// validName checks a display or role name: at most max characters on one line (required
// when min is 1).
func validName(field, s string, minLen, maxLen int) error {
	n := utf8.RuneCountInString(s)
	if n < minLen || n > maxLen || strings.ContainsAny(s, "\r\n\t") || strings.TrimSpace(s) != s {
		if minLen > 0 {
			return invalid("%s must be %d–%d characters on one line, without leading or trailing space", field, minLen, maxLen)
		}
		return invalid("%s must be at most %d characters on one line, without leading or trailing space", field, maxLen)
	}
	return nil
}

// sortedCodes returns the codes sorted, without duplicates.
func sortedCodes(codes []PermissionCode) []PermissionCode {
	out := slices.Clone(codes)
	slices.Sort(out)
	return slices.Compact(out)
}
