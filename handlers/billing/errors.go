package billing

import (
	"errors"
	"fmt"
	"net/http"

	"spine/shared/entitlements"
	"spine/shared/httpx"
	"spine/shared/problem"
)

// Sentinels of the billing service. The store and the service wrap them with %w; MapError turns
// them into problems once, at the edge. The shared ones (write fence, caller checks, store
// unavailable, idempotency) are httpx's.
var (
	ErrInvalidInput         = errors.New("billing: invalid input")
	ErrEditionNotFound      = errors.New("billing: edition not found")
	ErrSubscriptionNotFound = errors.New("billing: subscription not found")
	ErrInvoiceNotFound      = errors.New("billing: invoice not found")
	ErrNoSubscription       = errors.New("billing: the tenant has no live subscription")
	ErrSubscriptionExists   = errors.New("billing: the tenant has a live subscription")
	ErrIllegalTransition    = errors.New("billing: illegal subscription transition")
	ErrSameEdition          = errors.New("billing: the subscription is on this edition already")
	ErrCurrencyMismatch     = errors.New("billing: editions of different currencies")
	ErrVersionMismatch      = errors.New("billing: version mismatch")
	// ErrIllegalInvoiceTransition: the invoice's status cannot move that way.
	ErrIllegalInvoiceTransition = errors.New("billing: illegal invoice transition")
	// ErrUsageNeedsSubscription: usage is recorded into a live subscription's current period.
	ErrUsageNeedsSubscription = errors.New("billing: usage needs a live subscription")
	// ErrUsageIDConflict: the usage id was recorded already with other content.
	ErrUsageIDConflict = errors.New("billing: usage id recorded with other content")
	// ErrInvalidUsageTime: a usage time sent that is before 2000-01-01T00:00:00Z or more than a
	// day after now (the zero time included: it is not "now").
	ErrInvalidUsageTime = errors.New("billing: usage time out of bounds")
	// ErrEditionNotPublic: a tenant subscribes or changes to public editions only.
	ErrEditionNotPublic = errors.New("billing: the edition is not public")
	// ErrPaymentRequired: a tenant cannot activate its PastDue subscription; paying the open
	// invoice does (or a platform admin).
	ErrPaymentRequired = errors.New("billing: a PastDue subscription becomes Active by payment")
	// ErrTotalTooLarge: an invoice total or a period's usage quantity would exceed maxMinor
	// (2^53 − 1), the largest integer JSON clients read exactly.
	ErrTotalTooLarge = errors.New("billing: total beyond 2^53 - 1")
)

// invalid is an ErrInvalidInput with a message for the caller.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidInput, fmt.Sprintf(format, args...))
}

// MapError maps the service's errors to problems; it returns nil for errors it does not own.
func MapError(err error) *problem.Problem {
	switch {
	case errors.Is(err, ErrInvalidInput):
		return problem.New(http.StatusBadRequest, "invalid-input", problem.Detail(err, ErrInvalidInput))
	case errors.Is(err, ErrInvalidEdition):
		return editionProblem(err)
	case errors.Is(err, ErrInvalidUsageTime):
		return problem.New(http.StatusBadRequest, "invalid-time", "at must be a time from 2000-01-01T00:00:00Z to one day after now (leave it out for now).").
			WithFields(problem.FieldError{Field: "at", Detail: "before 2000-01-01T00:00:00Z or more than a day ahead"})
	case errors.Is(err, ErrEditionNotFound):
		return problem.New(http.StatusNotFound, "edition-not-found", "No edition of the catalog has this code (GET /api/editions).")
	case errors.Is(err, ErrSubscriptionNotFound):
		return problem.New(http.StatusNotFound, "subscription-not-found", "No subscription with this id is visible to the caller.")
	case errors.Is(err, ErrInvoiceNotFound):
		return problem.New(http.StatusNotFound, "invoice-not-found", "No invoice with this id is visible to the caller.")
	case errors.Is(err, ErrNoSubscription), errors.Is(err, entitlements.ErrUnknownTenant):
		return problem.New(http.StatusNotFound, "no-subscription", "The tenant has no subscription that is not cancelled.")
	case errors.Is(err, ErrSubscriptionExists):
		return problem.New(http.StatusConflict, "subscription-exists", "The tenant has a subscription that is not cancelled; change or cancel it.")
	case errors.Is(err, ErrIllegalTransition):
		return problem.New(http.StatusConflict, "illegal-transition", problem.Detail(err, ErrIllegalTransition))
	case errors.Is(err, ErrSameEdition):
		return problem.New(http.StatusConflict, "same-edition", "The subscription is on this edition already.")
	case errors.Is(err, ErrCurrencyMismatch):
		return problem.New(http.StatusConflict, "currency-mismatch", "The editions are priced in different currencies; cancel and subscribe instead.")
	case errors.Is(err, ErrIllegalInvoiceTransition):
		return problem.New(http.StatusConflict, "illegal-invoice-transition", problem.Detail(err, ErrIllegalInvoiceTransition))
	case errors.Is(err, ErrUsageNeedsSubscription):
		return problem.New(http.StatusConflict, "no-subscription", "The tenant has no live subscription whose period the usage could be recorded in.")
	case errors.Is(err, ErrUsageIDConflict):
		return problem.New(http.StatusConflict, "usage-id-conflict", "This usageId was recorded already with another metric, quantity or time; a retry must send the same content.")
	case errors.Is(err, ErrEditionNotPublic):
		return problem.New(http.StatusForbidden, "edition-not-public", "This edition is not offered to tenants; a platform admin assigns it.")
	case errors.Is(err, ErrPaymentRequired):
		return problem.New(http.StatusConflict, "payment-required", "A PastDue subscription becomes Active when its open invoice is paid; a tenant cannot activate it.")
	case errors.Is(err, ErrTotalTooLarge):
		return problem.New(http.StatusConflict, "total-too-large", "This would make an invoice total or a period's usage quantity exceed 9007199254740991 (2^53 − 1), the largest integer JSON clients read exactly.")
	case errors.Is(err, ErrVersionMismatch):
		return httpx.PreconditionFailed()
	}
	return nil
}
