package tenants

import (
	"errors"
	"net/http"

	"spine/shared/httpx"
	"spine/shared/problem"
	"spine/shared/tenancy"
)

// Sentinels of the tenants service. The store and the service wrap them with %w; MapError turns
// them into problems once, at the edge.
var (
	ErrNotFound          = errors.New("tenants: tenant not found")
	ErrSlugTaken         = errors.New("tenants: slug taken")
	ErrInvalidSlug       = errors.New("tenants: invalid slug")
	ErrInvalidInput      = errors.New("tenants: invalid input")
	ErrIllegalTransition = errors.New("tenants: illegal status transition")
	ErrSlugImmutable     = errors.New("tenants: slug is immutable once the tenant is active")
	ErrVersionMismatch   = errors.New("tenants: version mismatch")
	ErrDecommissioned    = errors.New("tenants: tenant is decommissioned")
	ErrStepFailed        = errors.New("tenants: provisioning step failed")
	// ErrPlatformAdmin is the kit's tenancy.ErrPlatformAdminRequired.
	ErrPlatformAdmin = tenancy.ErrPlatformAdminRequired
)

// MapError maps the service's errors to problems; it returns nil for errors it does not own (the
// shared ones — write fence, caller checks, store unavailable — are httpx.MapError's).
func MapError(err error) *problem.Problem {
	var se *StepError
	switch {
	case errors.As(err, &se):
		p := problem.Newf(http.StatusBadGateway, "provisioning-step-failed",
			"Provisioning step %q failed (%s); the tenant stays Provisioning. POST provision again to retry from that step.", se.Step, se.Code)
		return p
	case errors.Is(err, ErrNotFound), errors.Is(err, tenancy.ErrTenantNotFound):
		return problem.New(http.StatusNotFound, "tenant-not-found", "No tenant with this id is visible to the caller.")
	case errors.Is(err, ErrSlugTaken):
		return problem.New(http.StatusConflict, "slug-taken", "Another tenant already uses this slug.")
	case errors.Is(err, ErrInvalidSlug):
		return problem.New(http.StatusBadRequest, "invalid-slug",
			"slug must be 3–63 lowercase letters, digits or hyphens, starting and ending with a letter or digit.").
			WithFields(problem.FieldError{Field: "slug", Detail: "invalid"})
	case errors.Is(err, ErrInvalidInput):
		return problem.New(http.StatusBadRequest, "invalid-input", problem.Detail(err, ErrInvalidInput))
	case errors.Is(err, ErrIllegalTransition):
		return problem.New(http.StatusConflict, "illegal-transition", problem.Detail(err, ErrIllegalTransition))
	case errors.Is(err, ErrSlugImmutable):
		return problem.New(http.StatusConflict, "slug-immutable", "The slug cannot change once the tenant has been active.")
	case errors.Is(err, ErrVersionMismatch):
		return httpx.PreconditionFailed()
	case errors.Is(err, ErrDecommissioned):
		return problem.New(http.StatusConflict, "tenant-decommissioned", "The tenant is decommissioned; it can no longer change.")
	}
	return nil
}

// StepError reports which provisioning step failed, with a stable code.
type StepError struct {
	Step string
	Code string
}

// Error names the step and its code.
func (e *StepError) Error() string {
	return "tenants: provisioning step " + e.Step + " failed: " + e.Code
}

// Unwrap lets errors.Is(err, ErrStepFailed) match.
func (e *StepError) Unwrap() error { return ErrStepFailed }
