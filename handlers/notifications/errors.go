package notifications

import (
	"errors"
	"fmt"
	"net/http"

	"spine/shared/problem"
	"spine/shared/secrets"
)

// Sentinels of the notifications service, wrapped with %w by the store and the service and
// mapped to problems once, at the edge (MapError). The shared ones (write fence, caller checks,
// store unavailable, idempotency) are httpx's.
var (
	ErrInvalidInput         = errors.New("notifications: invalid input")
	ErrNotFound             = errors.New("notifications: not found")
	ErrEndpointNotFound     = errors.New("notifications: webhook endpoint not found")
	ErrAttachmentNotFound   = errors.New("notifications: attachment not found")
	ErrAttachmentTooLarge   = errors.New("notifications: attachments too large")
	ErrBodyTooLarge         = errors.New("notifications: body too large")
	ErrInvalidAttachment    = errors.New("notifications: invalid attachment name")
	ErrEndpointDisabled     = errors.New("notifications: webhook endpoint disabled")
	ErrEventTypeNotAccepted = errors.New("notifications: the endpoint does not accept this event type")
	ErrInvalidURL           = errors.New("notifications: webhook URL refused")
	ErrVersionMismatch      = errors.New("notifications: version mismatch")
	// ErrUnavailable: Blob or Key Vault did not answer; nothing was acknowledged.
	ErrUnavailable = errors.New("notifications: storage unavailable")
)

var (
	// errReadUnavailable marks an ErrUnavailable met by a read (GET): there was nothing to accept,
	// so its problem does not say that nothing was.
	errReadUnavailable = errors.New("notifications: storage unavailable to a read")
	// errNoEventType marks an ErrEventTypeNotAccepted of a notification that names no eventType.
	errNoEventType = errors.New("notifications: the notification names no eventType")
)

// onRead marks err, when it is ErrUnavailable, as met by a read.
func onRead(err error) error {
	if errors.Is(err, ErrUnavailable) {
		return fmt.Errorf("%w: %w", errReadUnavailable, err)
	}
	return err
}

// retryAfter is the Retry-After (seconds) of every 503 of the service, as integrations'.
const retryAfter = "5"

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidInput, fmt.Sprintf(format, args...))
}

// MapError maps the service's errors to problems; nil for errors it does not own.
func MapError(err error) *problem.Problem {
	switch {
	case errors.Is(err, ErrInvalidInput):
		return problem.New(http.StatusBadRequest, "invalid-input", problem.Detail(err, ErrInvalidInput))
	case errors.Is(err, ErrInvalidAttachment):
		return problem.New(http.StatusBadRequest, "invalid-attachment-name",
			"Attachment names are 1 to 100 of A-Z a-z 0-9 . _ - and do not start with a dot; each name once per notification.")
	case errors.Is(err, ErrAttachmentTooLarge):
		return problem.New(http.StatusRequestEntityTooLarge, "attachment-too-large", problem.Detail(err, ErrAttachmentTooLarge))
	case errors.Is(err, ErrBodyTooLarge):
		return problem.New(http.StatusRequestEntityTooLarge, "body-too-large", problem.Detail(err, ErrBodyTooLarge))
	case errors.Is(err, ErrInvalidURL):
		// A fixed text: the cause is shared/egress's, whose wording is not the API's.
		return problem.New(http.StatusBadRequest, "invalid-url", "The webhook URL must be an absolute https URL of at most 2048 characters without credentials or fragment, "+
			"on a public address (plain http to loopback only in local runs).").
			WithFields(problem.FieldError{Field: "url", Detail: "https only; at most 2048 characters; no private, link-local or metadata address"})
	case errors.Is(err, ErrNotFound):
		return problem.New(http.StatusNotFound, "not-found", "No notification with this id is visible to the caller.")
	case errors.Is(err, ErrEndpointNotFound):
		return problem.New(http.StatusNotFound, "not-found", "No webhook endpoint with this id is visible to the caller.")
	case errors.Is(err, ErrAttachmentNotFound):
		return problem.New(http.StatusNotFound, "not-found", "The notification has no attachment of this name.")
	case errors.Is(err, ErrArchiveUnreadable):
		return problem.New(http.StatusInternalServerError, "archive-unreadable", "The notification archive of this month could not be read; "+
			"an operator must restore its blob (notification-archive).")
	case errors.Is(err, ErrArchived):
		return problem.New(http.StatusConflict, "notification-archived", "The notification is archived (older than 90 days): its body and "+
			"attachments are in the archive access tier and are not served; an operator can rehydrate them.")
	case errors.Is(err, ErrEndpointDisabled):
		return problem.New(http.StatusConflict, "endpoint-disabled", "The webhook endpoint is disabled; enable it (PATCH enabled=true) first.")
	case errors.Is(err, ErrEventTypeNotAccepted) && errors.Is(err, errNoEventType):
		return problem.New(http.StatusConflict, "event-type-not-accepted", "The webhook endpoint accepts only the event types listed in its eventTypes, "+
			"and the notification names no eventType: name one of them, or remove the endpoint's filter (PATCH eventTypes null).")
	case errors.Is(err, ErrEventTypeNotAccepted):
		return problem.New(http.StatusConflict, "event-type-not-accepted",
			"The webhook endpoint accepts only the event types listed in its eventTypes; the notification's eventType is not one of them.")
	case errors.Is(err, ErrVersionMismatch):
		return problem.New(http.StatusPreconditionFailed, "precondition-failed", "The resource changed since the ETag given in If-Match.")
	case errors.Is(err, secrets.ErrUnavailable), errors.Is(err, secrets.ErrThrottled):
		// Before ErrUnavailable, which wraps it: the wording is integrations'.
		return problem.New(http.StatusServiceUnavailable, "vault-unavailable", "Key Vault could not be reached; nothing was changed. Try again later.").
			WithHeader("Retry-After", retryAfter)
	case errors.Is(err, errReadUnavailable):
		return problem.New(http.StatusServiceUnavailable, "store-unavailable", "Storage did not answer. Retry later.").
			WithHeader("Retry-After", retryAfter)
	case errors.Is(err, ErrUnavailable):
		return problem.New(http.StatusServiceUnavailable, "store-unavailable", "Storage did not answer; nothing was accepted. Retry later.").
			WithHeader("Retry-After", retryAfter)
	}
	return nil
}
