// Package problem renders RFC 9457 problem details (application/problem+json) with a stable,
// machine-readable code. Every error that reaches the HTTP edge is mapped to a Problem exactly once,
// by the echo error handler in this package; handlers return errors and never write error bodies.
package problem

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// ContentType is the media type of a problem body.
const ContentType = "application/problem+json"

// TypeBase prefixes the type URI of every problem; the code is appended.
const TypeBase = "https://spine.dev/problems/"

// Problem is an RFC 9457 problem details object. Code is Spine's stable extension member: clients
// switch on it, never on Title or Detail, which are for humans and may change.
type Problem struct {
	Type     string         `json:"type"`
	Title    string         `json:"title"`
	Status   int            `json:"status"`
	Detail   string         `json:"detail,omitempty"`
	Instance string         `json:"instance,omitempty"`
	Code     string         `json:"code"`
	Errors   []FieldError   `json:"errors,omitempty"`
	Extra    map[string]any `json:"-"`

	// Headers are set on the response (e.g. WWW-Authenticate, Retry-After).
	Headers map[string]string `json:"-"`
	// cause is kept for logs only; it is never rendered.
	cause error
}

// FieldError names one invalid input member.
type FieldError struct {
	Field  string `json:"field"`
	Detail string `json:"detail"`
}

// New returns a problem with the given status, stable code and human detail.
func New(status int, code, detail string) *Problem {
	return &Problem{
		Type:   TypeBase + code,
		Title:  http.StatusText(status),
		Status: status,
		Code:   code,
		Detail: detail,
	}
}

// Newf is New with a formatted detail. Never format a driver's or SDK's error text into it.
func Newf(status int, code, format string, args ...any) *Problem {
	return New(status, code, fmt.Sprintf(format, args...))
}

// Error implements error.
func (p *Problem) Error() string {
	if p.Detail != "" {
		return p.Code + ": " + p.Detail
	}
	return p.Code
}

// Unwrap returns the cause attached with WithCause.
func (p *Problem) Unwrap() error { return p.cause }

// WithCause attaches an internal cause for logging; it is never rendered to the client.
func (p *Problem) WithCause(err error) *Problem { p.cause = err; return p }

// WithHeader sets a response header to send with the problem.
func (p *Problem) WithHeader(k, v string) *Problem {
	if p.Headers == nil {
		p.Headers = map[string]string{}
	}
	p.Headers[k] = v
	return p
}

// WithFields attaches per-field validation errors.
func (p *Problem) WithFields(fe ...FieldError) *Problem { p.Errors = append(p.Errors, fe...); return p }

// As returns the Problem in err's chain, if any.
func As(err error) (*Problem, bool) {
	var p *Problem
	if errors.As(err, &p) {
		return p, true
	}
	return nil, false
}

// Common problems shared by every service.
var (
	// Internal is what any unmapped error becomes: no detail, so nothing leaks.
	Internal = func() *Problem {
		return New(http.StatusInternalServerError, "internal", "An unexpected error occurred. It has been logged.")
	}
	// Unavailable is a dependency outage (database down); retry later.
	Unavailable = func() *Problem {
		return New(http.StatusServiceUnavailable, "unavailable", "A backing service is unavailable; retry later.").WithHeader("Retry-After", "5")
	}
)

// Detail returns a validation error's message after its sentinel's text ("<sentinel>: <detail>"),
// or the whole message when the sentinel's text is not in it. Only for errors a service wrote
// itself: their text never carries driver or SDK messages.
func Detail(err, sentinel error) string {
	msg, prefix := err.Error(), sentinel.Error()+": "
	if i := strings.Index(msg, prefix); i >= 0 {
		return msg[i+len(prefix):]
	}
	return msg
}
