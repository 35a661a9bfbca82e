package audit

import (
	"errors"
	"net/http"
	"strings"

	"spine/shared/problem"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
)

// Sentinels of the audit service. The store and the service wrap them with %w; MapError turns
// them into problems once, at the edge.
var (
	ErrNotFound       = errors.New("audit: entry not found")
	ErrInvalidInput   = errors.New("audit: invalid input")
	ErrInvalidFilter  = errors.New("audit: invalid filter")
	ErrInvalidEvent   = errors.New("audit: invalid event")
	ErrTenantRequired = errors.New("audit: tenantId is required for platform-admin requests")
	ErrTenantMismatch = errors.New("audit: a tenant token reaches its own tenant only")
)

// MapError maps the service's errors to problems; it returns nil for errors it does not own.
func MapError(err error) *problem.Problem {
	switch {
	case errors.Is(err, ErrNotFound):
		return problem.New(http.StatusNotFound, "audit-entry-not-found", "No audit entry with this id is visible to the caller.")
	case errors.Is(err, ErrInvalidInput):
		return problem.New(http.StatusBadRequest, "invalid-input", detailOf(err, ErrInvalidInput))
	case errors.Is(err, ErrInvalidFilter):
		return problem.New(http.StatusBadRequest, "invalid-filter", detailOf(err, ErrInvalidFilter))
	case errors.Is(err, ErrInvalidEvent):
		return problem.New(http.StatusBadRequest, "invalid-event", detailOf(err, ErrInvalidEvent))
	case errors.Is(err, ErrTenantRequired):
		return problem.New(http.StatusBadRequest, "tenant-required",
			"A platform-admin token must name the tenant: add the tenantId query parameter.").
			WithFields(problem.FieldError{Field: "tenantId", Detail: "required"})
	case errors.Is(err, ErrTenantMismatch):
		return problem.New(http.StatusForbidden, "tenant-mismatch", "A tenant token can only reach its own tenant's audit trail.")
	case errors.Is(err, tenancy.ErrTenantNotFound):
		return problem.New(http.StatusNotFound, "tenant-not-found", "No tenant with this id is visible to the caller.")
	case errors.Is(err, tenancy.ErrTenantSuspended):
		return problem.New(http.StatusForbidden, "tenant-suspended", "The tenant is suspended; writes are refused.")
	case errors.Is(err, sqlstore.ErrUnavailable):
		return problem.Unavailable()
	}
	return nil
}

// detailOf returns the message of a validation error without its sentinel prefix; these messages
// are written by this package and never carry driver or SDK text.
func detailOf(err, sentinel error) string {
	return strings.TrimPrefix(err.Error(), sentinel.Error()+": ")
}
