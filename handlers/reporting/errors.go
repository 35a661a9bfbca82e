package reporting

import (
	"errors"
	"fmt"
	"net/http"

	"spine/shared/problem"
)

// The reporting service's sentinels; MapError maps them to problem+json once, at the edge.
var (
	// ErrReportNotFound: no report definition with the id visible to the caller (or deleted).
	ErrReportNotFound = errors.New("reporting: report not found")
	// ErrRunNotFound: no run with the id visible to the caller.
	ErrRunNotFound = errors.New("reporting: run not found")
	// ErrInvalidReport: a definition's member is invalid (InputError says which).
	ErrInvalidReport = errors.New("reporting: invalid report")
	// ErrUnknownSource: the source is not a built-in source.
	ErrUnknownSource = errors.New("reporting: unknown source")
	// ErrInvalidParameters: a parameter is unknown, of the wrong type, out of range or missing.
	ErrInvalidParameters = errors.New("reporting: invalid parameters")
	// ErrNotReady: the run has no artifact yet (not Succeeded).
	ErrNotReady = errors.New("reporting: report not ready")
	// ErrExpired: the run's artifact is past its expiry.
	ErrExpired = errors.New("reporting: artifact expired")
	// ErrVersionMismatch: If-Match named another version.
	ErrVersionMismatch = errors.New("reporting: version mismatch")
)

// InputError names the member a request got wrong and why.
type InputError struct{ Field, Detail string }

func (e *InputError) Error() string { return e.Field + " " + e.Detail }

func invalid(sentinel error, field, detail string) error {
	return fmt.Errorf("%w: %w", sentinel, &InputError{field, detail})
}

// MapError maps the service's sentinels to problems (nil for errors it does not know).
func MapError(err error) *problem.Problem {
	var ie *InputError
	switch {
	case errors.Is(err, ErrInvalidParameters) && errors.As(err, &ie):
		return problem.Newf(http.StatusBadRequest, "invalid-parameters", "%s %s.", ie.Field, ie.Detail).
			WithFields(problem.FieldError{Field: ie.Field, Detail: ie.Detail})
	case errors.Is(err, ErrUnknownSource):
		return problem.New(http.StatusBadRequest, "unknown-source", "source is not a built-in report source.").
			WithFields(problem.FieldError{Field: "source", Detail: "unknown"})
	case errors.As(err, &ie):
		return problem.Newf(http.StatusBadRequest, "invalid-report", "%s %s.", ie.Field, ie.Detail).
			WithFields(problem.FieldError{Field: ie.Field, Detail: ie.Detail})
	case errors.Is(err, ErrReportNotFound):
		return problem.New(http.StatusNotFound, "not-found", "No report with this id.")
	case errors.Is(err, ErrRunNotFound):
		return problem.New(http.StatusNotFound, "not-found", "No report run with this id.")
	case errors.Is(err, ErrNotReady):
		return problem.New(http.StatusConflict, "report-not-ready", "The run has not succeeded: it has no artifact to download yet.")
	case errors.Is(err, ErrExpired):
		return problem.New(http.StatusGone, "artifact-expired", "The run's artifact has expired.")
	case errors.Is(err, ErrVersionMismatch):
		return problem.New(http.StatusPreconditionFailed, "version-mismatch", "If-Match does not name the current version.")
	}
	return nil
}
