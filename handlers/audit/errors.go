package audit

import (
	"errors"
	"net/http"

	"spine/shared/problem"
	"spine/shared/tenancy"
)

// Sentinels of the audit service. The store and the service wrap them with %w; MapError turns
// them into problems once, at the edge.
var (
	ErrNotFound      = errors.New("audit: entry not found")
	ErrInvalidInput  = errors.New("audit: invalid input")
	ErrInvalidFilter = errors.New("audit: invalid filter")
	ErrInvalidEvent  = errors.New("audit: invalid event")
	// ErrTenantRequired and ErrTenantMismatch are the kit's caller checks (tenancy).
	ErrTenantRequired = tenancy.ErrTenantRequired
	ErrTenantMismatch = tenancy.ErrTenantMismatch
)

// MapError maps the service's errors to problems; it returns nil for errors it does not own (the
// shared ones — caller checks, write fence, store unavailable — are httpx.MapError's).
func MapError(err error) *problem.Problem {
	switch {
	case errors.Is(err, ErrNotFound):
		return problem.New(http.StatusNotFound, "audit-entry-not-found", "No audit entry with this id is visible to the caller.")
	case errors.Is(err, ErrInvalidInput):
		return problem.New(http.StatusBadRequest, "invalid-input", problem.Detail(err, ErrInvalidInput))
	case errors.Is(err, ErrInvalidFilter):
		return problem.New(http.StatusBadRequest, "invalid-filter", problem.Detail(err, ErrInvalidFilter))
	case errors.Is(err, ErrInvalidFromSeq):
		return problem.New(http.StatusBadRequest, "invalid-from-seq", "fromSeq must be where an export starts: 1, or a page's nextFromSeq.").
			WithFields(problem.FieldError{Field: "fromSeq", Detail: "no export starts there"})
	case errors.Is(err, ErrNoArchive):
		return problem.New(http.StatusServiceUnavailable, "archive-unavailable", "The audit archive is not configured on this deployment.")
	case errors.Is(err, ErrInvalidEvent):
		return problem.New(http.StatusBadRequest, "invalid-event", problem.Detail(err, ErrInvalidEvent))
	}
	return nil
}
